"""The nightly refresh's stages: lock, change detection, the quality gate, precomputed lists."""
