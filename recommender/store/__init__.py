"""Weaviate: the product store (the only package importing `weaviate`), the local server (``server``, ``ports``,
``process``), the item cache, neighbour listings."""
