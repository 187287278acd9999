"""Collaborative signals from shoppers' events: ALS (the only package importing `implicit`), co-occurrence."""
