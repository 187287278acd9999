"""Collaborative signals from shoppers' events: ALS (the only package importing `implicit`), co-occurrence, and
the one path that fits them (``fit``)."""
