-- Billing depth: quantities (seats), and every change of a subscription announced.

-- Seats: the plan's price is per unit. A quantity change at period end waits here, like a plan
-- change in pending_plan.
ALTER TABLE subscriptions ADD COLUMN quantity INTEGER NOT NULL DEFAULT 1 CHECK (quantity >= 1);
ALTER TABLE subscriptions ADD COLUMN pending_quantity INTEGER CHECK (pending_quantity >= 1);
-- The change made now last written (chg_...): a change's credit, spend and charge are written
-- in its batch only if its own update of the subscription happened.
ALTER TABLE subscriptions ADD COLUMN last_change TEXT;

-- Every change of a subscription's terms or standing is announced as subscription.updated,
-- with the members that changed as they were before (`previous_attributes`, in the API's names,
-- nulls kept): cancel at period end set or undone, a plan change (scheduled or taking effect), a
-- quantity, a pause or a resume.
CREATE TRIGGER subscription_updated AFTER UPDATE ON subscriptions
WHEN OLD.cancel_at_period_end IS NOT NEW.cancel_at_period_end
  OR OLD.pending_plan_id IS NOT NEW.pending_plan_id
  OR OLD.plan_id IS NOT NEW.plan_id
  OR OLD.amount IS NOT NEW.amount
  OR OLD.quantity IS NOT NEW.quantity
  OR OLD.pending_quantity IS NOT NEW.pending_quantity
  OR (OLD.status IS NOT NEW.status AND 'paused' IN (OLD.status, NEW.status))
BEGIN
  INSERT INTO events (id, type, resource, resource_id, snapshot, created_at)
  VALUES ('evt_' || lower(hex(randomblob(10))), 'subscription.updated', 'subscription', NEW.id,
    json_set(json_patch(json_object('id', NEW.id, 'customer_ref', NEW.customer_ref, 'checkout_id', NEW.checkout_id, 'plan_id', NEW.plan_id, 'kind', NEW.kind, 'amount', NEW.amount, 'currency', NEW.currency, 'interval_unit', NEW.interval_unit, 'interval_count', NEW.interval_count, 'unit_amount', NEW.unit_amount, 'installments_total', NEW.installments_total, 'anchor_at', NEW.anchor_at, 'anchor_period', NEW.anchor_period, 'current_period', NEW.current_period, 'current_period_start', NEW.current_period_start, 'current_period_end', NEW.current_period_end), json_object('status', NEW.status, 'status_reason', NEW.status_reason, 'cancel_at_period_end', NEW.cancel_at_period_end, 'pending_plan_id', NEW.pending_plan_id, 'pending_plan', NEW.pending_plan, 'paused_at', NEW.paused_at, 'canceled_at', NEW.canceled_at, 'created_at', NEW.created_at, 'updated_at', NEW.updated_at, 'quantity', NEW.quantity, 'pending_quantity', NEW.pending_quantity)), '$.previous_attributes', json(json_remove(json_set('{}', CASE WHEN OLD.cancel_at_period_end IS NOT NEW.cancel_at_period_end THEN '$.cancelAtPeriodEnd' ELSE '$.unchanged' END, json(CASE OLD.cancel_at_period_end WHEN 0 THEN 'false' ELSE 'true' END), CASE WHEN OLD.pending_plan_id IS NOT NEW.pending_plan_id THEN '$.pendingPlanId' ELSE '$.unchanged' END, OLD.pending_plan_id, CASE WHEN OLD.plan_id IS NOT NEW.plan_id THEN '$.planId' ELSE '$.unchanged' END, OLD.plan_id, CASE WHEN OLD.amount IS NOT NEW.amount THEN '$.amount' ELSE '$.unchanged' END, OLD.amount, CASE WHEN OLD.quantity IS NOT NEW.quantity THEN '$.quantity' ELSE '$.unchanged' END, OLD.quantity, CASE WHEN OLD.pending_quantity IS NOT NEW.pending_quantity THEN '$.pendingQuantity' ELSE '$.unchanged' END, OLD.pending_quantity, CASE WHEN OLD.status IS NOT NEW.status THEN '$.status' ELSE '$.unchanged' END, OLD.status), '$.unchanged'))), NEW.updated_at);
END;

-- What the merchant owes a customer: a downgrade's unused part, kept for their next charges
-- (never a negative charge, never lost). One row per customer and currency; every change is a
-- transaction, so the balance can be explained line by line.
CREATE TABLE customer_balances (
  customer_ref TEXT NOT NULL,
  currency     TEXT NOT NULL,
  amount       INTEGER NOT NULL DEFAULT 0 CHECK (amount >= 0),
  updated_at   INTEGER NOT NULL,
  PRIMARY KEY (customer_ref, currency)
);

CREATE TABLE balance_transactions (
  id              TEXT PRIMARY KEY,          -- cbt_...
  customer_ref    TEXT NOT NULL,
  currency        TEXT NOT NULL,
  amount          INTEGER NOT NULL,          -- + credited, − used
  reason          TEXT NOT NULL CHECK (reason IN ('proration', 'applied')),
  subscription_id TEXT,
  charge_id       TEXT,                      -- the charge it paid part of (applied)
  period_index    INTEGER,                   -- the subscription period it paid (applied)
  -- The attempt that wrote the row: a batch's later statements act only on their own spend,
  -- never on one a concurrent attempt made under the same (deterministic) id.
  claim           TEXT NOT NULL,
  created_at      INTEGER NOT NULL
);
CREATE INDEX balance_transactions_by_customer ON balance_transactions (customer_ref, created_at);

-- A charge's purpose beyond its kind: `proration` for a mid-period change (kind `api`, whose
-- CHECK constraint SQLite cannot widen without rebuilding the table the ledger's money rows
-- reference). And what the customer's balance paid of a charge before the card was charged.
ALTER TABLE charges ADD COLUMN purpose TEXT CHECK (purpose IN ('proration'));
ALTER TABLE charges ADD COLUMN balance_applied INTEGER NOT NULL DEFAULT 0;
