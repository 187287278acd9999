"""Multimodal search: a text and/or image query → products, fused over named vectors."""
