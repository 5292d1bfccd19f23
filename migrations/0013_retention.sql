-- Retention: events (with their delivery attempts), provider webhook records and tick reports
-- leave the ledger for the ARCHIVE bucket once older than their retention, in batches the cron
-- writes as one gzip-compressed JSON-lines object each. Money rows never leave.

-- One row per archive object written.
CREATE TABLE archives (
  id          INTEGER PRIMARY KEY,
  kind        TEXT NOT NULL CHECK (kind IN ('events', 'webhooks', 'ticks')),
  object_key  TEXT NOT NULL UNIQUE,   -- its name in the bucket
  rows        INTEGER NOT NULL,
  bytes       INTEGER NOT NULL,       -- compressed
  first_at    INTEGER NOT NULL,       -- the oldest record's time
  last_at     INTEGER NOT NULL,       -- the newest record's time
  archived_at INTEGER NOT NULL        -- wall time
);

-- Where an archived event went: GET /v1/events/:id reads it there, and a feed cursor naming it
-- still knows its place. About 40 bytes an event, against the 2.5 KB it held in the ledger.
CREATE TABLE archived_events (
  id      TEXT PRIMARY KEY,
  seq     INTEGER NOT NULL,
  archive INTEGER NOT NULL REFERENCES archives (id)
) WITHOUT ROWID;

-- The records oldest first, for the cron's sweep.
CREATE INDEX webhook_events_by_time ON webhook_events (received_at);
