-- The event log (DATA.md events). Plain SQL: runs on SQLite and PostgreSQL alike
-- (on PostgreSQL write `INSERT ... ON CONFLICT (event_key) DO NOTHING` where SQLite says `INSERT OR IGNORE`).
-- event_key = 16 hex digits of ts_us + a hash of the natural key (user, product, event, timestamp):
-- a duplicate delivery is ignored; the time prefix keeps inserts of time-ordered data near the index end.
CREATE TABLE IF NOT EXISTS events (
    event_key  TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    product_id TEXT NOT NULL,
    event      TEXT NOT NULL CHECK (event IN ('view', 'cart', 'purchase')),
    ts_us      BIGINT NOT NULL,  -- microseconds since 1970-01-01 UTC
    session_id TEXT NOT NULL,
    trust      TEXT NOT NULL DEFAULT 'server',  -- server (server key, file import) | shopper | anonymous (browser token)
    origin     TEXT NOT NULL DEFAULT ''         -- browser writes: keyed hash of the client network (events/trust.py)
);
CREATE INDEX IF NOT EXISTS events_by_time ON events (ts_us);
CREATE INDEX IF NOT EXISTS events_by_user ON events (user_id, ts_us);
CREATE INDEX IF NOT EXISTS events_by_session ON events (session_id, ts_us);
-- what the log remembers of each imported file (recommender/events/imports.py): a refresh skips a file whose
-- bytes and context match its last complete import when that import deferred no future-dated row
CREATE TABLE IF NOT EXISTS imported_files (
    path           TEXT PRIMARY KEY,  -- the file's absolute path
    digest         TEXT NOT NULL,     -- sha256 of its bytes
    context        TEXT NOT NULL,     -- sha256 of the earliest time believed and the known product ids
    deferred       BIGINT NOT NULL,   -- rows rejected only for being after the window's end
    imported_at_us BIGINT NOT NULL
);
