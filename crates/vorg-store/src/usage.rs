//! LLM usage: one row per provider call, successful or not.

use chrono::{DateTime, Utc};

use crate::BeginWrite;
use crate::{DEFAULT_ORG, Page, Result, Store, with_pool};

/// A call to record: what the gateway's usage writer queues and the store inserts (owned,
/// since it outlives the call that made it).
#[derive(Debug, Clone)]
pub struct NewUsage {
    pub run_id: Option<i64>,
    pub actor: String,
    pub user_id: Option<i64>,
    pub token_id: Option<i64>,
    pub provider: String,
    pub model: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// Input tokens read from / written to the provider's prompt cache (of `prompt_tokens`).
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub cost_micro_usd: i64,
    pub priced: bool,
    /// The tokens are the gateway's estimate (the upstream never said).
    pub estimated: bool,
    pub latency_ms: i64,
    pub streamed: bool,
    /// `ok` or `error`.
    pub status: &'static str,
    pub error: Option<String>,
    /// The budgets its cost is charged to (in the transaction that writes the row).
    pub charge: Option<crate::budgets::UsageCharge>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UsageEvent {
    pub id: i64,
    pub run_id: Option<i64>,
    pub actor: String,
    pub user_id: Option<i64>,
    pub token_id: Option<i64>,
    pub provider: String,
    pub model: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub cost_micro_usd: i64,
    pub priced: bool,
    pub estimated: bool,
    pub latency_ms: i64,
    pub streamed: bool,
    pub status: String,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The insert of one usage row.
macro_rules! insert_usage_sql {
    () => {
        "INSERT INTO usage_events (org_id, run_id, actor, user_id, token_id, \
     provider, model, prompt_tokens, completion_tokens, cost_micro_usd, priced, latency_ms, \
     streamed, status, error, created_at, estimated, budgets, cache_read_tokens, cache_write_tokens) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)"
    };
}

/// Binds a [`NewUsage`] to a query built on `insert_usage_sql!`.
macro_rules! bind_usage {
    ($query:expr, $u:expr, $now:expr) => {
        $query
            .bind(DEFAULT_ORG)
            .bind($u.run_id)
            .bind(&$u.actor)
            .bind($u.user_id)
            .bind($u.token_id)
            .bind(&$u.provider)
            .bind(&$u.model)
            .bind($u.prompt_tokens)
            .bind($u.completion_tokens)
            .bind($u.cost_micro_usd)
            .bind($u.priced)
            .bind($u.latency_ms)
            .bind($u.streamed)
            .bind($u.status)
            .bind(&$u.error)
            .bind($now)
            .bind($u.estimated)
            .bind($u.charge.as_ref().map(|c| c.column()))
            .bind($u.cache_read_tokens)
            .bind($u.cache_write_tokens)
    };
}

/// Many usage rows in one statement: `$2` is a JSON array of [`usage_json`] objects, `$3` the
/// time of all of them.
const INSERT_MANY_SQLITE: &str = "INSERT INTO usage_events (org_id, run_id, actor, user_id, \
     token_id, provider, model, prompt_tokens, completion_tokens, cost_micro_usd, priced, \
     latency_ms, streamed, status, error, created_at, estimated, budgets, cache_read_tokens, \
     cache_write_tokens) \
     SELECT $1, r.value->>'run_id', r.value->>'actor', r.value->>'user_id', \
     r.value->>'token_id', r.value->>'provider', r.value->>'model', r.value->>'prompt_tokens', \
     r.value->>'completion_tokens', r.value->>'cost_micro_usd', r.value->>'priced', \
     r.value->>'latency_ms', r.value->>'streamed', r.value->>'status', r.value->>'error', $3, \
     r.value->>'estimated', r.value->>'budgets', r.value->>'cache_read_tokens', \
     r.value->>'cache_write_tokens' FROM json_each($2) AS r";

/// [`INSERT_MANY_SQLITE`] on PostgreSQL.
const INSERT_MANY_POSTGRES: &str = "INSERT INTO usage_events (org_id, run_id, actor, user_id, \
     token_id, provider, model, prompt_tokens, completion_tokens, cost_micro_usd, priced, \
     latency_ms, streamed, status, error, created_at, estimated, budgets, cache_read_tokens, \
     cache_write_tokens) \
     SELECT $1, r.run_id, r.actor, r.user_id, r.token_id, r.provider, r.model, r.prompt_tokens, \
     r.completion_tokens, r.cost_micro_usd, r.priced, r.latency_ms, r.streamed, r.status, \
     r.error, $3, r.estimated, r.budgets, r.cache_read_tokens, r.cache_write_tokens \
     FROM jsonb_to_recordset($2) AS r(run_id BIGINT, actor TEXT, user_id BIGINT, \
     token_id BIGINT, provider TEXT, model TEXT, prompt_tokens BIGINT, completion_tokens BIGINT, \
     cost_micro_usd BIGINT, priced BOOLEAN, latency_ms BIGINT, streamed BOOLEAN, status TEXT, \
     error TEXT, estimated BOOLEAN, budgets TEXT, cache_read_tokens BIGINT, \
     cache_write_tokens BIGINT)";

/// One row for [`INSERT_MANY_SQLITE`] / [`INSERT_MANY_POSTGRES`].
fn usage_json(u: &NewUsage) -> serde_json::Value {
    serde_json::json!({
        "run_id": u.run_id, "actor": u.actor, "user_id": u.user_id, "token_id": u.token_id,
        "provider": u.provider, "model": u.model, "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens, "cost_micro_usd": u.cost_micro_usd,
        "priced": u.priced, "latency_ms": u.latency_ms, "streamed": u.streamed,
        "status": u.status, "error": u.error, "estimated": u.estimated,
        "budgets": u.charge.as_ref().map(|c| c.column()),
        "cache_read_tokens": u.cache_read_tokens, "cache_write_tokens": u.cache_write_tokens,
    })
}

impl Store {
    pub async fn record_usage(&self, u: &NewUsage) -> Result<()> {
        self.record_usage_batch(std::slice::from_ref(u)).await
    }

    /// Writes several rows in one transaction (all or none), charging each row's cost to
    /// its budgets in the same transaction (one ledger update per budget and lease).
    pub async fn record_usage_batch(&self, rows: &[NewUsage]) -> Result<()> {
        let charges = crate::budgets::sum_charges(
            rows.iter()
                .filter_map(|u| u.charge.as_ref().map(|c| (c, u.cost_micro_usd))),
        );
        let insert_many = match self.db {
            crate::Db::Sqlite(_) => INSERT_MANY_SQLITE,
            crate::Db::Postgres(_) => INSERT_MANY_POSTGRES,
        };
        let rows_json: Vec<serde_json::Value> = if rows.len() > 1 {
            rows.iter().map(usage_json).collect()
        } else {
            Vec::new()
        };
        let _guard = self.hot_write().await;
        let events = with_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            let now = Utc::now();
            if let [u] = rows {
                bind_usage!(sqlx::query(insert_usage_sql!()), u, now)
                    .execute(&mut *tx)
                    .await?;
            } else if !rows.is_empty() {
                // Many rows: one statement, the rows as one JSON array.
                sqlx::query(insert_many)
                    .bind(DEFAULT_ORG)
                    .bind(sqlx::types::Json(&rows_json))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            let mut events = Vec::new();
            for (key, lease, cost, warn_permille) in &charges {
                crate::budgets::charge_in_tx!(self, tx, key, *lease, *cost, *warn_permille, events);
            }
            tx.commit().await?;
            events
        });
        self.local_notify(&events);
        Ok(())
    }

    /// Usage rows, newest first.
    pub async fn list_usage(&self, page: Page) -> Result<Vec<UsageEvent>> {
        let rows = with_pool!(self, |p| {
            sqlx::query_as(
            "SELECT id, run_id, actor, user_id, token_id, provider, model, prompt_tokens, \
             completion_tokens, cache_read_tokens, cache_write_tokens, cost_micro_usd, priced, estimated, \
             latency_ms, streamed, status, \
             error, created_at FROM usage_events WHERE org_id = $1 AND id < $2 \
             ORDER BY id DESC LIMIT $3"
        )
        .bind(DEFAULT_ORG)
        .bind(page.before_or_max())
        .bind(page.limit)
        .fetch_all(p)
        .await
        })?;
        Ok(rows)
    }
}

/// How to group a usage summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageGroup {
    Provider,
    Model,
    Actor,
    Run,
    Day,
}

/// One group of a usage summary.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UsageTotals {
    pub key: Option<String>,
    pub calls: i64,
    pub errors: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_micro_usd: i64,
    /// Calls to models without a price (counted at 0).
    pub unpriced_calls: i64,
}

impl Store {
    /// Usage totals per group between `from` (inclusive) and `to` (exclusive).
    pub async fn usage_summary(
        &self,
        group: UsageGroup,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<UsageTotals>> {
        let pg = matches!(self.db, crate::Db::Postgres(_));
        let key = match (group, pg) {
            (UsageGroup::Provider, _) => "provider",
            (UsageGroup::Model, _) => "provider || '/' || model",
            (UsageGroup::Actor, _) => "actor",
            (UsageGroup::Run, false) => "CAST(run_id AS TEXT)",
            (UsageGroup::Run, true) => "run_id::text",
            (UsageGroup::Day, false) => "substr(created_at, 1, 10)",
            (UsageGroup::Day, true) => "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
        };
        let unpriced = if pg { "NOT priced" } else { "priced = 0" };
        // Only the grouping expression varies, and it comes from the fixed table above.
        let sql = format!(
            "SELECT {key} AS key, COUNT(*) AS calls, \
             CAST(SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS BIGINT) AS errors, \
             CAST(COALESCE(SUM(prompt_tokens), 0) AS BIGINT) AS prompt_tokens, \
             CAST(COALESCE(SUM(completion_tokens), 0) AS BIGINT) AS completion_tokens, \
             CAST(COALESCE(SUM(cost_micro_usd), 0) AS BIGINT) AS cost_micro_usd, \
             CAST(SUM(CASE WHEN {unpriced} THEN 1 ELSE 0 END) AS BIGINT) AS unpriced_calls \
             FROM usage_events WHERE org_id = $1 AND created_at >= $2 AND created_at < $3 \
             GROUP BY {key} ORDER BY cost_micro_usd DESC, calls DESC"
        );
        let rows = with_pool!(self, |p| sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(DEFAULT_ORG)
            .bind(from)
            .bind(to)
            .fetch_all(p)
            .await)?;
        Ok(rows)
    }

    /// Model calls of run `run_id` and what they cost, in micro-dollars.
    pub async fn run_spend(&self, run_id: i64) -> Result<(i64, i64)> {
        let row: (i64, i64) = with_pool!(self, |p| sqlx::query_as(
            "SELECT CAST(COUNT(*) AS BIGINT), CAST(COALESCE(SUM(cost_micro_usd), 0) AS BIGINT) \
             FROM usage_events WHERE run_id = $1"
        )
        .bind(run_id)
        .fetch_one(p)
        .await)?;
        Ok(row)
    }
}
