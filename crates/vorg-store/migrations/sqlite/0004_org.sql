-- The organization: policy versions, personas with their history, approvals routed by
-- policy, and the budget ledger. Kept in step with migrations/postgres/0004_org.sql.

CREATE TABLE policy_versions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id      INTEGER NOT NULL REFERENCES orgs(id),
    version     INTEGER NOT NULL,
    body        TEXT NOT NULL,
    -- 'file' (loaded at start), 'api' (PUT), 'rollback'
    source      TEXT NOT NULL,
    author      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (org_id, version)
);

CREATE TABLE personas (
    org_id      INTEGER NOT NULL REFERENCES orgs(id),
    id          TEXT NOT NULL,
    doc         TEXT NOT NULL,
    reports_to  TEXT,
    version     INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (org_id, id)
);
CREATE INDEX personas_reports_to_idx ON personas (org_id, reports_to);

-- Every write of a persona, deletions included (doc NULL).
CREATE TABLE persona_versions (
    org_id      INTEGER NOT NULL REFERENCES orgs(id),
    persona_id  TEXT NOT NULL,
    version     INTEGER NOT NULL,
    doc         TEXT,
    author      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (org_id, persona_id, version)
);

ALTER TABLE approvals ADD COLUMN kind TEXT;
ALTER TABLE approvals ADD COLUMN tier TEXT;
ALTER TABLE approvals ADD COLUMN rule TEXT NOT NULL DEFAULT '';
ALTER TABLE approvals ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
ALTER TABLE approvals ADD COLUMN checks TEXT NOT NULL DEFAULT '[]';
ALTER TABLE approvals ADD COLUMN escalated_to TEXT NOT NULL DEFAULT '[]';
ALTER TABLE approvals ADD COLUMN run_id INTEGER;
ALTER TABLE approvals ADD COLUMN requested_by_label TEXT NOT NULL DEFAULT '';
ALTER TABLE approvals ADD COLUMN decision_comment TEXT;
ALTER TABLE approvals ADD COLUMN expires_at TEXT;

-- Spend per budget and period. A call reserves its worst case here before it starts and
-- settles to its real cost when it ends; a reservation that would pass the limit is refused.
CREATE TABLE budget_ledger (
    org_id              INTEGER NOT NULL REFERENCES orgs(id),
    scope               TEXT NOT NULL,
    subject             TEXT NOT NULL,
    period              TEXT NOT NULL,
    spent_micro_usd     INTEGER NOT NULL DEFAULT 0,
    reserved_micro_usd  INTEGER NOT NULL DEFAULT 0,
    warned              INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, scope, subject, period)
);
