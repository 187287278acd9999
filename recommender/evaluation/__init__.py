"""Offline evaluation: ranking and retrieval metrics, the method runner, `recsys evaluate` (``offline``), the
search evaluation, reports."""
