-- Saved workflow definitions (every version kept), the checkpoints of `graph` runs, and the
-- approvals their interrupt nodes wait on. Kept in step with migrations/postgres/0007_workflows.sql.
CREATE TABLE workflows (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id       INTEGER NOT NULL REFERENCES orgs(id),
    name         TEXT NOT NULL,
    version      INTEGER NOT NULL,
    engine       TEXT NOT NULL,
    description  TEXT,
    -- the document as it was sent (YAML or JSON)
    source       TEXT NOT NULL,
    created_by   INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at   TEXT NOT NULL,
    UNIQUE (org_id, name, version)
);

CREATE TABLE workflow_checkpoints (
    run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    -- nodes executed so far, the checkpoint's position in the run
    steps       INTEGER NOT NULL,
    node        TEXT NOT NULL,
    next        TEXT,
    state       TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (run_id, steps)
);

CREATE TABLE workflow_interrupts (
    run_id       INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    -- the interrupt node and the step it ran at
    key          TEXT NOT NULL,
    approval_id  INTEGER NOT NULL REFERENCES approvals(id) ON DELETE CASCADE,
    PRIMARY KEY (run_id, key)
);
