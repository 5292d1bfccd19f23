-- The dashboard finds a customer by reference or email, and a resource's events by its id.
CREATE INDEX customers_by_email ON customers (email);
CREATE INDEX events_by_resource ON events (resource_id, seq);
