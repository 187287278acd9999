"""Multi-vector product recommender: the library (everything that is not HTTP or CLI)."""

__version__ = "0.1.0"
