-- Runs executed by workers, their durable job queue, and the org-wide event log.
-- Kept in step with migrations/postgres/0002_runs_jobs_events.sql.

ALTER TABLE runs ADD COLUMN cancel_requested_at TEXT;
ALTER TABLE runs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
-- GET /runs?type= pages by id within a type.
CREATE INDEX runs_org_type_idx ON runs (org_id, run_type, id);

-- A run's log is its event stream: kind 'log' for lines, 'status' for status changes.
ALTER TABLE run_logs ADD COLUMN kind TEXT NOT NULL DEFAULT 'log';

CREATE TABLE jobs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL DEFAULT '{}',
    run_id          INTEGER REFERENCES runs(id) ON DELETE CASCADE,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER NOT NULL,
    run_at_ms       INTEGER NOT NULL,
    lease_until_ms  INTEGER,
    worker_id       TEXT,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
-- Workers claim the oldest due job; lease expiry finds running jobs whose lease ran out.
CREATE INDEX jobs_due_idx ON jobs (status, run_at_ms, id);
CREATE INDEX jobs_lease_idx ON jobs (status, lease_until_ms);
CREATE INDEX jobs_run_idx ON jobs (run_id);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id      INTEGER NOT NULL REFERENCES orgs(id),
    kind        TEXT NOT NULL,
    run_id      INTEGER,
    data        TEXT NOT NULL DEFAULT '{}',
    created_at  TEXT NOT NULL
);
-- /streams/events replays by id within the org.
CREATE INDEX events_org_id_idx ON events (org_id, id);
