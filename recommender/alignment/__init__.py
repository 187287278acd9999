"""Contrastive alignment of an open_clip vision tower to the frozen text encoder's vector space.

Training only: serving never imports it. ``data`` builds (image, text-vector) pairs from a catalog, ``model``
builds a new tower + projection and owns the InfoNCE loss, ``train`` runs the seeded training loop, ``hubness``
calibrates the hubness correction, ``checkpoint`` saves versioned checkpoints. What serving needs (the tower
definition, checkpoint loading, the hubness correction) lives in ``recommender.encoders``.
Modules import torch/open_clip themselves; importing this package is cheap.
"""
