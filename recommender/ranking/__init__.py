"""Candidate sources, features, the fusion model, rules, the ranker and the recommendation service."""
