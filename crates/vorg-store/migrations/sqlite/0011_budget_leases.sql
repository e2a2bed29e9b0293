-- Headroom leases: a process reserves a slice of a budget here and admits calls against it
-- in memory. The ledger's reserved_micro_usd is always the sum of the live leases of its
-- budget, so spent + reserved <= limit holds however many processes run. A lease that is not
-- renewed before expires_ms (epoch ms) is reaped: its headroom goes back to the budget.
-- Kept in step with migrations/postgres/0011_budget_leases.sql.
CREATE TABLE budget_leases (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id              INTEGER NOT NULL REFERENCES orgs(id),
    scope               TEXT NOT NULL,
    subject             TEXT NOT NULL,
    period              TEXT NOT NULL,
    -- The process holding it (host, pid and a random tag).
    holder              TEXT NOT NULL,
    amount_micro_usd    INTEGER NOT NULL,
    expires_ms          INTEGER NOT NULL
);
CREATE INDEX budget_leases_expiry_idx ON budget_leases (expires_ms);
CREATE INDEX budget_leases_holder_idx ON budget_leases (holder);

-- The budgets a usage row was charged to, as a JSON array of [scope, subject, period]: the
-- ledger's spend on a budget is the sum of the costs of the rows that name it, which
-- `vorg budgets check` proves. NULL: charged to none.
ALTER TABLE usage_events ADD COLUMN budgets TEXT;

-- Input tokens read from and written to the provider's prompt cache (part of prompt_tokens),
-- priced at their own rates.
ALTER TABLE usage_events ADD COLUMN cache_read_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_events ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0;
