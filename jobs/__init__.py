"""Batch jobs and the `recsys` command line."""
