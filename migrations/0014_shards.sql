-- A sharded ledger (docs/design/sharding.md): with LEDGER_SHARDS above 1, each customer and
-- everything of theirs lives in one of the databases DB, DB_1 …; this directory, read in DB
-- only, records which. Every database runs the same migrations, so the table exists in each;
-- only DB's is ever written.
CREATE TABLE customer_shards (
  customer_ref TEXT PRIMARY KEY,
  shard        INTEGER NOT NULL CHECK (shard >= 0),
  created_at   INTEGER NOT NULL
) WITHOUT ROWID;
