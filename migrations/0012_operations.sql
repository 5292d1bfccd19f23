-- Operations: messages that reached a dead-letter queue, recorded by the worker's own consumer
-- of each dead-letter queue, so that GET /v1/monitoring can count them and an operator can read
-- what they were (a charge id or an event id: never a token).
CREATE TABLE dead_letters (
  id          TEXT PRIMARY KEY,        -- the queue message's id
  queue       TEXT NOT NULL,           -- the dead-letter queue it reached
  body        TEXT NOT NULL,           -- the message, as JSON
  received_at INTEGER NOT NULL         -- wall time
);
CREATE INDEX dead_letters_by_time ON dead_letters (received_at);
-- What GET /v1/monitoring counts: charges an operator must look at.
CREATE INDEX charges_needing_attention ON charges (attention)
  WHERE attention IS NOT NULL AND status IN ('processing', 'pending');
