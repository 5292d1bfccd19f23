-- A sharded ledger (docs/design/sharding.md): with LEDGER_SHARDS above 1, each customer and
-- everything of theirs lives in one of the databases DB, DB_1 …; this directory, read in DB
-- only, records which. Every database runs the same migrations, so the table exists in each;
-- only DB's is ever written.
CREATE TABLE customer_shards (
  customer_ref TEXT PRIMARY KEY,
  shard        INTEGER NOT NULL CHECK (shard >= 0),
  created_at   INTEGER NOT NULL
) WITHOUT ROWID;

-- An event id given as a feed cursor is placed in the other shards by its time: their last
-- event at or before it, found through this index rather than by reading the feed.
CREATE INDEX events_by_time ON events (created_at, seq);
