"""The batch pipelines around a release: the nightly refresh (``pipeline``, ``stages``: lock, change detection,
the quality gate, precomputed lists), `recsys train` (``train``), the store's behaviour vectors (``vectors``) and
switching releases by hand (``switch``)."""
