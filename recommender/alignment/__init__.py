"""Contrastive alignment of an open_clip vision tower to the frozen text encoder's vector space.

``data`` builds (image, text-vector) pairs from a catalog, ``model`` owns the tower + projection and the
InfoNCE loss, ``train`` runs the seeded training loop, ``checkpoint`` saves and loads versioned checkpoints.
Modules import torch/open_clip themselves; importing this package is cheap.
"""
