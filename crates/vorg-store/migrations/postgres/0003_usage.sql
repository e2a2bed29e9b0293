-- Usage rows carry who called (user, API token), whether the model had a price, and the
-- error of a failed call. Kept in step with migrations/sqlite/0003_usage.sql.
ALTER TABLE usage_events ADD COLUMN user_id BIGINT;
ALTER TABLE usage_events ADD COLUMN token_id BIGINT;
ALTER TABLE usage_events ADD COLUMN priced BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE usage_events ADD COLUMN streamed BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE usage_events ADD COLUMN error TEXT;
-- GET /usage/events pages by id.
CREATE INDEX usage_events_org_id_idx ON usage_events (org_id, id);
