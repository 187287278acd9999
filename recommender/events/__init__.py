"""The event log (SQLite), the interaction matrices built from it, and the time split into anchor tasks
(``protocol``) that evaluation and fusion learning share."""
