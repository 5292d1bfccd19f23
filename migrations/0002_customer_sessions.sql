-- Customer sessions change who may start a checkout; the checkout row changes with them:
--
-- * a checkout is claimed before the provider is called, and only the request holding its lease
--   (lease_token, until lease_until, wall-clock ms) creates the provider order, so concurrent
--   requests with one Idempotency-Key create one order;
-- * a checkout may also be a card replacement from the customer portal (purpose 'card'): no
--   plan; it either pays the customer's outstanding charge (settles_charge_id) or is the
--   smallest verification payment, refunded at once (card_outcome says which happened).
--
-- SQLite cannot relax NOT NULL on plan_id/plan in place, so the table is rebuilt. Nothing
-- references checkouts, so the rebuild needs no foreign-key juggling.

CREATE TABLE checkouts_v2 (
  id                TEXT PRIMARY KEY,      -- co_...
  customer_ref      TEXT NOT NULL REFERENCES customers (customer_ref),
  purpose           TEXT NOT NULL DEFAULT 'subscription' CHECK (purpose IN ('subscription', 'card')),
  plan_id           TEXT,                  -- subscriptions only
  plan              TEXT,                  -- the plan as priced when the customer was shown it
  installments      INTEGER,               -- installment plans only: the number chosen
  amount            INTEGER NOT NULL,      -- what the customer pays now
  currency          TEXT NOT NULL,
  -- Card replacements: the failed charge this payment settles (null: a verification payment),
  -- the dunning retry it had when the replacement parked it, and what the payment became.
  settles_charge_id TEXT,
  parked_retry_at   INTEGER,
  card_outcome      TEXT CHECK (card_outcome IN ('settled', 'verified')),
  order_id          TEXT UNIQUE,           -- null until the provider order exists
  payment_page_url  TEXT,
  return_url        TEXT NOT NULL,
  cancel_url        TEXT NOT NULL,
  status            TEXT NOT NULL CHECK (status IN ('creating', 'pending', 'paid', 'failed')),
  failure_reason    TEXT,
  subscription_id   TEXT,
  lease_token       TEXT,                  -- who may create the provider order while 'creating'
  lease_until       INTEGER,
  created_at        INTEGER NOT NULL,
  updated_at        INTEGER NOT NULL,
  completed_at      INTEGER,
  CHECK ((purpose = 'subscription') = (plan_id IS NOT NULL AND plan IS NOT NULL))
);

INSERT INTO checkouts_v2 (id, customer_ref, purpose, plan_id, plan, installments, amount, currency,
    order_id, payment_page_url, return_url, cancel_url, status, failure_reason, subscription_id,
    created_at, updated_at, completed_at)
  SELECT id, customer_ref, 'subscription', plan_id, plan, installments, amount, currency,
    order_id, payment_page_url, return_url, cancel_url, status, failure_reason, subscription_id,
    created_at, updated_at, completed_at
  FROM checkouts;

DROP TABLE checkouts;
ALTER TABLE checkouts_v2 RENAME TO checkouts;

CREATE INDEX checkouts_pending ON checkouts (status, updated_at);
-- The bound on open checkouts per customer, and the portal's reads.
CREATE INDEX checkouts_by_customer ON checkouts (customer_ref, status);
-- At most one open card replacement per customer: a new one supersedes the old first.
CREATE UNIQUE INDEX checkouts_one_open_card_replacement ON checkouts (customer_ref)
  WHERE purpose = 'card' AND status IN ('creating', 'pending');
-- Paid card replacements whose verification payment still has to be refunded.
CREATE INDEX checkouts_card_outcome ON checkouts (card_outcome, status);
