-- Test clocks as objects (development only): a name, a start, and the customers put on them.
-- A clock's `name` column stays its id (clk_... for clocks created as objects; the demo's
-- visitor clocks keep their reference), which sessions, checkouts, subscriptions and charges
-- name.
ALTER TABLE test_clocks ADD COLUMN label TEXT;
ALTER TABLE test_clocks ADD COLUMN created_at INTEGER;
CREATE INDEX checkouts_by_test_clock ON checkouts (test_clock) WHERE test_clock IS NOT NULL;
