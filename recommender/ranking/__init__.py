"""Candidate sources, features, the fusion model and how it is learned (``learn``), rules, the ranker and the
recommendation service."""
