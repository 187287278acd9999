"""Defaults chosen by measurement: `recsys tune` searches settings on the next-item validation split."""
