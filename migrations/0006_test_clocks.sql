-- Named test clocks (TEST_CLOCK=on only). A customer session can name one; the customer's
-- checkouts, subscriptions and their charges then run on it, and advancing it bills only them.
-- Without a name they run on the global clock (`test_clock`). A named clock that was never
-- advanced reads as the global one.
CREATE TABLE test_clocks (
  name   TEXT PRIMARY KEY,
  now_ms INTEGER NOT NULL
);
ALTER TABLE checkouts ADD COLUMN test_clock TEXT;
ALTER TABLE subscriptions ADD COLUMN test_clock TEXT;
ALTER TABLE charges ADD COLUMN test_clock TEXT;
CREATE INDEX subscriptions_due_on_clock ON subscriptions (test_clock, status, current_period_end);
