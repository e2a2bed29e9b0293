-- Artifacts carry their blob's key, type and size, who made them, and their text for
-- search. Kept in step with migrations/sqlite/0006_artifacts.sql.
ALTER TABLE artifacts ADD COLUMN content_type TEXT NOT NULL DEFAULT 'application/octet-stream';
ALTER TABLE artifacts ADD COLUMN size BIGINT NOT NULL DEFAULT 0;
ALTER TABLE artifacts ADD COLUMN body_text TEXT NOT NULL DEFAULT '';
ALTER TABLE artifacts ADD COLUMN created_by BIGINT;
CREATE INDEX artifacts_org_id_idx ON artifacts (org_id, id);
