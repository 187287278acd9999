"""Weaviate: the product store (the only package importing `weaviate`), the local server, the item cache."""
