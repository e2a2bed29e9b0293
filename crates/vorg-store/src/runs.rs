//! Runs and their logs. A run's log is its event stream: `log` lines and `status` changes,
//! ordered by id. On PostgreSQL, writers of one run's log take a transaction-scoped advisory
//! lock, so ids commit in order and a reader resuming "after id N" never skips a row.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use vorg_domain::{LogLevel, RunStatus};

use crate::BeginWrite;
use crate::{
    DEFAULT_ORG, Db, Page, Result, Store, StoreError, events::insert_event, notify::Notice,
    with_pool,
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Run {
    pub id: i64,
    pub run_type: String,
    /// A row whose status this version does not know is an error when read, not a guess.
    #[sqlx(try_from = "String")]
    pub status: RunStatus,
    pub summary: Option<String>,
    pub input: Json<Value>,
    pub output: Option<Json<Value>>,
    pub error: Option<String>,
    pub requested_by: Option<i64>,
    pub attempts: i64,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub cancel_requested_at: Option<DateTime<Utc>>,
    /// `schedule` or `trigger` when one started the run.
    pub origin_kind: Option<String>,
    pub origin_id: Option<i64>,
    /// How many event-started runs led to this one (0: started by a person or a clock).
    pub trigger_depth: i64,
}

impl Run {
    pub fn status(&self) -> RunStatus {
        self.status
    }
}

/// One line of a run's stream.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RunLog {
    pub id: i64,
    pub run_id: i64,
    pub timestamp: DateTime<Utc>,
    /// `log` or `status`.
    pub kind: String,
    #[sqlx(try_from = "String")]
    pub level: LogLevel,
    pub message: String,
    pub fields: Json<Value>,
}

/// Filters for listing runs.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub status: Option<RunStatus>,
    pub run_type: Option<String>,
    pub requested_by: Option<i64>,
    /// Created at or after this instant.
    pub created_from: Option<DateTime<Utc>>,
    /// Created before this instant.
    pub created_to: Option<DateTime<Utc>>,
}

/// A new run and the job that executes it.
pub struct NewRun<'a> {
    pub run_type: &'a str,
    pub summary: Option<&'a str>,
    pub input: Value,
    pub requested_by: Option<i64>,
    pub job_kind: &'a str,
    pub max_attempts: i64,
    /// When a job of the same kind with an equal payload is still queued, answer its run
    /// instead of queueing another.
    pub deduplicated: bool,
    /// What started the run when no one asked for it by a route (a schedule slot, a hook
    /// delivery, an org event). Its key is unique: a second start answers the first run.
    pub origin: Option<RunOrigin<'a>>,
}

/// Where a run came from: `kind` (`schedule`, `trigger`), the id of the schedule or
/// trigger, a key unique over all runs (`schedule:7:2026-12-05T09:00:00Z`), and how many
/// event-started runs led to it (loop protection).
#[derive(Debug, Clone, Copy)]
pub struct RunOrigin<'a> {
    pub kind: &'a str,
    pub id: i64,
    pub key: &'a str,
    pub depth: i64,
}

macro_rules! run_columns {
    () => {
        "id, run_type, status, summary, input, output, error, requested_by, attempts, \
         created_at, started_at, completed_at, cancel_requested_at, origin_kind, origin_id, \
         trigger_depth"
    };
}

macro_rules! log_columns {
    () => {
        "id, run_id, timestamp, kind, level, message, fields"
    };
}
pub(crate) use {log_columns, run_columns};

/// Advisory-lock key serialising deduplicated enqueues (even, like the other global keys:
/// events 2, policies 4, personas 6, workflows 8).
const DEDUP_LOCK_KEY: i64 = 10;

/// Advisory-lock key of a run's log (odd numbers; the org event log uses 2).
pub(crate) fn run_lock_key(run_id: i64) -> i64 {
    run_id.wrapping_mul(2).wrapping_add(1)
}

pub(crate) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Inserts a stream row inside the transaction `$tx` (serialised per run on PostgreSQL, with
/// its `pg_notify`) and evaluates to the row. A macro so it compiles for either pool's
/// transaction type inside `with_pool!`.
macro_rules! insert_log {
    ($db:expr, $tx:expr, $run_id:expr, $kind:expr, $level:expr, $message:expr, $fields:expr) => {{
        let pg = matches!($db, Db::Postgres(_));
        if pg {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(run_lock_key($run_id))
                .execute(&mut *$tx)
                .await?;
        }
        let row: RunLog = sqlx::query_as(concat!(
            "INSERT INTO run_logs (run_id, timestamp, kind, level, message, fields) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING ",
            log_columns!()
        ))
        .bind($run_id)
        .bind(Utc::now())
        .bind($kind)
        .bind(LogLevel::as_str($level))
        .bind($message)
        .bind(Json($fields))
        .fetch_one(&mut *$tx)
        .await?;
        if pg {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(crate::notify::CHANNEL)
                .bind(
                    Notice::RunLog {
                        run_id: $run_id,
                        id: row.id,
                    }
                    .encode(),
                )
                .execute(&mut *$tx)
                .await?;
        }
        row
    }};
}

pub(crate) use insert_log;

/// Moves run `$run_id` from one of `$from` (at most three statuses) to `$to` inside the
/// transaction `$tx`, recording output or error, start and end times, with a `status` row in
/// its stream and an org `run.status` event. Evaluates to `Some((run, log id, event id))`, or
/// `None` when the run was not in one of `$from`. A macro for the same reason as
/// `insert_log!`.
macro_rules! transition_in_tx {
    ($db:expr, $tx:expr, $run_id:expr, $from:expr, $to:expr, $output:expr, $error:expr) => {{
        let to: RunStatus = $to;
        let run_id: i64 = $run_id;
        let error: Option<&str> = $error;
        let from: &[RunStatus] = $from;
        let status = |i: usize| from.get(i).map(|s| s.as_str()).unwrap_or("");
        let run: Option<Run> = sqlx::query_as(concat!(
            "UPDATE runs SET status = $1, \
             output = COALESCE($2, output), error = COALESCE($3, error), \
             started_at = CASE WHEN $1 = 'running' AND started_at IS NULL THEN $4 ELSE started_at END, \
             completed_at = CASE WHEN $1 IN ('succeeded', 'failed', 'cancelled') THEN $4 ELSE completed_at END, \
             attempts = CASE WHEN $1 = 'running' THEN attempts + 1 ELSE attempts END \
             WHERE id = $5 AND status IN ($6, $7, $8) RETURNING ",
            run_columns!()
        ))
        .bind(to.as_str())
        .bind($output.map(Json))
        .bind(error)
        .bind(Utc::now())
        .bind(run_id)
        .bind(status(0))
        .bind(status(1))
        .bind(status(2))
        .fetch_optional(&mut *$tx)
        .await?;
        match run {
            None => None,
            Some(run) => {
                let fields = serde_json::json!({ "status": to, "error": error });
                let msg = format!("status: {to}");
                let level = if to == RunStatus::Failed {
                    LogLevel::Error
                } else {
                    LogLevel::Info
                };
                let row = insert_log!($db, $tx, run_id, "status", level, &msg, &fields);
                let data = serde_json::json!({
                    "run_id": run_id, "status": to, "run_type": run.run_type, "error": error,
                });
                let event = insert_event!($db, $tx, "run.status", Some(run_id), &data);
                Some((run, row.id, event.id))
            }
        }
    }};
}
pub(crate) use transition_in_tx;

impl Store {
    /// Creates a queued run and its job in one transaction.
    pub async fn create_run(&self, new: NewRun<'_>) -> Result<Run> {
        Ok(self.create_run_once(new).await?.0)
    }

    /// Creates the run and its job, unless a run with the same origin key exists: then
    /// answers that one, and `false`. The key's unique index is the claim, so concurrent
    /// starters in any number of processes create one run.
    pub async fn create_run_once(&self, new: NewRun<'_>) -> Result<(Run, bool)> {
        let now = Utc::now();
        let run = with_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            if new.deduplicated {
                if matches!(self.db, Db::Postgres(_)) {
                    // Serialises deduplicated enqueues, so two never both find nothing.
                    sqlx::query("SELECT pg_advisory_xact_lock($1)")
                        .bind(DEDUP_LOCK_KEY)
                        .execute(&mut *tx)
                        .await?;
                }
                let queued: Option<Run> = sqlx::query_as(concat!(
                    "SELECT ",
                    run_columns!(),
                    " FROM runs WHERE id = (SELECT run_id FROM jobs WHERE kind = $1 \
                     AND status = 'queued' AND payload = $2 AND run_id IS NOT NULL \
                     ORDER BY id LIMIT 1)"
                ))
                .bind(new.job_kind)
                .bind(Json(&new.input))
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(run) = queued {
                    tx.commit().await?;
                    return Ok((run, false));
                }
            }
            let origin = new.origin;
            let inserted: Option<Run> = sqlx::query_as(concat!(
                "INSERT INTO runs (org_id, run_type, status, summary, input, requested_by, \
                 created_at, origin_kind, origin_id, origin_key, trigger_depth) \
                 VALUES ($1, $2, 'queued', $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (origin_key) DO NOTHING RETURNING ",
                run_columns!()
            ))
            .bind(DEFAULT_ORG)
            .bind(new.run_type)
            .bind(new.summary)
            .bind(Json(&new.input))
            .bind(new.requested_by)
            .bind(now)
            .bind(origin.map(|o| o.kind))
            .bind(origin.map(|o| o.id))
            .bind(origin.map(|o| o.key))
            .bind(origin.map_or(0, |o| o.depth))
            .fetch_optional(&mut *tx)
            .await?;
            let Some(run) = inserted else {
                // The origin key was taken: that run is the answer.
                let first: Run = sqlx::query_as(concat!(
                    "SELECT ",
                    run_columns!(),
                    " FROM runs WHERE origin_key = $1"
                ))
                .bind(origin.map(|o| o.key))
                .fetch_one(&mut *tx)
                .await?;
                tx.commit().await?;
                return Ok((first, false));
            };
            sqlx::query(
                "INSERT INTO jobs (kind, payload, run_id, status, max_attempts, run_at_ms, \
                 created_at, updated_at) VALUES ($1, $2, $3, 'queued', $4, $5, $6, $6)",
            )
            .bind(new.job_kind)
            .bind(Json(&new.input))
            .bind(run.id)
            .bind(new.max_attempts)
            .bind(now.timestamp_millis())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let data = serde_json::json!({
                "run_id": run.id, "status": "queued", "run_type": run.run_type,
            });
            let event = insert_event!(self.db, tx, "run.status", Some(run.id), &data);
            crate::notify::notify_in_tx!(self.db, tx, Notice::JobQueued);
            tx.commit().await?;
            (run, event.id)
        });
        let (run, event_id) = run;
        self.local_notify(&[Notice::Event { id: event_id }, Notice::JobQueued]);
        Ok((run, true))
    }

    pub async fn get_run(&self, id: i64) -> Result<Run> {
        let run = with_pool!(self, |p| sqlx::query_as(concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs WHERE id = $1 AND org_id = $2"
        ))
        .bind(id)
        .bind(DEFAULT_ORG)
        .fetch_one(p)
        .await)?;
        Ok(run)
    }

    /// Who requested run `id` (`None`: the system); `NotFound` when there is no such run.
    /// Read once per run and kept (a run's requester never changes): the gateway asks this
    /// of every call attributed to a run.
    pub async fn run_owner(&self, id: i64) -> Result<Option<i64>> {
        if let Some(owner) = self.run_owners.get(&id) {
            return Ok(owner);
        }
        let generation = self.run_owners.generation();
        let owner: Option<i64> = with_pool!(self, |p| sqlx::query_scalar(
            "SELECT requested_by FROM runs WHERE id = $1 AND org_id = $2"
        )
        .bind(id)
        .bind(DEFAULT_ORG)
        .fetch_one(p)
        .await)?;
        self.run_owners.put(&id, owner, generation);
        Ok(owner)
    }

    /// Runs, newest first, filtered.
    pub async fn list_runs(&self, filter: &RunFilter, page: Page) -> Result<Vec<Run>> {
        let runs = with_pool!(self, |p| sqlx::query_as(concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs WHERE org_id = $1 AND id < $2 \
             AND ($3 = '' OR status = $3) AND ($4 = '' OR run_type = $4) \
             AND ($5 = 0 OR requested_by = $5) \
             AND ($7 IS NULL OR created_at >= $7) AND ($8 IS NULL OR created_at < $8) \
             ORDER BY id DESC LIMIT $6"
        ))
        .bind(DEFAULT_ORG)
        .bind(page.before_or_max())
        .bind(filter.status.map(|s| s.as_str()).unwrap_or(""))
        .bind(filter.run_type.as_deref().unwrap_or(""))
        .bind(filter.requested_by.unwrap_or(0))
        .bind(page.limit)
        .bind(filter.created_from)
        .bind(filter.created_to)
        .fetch_all(p)
        .await)?;
        Ok(runs)
    }

    /// The run's stream rows after `after` (exclusive), oldest first.
    pub async fn run_logs(&self, run_id: i64, after: i64, limit: i64) -> Result<Vec<RunLog>> {
        let rows = with_pool!(self, |p| sqlx::query_as(concat!(
            "SELECT ",
            log_columns!(),
            " FROM run_logs WHERE run_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        ))
        .bind(run_id)
        .bind(after)
        .bind(limit)
        .fetch_all(p)
        .await)?;
        Ok(rows)
    }

    /// Appends a `log` line to the run's stream.
    pub async fn append_run_log(
        &self,
        run_id: i64,
        level: LogLevel,
        message: &str,
        fields: Value,
    ) -> Result<RunLog> {
        self.append_stream(run_id, "log", level, message, fields)
            .await
    }

    async fn append_stream(
        &self,
        run_id: i64,
        kind: &str,
        level: LogLevel,
        message: &str,
        fields: Value,
    ) -> Result<RunLog> {
        let row: RunLog = with_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            let row = insert_log!(self.db, tx, run_id, kind, level, message, &fields);
            tx.commit().await?;
            row
        });
        self.local_notify(&[Notice::RunLog { run_id, id: row.id }]);
        Ok(row)
    }

    /// Moves a run from one of `from` to `to` (recording output or error, start and end
    /// times), appends a `status` row to its stream and an org `run.status` event. `None`
    /// when the run was not in one of `from` (someone else moved it first).
    pub async fn transition_run(
        &self,
        run_id: i64,
        from: &[RunStatus],
        to: RunStatus,
        output: Option<Value>,
        error: Option<&str>,
    ) -> Result<Option<Run>> {
        let result = with_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            let moved = transition_in_tx!(self.db, tx, run_id, from, to, output.as_ref(), error);
            if moved.is_some() {
                tx.commit().await?;
            }
            moved
        });
        let Some((run, log_id, event_id)) = result else {
            return Ok(None);
        };
        self.local_notify(&[
            Notice::RunLog { run_id, id: log_id },
            Notice::Event { id: event_id },
        ]);
        Ok(Some(run))
    }

    /// Marks the run for cancellation: a queued run is cancelled at once (its job removed);
    /// a running one stops at its next step boundary. `NotFound` for an unknown run,
    /// `Rule` for one that has already ended.
    pub async fn request_cancel(&self, run_id: i64) -> Result<Run> {
        let run = self.get_run(run_id).await?;
        if run.status().is_terminal() {
            return Err(StoreError::Rule("the run has already ended"));
        }
        with_pool!(self, |p| sqlx::query(
            "UPDATE runs SET cancel_requested_at = COALESCE(cancel_requested_at, $1) WHERE id = $2"
        )
        .bind(Utc::now())
        .bind(run_id)
        .execute(p)
        .await
        .map(|_| ()))?;
        let cancelled = self
            .transition_run(
                run_id,
                &[RunStatus::Queued],
                RunStatus::Cancelled,
                None,
                Some("cancelled before it started"),
            )
            .await?;
        if cancelled.is_some() {
            with_pool!(self, |p| sqlx::query(
                "DELETE FROM jobs WHERE run_id = $1 AND status = 'queued'"
            )
            .bind(run_id)
            .execute(p)
            .await
            .map(|_| ()))?;
        }
        self.get_run(run_id).await
    }

    /// Whether cancellation was requested for the run.
    pub async fn cancel_requested(&self, run_id: i64) -> Result<bool> {
        let at: Option<DateTime<Utc>> = with_pool!(self, |p| sqlx::query_scalar(
            "SELECT cancel_requested_at FROM runs WHERE id = $1"
        )
        .bind(run_id)
        .fetch_one(p)
        .await)?;
        Ok(at.is_some())
    }
}
