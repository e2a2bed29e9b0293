-- The foundation schema on SQLite. Kept in step with migrations/postgres/0001_foundation.sql:
-- same tables, columns and indexes; only the column types differ.
-- Times are RFC 3339 TEXT written by vorg (never by SQL defaults), money is integer micro-USD.

CREATE TABLE orgs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);
INSERT INTO orgs (id, name, created_at) VALUES (1, 'default', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));

CREATE TABLE roles (
    id    INTEGER PRIMARY KEY,
    name  TEXT NOT NULL UNIQUE
);
INSERT INTO roles (id, name) VALUES (1, 'admin'), (2, 'approver'), (3, 'engineer'), (4, 'growth'), (5, 'viewer');

CREATE TABLE users (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id         INTEGER NOT NULL REFERENCES orgs(id),
    email          TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    is_admin       INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL,
    last_login_at  TEXT
);
-- login and register look users up by e-mail; e-mails are stored lower-cased.
CREATE UNIQUE INDEX users_email_key ON users (email);
-- GET /users pages by id within the org.
CREATE INDEX users_org_id_idx ON users (org_id, id);

CREATE TABLE user_roles (
    user_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role_id  INTEGER NOT NULL REFERENCES roles(id),
    PRIMARY KEY (user_id, role_id)
);
-- the last-admin rule counts holders of one role.
CREATE INDEX user_roles_role_idx ON user_roles (role_id, user_id);

CREATE TABLE api_tokens (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id        INTEGER NOT NULL REFERENCES orgs(id),
    user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    token_hash    TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    roles         TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    expires_at    TEXT,
    last_used_at  TEXT,
    revoked_at    TEXT
);
-- every request with an API token looks it up by the hash of its secret.
CREATE UNIQUE INDEX api_tokens_hash_key ON api_tokens (token_hash);
-- GET /auth/tokens lists one user's tokens.
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id, id);

CREATE TABLE audit_log (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id         INTEGER NOT NULL REFERENCES orgs(id),
    actor_user_id  INTEGER REFERENCES users(id) ON DELETE SET NULL,
    actor          TEXT NOT NULL,
    action         TEXT NOT NULL,
    target         TEXT,
    detail         TEXT NOT NULL DEFAULT '{}',
    request_id     TEXT,
    created_at     TEXT NOT NULL
);
-- GET /audit pages newest first within the org.
CREATE INDEX audit_log_org_id_idx ON audit_log (org_id, id);

-- The seed's domain tables. Their routes arrive with later issues; the tables are here so the
-- schema matches the original's from the first migration.
CREATE TABLE approvals (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id             INTEGER NOT NULL REFERENCES orgs(id),
    description        TEXT NOT NULL,
    amount_micro_usd   INTEGER NOT NULL,
    justification      TEXT NOT NULL DEFAULT '',
    status             TEXT NOT NULL,
    threshold_micro_usd INTEGER NOT NULL,
    requested_by       INTEGER REFERENCES users(id) ON DELETE SET NULL,
    decided_by         INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at         TEXT NOT NULL,
    decided_at         TEXT
);
CREATE INDEX approvals_org_id_idx ON approvals (org_id, id);
CREATE INDEX approvals_org_status_idx ON approvals (org_id, status, id);

CREATE TABLE artifacts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id      INTEGER NOT NULL REFERENCES orgs(id),
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    path        TEXT,
    storage     TEXT NOT NULL DEFAULT 'local',
    s3_bucket   TEXT,
    s3_key      TEXT,
    meta        TEXT NOT NULL DEFAULT '{}',
    run_id      INTEGER,
    created_at  TEXT NOT NULL
);
CREATE INDEX artifacts_org_kind_idx ON artifacts (org_id, kind, id);

CREATE TABLE runs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id        INTEGER NOT NULL REFERENCES orgs(id),
    run_type      TEXT NOT NULL,
    status        TEXT NOT NULL,
    summary       TEXT,
    input         TEXT NOT NULL DEFAULT '{}',
    output        TEXT,
    error         TEXT,
    requested_by  INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at    TEXT NOT NULL,
    started_at    TEXT,
    completed_at  TEXT
);
CREATE INDEX runs_org_id_idx ON runs (org_id, id);
CREATE INDEX runs_org_status_idx ON runs (org_id, status, id);

CREATE TABLE run_logs (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    timestamp  TEXT NOT NULL,
    level      TEXT NOT NULL,
    message    TEXT NOT NULL,
    fields     TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX run_logs_run_id_idx ON run_logs (run_id, id);

CREATE TABLE usage_events (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id             INTEGER NOT NULL REFERENCES orgs(id),
    run_id             INTEGER REFERENCES runs(id) ON DELETE SET NULL,
    actor              TEXT NOT NULL,
    provider           TEXT NOT NULL,
    model              TEXT NOT NULL,
    prompt_tokens      INTEGER NOT NULL DEFAULT 0,
    completion_tokens  INTEGER NOT NULL DEFAULT 0,
    cost_micro_usd     INTEGER NOT NULL DEFAULT 0,
    latency_ms         INTEGER NOT NULL DEFAULT 0,
    status             TEXT NOT NULL,
    created_at         TEXT NOT NULL
);
CREATE INDEX usage_events_org_created_idx ON usage_events (org_id, created_at);
CREATE INDEX usage_events_run_idx ON usage_events (run_id);
