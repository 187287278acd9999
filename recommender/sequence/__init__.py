"""The sequence model: SASRec-class self-attention over a shopper's recent items (torch, CPU)."""
