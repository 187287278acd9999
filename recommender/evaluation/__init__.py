"""Offline evaluation: splits, ranking metrics, reports."""
