"""The event log (SQLite) and the interaction matrices built from it."""
