-- Billing depth, continued: free trials and coupons.

-- Trials. A checkout may give days of free trial (the plan's, or the session's): its payment
-- is then a verification of the card, given back at once. The subscription's period 0 is the
-- trial; the calendar is anchored at its end (anchor_period 1), where the first charge falls.
ALTER TABLE checkouts ADD COLUMN trial_days INTEGER CHECK (trial_days BETWEEN 1 AND 730);
ALTER TABLE subscriptions ADD COLUMN trial_end INTEGER;
-- subscription.trial_will_end is due at trial_notice_at, and written once (trial_notified_at).
ALTER TABLE subscriptions ADD COLUMN trial_notice_at INTEGER;
ALTER TABLE subscriptions ADD COLUMN trial_notified_at INTEGER;
CREATE INDEX subscriptions_trial_notice ON subscriptions (trial_notice_at)
  WHERE trial_notice_at IS NOT NULL AND trial_notified_at IS NULL;

-- Coupons: a percentage or an amount off, for one charge, N periods or for ever; an expiry and
-- a redemption limit, which the database itself enforces (times_redeemed never passes it).
-- A coupon's terms never change once created; deleting one stops new redemptions only.
CREATE TABLE coupons (
  id                  TEXT PRIMARY KEY,          -- the merchant's own id, e.g. WELCOME-10
  name                TEXT,
  percent_off         INTEGER CHECK (percent_off BETWEEN 1 AND 100),
  amount_off          INTEGER CHECK (amount_off >= 1),
  currency            TEXT,                      -- amount_off only
  duration            TEXT NOT NULL CHECK (duration IN ('once', 'repeating', 'forever')),
  duration_in_periods INTEGER CHECK (duration_in_periods >= 1),
  redeem_by           INTEGER,                   -- no redemption from this instant on
  max_redemptions     INTEGER CHECK (max_redemptions >= 1),
  times_redeemed      INTEGER NOT NULL DEFAULT 0
    CHECK (times_redeemed >= 0 AND (max_redemptions IS NULL OR times_redeemed <= max_redemptions)),
  deleted_at          INTEGER,
  created_at          INTEGER NOT NULL,
  CHECK ((percent_off IS NULL) <> (amount_off IS NULL)),
  CHECK ((amount_off IS NULL) = (currency IS NULL)),
  CHECK ((duration = 'repeating') = (duration_in_periods IS NOT NULL))
);

-- A discount is a coupon applied to a subscription or to a customer (all of the customer's
-- subscriptions without one of their own). discount_periods_left counts the charges it still
-- reduces (NULL: for ever).
ALTER TABLE subscriptions ADD COLUMN coupon_id TEXT REFERENCES coupons (id);
ALTER TABLE subscriptions ADD COLUMN discount_periods_left INTEGER CHECK (discount_periods_left >= 1);
ALTER TABLE customers ADD COLUMN coupon_id TEXT REFERENCES coupons (id);
ALTER TABLE customers ADD COLUMN discount_periods_left INTEGER CHECK (discount_periods_left >= 1);
-- A checkout's coupon (from the session) is redeemed when the checkout is created, and given
-- back if it is never paid (trigger below).
ALTER TABLE checkouts ADD COLUMN coupon_id TEXT REFERENCES coupons (id);
ALTER TABLE checkouts ADD COLUMN discount_amount INTEGER NOT NULL DEFAULT 0;
-- What a charge's discount took off the price (the amount is what was charged), and whose.
ALTER TABLE charges ADD COLUMN discount_amount INTEGER NOT NULL DEFAULT 0 CHECK (discount_amount >= 0);
ALTER TABLE charges ADD COLUMN coupon_id TEXT;

CREATE TRIGGER checkout_redeems_coupon AFTER INSERT ON checkouts WHEN NEW.coupon_id IS NOT NULL
BEGIN
  UPDATE coupons SET times_redeemed = times_redeemed + 1 WHERE id = NEW.coupon_id;
END;

CREATE TRIGGER unpaid_checkout_returns_coupon AFTER UPDATE OF status ON checkouts
WHEN NEW.coupon_id IS NOT NULL AND NEW.status = 'failed' AND OLD.status IS NOT 'failed'
BEGIN
  UPDATE coupons SET times_redeemed = times_redeemed - 1 WHERE id = NEW.coupon_id;
END;

-- Every discount given: one row per charge it reduced, or period it paid in full (then no
-- charge exists). Ids are deterministic (dsc_<subscription>_p<period>, dsc_<checkout>), so a
-- discount is given once whatever retries; `claim` marks the attempt that wrote it, whose
-- later statements alone use up the coupon's periods. Reports count these apart from refunds.
CREATE TABLE discounts_applied (
  id              TEXT PRIMARY KEY,
  customer_ref    TEXT NOT NULL,
  subscription_id TEXT,
  period_index    INTEGER,
  coupon_id       TEXT NOT NULL,
  currency        TEXT NOT NULL,
  amount          INTEGER NOT NULL CHECK (amount > 0),
  charge_id       TEXT,
  claim           TEXT NOT NULL,
  created_at      INTEGER NOT NULL
);
CREATE INDEX discounts_applied_by_time ON discounts_applied (created_at);
CREATE INDEX discounts_applied_by_customer ON discounts_applied (customer_ref, created_at);

-- A customer's balance may be refunded to their card on request.
CREATE TABLE balance_transactions_next (
  id              TEXT PRIMARY KEY,
  customer_ref    TEXT NOT NULL,
  currency        TEXT NOT NULL,
  amount          INTEGER NOT NULL,
  reason          TEXT NOT NULL CHECK (reason IN ('proration', 'applied', 'refunded')),
  subscription_id TEXT,
  charge_id       TEXT,
  period_index    INTEGER,
  claim           TEXT NOT NULL,
  created_at      INTEGER NOT NULL,
  refund_id       TEXT                       -- refunded: the refund that gave it back
);
INSERT INTO balance_transactions_next (id, customer_ref, currency, amount, reason,
    subscription_id, charge_id, period_index, claim, created_at)
  SELECT id, customer_ref, currency, amount, reason, subscription_id, charge_id, period_index,
    claim, created_at FROM balance_transactions;
DROP TABLE balance_transactions;
ALTER TABLE balance_transactions_next RENAME TO balance_transactions;
CREATE INDEX balance_transactions_by_customer ON balance_transactions (customer_ref, created_at);

-- The events' snapshots carry the new columns (and those of 0009 the older triggers missed).
DROP TRIGGER charge_recorded_settled;
DROP TRIGGER charge_settled;
DROP TRIGGER charge_needs_attention;
DROP TRIGGER charge_attempt_fenced;
DROP TRIGGER charge_settlement_recorded;
DROP TRIGGER subscription_created_event;
DROP TRIGGER subscription_renewed;
DROP TRIGGER subscription_status_event;
DROP TRIGGER subscription_updated;

CREATE TRIGGER charge_recorded_settled AFTER INSERT ON charges WHEN NEW.status = 'succeeded'
BEGIN
  INSERT INTO events (id, type, resource, resource_id, snapshot, created_at)
  VALUES ('evt_' || lower(hex(randomblob(10))), 'charge.succeeded', 'charge', NEW.id,
    json_patch(json_patch(json_patch(json_object('id', NEW.id, 'charge_key', NEW.charge_key, 'customer_ref', NEW.customer_ref, 'subscription_id', NEW.subscription_id, 'period_index', NEW.period_index, 'kind', NEW.kind, 'amount', NEW.amount, 'currency', NEW.currency, 'description', NEW.description, 'metadata', NEW.metadata, 'request_hash', NEW.request_hash, 'status', NEW.status, 'failure_reason', NEW.failure_reason, 'decline_class', NEW.decline_class, 'order_id', NEW.order_id, 'payment_id', NEW.payment_id), json_object('payment_method_id', NEW.payment_method_id, 'attempts', NEW.attempts, 'provider_refusals', NEW.provider_refusals, 'last_error', NEW.last_error, 'declines', NEW.declines, 'first_failed_at', NEW.first_failed_at, 'next_retry_at', NEW.next_retry_at, 'lease_until', NEW.lease_until, 'refunded_amount', NEW.refunded_amount, 'attention', NEW.attention, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at, 'settled_at', NEW.settled_at, 'transaction_id', NEW.transaction_id, 'settlement_status', NEW.settlement_status, 'fee', NEW.fee)), json_object('net', NEW.net, 'provider_payout', NEW.provider_payout, 'payout_ref', NEW.payout_ref, 'settlement_date', NEW.settlement_date, 'receipt_url', NEW.receipt_url)), json_object('purpose', NEW.purpose, 'balance_applied', NEW.balance_applied, 'discount_amount', NEW.discount_amount, 'coupon_id', NEW.coupon_id)), NEW.updated_at);
END;

CREATE TRIGGER charge_settled AFTER UPDATE OF status ON charges
WHEN NEW.status IS NOT OLD.status AND NEW.status IN ('succeeded', 'failed')
BEGIN
  INSERT INTO events (id, type, resource, resource_id, snapshot, created_at)
  VALUES ('evt_' || lower(hex(randomblob(10))), 'charge.' || NEW.status, 'charge', NEW.id,
    json_patch(json_patch(json_patch(json_object('id', NEW.id, 'charge_key', NEW.charge_key, 'customer_ref', NEW.customer_ref, 'subscription_id', NEW.subscription_id, 'period_index', NEW.period_index, 'kind', NEW.kind, 'amount', NEW.amount, 'currency', NEW.currency, 'description', NEW.description, 'metadata', NEW.metadata, 'request_hash', NEW.request_hash, 'status', NEW.status, 'failure_reason', NEW.failure_reason, 'decline_class', NEW.decline_class, 'order_id', NEW.order_id, 'payment_id', NEW.payment_id), json_object('payment_method_id', NEW.payment_method_id, 'attempts', NEW.attempts, 'provider_refusals', NEW.provider_refusals, 'last_error', NEW.last_error, 'declines', NEW.declines, 'first_failed_at', NEW.first_failed_at, 'next_retry_at', NEW.next_retry_at, 'lease_until', NEW.lease_until, 'refunded_amount', NEW.refunded_amount, 'attention', NEW.attention, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at, 'settled_at', NEW.settled_at, 'transaction_id', NEW.transaction_id, 'settlement_status', NEW.settlement_status, 'fee', NEW.fee)), json_object('net', NEW.net, 'provider_payout', NEW.provider_payout, 'payout_ref', NEW.payout_ref, 'settlement_date', NEW.settlement_date, 'receipt_url', NEW.receipt_url)), json_object('purpose', NEW.purpose, 'balance_applied', NEW.balance_applied, 'discount_amount', NEW.discount_amount, 'coupon_id', NEW.coupon_id)), NEW.updated_at);
END;

CREATE TRIGGER charge_needs_attention AFTER UPDATE OF attention ON charges
WHEN NEW.attention IS NOT NULL AND OLD.attention IS NULL
BEGIN
  INSERT INTO events (id, type, resource, resource_id, snapshot, created_at)
  VALUES ('evt_' || lower(hex(randomblob(10))), 'charge.pending', 'charge', NEW.id,
    json_patch(json_patch(json_patch(json_object('id', NEW.id, 'charge_key', NEW.charge_key, 'customer_ref', NEW.customer_ref, 'subscription_id', NEW.subscription_id, 'period_index', NEW.period_index, 'kind', NEW.kind, 'amount', NEW.amount, 'currency', NEW.currency, 'description', NEW.description, 'metadata', NEW.metadata, 'request_hash', NEW.request_hash, 'status', NEW.status, 'failure_reason', NEW.failure_reason, 'decline_class', NEW.decline_class, 'order_id', NEW.order_id, 'payment_id', NEW.payment_id), json_object('payment_method_id', NEW.payment_method_id, 'attempts', NEW.attempts, 'provider_refusals', NEW.provider_refusals, 'last_error', NEW.last_error, 'declines', NEW.declines, 'first_failed_at', NEW.first_failed_at, 'next_retry_at', NEW.next_retry_at, 'lease_until', NEW.lease_until, 'refunded_amount', NEW.refunded_amount, 'attention', NEW.attention, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at, 'settled_at', NEW.settled_at, 'transaction_id', NEW.transaction_id, 'settlement_status', NEW.settlement_status, 'fee', NEW.fee)), json_object('net', NEW.net, 'provider_payout', NEW.provider_payout, 'payout_ref', NEW.payout_ref, 'settlement_date', NEW.settlement_date, 'receipt_url', NEW.receipt_url)), json_object('purpose', NEW.purpose, 'balance_applied', NEW.balance_applied, 'discount_amount', NEW.discount_amount, 'coupon_id', NEW.coupon_id)), NEW.updated_at);
END;

CREATE TRIGGER charge_attempt_fenced AFTER UPDATE OF status ON charge_attempts
WHEN NEW.status = 'fenced' AND OLD.status IS NOT 'fenced'
BEGIN
  INSERT INTO events (id, type, resource, resource_id, snapshot, created_at)
  SELECT 'evt_' || lower(hex(randomblob(10))), 'charge.pending', 'charge', c.id,
    json_patch(json_patch(json_patch(json_object('id', c.id, 'charge_key', c.charge_key, 'customer_ref', c.customer_ref, 'subscription_id', c.subscription_id, 'period_index', c.period_index, 'kind', c.kind, 'amount', c.amount, 'currency', c.currency, 'description', c.description, 'metadata', c.metadata, 'request_hash', c.request_hash, 'status', c.status, 'failure_reason', c.failure_reason, 'decline_class', c.decline_class, 'order_id', c.order_id, 'payment_id', c.payment_id), json_object('payment_method_id', c.payment_method_id, 'attempts', c.attempts, 'provider_refusals', c.provider_refusals, 'last_error', c.last_error, 'declines', c.declines, 'first_failed_at', c.first_failed_at, 'next_retry_at', c.next_retry_at, 'lease_until', c.lease_until, 'refunded_amount', c.refunded_amount, 'attention', c.attention, 'created_at', c.created_at, 'updated_at', c.updated_at, 'settled_at', c.settled_at, 'transaction_id', c.transaction_id, 'settlement_status', c.settlement_status, 'fee', c.fee)), json_object('net', c.net, 'provider_payout', c.provider_payout, 'payout_ref', c.payout_ref, 'settlement_date', c.settlement_date, 'receipt_url', c.receipt_url)), json_object('purpose', c.purpose, 'balance_applied', c.balance_applied, 'discount_amount', c.discount_amount, 'coupon_id', c.coupon_id)), NEW.updated_at
  FROM charges c WHERE c.id = NEW.charge_id;
END;

CREATE TRIGGER charge_settlement_recorded AFTER UPDATE OF settlement_status ON charges
WHEN NEW.settlement_status = 'settled' AND OLD.settlement_status IS NOT 'settled'
BEGIN
  INSERT INTO events (id, type, resource, resource_id, snapshot, created_at)
  VALUES ('evt_' || lower(hex(randomblob(10))), 'charge.settled', 'charge', NEW.id,
    json_patch(json_patch(json_patch(json_object('id', NEW.id, 'charge_key', NEW.charge_key, 'customer_ref', NEW.customer_ref, 'subscription_id', NEW.subscription_id, 'period_index', NEW.period_index, 'kind', NEW.kind, 'amount', NEW.amount, 'currency', NEW.currency, 'description', NEW.description, 'metadata', NEW.metadata, 'request_hash', NEW.request_hash, 'status', NEW.status, 'failure_reason', NEW.failure_reason, 'decline_class', NEW.decline_class, 'order_id', NEW.order_id, 'payment_id', NEW.payment_id), json_object('payment_method_id', NEW.payment_method_id, 'attempts', NEW.attempts, 'provider_refusals', NEW.provider_refusals, 'last_error', NEW.last_error, 'declines', NEW.declines, 'first_failed_at', NEW.first_failed_at, 'next_retry_at', NEW.next_retry_at, 'lease_until', NEW.lease_until, 'refunded_amount', NEW.refunded_amount, 'attention', NEW.attention, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at, 'settled_at', NEW.settled_at, 'transaction_id', NEW.transaction_id, 'settlement_status', NEW.settlement_status, 'fee', NEW.fee)), json_object('net', NEW.net, 'provider_payout', NEW.provider_payout, 'payout_ref', NEW.payout_ref, 'settlement_date', NEW.settlement_date, 'receipt_url', NEW.receipt_url)), json_object('purpose', NEW.purpose, 'balance_applied', NEW.balance_applied, 'discount_amount', NEW.discount_amount, 'coupon_id', NEW.coupon_id)), NEW.updated_at);
END;

CREATE TRIGGER subscription_created_event AFTER INSERT ON subscriptions
BEGIN
  INSERT INTO events (id, type, resource, resource_id, snapshot, created_at)
  VALUES ('evt_' || lower(hex(randomblob(10))), 'subscription.created', 'subscription', NEW.id,
    json_patch(json_patch(json_object('id', NEW.id, 'customer_ref', NEW.customer_ref, 'checkout_id', NEW.checkout_id, 'plan_id', NEW.plan_id, 'kind', NEW.kind, 'amount', NEW.amount, 'currency', NEW.currency, 'interval_unit', NEW.interval_unit, 'interval_count', NEW.interval_count, 'unit_amount', NEW.unit_amount, 'installments_total', NEW.installments_total, 'anchor_at', NEW.anchor_at, 'anchor_period', NEW.anchor_period, 'current_period', NEW.current_period, 'current_period_start', NEW.current_period_start), json_object('current_period_end', NEW.current_period_end, 'status', NEW.status, 'status_reason', NEW.status_reason, 'cancel_at_period_end', NEW.cancel_at_period_end, 'pending_plan_id', NEW.pending_plan_id, 'pending_plan', NEW.pending_plan, 'paused_at', NEW.paused_at, 'canceled_at', NEW.canceled_at, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at)), json_object('quantity', NEW.quantity, 'pending_quantity', NEW.pending_quantity, 'trial_end', NEW.trial_end, 'coupon_id', NEW.coupon_id, 'discount_periods_left', NEW.discount_periods_left)), NEW.updated_at);
END;

CREATE TRIGGER subscription_renewed AFTER UPDATE OF current_period ON subscriptions
WHEN NEW.current_period > OLD.current_period AND NEW.status = 'active'
BEGIN
  INSERT INTO events (id, type, resource, resource_id, snapshot, created_at)
  VALUES ('evt_' || lower(hex(randomblob(10))), 'subscription.renewed', 'subscription', NEW.id,
    json_patch(json_patch(json_object('id', NEW.id, 'customer_ref', NEW.customer_ref, 'checkout_id', NEW.checkout_id, 'plan_id', NEW.plan_id, 'kind', NEW.kind, 'amount', NEW.amount, 'currency', NEW.currency, 'interval_unit', NEW.interval_unit, 'interval_count', NEW.interval_count, 'unit_amount', NEW.unit_amount, 'installments_total', NEW.installments_total, 'anchor_at', NEW.anchor_at, 'anchor_period', NEW.anchor_period, 'current_period', NEW.current_period, 'current_period_start', NEW.current_period_start), json_object('current_period_end', NEW.current_period_end, 'status', NEW.status, 'status_reason', NEW.status_reason, 'cancel_at_period_end', NEW.cancel_at_period_end, 'pending_plan_id', NEW.pending_plan_id, 'pending_plan', NEW.pending_plan, 'paused_at', NEW.paused_at, 'canceled_at', NEW.canceled_at, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at)), json_object('quantity', NEW.quantity, 'pending_quantity', NEW.pending_quantity, 'trial_end', NEW.trial_end, 'coupon_id', NEW.coupon_id, 'discount_periods_left', NEW.discount_periods_left)), NEW.updated_at);
END;

CREATE TRIGGER subscription_status_event AFTER UPDATE OF status ON subscriptions
WHEN OLD.status IS NOT NEW.status
BEGIN
  INSERT INTO events (id, type, resource, resource_id, snapshot, created_at)
  VALUES ('evt_' || lower(hex(randomblob(10))), CASE
      WHEN NEW.status = 'active' AND OLD.status = 'paused' THEN 'subscription.resumed'
      WHEN NEW.status = 'active' THEN 'subscription.recovered'
      ELSE 'subscription.' || NEW.status END, 'subscription', NEW.id,
    json_patch(json_patch(json_object('id', NEW.id, 'customer_ref', NEW.customer_ref, 'checkout_id', NEW.checkout_id, 'plan_id', NEW.plan_id, 'kind', NEW.kind, 'amount', NEW.amount, 'currency', NEW.currency, 'interval_unit', NEW.interval_unit, 'interval_count', NEW.interval_count, 'unit_amount', NEW.unit_amount, 'installments_total', NEW.installments_total, 'anchor_at', NEW.anchor_at, 'anchor_period', NEW.anchor_period, 'current_period', NEW.current_period, 'current_period_start', NEW.current_period_start), json_object('current_period_end', NEW.current_period_end, 'status', NEW.status, 'status_reason', NEW.status_reason, 'cancel_at_period_end', NEW.cancel_at_period_end, 'pending_plan_id', NEW.pending_plan_id, 'pending_plan', NEW.pending_plan, 'paused_at', NEW.paused_at, 'canceled_at', NEW.canceled_at, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at)), json_object('quantity', NEW.quantity, 'pending_quantity', NEW.pending_quantity, 'trial_end', NEW.trial_end, 'coupon_id', NEW.coupon_id, 'discount_periods_left', NEW.discount_periods_left)), NEW.updated_at);
END;

CREATE TRIGGER subscription_updated AFTER UPDATE ON subscriptions
WHEN OLD.cancel_at_period_end IS NOT NEW.cancel_at_period_end
  OR OLD.pending_plan_id IS NOT NEW.pending_plan_id
  OR OLD.plan_id IS NOT NEW.plan_id
  OR OLD.amount IS NOT NEW.amount
  OR OLD.quantity IS NOT NEW.quantity
  OR OLD.pending_quantity IS NOT NEW.pending_quantity
  OR OLD.coupon_id IS NOT NEW.coupon_id
  OR (OLD.status IS NOT NEW.status AND 'paused' IN (OLD.status, NEW.status))
BEGIN
  INSERT INTO events (id, type, resource, resource_id, snapshot, created_at)
  VALUES ('evt_' || lower(hex(randomblob(10))), 'subscription.updated', 'subscription', NEW.id,
    json_set(json_patch(json_patch(json_object('id', NEW.id, 'customer_ref', NEW.customer_ref, 'checkout_id', NEW.checkout_id, 'plan_id', NEW.plan_id, 'kind', NEW.kind, 'amount', NEW.amount, 'currency', NEW.currency, 'interval_unit', NEW.interval_unit, 'interval_count', NEW.interval_count, 'unit_amount', NEW.unit_amount, 'installments_total', NEW.installments_total, 'anchor_at', NEW.anchor_at, 'anchor_period', NEW.anchor_period, 'current_period', NEW.current_period, 'current_period_start', NEW.current_period_start, 'current_period_end', NEW.current_period_end), json_object('status', NEW.status, 'status_reason', NEW.status_reason, 'cancel_at_period_end', NEW.cancel_at_period_end, 'pending_plan_id', NEW.pending_plan_id, 'pending_plan', NEW.pending_plan, 'paused_at', NEW.paused_at, 'canceled_at', NEW.canceled_at, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at, 'quantity', NEW.quantity, 'pending_quantity', NEW.pending_quantity)), json_object('quantity', NEW.quantity, 'pending_quantity', NEW.pending_quantity, 'trial_end', NEW.trial_end, 'coupon_id', NEW.coupon_id, 'discount_periods_left', NEW.discount_periods_left)), '$.previous_attributes', json(json_remove(json_set('{}', CASE WHEN OLD.cancel_at_period_end IS NOT NEW.cancel_at_period_end THEN '$.cancelAtPeriodEnd' ELSE '$.unchanged' END, json(CASE OLD.cancel_at_period_end WHEN 0 THEN 'false' ELSE 'true' END), CASE WHEN OLD.pending_plan_id IS NOT NEW.pending_plan_id THEN '$.pendingPlanId' ELSE '$.unchanged' END, OLD.pending_plan_id, CASE WHEN OLD.plan_id IS NOT NEW.plan_id THEN '$.planId' ELSE '$.unchanged' END, OLD.plan_id, CASE WHEN OLD.amount IS NOT NEW.amount THEN '$.amount' ELSE '$.unchanged' END, OLD.amount, CASE WHEN OLD.quantity IS NOT NEW.quantity THEN '$.quantity' ELSE '$.unchanged' END, OLD.quantity, CASE WHEN OLD.pending_quantity IS NOT NEW.pending_quantity THEN '$.pendingQuantity' ELSE '$.unchanged' END, OLD.pending_quantity, CASE WHEN OLD.status IS NOT NEW.status THEN '$.status' ELSE '$.unchanged' END, OLD.status, CASE WHEN OLD.coupon_id IS NOT NEW.coupon_id THEN '$.coupon' ELSE '$.unchanged' END, OLD.coupon_id), '$.unchanged'))), NEW.updated_at);
END;

-- Three days before a trial ends (or at once for a shorter one), written once by the tick.
CREATE TRIGGER subscription_trial_will_end AFTER UPDATE OF trial_notified_at ON subscriptions
WHEN OLD.trial_notified_at IS NULL AND NEW.trial_notified_at IS NOT NULL
BEGIN
  INSERT INTO events (id, type, resource, resource_id, snapshot, created_at)
  VALUES ('evt_' || lower(hex(randomblob(10))), 'subscription.trial_will_end', 'subscription', NEW.id,
    json_patch(json_patch(json_object('id', NEW.id, 'customer_ref', NEW.customer_ref, 'checkout_id', NEW.checkout_id, 'plan_id', NEW.plan_id, 'kind', NEW.kind, 'amount', NEW.amount, 'currency', NEW.currency, 'interval_unit', NEW.interval_unit, 'interval_count', NEW.interval_count, 'unit_amount', NEW.unit_amount, 'installments_total', NEW.installments_total, 'anchor_at', NEW.anchor_at, 'anchor_period', NEW.anchor_period, 'current_period', NEW.current_period, 'current_period_start', NEW.current_period_start), json_object('current_period_end', NEW.current_period_end, 'status', NEW.status, 'status_reason', NEW.status_reason, 'cancel_at_period_end', NEW.cancel_at_period_end, 'pending_plan_id', NEW.pending_plan_id, 'pending_plan', NEW.pending_plan, 'paused_at', NEW.paused_at, 'canceled_at', NEW.canceled_at, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at)), json_object('quantity', NEW.quantity, 'pending_quantity', NEW.pending_quantity, 'trial_end', NEW.trial_end, 'coupon_id', NEW.coupon_id, 'discount_periods_left', NEW.discount_periods_left)), NEW.updated_at);
END;
