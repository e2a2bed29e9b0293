-- Linear issues vorg created, linked to the run or artifact that produced them; the
-- idempotency key makes a retried create return the first issue. Kept in step with
-- migrations/postgres/0005_linear.sql.
CREATE TABLE linear_issue_links (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id           INTEGER NOT NULL REFERENCES orgs(id),
    idempotency_key  TEXT,
    linear_issue_id  TEXT NOT NULL,
    identifier       TEXT NOT NULL,
    title            TEXT NOT NULL,
    url              TEXT NOT NULL,
    team_id          TEXT NOT NULL,
    run_id           INTEGER REFERENCES runs(id) ON DELETE SET NULL,
    artifact_id      INTEGER,
    created_by       INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at       TEXT NOT NULL,
    UNIQUE (org_id, idempotency_key)
);
CREATE INDEX linear_issue_links_run_idx ON linear_issue_links (run_id);
