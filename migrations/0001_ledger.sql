-- The money ledger. Every instant is INTEGER milliseconds since the Unix epoch (UTC); every
-- amount is INTEGER minor units with an ISO 4217 numeric currency code as TEXT.
-- "Exactly once" rests on the UNIQUE keys below: a piece of work is claimed with a conditional
-- INSERT before the provider is called, and every later step is a conditional UPDATE.

CREATE TABLE customers (
  customer_ref TEXT PRIMARY KEY,           -- the merchant's own reference
  email        TEXT,
  name         TEXT,
  created_at   INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL
);

-- Cards on file, without their tokens: a tokenId lives only in the KV vault. One row per
-- tokenizing order; a new card marks the previous one replaced, a deletion marks it removed.
CREATE TABLE payment_methods (
  id              TEXT PRIMARY KEY,        -- pm_...
  customer_ref    TEXT NOT NULL REFERENCES customers (customer_ref),
  source_order_id TEXT NOT NULL UNIQUE,
  brand           TEXT,
  last4           TEXT,
  exp_month       INTEGER,
  exp_year        INTEGER,
  status          TEXT NOT NULL CHECK (status IN ('active', 'replaced', 'removed')),
  created_at      INTEGER NOT NULL,
  ended_at        INTEGER
);
CREATE INDEX payment_methods_by_customer ON payment_methods (customer_ref, created_at);

-- The customer-present, tokenizing first payment on the provider's hosted page.
CREATE TABLE checkouts (
  id               TEXT PRIMARY KEY,       -- co_...
  customer_ref     TEXT NOT NULL REFERENCES customers (customer_ref),
  plan_id          TEXT NOT NULL,
  plan             TEXT NOT NULL,          -- the plan as priced when the customer was shown it
  installments     INTEGER,                -- installment plans only: the number chosen
  amount           INTEGER NOT NULL,       -- what the customer pays now
  currency         TEXT NOT NULL,
  order_id         TEXT UNIQUE,            -- null until the provider order exists
  payment_page_url TEXT,
  return_url       TEXT NOT NULL,
  cancel_url       TEXT NOT NULL,
  status           TEXT NOT NULL CHECK (status IN ('creating', 'pending', 'paid', 'failed')),
  failure_reason   TEXT,
  subscription_id  TEXT,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  completed_at     INTEGER
);
CREATE INDEX checkouts_pending ON checkouts (status, updated_at);

CREATE TABLE subscriptions (
  id                   TEXT PRIMARY KEY,   -- sub_...
  customer_ref         TEXT NOT NULL REFERENCES customers (customer_ref),
  checkout_id          TEXT NOT NULL UNIQUE,
  plan_id              TEXT NOT NULL,
  kind                 TEXT NOT NULL CHECK (kind IN ('recurring', 'installments')),
  -- Prices are copied from the catalog when the subscription starts (or a plan change takes
  -- effect), so editing the catalog never reprices a running subscription.
  amount               INTEGER NOT NULL,   -- recurring: base fee per period; installments: total
  currency             TEXT NOT NULL,
  interval_unit        TEXT NOT NULL CHECK (interval_unit IN ('day', 'week', 'month', 'year')),
  interval_count       INTEGER NOT NULL CHECK (interval_count >= 1),
  unit_amount          INTEGER,            -- metered plans: price per unit of usage
  installments_total   INTEGER,
  -- Period k starts at anchor_at + (k - anchor_period) intervals. A plan change with another
  -- interval re-anchors at the period where it takes effect, so period numbers run on.
  anchor_at            INTEGER NOT NULL,
  anchor_period        INTEGER NOT NULL DEFAULT 0,
  -- The latest period that has been billed (claimed). Period 0 is the checkout payment.
  current_period       INTEGER NOT NULL DEFAULT 0,
  current_period_start INTEGER NOT NULL,
  current_period_end   INTEGER NOT NULL,   -- when the next period is due
  status               TEXT NOT NULL
    CHECK (status IN ('active', 'past_due', 'unpaid', 'paused', 'canceled', 'completed')),
  status_reason        TEXT NOT NULL,
  cancel_at_period_end INTEGER NOT NULL DEFAULT 0,
  pending_plan_id      TEXT,               -- plan change that takes effect at the next period
  pending_plan         TEXT,               -- that plan as priced when the change was asked
  paused_at            INTEGER,
  canceled_at          INTEGER,
  created_at           INTEGER NOT NULL,
  updated_at           INTEGER NOT NULL
);
CREATE INDEX subscriptions_due ON subscriptions (status, current_period_end);
CREATE INDEX subscriptions_by_customer ON subscriptions (customer_ref, created_at);

-- Every status transition, with its reason, written by the database itself so that no code path
-- can change a status without leaving a record.
CREATE TABLE subscription_events (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  subscription_id TEXT NOT NULL,
  from_status     TEXT,
  to_status       TEXT NOT NULL,
  reason          TEXT NOT NULL,
  at              INTEGER NOT NULL
);
CREATE INDEX subscription_events_by_subscription ON subscription_events (subscription_id, id);

CREATE TRIGGER subscription_created AFTER INSERT ON subscriptions
BEGIN
  INSERT INTO subscription_events (subscription_id, from_status, to_status, reason, at)
  VALUES (NEW.id, NULL, NEW.status, NEW.status_reason, NEW.updated_at);
END;

CREATE TRIGGER subscription_status_changed AFTER UPDATE OF status ON subscriptions
WHEN OLD.status IS NOT NEW.status
BEGIN
  INSERT INTO subscription_events (subscription_id, from_status, to_status, reason, at)
  VALUES (NEW.id, OLD.status, NEW.status, NEW.status_reason, NEW.updated_at);
END;

-- One row per amount owed by a customer: a checkout payment, a renewal, an installment or an API
-- charge. charge_key is the deterministic claim: 'api:<Idempotency-Key>', 'sub:<id>:p<period>',
-- 'sub:<id>:i<number>', 'checkout:<id>'.
CREATE TABLE charges (
  id                TEXT PRIMARY KEY,      -- ch_...
  charge_key        TEXT NOT NULL UNIQUE,
  customer_ref      TEXT NOT NULL,
  subscription_id   TEXT,
  period_index      INTEGER,
  kind              TEXT NOT NULL CHECK (kind IN ('checkout', 'renewal', 'installment', 'api')),
  amount            INTEGER NOT NULL CHECK (amount > 0),
  currency          TEXT NOT NULL,
  description       TEXT NOT NULL,
  metadata          TEXT,                  -- the caller's JSON object, as sent
  request_hash      TEXT,                  -- API charges: what the Idempotency-Key was used for
  status            TEXT NOT NULL CHECK (status IN ('processing', 'pending', 'succeeded', 'failed')),
  failure_reason    TEXT,                  -- provider failureReason or our own code
  decline_class     TEXT CHECK (decline_class IN ('soft', 'hard', 'unknown')),
  order_id          TEXT,                  -- the provider order currently carrying the charge
  payment_id        TEXT,                  -- the latest provider payment
  payment_method_id TEXT,
  attempts          INTEGER NOT NULL DEFAULT 0, -- attempts claimed (the next one is attempts + 1)
  provider_refusals INTEGER NOT NULL DEFAULT 0, -- calls the provider refused before acting
  last_error        TEXT,                  -- why the charge is still open, for operators
  declines          INTEGER NOT NULL DEFAULT 0, -- card declines in the current dunning cycle
  first_failed_at   INTEGER,               -- start of the current dunning cycle
  next_retry_at     INTEGER,               -- dunning: when the next attempt is due
  lease_until       INTEGER,               -- whoever holds an unexpired lease drives the charge
  refunded_amount   INTEGER NOT NULL DEFAULT 0,
  created_at        INTEGER NOT NULL,
  updated_at        INTEGER NOT NULL,
  settled_at        INTEGER
);
CREATE INDEX charges_by_customer ON charges (customer_ref, created_at DESC, id DESC);
CREATE INDEX charges_by_subscription ON charges (subscription_id, period_index);
CREATE INDEX charges_retry_due ON charges (status, next_retry_at);
CREATE INDEX charges_unsettled ON charges (status, updated_at);

-- Each POST /payments is claimed here first, so no two processes ever initiate the same attempt.
CREATE TABLE charge_attempts (
  charge_id      TEXT NOT NULL REFERENCES charges (id),
  attempt        INTEGER NOT NULL,
  order_id       TEXT NOT NULL,
  payment_id     TEXT,                     -- null until the provider answered
  status         TEXT NOT NULL
    CHECK (status IN ('claimed', 'initiated', 'succeeded', 'failed', 'rejected', 'fenced')),
  failure_reason TEXT,
  created_at     INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL,
  PRIMARY KEY (charge_id, attempt)
);

-- Every provider order this backend created, so that a webhook can be routed to what it is about.
CREATE TABLE provider_orders (
  order_id   TEXT PRIMARY KEY,
  owner_kind TEXT NOT NULL CHECK (owner_kind IN ('checkout', 'charge', 'refund')),
  owner_id   TEXT NOT NULL,
  status     TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'fenced', 'closed')),
  created_at INTEGER NOT NULL
);
CREATE INDEX provider_orders_by_owner ON provider_orders (owner_kind, owner_id);

-- Refunds are the provider's return orders against the purchase order of a charge.
CREATE TABLE refunds (
  id             TEXT PRIMARY KEY,         -- re_...
  charge_id      TEXT NOT NULL REFERENCES charges (id),
  amount         INTEGER NOT NULL CHECK (amount > 0),
  currency       TEXT NOT NULL,
  status         TEXT NOT NULL CHECK (status IN ('processing', 'pending', 'succeeded', 'failed')),
  order_id       TEXT UNIQUE,
  failure_reason TEXT,
  lease_until    INTEGER,
  created_at     INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL,
  settled_at     INTEGER
);
CREATE INDEX refunds_by_charge ON refunds (charge_id, created_at);
CREATE INDEX refunds_unsettled ON refunds (status, updated_at);

-- Metered usage. A record belongs to the billing period its timestamp falls in; a period's
-- usage is frozen when that period's charge is claimed.
CREATE TABLE usage_records (
  id              TEXT PRIMARY KEY,        -- us_...
  subscription_id TEXT NOT NULL REFERENCES subscriptions (id),
  period_index    INTEGER NOT NULL,
  quantity        INTEGER NOT NULL CHECK (quantity >= 0),
  occurred_at     INTEGER NOT NULL,
  created_at      INTEGER NOT NULL
);
CREATE INDEX usage_by_period ON usage_records (subscription_id, period_index);

-- Idempotency-Key of every mutating API call: the same key with the same request finds the
-- same resource; with another request it is refused.
CREATE TABLE idempotency_keys (
  scope        TEXT NOT NULL,              -- 'checkout', 'charge', 'refund', 'usage'
  key          TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  resource_id  TEXT NOT NULL,
  created_at   INTEGER NOT NULL,
  PRIMARY KEY (scope, key)
);

-- Provider webhooks, deduplicated on the provider's eventId. A row exists once the event was
-- fully processed; an event that could not be confirmed yet is not recorded, so a redelivery
-- is processed again.
CREATE TABLE webhook_events (
  event_id    TEXT PRIMARY KEY,
  event_type  TEXT NOT NULL,
  order_id    TEXT,
  outcome     TEXT NOT NULL,
  received_at INTEGER NOT NULL
);

-- One row per scheduler tick: what it did and what it spent, for operators and the benchmark.
CREATE TABLE tick_runs (
  id          TEXT PRIMARY KEY,
  trigger     TEXT NOT NULL,               -- the cron expression or 'test-clock'
  as_of       INTEGER NOT NULL,
  started_at  INTEGER NOT NULL,
  finished_at INTEGER,
  stats       TEXT
);
CREATE INDEX tick_runs_by_start ON tick_runs (started_at);

-- The test clock (TEST_CLOCK=on only): business time is this instant instead of the wall clock.
CREATE TABLE test_clock (
  id     INTEGER PRIMARY KEY CHECK (id = 1),
  now_ms INTEGER NOT NULL
);
