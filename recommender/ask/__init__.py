"""Shopping Q&A ("ask"): a question in words, a photo and/or the product on screen → typed constraints →
retrieval per intent with the constraints pushed down as store filters → an answer whose facts are composed
by code from the retrieved records and whose every sentence cites the products it speaks of.

Stages (data flows one way): ``vocabulary`` (the catalog's own words) → ``planner`` (question → ``Plan``) →
``retrieval`` (``Plan`` → ``Retrieved``) → ``compose`` (``Retrieved`` → ``Answer``) → ``service`` (the whole).
The frozen dataclasses passed between them live in ``model``.
"""
