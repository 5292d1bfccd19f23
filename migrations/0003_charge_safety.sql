-- Charge safety when the provider misbehaves: attempts that are over without the card answering
-- (cancelled, abandoned) are told apart from declines; every order we stop using is watched for
-- a late payment; payments nobody expects are refunded and recorded as incidents; webhooks are
-- recorded first and confirmed afterwards.

-- Attempts, rebuilt for their new statuses. An attempt records the card it charged and, when
-- the card declined, the decline's class: the per-card network limits count over every charge
-- of the card. A fresh charge claims its first attempt in the same round trip as its lease,
-- before its order exists: order_id is null until then.
CREATE TABLE charge_attempts_next (
  charge_id         TEXT NOT NULL REFERENCES charges (id),
  attempt           INTEGER NOT NULL,
  order_id          TEXT,                    -- null until the attempt's order exists
  payment_id        TEXT,                    -- null until the provider showed or told it
  payment_method_id TEXT,                    -- the card the attempt charged
  status            TEXT NOT NULL CHECK (status IN ('claimed', 'initiated', 'fenced', 'succeeded',
                      'failed', 'rejected', 'cancelled', 'abandoned')),
  failure_reason    TEXT,
  decline_class     TEXT CHECK (decline_class IN ('soft', 'hard', 'unknown')),
  created_at        INTEGER NOT NULL,
  updated_at        INTEGER NOT NULL,
  PRIMARY KEY (charge_id, attempt)
);
-- An attempt fenced under the old rules was taken as over: it is now abandoned, and its order
-- watched below.
INSERT INTO charge_attempts_next (charge_id, attempt, order_id, payment_id, payment_method_id,
    status, failure_reason, decline_class, created_at, updated_at)
  SELECT a.charge_id, a.attempt, a.order_id, a.payment_id, c.payment_method_id,
         CASE a.status WHEN 'fenced' THEN 'abandoned' ELSE a.status END,
         a.failure_reason, CASE a.status WHEN 'failed' THEN c.decline_class END,
         a.created_at, a.updated_at
  FROM charge_attempts a JOIN charges c ON c.id = a.charge_id;
DROP TABLE charge_attempts;
ALTER TABLE charge_attempts_next RENAME TO charge_attempts;
CREATE INDEX charge_attempts_by_card ON charge_attempts (payment_method_id, status, updated_at);
CREATE INDEX charge_attempts_by_order ON charge_attempts (order_id);

-- A charge that needs an operator (the provider lost its order, keeps refusing, or never shows
-- an outcome) says why here, while it stays open and keeps being reconciled.
ALTER TABLE charges ADD COLUMN attention TEXT;

-- Orders we stopped using ('fenced': cancelled by us, abandoned, created and never used, or
-- learned about only from a webhook) are watched from watch_since, looking again at
-- next_check_at with backoff, until they are 'closed'.
ALTER TABLE provider_orders ADD COLUMN watch_since INTEGER;
ALTER TABLE provider_orders ADD COLUMN next_check_at INTEGER;
ALTER TABLE provider_orders ADD COLUMN checks INTEGER NOT NULL DEFAULT 0;
UPDATE provider_orders SET watch_since = created_at, next_check_at = created_at
  WHERE status = 'fenced';
CREATE INDEX provider_orders_watched ON provider_orders (status, next_check_at);

-- A refund returns money of one purchase order. Automatic refunds of a payment nobody expected
-- name that payment: at most one refund per such payment, whatever retries.
ALTER TABLE refunds ADD COLUMN purchase_order_id TEXT;
ALTER TABLE refunds ADD COLUMN reverses_payment_id TEXT;
UPDATE refunds SET purchase_order_id = (SELECT order_id FROM charges WHERE charges.id = refunds.charge_id);
CREATE UNIQUE INDEX refunds_reversal ON refunds (reverses_payment_id)
  WHERE reverses_payment_id IS NOT NULL;

-- What happened that an operator or the merchant's finance team must know: a second payment
-- refunded, an unexpected payment refunded, an order the provider lost, an outcome nobody can
-- tell. incident_key makes each one a single row whatever retries.
CREATE TABLE incidents (
  id           TEXT PRIMARY KEY,             -- inc_...
  incident_key TEXT NOT NULL UNIQUE,
  kind         TEXT NOT NULL,
  charge_id    TEXT,
  checkout_id  TEXT,
  order_id     TEXT,
  payment_id   TEXT,
  refund_id    TEXT,
  customer_ref TEXT,
  amount       INTEGER,
  currency     TEXT,
  detail       TEXT NOT NULL,
  created_at   INTEGER NOT NULL
);
CREATE INDEX incidents_by_time ON incidents (created_at, id);
CREATE INDEX incidents_by_charge ON incidents (charge_id);

-- Provider webhooks are recorded before they are answered ('received'), then confirmed by
-- reading the order status, right after the answer and again from the cron until settled.
ALTER TABLE webhook_events ADD COLUMN reference_id TEXT;
ALTER TABLE webhook_events ADD COLUMN checks INTEGER NOT NULL DEFAULT 0;
ALTER TABLE webhook_events ADD COLUMN next_check_at INTEGER;
ALTER TABLE webhook_events ADD COLUMN settled_at INTEGER;
CREATE INDEX webhook_events_unsettled ON webhook_events (outcome, next_check_at);
