-- A usage row whose tokens were estimated by the gateway (a stream that ended without the
-- upstream's usage, e.g. a client that hung up). Kept in step with
-- migrations/postgres/0008_usage_estimated.sql.
ALTER TABLE usage_events ADD COLUMN estimated INTEGER NOT NULL DEFAULT 0;
