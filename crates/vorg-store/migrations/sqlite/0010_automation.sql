-- The organization acts on its own: schedules, inbound triggers, outbound webhooks, alerts.
-- Kept in step with migrations/postgres/0010_automation.sql.

-- Where a run came from when no one asked for it by a route: a schedule slot, an inbound hook
-- delivery or an org event. `origin_key` is unique, so a slot or a delivery starts at most
-- one run however many processes try (the claim is the run's own insert).
ALTER TABLE runs ADD COLUMN origin_kind TEXT;
ALTER TABLE runs ADD COLUMN origin_id INTEGER;
ALTER TABLE runs ADD COLUMN origin_key TEXT;
ALTER TABLE runs ADD COLUMN trigger_depth INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX runs_origin_key ON runs (origin_key);
-- GET /schedules/{id}/runs and /triggers/{id}/runs list one origin's runs, newest first.
CREATE INDEX runs_origin_idx ON runs (origin_kind, origin_id, id);

CREATE TABLE schedules (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id          INTEGER NOT NULL REFERENCES orgs(id),
    name            TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    target          TEXT NOT NULL,
    cron            TEXT NOT NULL,
    timezone        TEXT NOT NULL,
    catch_up        TEXT NOT NULL,
    on_dst_gap      TEXT NOT NULL,
    enabled         INTEGER NOT NULL,
    owner_id        INTEGER REFERENCES users(id) ON DELETE SET NULL,
    source          TEXT NOT NULL,
    version         INTEGER NOT NULL DEFAULT 1,
    -- Slots after this instant (epoch ms) are due to fire (moved on by each firing or skip, and to
    -- "now" when the schedule is enabled or its timing changes).
    anchor_ms       INTEGER NOT NULL,
    last_slot_ms    INTEGER,
    last_run_id     INTEGER,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE UNIQUE INDEX schedules_name_key ON schedules (org_id, name);

CREATE TABLE triggers (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id          INTEGER NOT NULL REFERENCES orgs(id),
    -- The unguessable id in /hooks/{hook_id}.
    hook_id         TEXT NOT NULL,
    name            TEXT NOT NULL,
    -- `webhook` (POST /hooks/{hook_id}) or `event` (vorg's own events).
    kind            TEXT NOT NULL,
    auth            TEXT NOT NULL,
    secret          TEXT NOT NULL DEFAULT '',
    events          TEXT NOT NULL DEFAULT '',
    filter          TEXT NOT NULL DEFAULT '{}',
    max_depth       INTEGER NOT NULL DEFAULT 3,
    target          TEXT NOT NULL,
    mapping         TEXT NOT NULL DEFAULT '{}',
    enabled         INTEGER NOT NULL,
    owner_id        INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE UNIQUE INDEX triggers_hook_key ON triggers (hook_id);
CREATE UNIQUE INDEX triggers_name_key ON triggers (org_id, name);

CREATE TABLE webhooks (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id           INTEGER NOT NULL REFERENCES orgs(id),
    name             TEXT NOT NULL,
    url              TEXT NOT NULL,
    events           TEXT NOT NULL,
    format           TEXT NOT NULL,
    secret           TEXT NOT NULL,
    enabled          INTEGER NOT NULL,
    disabled_reason  TEXT,
    failure_streak   INTEGER NOT NULL DEFAULT 0,
    created_by       INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    last_success_at  TEXT,
    last_failure_at  TEXT
);

CREATE TABLE webhook_deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id       INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    event_id         INTEGER,
    event_type       TEXT NOT NULL,
    -- The Standard Webhooks `webhook-id`: the same on every attempt and redelivery.
    msg_id           TEXT NOT NULL,
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT,
    last_status      INTEGER,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    delivered_at     TEXT
);
-- One delivery per subscription, event and type, however many dispatchers look.
CREATE UNIQUE INDEX webhook_deliveries_event_key ON webhook_deliveries (webhook_id, event_id, event_type);
CREATE INDEX webhook_deliveries_webhook_idx ON webhook_deliveries (webhook_id, id);

CREATE TABLE webhook_attempts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id      INTEGER NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    attempt          INTEGER NOT NULL,
    started_at       TEXT NOT NULL,
    duration_ms      INTEGER NOT NULL,
    status_code      INTEGER,
    response_excerpt TEXT NOT NULL DEFAULT '',
    error            TEXT
);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id, id);

-- How far a consumer of the org event log has got (the webhook and event-trigger dispatcher).
CREATE TABLE event_cursors (
    name        TEXT PRIMARY KEY,
    last_id     INTEGER NOT NULL,
    updated_at  TEXT NOT NULL
);
-- The dispatcher's cursor exists from here on, at the newest event: history is not sent to
-- subscriptions, and no event after this point can be passed over by a process that starts
-- while another is already writing events.
INSERT INTO event_cursors (name, last_id, updated_at)
SELECT 'dispatch', COALESCE(MAX(id), 0), strftime('%Y-%m-%dT%H:%M:%fZ', 'now') FROM events;

-- Alerts sent once per period (budget exceeded, forecast over the limit): the key is the
-- alert and its period; the insert that wins sends it.
CREATE TABLE alert_marks (
    key         TEXT PRIMARY KEY,
    created_at  TEXT NOT NULL
);
