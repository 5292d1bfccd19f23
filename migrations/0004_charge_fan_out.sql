-- Charges fanned out over the CHARGES queue: the tick marks each charge it enqueues, so that an
-- overlapping or the next tick does not enqueue it again while its message is on its way.
-- The consumer's drive clears the mark when it lets the charge go.
ALTER TABLE charges ADD COLUMN queued_until INTEGER;
CREATE INDEX charges_due ON charges (status, next_retry_at, queued_until);
