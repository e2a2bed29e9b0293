//! How a claimed job ends: its row, its run's status, the run's log line and the org event,
//! all in one transaction. Either everything a worker decided about an attempt is committed,
//! or nothing is and the worker can try again (or let the lease run out, after which another
//! worker takes the job).

use serde_json::{Value, json};
use vorg_domain::{LogLevel, RunStatus};

use chrono::Utc;
use sqlx::types::Json;

use crate::BeginWrite;
use crate::{
    Db, Job, Result, Store,
    events::insert_event,
    notify::Notice,
    runs::{
        Run, RunLog, insert_log, log_columns, now_ms, run_columns, run_lock_key, transition_in_tx,
    },
    with_pool,
};

const LIVE: [RunStatus; 2] = [RunStatus::Queued, RunStatus::Running];

/// The end of one attempt, as the worker decided it.
#[derive(Debug, Clone)]
pub enum JobEnd<'a> {
    /// The handler returned its output: the run succeeds and the job row is removed.
    Succeeded(Value),
    /// Cancelled on request: the run ends `cancelled` with this reason; the row is removed.
    Cancelled(&'a str),
    /// A failure for good: the run fails with this error; the row stays, `failed`.
    Failed(&'a str),
    /// Another attempt later: the job is due again at `due_ms`, the run goes back to
    /// `queued` with an error line saying when it retries.
    Retry {
        error: &'a str,
        due_ms: i64,
        retry_in_ms: u64,
    },
    /// The worker stopped (shutdown): the job is queued again now without counting the
    /// attempt, and the run goes back to `queued`.
    Release,
    /// The run waits for an approval: the job is parked (the attempt not counted) and the
    /// run is `waiting_approval` until the decision resumes it.
    Park { approval_id: i64 },
    /// Nothing left to do for the run (it had already ended, or is gone): the row is removed.
    Discard,
}

impl JobEnd<'_> {
    /// The job row's change: SQL guarded by the claiming worker (`$1` job id, `$2` worker;
    /// an update's `$3` is now, then its own values, bound in [`Store::finish_job`]).
    fn job_sql(&self) -> &'static str {
        match self {
            JobEnd::Succeeded(_) | JobEnd::Cancelled(_) | JobEnd::Discard => {
                "DELETE FROM jobs WHERE id = $1 AND worker_id = $2 AND status = 'running'"
            }
            JobEnd::Failed(_) => {
                "UPDATE jobs SET status = 'failed', last_error = $4, lease_until_ms = NULL, \
                 updated_at = $3 WHERE id = $1 AND worker_id = $2 AND status = 'running'"
            }
            JobEnd::Retry { .. } => {
                "UPDATE jobs SET status = 'queued', run_at_ms = $4, last_error = $5, \
                 lease_until_ms = NULL, worker_id = NULL, updated_at = $3 \
                 WHERE id = $1 AND worker_id = $2 AND status = 'running'"
            }
            JobEnd::Release => {
                "UPDATE jobs SET status = 'queued', attempts = attempts - 1, run_at_ms = $4, \
                 lease_until_ms = NULL, worker_id = NULL, updated_at = $3 \
                 WHERE id = $1 AND worker_id = $2 AND status = 'running'"
            }
            JobEnd::Park { .. } => {
                "UPDATE jobs SET status = 'parked', attempts = attempts - 1, \
                 lease_until_ms = NULL, worker_id = NULL, updated_at = $3 \
                 WHERE id = $1 AND worker_id = $2 AND status = 'running'"
            }
        }
    }

    /// The run's move: from, to, output, error.
    #[allow(clippy::type_complexity)]
    fn transition(
        &self,
    ) -> Option<(
        &'static [RunStatus],
        RunStatus,
        Option<&Value>,
        Option<&str>,
    )> {
        match self {
            JobEnd::Succeeded(output) => Some((&LIVE, RunStatus::Succeeded, Some(output), None)),
            JobEnd::Cancelled(reason) => Some((&LIVE, RunStatus::Cancelled, None, Some(reason))),
            JobEnd::Failed(error) => Some((&LIVE, RunStatus::Failed, None, Some(error))),
            JobEnd::Retry { .. } | JobEnd::Release => {
                Some((&[RunStatus::Running], RunStatus::Queued, None, None))
            }
            JobEnd::Park { .. } => Some((
                &[RunStatus::Running],
                RunStatus::WaitingApproval,
                None,
                None,
            )),
            JobEnd::Discard => None,
        }
    }

    /// The log line written beside the move (level, message, fields), if any.
    fn log_line(&self, job: &Job, worker_id: &str) -> Option<(LogLevel, String, Value)> {
        match self {
            JobEnd::Retry {
                error, retry_in_ms, ..
            } => Some((
                LogLevel::Error,
                format!(
                    "attempt {} failed: {error}; retrying in {:.1} s",
                    job.attempts,
                    *retry_in_ms as f64 / 1000.0
                ),
                json!({ "error": error, "attempt": job.attempts, "retry_in_ms": retry_in_ms }),
            )),
            JobEnd::Release => Some((
                LogLevel::Warn,
                format!("worker {worker_id} shut down; the run will resume on the next worker"),
                Value::Null,
            )),
            JobEnd::Park { approval_id } => Some((
                LogLevel::Info,
                format!("waiting for approval {approval_id}; the decision resumes the run"),
                json!({ "approval_id": approval_id }),
            )),
            _ => None,
        }
    }
}

impl Store {
    /// Ends the attempt `job` held by `worker_id` as `end` says, in one transaction: the job
    /// row, the run's status (only from the statuses the end allows; a run someone else has
    /// already moved keeps its status), the run's log line and the org event. `false` (and
    /// nothing changed) when the worker no longer holds the job: its lease was lost.
    pub async fn finish_job(&self, job: &Job, worker_id: &str, end: JobEnd<'_>) -> Result<bool> {
        let queued_again = matches!(end, JobEnd::Retry { .. } | JobEnd::Release);
        let notices: Option<Vec<Notice>> = with_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            let query = sqlx::query(end.job_sql()).bind(job.id).bind(worker_id);
            let now = Utc::now();
            let query = match &end {
                JobEnd::Succeeded(_) | JobEnd::Cancelled(_) | JobEnd::Discard => query,
                JobEnd::Failed(error) => query.bind(now).bind(*error),
                JobEnd::Retry { error, due_ms, .. } => query.bind(now).bind(*due_ms).bind(*error),
                JobEnd::Release => query.bind(now).bind(now_ms()),
                JobEnd::Park { .. } => query.bind(now),
            };
            let held = query.execute(&mut *tx).await?.rows_affected() > 0;
            if !held {
                None
            } else {
                let mut notices = Vec::new();
                if let Some(run_id) = job.run_id {
                    if let Some((level, message, fields)) = end.log_line(job, worker_id) {
                        let row = insert_log!(self.db, tx, run_id, "log", level, &message, &fields);
                        notices.push(Notice::RunLog { run_id, id: row.id });
                    }
                    if let Some((from, to, output, error)) = end.transition() {
                        let moved: Option<(Run, i64, i64)> =
                            transition_in_tx!(self.db, tx, run_id, from, to, output, error);
                        if let Some((_, log_id, event_id)) = moved {
                            notices.push(Notice::RunLog { run_id, id: log_id });
                            notices.push(Notice::Event { id: event_id });
                        }
                    }
                }
                if queued_again {
                    crate::notify::notify_in_tx!(self.db, tx, Notice::JobQueued);
                    notices.push(Notice::JobQueued);
                }
                tx.commit().await?;
                Some(notices)
            }
        });
        match notices {
            Some(notices) => {
                self.local_notify(&notices);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}
