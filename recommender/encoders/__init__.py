"""Encoders: text and image inputs → L2-normalised float32 vectors, behind one small interface."""

from recommender.encoders.base import Encoder, l2_normalize

__all__ = ["Encoder", "l2_normalize"]
