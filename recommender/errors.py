"""One root exception for the library, so callers can catch everything we raise on purpose."""


class RecommenderError(Exception):
    """Root of every error the library raises deliberately."""


class ConfigError(RecommenderError):
    """Settings are missing, malformed or contradictory."""


class CatalogError(RecommenderError):
    """A catalog folder cannot be read at all (not: a bad row, which is reported and skipped)."""


class StoreError(RecommenderError):
    """The vector store refused or failed an operation."""


class StoreUnavailable(StoreError):
    """The vector store cannot be reached."""


class WeaviateServerError(RecommenderError):
    """The local Weaviate server could not be installed, started or stopped."""


class EncoderError(RecommenderError):
    """An encoder could not be loaded (bad name, path or checkpoint)."""
