"""The event log (contract in ``sql``; SQLite in ``backend``, PostgreSQL in ``postgres``), the interaction matrices
built from it, and the time split into anchor tasks (``protocol``) that evaluation and fusion learning share."""
