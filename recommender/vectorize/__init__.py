"""The vectorize pipeline: catalog → encoders → store, skipping what is unchanged.

The stages live in ``stages``; ``local`` runs them with threads in one process (the default engine) and
``ray_engine`` runs the same stages as a Ray Data pipeline (``vectorize.engine = "ray"``, the ``ray`` extra).
"""

from recommender.vectorize.local import Vectorizer
from recommender.vectorize.stages import MassDeleteRefused, VectorizeEngine, VectorizeSummary

__all__ = ["MassDeleteRefused", "VectorizeEngine", "VectorizeSummary", "Vectorizer"]
