-- Events for the merchant (a transactional outbox): every state change a merchant acts on
-- writes an event row in the same transaction as the change itself, by the triggers below, so
-- no code path can change a charge, a subscription, a refund, a checkout or a card without its
-- event, and no event exists for a change that did not commit. An event keeps the resource's
-- row as it was at the change (`snapshot`); the API renders it exactly as it renders the
-- resource. Delivery to the merchant's webhook URL goes over the EVENTS queue.
CREATE TABLE events (
  seq         INTEGER PRIMARY KEY AUTOINCREMENT,  -- the feed's order
  id          TEXT NOT NULL UNIQUE,               -- evt_...: the webhook-id of every delivery
  type        TEXT NOT NULL,
  resource    TEXT NOT NULL
    CHECK (resource IN ('charge', 'subscription', 'refund', 'checkout', 'payment_method')),
  resource_id TEXT NOT NULL,
  snapshot    TEXT NOT NULL,                      -- the resource's row at the change, as JSON
  created_at  INTEGER NOT NULL,                   -- business time of the change
  -- pending: to be sent; queued: on the EVENTS queue; delivered; failed: retries exhausted;
  -- none: no webhook URL configured when it was dispatched (the feed still has it).
  delivery    TEXT NOT NULL DEFAULT 'pending'
    CHECK (delivery IN ('pending', 'queued', 'delivered', 'failed', 'none')),
  queued_at   INTEGER,                            -- wall time it was last put on the queue
  attempts    INTEGER NOT NULL DEFAULT 0,         -- deliveries tried, ever
  round_base  INTEGER NOT NULL DEFAULT 0,         -- attempts before the last redelivery asked
  last_error  TEXT,
  delivered_at INTEGER
);
CREATE INDEX events_by_type ON events (type, seq);
CREATE INDEX events_delivery ON events (delivery, queued_at);

-- Every delivery attempt: what the merchant's endpoint answered, and how long it took.
CREATE TABLE event_deliveries (
  event_id    TEXT NOT NULL,
  attempt     INTEGER NOT NULL,
  status_code INTEGER,                            -- null when no answer came
  latency_ms  INTEGER NOT NULL,
  error       TEXT,                               -- timeout, network, http_500, ...
  at          INTEGER NOT NULL,
  PRIMARY KEY (event_id, attempt)
);

-- Charges: settled as they are recorded (a checkout's payment), succeeded or failed later.
CREATE TRIGGER charge_recorded_settled AFTER INSERT ON charges WHEN NEW.status = 'succeeded'
BEGIN
  INSERT INTO events (id, type, resource, resource_id, snapshot, created_at)
  VALUES ('evt_' || lower(hex(randomblob(10))), 'charge.succeeded', 'charge', NEW.id,
    json_patch(json_object('id', NEW.id, 'charge_key', NEW.charge_key, 'customer_ref', NEW.customer_ref, 'subscription_id', NEW.subscription_id, 'period_index', NEW.period_index, 'kind', NEW.kind, 'amount', NEW.amount, 'currency', NEW.currency, 'description', NEW.description, 'metadata', NEW.metadata, 'request_hash', NEW.request_hash, 'status', NEW.status, 'failure_reason', NEW.failure_reason, 'decline_class', NEW.decline_class, 'order_id', NEW.order_id), json_object('payment_id', NEW.payment_id, 'payment_method_id', NEW.payment_method_id, 'attempts', NEW.attempts, 'provider_refusals', NEW.provider_refusals, 'last_error', NEW.last_error, 'declines', NEW.declines, 'first_failed_at', NEW.first_failed_at, 'next_retry_at', NEW.next_retry_at, 'lease_until', NEW.lease_until, 'refunded_amount', NEW.refunded_amount, 'attention', NEW.attention, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at, 'settled_at', NEW.settled_at)), NEW.updated_at);
END;

CREATE TRIGGER charge_settled AFTER UPDATE OF status ON charges
WHEN NEW.status IS NOT OLD.status AND NEW.status IN ('succeeded', 'failed')
BEGIN
  INSERT INTO events (id, type, resource, resource_id, snapshot, created_at)
  VALUES ('evt_' || lower(hex(randomblob(10))), 'charge.' || NEW.status, 'charge', NEW.id,
    json_patch(json_object('id', NEW.id, 'charge_key', NEW.charge_key, 'customer_ref', NEW.customer_ref, 'subscription_id', NEW.subscription_id, 'period_index', NEW.period_index, 'kind', NEW.kind, 'amount', NEW.amount, 'currency', NEW.currency, 'description', NEW.description, 'metadata', NEW.metadata, 'request_hash', NEW.request_hash, 'status', NEW.status, 'failure_reason', NEW.failure_reason, 'decline_class', NEW.decline_class, 'order_id', NEW.order_id), json_object('payment_id', NEW.payment_id, 'payment_method_id', NEW.payment_method_id, 'attempts', NEW.attempts, 'provider_refusals', NEW.provider_refusals, 'last_error', NEW.last_error, 'declines', NEW.declines, 'first_failed_at', NEW.first_failed_at, 'next_retry_at', NEW.next_retry_at, 'lease_until', NEW.lease_until, 'refunded_amount', NEW.refunded_amount, 'attention', NEW.attention, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at, 'settled_at', NEW.settled_at)), NEW.updated_at);
END;

-- An outcome that lasts unknown: the charge needs an operator, or an attempt was fenced.
CREATE TRIGGER charge_needs_attention AFTER UPDATE OF attention ON charges
WHEN NEW.attention IS NOT NULL AND OLD.attention IS NULL
BEGIN
  INSERT INTO events (id, type, resource, resource_id, snapshot, created_at)
  VALUES ('evt_' || lower(hex(randomblob(10))), 'charge.pending', 'charge', NEW.id,
    json_patch(json_object('id', NEW.id, 'charge_key', NEW.charge_key, 'customer_ref', NEW.customer_ref, 'subscription_id', NEW.subscription_id, 'period_index', NEW.period_index, 'kind', NEW.kind, 'amount', NEW.amount, 'currency', NEW.currency, 'description', NEW.description, 'metadata', NEW.metadata, 'request_hash', NEW.request_hash, 'status', NEW.status, 'failure_reason', NEW.failure_reason, 'decline_class', NEW.decline_class, 'order_id', NEW.order_id), json_object('payment_id', NEW.payment_id, 'payment_method_id', NEW.payment_method_id, 'attempts', NEW.attempts, 'provider_refusals', NEW.provider_refusals, 'last_error', NEW.last_error, 'declines', NEW.declines, 'first_failed_at', NEW.first_failed_at, 'next_retry_at', NEW.next_retry_at, 'lease_until', NEW.lease_until, 'refunded_amount', NEW.refunded_amount, 'attention', NEW.attention, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at, 'settled_at', NEW.settled_at)), NEW.updated_at);
END;

CREATE TRIGGER charge_attempt_fenced AFTER UPDATE OF status ON charge_attempts
WHEN NEW.status = 'fenced' AND OLD.status IS NOT 'fenced'
BEGIN
  INSERT INTO events (id, type, resource, resource_id, snapshot, created_at)
  SELECT 'evt_' || lower(hex(randomblob(10))), 'charge.pending', 'charge', c.id,
    json_patch(json_object('id', c.id, 'charge_key', c.charge_key, 'customer_ref', c.customer_ref, 'subscription_id', c.subscription_id, 'period_index', c.period_index, 'kind', c.kind, 'amount', c.amount, 'currency', c.currency, 'description', c.description, 'metadata', c.metadata, 'request_hash', c.request_hash, 'status', c.status, 'failure_reason', c.failure_reason, 'decline_class', c.decline_class, 'order_id', c.order_id), json_object('payment_id', c.payment_id, 'payment_method_id', c.payment_method_id, 'attempts', c.attempts, 'provider_refusals', c.provider_refusals, 'last_error', c.last_error, 'declines', c.declines, 'first_failed_at', c.first_failed_at, 'next_retry_at', c.next_retry_at, 'lease_until', c.lease_until, 'refunded_amount', c.refunded_amount, 'attention', c.attention, 'created_at', c.created_at, 'updated_at', c.updated_at, 'settled_at', c.settled_at)), NEW.updated_at
  FROM charges c WHERE c.id = NEW.charge_id;
END;

-- Subscriptions: created; a new period started; every status transition.
CREATE TRIGGER subscription_created_event AFTER INSERT ON subscriptions
BEGIN
  INSERT INTO events (id, type, resource, resource_id, snapshot, created_at)
  VALUES ('evt_' || lower(hex(randomblob(10))), 'subscription.created', 'subscription', NEW.id,
    json_patch(json_object('id', NEW.id, 'customer_ref', NEW.customer_ref, 'checkout_id', NEW.checkout_id, 'plan_id', NEW.plan_id, 'kind', NEW.kind, 'amount', NEW.amount, 'currency', NEW.currency, 'interval_unit', NEW.interval_unit, 'interval_count', NEW.interval_count, 'unit_amount', NEW.unit_amount, 'installments_total', NEW.installments_total, 'anchor_at', NEW.anchor_at, 'anchor_period', NEW.anchor_period, 'current_period', NEW.current_period, 'current_period_start', NEW.current_period_start), json_object('current_period_end', NEW.current_period_end, 'status', NEW.status, 'status_reason', NEW.status_reason, 'cancel_at_period_end', NEW.cancel_at_period_end, 'pending_plan_id', NEW.pending_plan_id, 'pending_plan', NEW.pending_plan, 'paused_at', NEW.paused_at, 'canceled_at', NEW.canceled_at, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at)), NEW.updated_at);
END;

CREATE TRIGGER subscription_renewed AFTER UPDATE OF current_period ON subscriptions
WHEN NEW.current_period > OLD.current_period AND NEW.status = 'active'
BEGIN
  INSERT INTO events (id, type, resource, resource_id, snapshot, created_at)
  VALUES ('evt_' || lower(hex(randomblob(10))), 'subscription.renewed', 'subscription', NEW.id,
    json_patch(json_object('id', NEW.id, 'customer_ref', NEW.customer_ref, 'checkout_id', NEW.checkout_id, 'plan_id', NEW.plan_id, 'kind', NEW.kind, 'amount', NEW.amount, 'currency', NEW.currency, 'interval_unit', NEW.interval_unit, 'interval_count', NEW.interval_count, 'unit_amount', NEW.unit_amount, 'installments_total', NEW.installments_total, 'anchor_at', NEW.anchor_at, 'anchor_period', NEW.anchor_period, 'current_period', NEW.current_period, 'current_period_start', NEW.current_period_start), json_object('current_period_end', NEW.current_period_end, 'status', NEW.status, 'status_reason', NEW.status_reason, 'cancel_at_period_end', NEW.cancel_at_period_end, 'pending_plan_id', NEW.pending_plan_id, 'pending_plan', NEW.pending_plan, 'paused_at', NEW.paused_at, 'canceled_at', NEW.canceled_at, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at)), NEW.updated_at);
END;

CREATE TRIGGER subscription_status_event AFTER UPDATE OF status ON subscriptions
WHEN OLD.status IS NOT NEW.status
BEGIN
  INSERT INTO events (id, type, resource, resource_id, snapshot, created_at)
  VALUES ('evt_' || lower(hex(randomblob(10))), CASE
      WHEN NEW.status = 'active' AND OLD.status = 'paused' THEN 'subscription.resumed'
      WHEN NEW.status = 'active' THEN 'subscription.recovered'
      ELSE 'subscription.' || NEW.status END, 'subscription', NEW.id,
    json_patch(json_object('id', NEW.id, 'customer_ref', NEW.customer_ref, 'checkout_id', NEW.checkout_id, 'plan_id', NEW.plan_id, 'kind', NEW.kind, 'amount', NEW.amount, 'currency', NEW.currency, 'interval_unit', NEW.interval_unit, 'interval_count', NEW.interval_count, 'unit_amount', NEW.unit_amount, 'installments_total', NEW.installments_total, 'anchor_at', NEW.anchor_at, 'anchor_period', NEW.anchor_period, 'current_period', NEW.current_period, 'current_period_start', NEW.current_period_start), json_object('current_period_end', NEW.current_period_end, 'status', NEW.status, 'status_reason', NEW.status_reason, 'cancel_at_period_end', NEW.cancel_at_period_end, 'pending_plan_id', NEW.pending_plan_id, 'pending_plan', NEW.pending_plan, 'paused_at', NEW.paused_at, 'canceled_at', NEW.canceled_at, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at)), NEW.updated_at);
END;

-- Refunds: succeeded or failed.
CREATE TRIGGER refund_settled AFTER UPDATE OF status ON refunds
WHEN NEW.status IS NOT OLD.status AND NEW.status IN ('succeeded', 'failed')
BEGIN
  INSERT INTO events (id, type, resource, resource_id, snapshot, created_at)
  VALUES ('evt_' || lower(hex(randomblob(10))), 'refund.' || NEW.status, 'refund', NEW.id,
    json_object('id', NEW.id, 'charge_id', NEW.charge_id, 'amount', NEW.amount, 'currency', NEW.currency, 'status', NEW.status, 'order_id', NEW.order_id, 'purchase_order_id', NEW.purchase_order_id, 'reverses_payment_id', NEW.reverses_payment_id, 'failure_reason', NEW.failure_reason, 'lease_until', NEW.lease_until, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at, 'settled_at', NEW.settled_at), NEW.updated_at);
END;

-- Checkouts: paid (the customer's card is on file) or failed.
CREATE TRIGGER checkout_settled AFTER UPDATE OF status ON checkouts
WHEN NEW.status IS NOT OLD.status AND NEW.status IN ('paid', 'failed')
BEGIN
  INSERT INTO events (id, type, resource, resource_id, snapshot, created_at)
  VALUES ('evt_' || lower(hex(randomblob(10))), CASE NEW.status WHEN 'paid' THEN 'checkout.completed' ELSE 'checkout.failed' END, 'checkout', NEW.id,
    json_patch(json_object('id', NEW.id, 'customer_ref', NEW.customer_ref, 'purpose', NEW.purpose, 'plan_id', NEW.plan_id, 'plan', NEW.plan, 'installments', NEW.installments, 'amount', NEW.amount, 'currency', NEW.currency, 'settles_charge_id', NEW.settles_charge_id, 'parked_retry_at', NEW.parked_retry_at, 'card_outcome', NEW.card_outcome, 'order_id', NEW.order_id, 'payment_page_url', NEW.payment_page_url, 'return_url', NEW.return_url, 'cancel_url', NEW.cancel_url), json_object('status', NEW.status, 'failure_reason', NEW.failure_reason, 'subscription_id', NEW.subscription_id, 'lease_token', NEW.lease_token, 'lease_until', NEW.lease_until, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at, 'completed_at', NEW.completed_at)), NEW.updated_at);
END;

-- Cards on file: a new card (the customer's card is now this one), a card removed.
CREATE TRIGGER payment_method_added AFTER INSERT ON payment_methods WHEN NEW.status = 'active'
BEGIN
  INSERT INTO events (id, type, resource, resource_id, snapshot, created_at)
  VALUES ('evt_' || lower(hex(randomblob(10))), 'payment_method.updated', 'payment_method', NEW.id,
    json_object('id', NEW.id, 'customer_ref', NEW.customer_ref, 'source_order_id', NEW.source_order_id, 'brand', NEW.brand, 'last4', NEW.last4, 'exp_month', NEW.exp_month, 'exp_year', NEW.exp_year, 'status', NEW.status, 'created_at', NEW.created_at, 'ended_at', NEW.ended_at), NEW.created_at);
END;

CREATE TRIGGER payment_method_removed AFTER UPDATE OF status ON payment_methods
WHEN NEW.status = 'removed' AND OLD.status IS NOT 'removed'
BEGIN
  INSERT INTO events (id, type, resource, resource_id, snapshot, created_at)
  VALUES ('evt_' || lower(hex(randomblob(10))), 'payment_method.removed', 'payment_method', NEW.id,
    json_object('id', NEW.id, 'customer_ref', NEW.customer_ref, 'source_order_id', NEW.source_order_id, 'brand', NEW.brand, 'last4', NEW.last4, 'exp_month', NEW.exp_month, 'exp_year', NEW.exp_year, 'status', NEW.status, 'created_at', NEW.created_at, 'ended_at', NEW.ended_at), COALESCE(NEW.ended_at, NEW.created_at));
END;
