"""A product's nearest neighbours by one named vector, as text lines (`recsys similar`, `recsys demo`)."""

from __future__ import annotations

from recommender.errors import RecommenderError
from recommender.store.products import ProductStore


def neighbour_lines(store: ProductStore, product_id: str, vector: str, k: int) -> list[str]:
    """A product and its k nearest neighbours by one named vector (cosine similarity first on each line)."""
    obj = store.get(product_id, with_vectors=True)
    if obj is None:
        raise RecommenderError(f"product {product_id!r} is not in the store")
    if vector not in obj["_vectors"]:
        raise RecommenderError(f"product {product_id!r} has no {vector} vector ({obj.get('image_error')})")
    lines = [f"{product_id}  {obj['title']}  [{obj['category']}, {obj['color']}]  — nearest by {vector}:"]
    for hit in store.near_vector(obj["_vectors"][vector], vector, k + 1):
        if hit.product_id != product_id:
            p = hit.properties
            lines.append(f"  {1 - hit.distance:6.3f}  {hit.product_id}  {p['title']}  [{p['category']}, {p['color']}]")
    return lines
