-- Keys an agent can be trusted with. Kept in step with migrations/postgres/0009_agent_keys.sql.
-- A token's permissions (comma-separated names; NULL: those of its roles) and its own limits
-- (JSON: model allow-list, budgets, rate limits, allowed client addresses).
ALTER TABLE api_tokens ADD COLUMN permissions TEXT;
ALTER TABLE api_tokens ADD COLUMN limits TEXT NOT NULL DEFAULT '{}';

-- Requests and model tokens per token per minute: one row per token and minute, counted
-- with an atomic upsert so every process shares the count.
CREATE TABLE token_rate (
    token_id    INTEGER NOT NULL REFERENCES api_tokens(id) ON DELETE CASCADE,
    minute      INTEGER NOT NULL,
    requests    INTEGER NOT NULL DEFAULT 0,
    tokens      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (token_id, minute)
);

-- Single-use, expiring invitations for an agent to register itself: the account it gets
-- has `roles`; its key carries `permissions` and `limits`.
CREATE TABLE enrolments (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id          INTEGER NOT NULL REFERENCES orgs(id),
    token_hash      TEXT NOT NULL,
    prefix          TEXT NOT NULL,
    name            TEXT NOT NULL,
    roles           TEXT NOT NULL,
    permissions     TEXT NOT NULL,
    limits          TEXT NOT NULL DEFAULT '{}',
    created_by      INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at      TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    used_at         TEXT,
    used_by         INTEGER REFERENCES users(id) ON DELETE SET NULL
);
CREATE UNIQUE INDEX enrolments_hash_key ON enrolments (token_hash);

-- GET /auth/tokens/{id} sums a token's spend today, this month and in all.
CREATE INDEX usage_events_token_idx ON usage_events (token_id, created_at);
