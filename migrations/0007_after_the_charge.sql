-- After the charge: the provider settles each transaction in a daily batch (fee, payout,
-- payout reference, settlement date); a refund is a same-day void or, once the purchase has
-- settled, a return order; receipts exist once settled. This migration records all of it.

-- A succeeded charge's settlement, as the provider reports its purchase transaction. Followed
-- by the cron while pending/processed/error (settlement_check_at: when to read again).
ALTER TABLE charges ADD COLUMN transaction_id TEXT;
ALTER TABLE charges ADD COLUMN settlement_status TEXT
  CHECK (settlement_status IN ('pending', 'processed', 'settled', 'error', 'voided'));
ALTER TABLE charges ADD COLUMN fee INTEGER;              -- minor units, the provider's
ALTER TABLE charges ADD COLUMN net INTEGER;              -- amount - fee
ALTER TABLE charges ADD COLUMN provider_payout INTEGER;  -- the transaction's payout as reported
ALTER TABLE charges ADD COLUMN payout_ref TEXT;
ALTER TABLE charges ADD COLUMN settlement_date TEXT;     -- YYYY-MM-DD
ALTER TABLE charges ADD COLUMN settlement_check_at INTEGER;
ALTER TABLE charges ADD COLUMN settlement_checks INTEGER NOT NULL DEFAULT 0;
ALTER TABLE charges ADD COLUMN receipt_url TEXT;
-- RECEIPTS=email: when the renewal's receipt email was claimed (sent at most once).
ALTER TABLE charges ADD COLUMN receipt_emailed_at INTEGER;

-- Charges that succeeded before settlement was followed are followed from now on.
UPDATE charges SET settlement_status = 'pending', settlement_check_at = COALESCE(settled_at, updated_at)
  WHERE status = 'succeeded';

-- Every charge that succeeds is followed until settled, whichever code path recorded it: the
-- first check is due at once and the cron schedules it by the provider's calendar.
CREATE TRIGGER charge_succeeded_follow_settlement AFTER UPDATE OF status ON charges
WHEN NEW.status = 'succeeded' AND OLD.status IS NOT 'succeeded'
BEGIN
  UPDATE charges SET settlement_status = 'pending', settlement_check_at = NEW.updated_at
    WHERE id = NEW.id AND settlement_status IS NULL;
END;
CREATE TRIGGER charge_recorded_follow_settlement AFTER INSERT ON charges
WHEN NEW.status = 'succeeded'
BEGIN
  UPDATE charges SET settlement_status = 'pending', settlement_check_at = NEW.updated_at
    WHERE id = NEW.id AND settlement_status IS NULL;
END;

CREATE INDEX charges_settlement_due ON charges (settlement_check_at)
  WHERE settlement_status IN ('pending', 'processed', 'error');
CREATE INDEX charges_by_payout ON charges (payout_ref) WHERE payout_ref IS NOT NULL;
-- Reports and the CSV export read charges by the time they reached their final state.
CREATE INDEX charges_by_settled_at ON charges (settled_at, id);

-- How a refund is made (method), where it stands (stage) and, for a return, its own
-- settlement. Stages: new (claimed, nothing sent); voiding (a void is sent or about to be);
-- awaiting_settlement (nothing sent: the purchase must settle before a return order is
-- accepted); returning (the return order is claimed, created at most once); done.
ALTER TABLE refunds ADD COLUMN method TEXT CHECK (method IN ('void', 'return'));
ALTER TABLE refunds ADD COLUMN stage TEXT
  CHECK (stage IN ('new', 'voiding', 'awaiting_settlement', 'returning', 'done'));
ALTER TABLE refunds ADD COLUMN next_attempt_at INTEGER;
ALTER TABLE refunds ADD COLUMN transaction_id TEXT;
ALTER TABLE refunds ADD COLUMN settlement_status TEXT
  CHECK (settlement_status IN ('pending', 'processed', 'settled', 'error'));
ALTER TABLE refunds ADD COLUMN provider_payout INTEGER;
ALTER TABLE refunds ADD COLUMN payout_ref TEXT;
ALTER TABLE refunds ADD COLUMN settlement_date TEXT;
ALTER TABLE refunds ADD COLUMN settlement_check_at INTEGER;
ALTER TABLE refunds ADD COLUMN settlement_checks INTEGER NOT NULL DEFAULT 0;

UPDATE refunds SET
  stage = CASE status WHEN 'processing' THEN 'new' WHEN 'pending' THEN 'returning' ELSE 'done' END,
  method = CASE WHEN status != 'processing' THEN 'return' END;
UPDATE refunds SET settlement_status = 'pending', settlement_check_at = COALESCE(settled_at, updated_at)
  WHERE status = 'succeeded' AND method = 'return';

CREATE TRIGGER refund_returned_follow_settlement AFTER UPDATE OF status ON refunds
WHEN NEW.status = 'succeeded' AND OLD.status IS NOT 'succeeded' AND NEW.method = 'return'
BEGIN
  UPDATE refunds SET settlement_status = 'pending', settlement_check_at = NEW.updated_at
    WHERE id = NEW.id AND settlement_status IS NULL;
END;

CREATE INDEX refunds_due ON refunds (next_attempt_at) WHERE stage IN ('new', 'voiding', 'awaiting_settlement');
CREATE INDEX refunds_settlement_due ON refunds (settlement_check_at)
  WHERE settlement_status IN ('pending', 'processed', 'error');
CREATE INDEX refunds_by_payout ON refunds (payout_ref) WHERE payout_ref IS NOT NULL;
CREATE INDEX refunds_by_settled_at ON refunds (settled_at, id);

-- Payouts as the provider's transactions name them. Totals are computed from the charges and
-- refunds that carry the reference, never kept twice.
CREATE TABLE payouts (
  payout_ref      TEXT PRIMARY KEY,
  currency        TEXT NOT NULL,
  settlement_date TEXT NOT NULL,
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL
);
CREATE INDEX payouts_by_date ON payouts (settlement_date, payout_ref);

-- The events' snapshots carry the new columns.
DROP TRIGGER charge_recorded_settled;
DROP TRIGGER charge_settled;
DROP TRIGGER charge_needs_attention;
DROP TRIGGER charge_attempt_fenced;
DROP TRIGGER refund_settled;

CREATE TRIGGER charge_recorded_settled AFTER INSERT ON charges WHEN NEW.status = 'succeeded'
BEGIN
  INSERT INTO events (id, type, resource, resource_id, snapshot, created_at)
  VALUES ('evt_' || lower(hex(randomblob(10))), 'charge.succeeded', 'charge', NEW.id,
    json_patch(json_patch(json_object('id', NEW.id, 'charge_key', NEW.charge_key, 'customer_ref', NEW.customer_ref, 'subscription_id', NEW.subscription_id, 'period_index', NEW.period_index, 'kind', NEW.kind, 'amount', NEW.amount, 'currency', NEW.currency, 'description', NEW.description, 'metadata', NEW.metadata, 'request_hash', NEW.request_hash, 'status', NEW.status, 'failure_reason', NEW.failure_reason, 'decline_class', NEW.decline_class, 'order_id', NEW.order_id, 'payment_id', NEW.payment_id), json_object('payment_method_id', NEW.payment_method_id, 'attempts', NEW.attempts, 'provider_refusals', NEW.provider_refusals, 'last_error', NEW.last_error, 'declines', NEW.declines, 'first_failed_at', NEW.first_failed_at, 'next_retry_at', NEW.next_retry_at, 'lease_until', NEW.lease_until, 'refunded_amount', NEW.refunded_amount, 'attention', NEW.attention, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at, 'settled_at', NEW.settled_at, 'transaction_id', NEW.transaction_id, 'settlement_status', NEW.settlement_status, 'fee', NEW.fee)), json_object('net', NEW.net, 'provider_payout', NEW.provider_payout, 'payout_ref', NEW.payout_ref, 'settlement_date', NEW.settlement_date, 'receipt_url', NEW.receipt_url)), NEW.updated_at);
END;

CREATE TRIGGER charge_settled AFTER UPDATE OF status ON charges
WHEN NEW.status IS NOT OLD.status AND NEW.status IN ('succeeded', 'failed')
BEGIN
  INSERT INTO events (id, type, resource, resource_id, snapshot, created_at)
  VALUES ('evt_' || lower(hex(randomblob(10))), 'charge.' || NEW.status, 'charge', NEW.id,
    json_patch(json_patch(json_object('id', NEW.id, 'charge_key', NEW.charge_key, 'customer_ref', NEW.customer_ref, 'subscription_id', NEW.subscription_id, 'period_index', NEW.period_index, 'kind', NEW.kind, 'amount', NEW.amount, 'currency', NEW.currency, 'description', NEW.description, 'metadata', NEW.metadata, 'request_hash', NEW.request_hash, 'status', NEW.status, 'failure_reason', NEW.failure_reason, 'decline_class', NEW.decline_class, 'order_id', NEW.order_id, 'payment_id', NEW.payment_id), json_object('payment_method_id', NEW.payment_method_id, 'attempts', NEW.attempts, 'provider_refusals', NEW.provider_refusals, 'last_error', NEW.last_error, 'declines', NEW.declines, 'first_failed_at', NEW.first_failed_at, 'next_retry_at', NEW.next_retry_at, 'lease_until', NEW.lease_until, 'refunded_amount', NEW.refunded_amount, 'attention', NEW.attention, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at, 'settled_at', NEW.settled_at, 'transaction_id', NEW.transaction_id, 'settlement_status', NEW.settlement_status, 'fee', NEW.fee)), json_object('net', NEW.net, 'provider_payout', NEW.provider_payout, 'payout_ref', NEW.payout_ref, 'settlement_date', NEW.settlement_date, 'receipt_url', NEW.receipt_url)), NEW.updated_at);
END;

CREATE TRIGGER charge_needs_attention AFTER UPDATE OF attention ON charges
WHEN NEW.attention IS NOT NULL AND OLD.attention IS NULL
BEGIN
  INSERT INTO events (id, type, resource, resource_id, snapshot, created_at)
  VALUES ('evt_' || lower(hex(randomblob(10))), 'charge.pending', 'charge', NEW.id,
    json_patch(json_patch(json_object('id', NEW.id, 'charge_key', NEW.charge_key, 'customer_ref', NEW.customer_ref, 'subscription_id', NEW.subscription_id, 'period_index', NEW.period_index, 'kind', NEW.kind, 'amount', NEW.amount, 'currency', NEW.currency, 'description', NEW.description, 'metadata', NEW.metadata, 'request_hash', NEW.request_hash, 'status', NEW.status, 'failure_reason', NEW.failure_reason, 'decline_class', NEW.decline_class, 'order_id', NEW.order_id, 'payment_id', NEW.payment_id), json_object('payment_method_id', NEW.payment_method_id, 'attempts', NEW.attempts, 'provider_refusals', NEW.provider_refusals, 'last_error', NEW.last_error, 'declines', NEW.declines, 'first_failed_at', NEW.first_failed_at, 'next_retry_at', NEW.next_retry_at, 'lease_until', NEW.lease_until, 'refunded_amount', NEW.refunded_amount, 'attention', NEW.attention, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at, 'settled_at', NEW.settled_at, 'transaction_id', NEW.transaction_id, 'settlement_status', NEW.settlement_status, 'fee', NEW.fee)), json_object('net', NEW.net, 'provider_payout', NEW.provider_payout, 'payout_ref', NEW.payout_ref, 'settlement_date', NEW.settlement_date, 'receipt_url', NEW.receipt_url)), NEW.updated_at);
END;

CREATE TRIGGER charge_attempt_fenced AFTER UPDATE OF status ON charge_attempts
WHEN NEW.status = 'fenced' AND OLD.status IS NOT 'fenced'
BEGIN
  INSERT INTO events (id, type, resource, resource_id, snapshot, created_at)
  SELECT 'evt_' || lower(hex(randomblob(10))), 'charge.pending', 'charge', c.id,
    json_patch(json_patch(json_object('id', c.id, 'charge_key', c.charge_key, 'customer_ref', c.customer_ref, 'subscription_id', c.subscription_id, 'period_index', c.period_index, 'kind', c.kind, 'amount', c.amount, 'currency', c.currency, 'description', c.description, 'metadata', c.metadata, 'request_hash', c.request_hash, 'status', c.status, 'failure_reason', c.failure_reason, 'decline_class', c.decline_class, 'order_id', c.order_id, 'payment_id', c.payment_id), json_object('payment_method_id', c.payment_method_id, 'attempts', c.attempts, 'provider_refusals', c.provider_refusals, 'last_error', c.last_error, 'declines', c.declines, 'first_failed_at', c.first_failed_at, 'next_retry_at', c.next_retry_at, 'lease_until', c.lease_until, 'refunded_amount', c.refunded_amount, 'attention', c.attention, 'created_at', c.created_at, 'updated_at', c.updated_at, 'settled_at', c.settled_at, 'transaction_id', c.transaction_id, 'settlement_status', c.settlement_status, 'fee', c.fee)), json_object('net', c.net, 'provider_payout', c.provider_payout, 'payout_ref', c.payout_ref, 'settlement_date', c.settlement_date, 'receipt_url', c.receipt_url)), NEW.updated_at
  FROM charges c WHERE c.id = NEW.charge_id;
END;

-- The provider settled the charge's transaction: fee, net and payout are known.
CREATE TRIGGER charge_settlement_recorded AFTER UPDATE OF settlement_status ON charges
WHEN NEW.settlement_status = 'settled' AND OLD.settlement_status IS NOT 'settled'
BEGIN
  INSERT INTO events (id, type, resource, resource_id, snapshot, created_at)
  VALUES ('evt_' || lower(hex(randomblob(10))), 'charge.settled', 'charge', NEW.id,
    json_patch(json_patch(json_object('id', NEW.id, 'charge_key', NEW.charge_key, 'customer_ref', NEW.customer_ref, 'subscription_id', NEW.subscription_id, 'period_index', NEW.period_index, 'kind', NEW.kind, 'amount', NEW.amount, 'currency', NEW.currency, 'description', NEW.description, 'metadata', NEW.metadata, 'request_hash', NEW.request_hash, 'status', NEW.status, 'failure_reason', NEW.failure_reason, 'decline_class', NEW.decline_class, 'order_id', NEW.order_id, 'payment_id', NEW.payment_id), json_object('payment_method_id', NEW.payment_method_id, 'attempts', NEW.attempts, 'provider_refusals', NEW.provider_refusals, 'last_error', NEW.last_error, 'declines', NEW.declines, 'first_failed_at', NEW.first_failed_at, 'next_retry_at', NEW.next_retry_at, 'lease_until', NEW.lease_until, 'refunded_amount', NEW.refunded_amount, 'attention', NEW.attention, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at, 'settled_at', NEW.settled_at, 'transaction_id', NEW.transaction_id, 'settlement_status', NEW.settlement_status, 'fee', NEW.fee)), json_object('net', NEW.net, 'provider_payout', NEW.provider_payout, 'payout_ref', NEW.payout_ref, 'settlement_date', NEW.settlement_date, 'receipt_url', NEW.receipt_url)), NEW.updated_at);
END;

CREATE TRIGGER refund_settled AFTER UPDATE OF status ON refunds
WHEN NEW.status IS NOT OLD.status AND NEW.status IN ('succeeded', 'failed')
BEGIN
  INSERT INTO events (id, type, resource, resource_id, snapshot, created_at)
  VALUES ('evt_' || lower(hex(randomblob(10))), 'refund.' || NEW.status, 'refund', NEW.id,
    json_patch(json_object('id', NEW.id, 'charge_id', NEW.charge_id, 'amount', NEW.amount, 'currency', NEW.currency, 'status', NEW.status, 'order_id', NEW.order_id, 'purchase_order_id', NEW.purchase_order_id, 'reverses_payment_id', NEW.reverses_payment_id, 'failure_reason', NEW.failure_reason, 'lease_until', NEW.lease_until, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at, 'settled_at', NEW.settled_at, 'method', NEW.method, 'stage', NEW.stage, 'next_attempt_at', NEW.next_attempt_at), json_object('transaction_id', NEW.transaction_id, 'settlement_status', NEW.settlement_status, 'provider_payout', NEW.provider_payout, 'payout_ref', NEW.payout_ref, 'settlement_date', NEW.settlement_date)), NEW.updated_at);
END;

