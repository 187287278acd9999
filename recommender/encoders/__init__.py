"""Encoders: text and image inputs → L2-normalised float32 vectors, behind one small interface.

``tower``, ``checkpoint`` and ``hubness`` are the serving half of the trained image tower (its definition,
checkpoint loading, the hubness correction); training it lives in ``recommender.alignment``.
"""

from recommender.encoders.base import Encoder, l2_normalize

__all__ = ["Encoder", "l2_normalize"]
