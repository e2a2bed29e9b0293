//! The durable job queue: rows in `jobs`, claimed with a lease that the worker renews.
//!
//! A claim takes the oldest due job, or a running one whose lease ran out (its worker died),
//! while attempts remain. PostgreSQL claims with `FOR UPDATE SKIP LOCKED`, so concurrent
//! workers in many processes never take the same row; SQLite's single writer makes the same
//! statement atomic without it. Completed jobs are deleted (the run keeps the history).
//!
//! Claims and completions go through the store's queue pool, whose PostgreSQL sessions run
//! with `synchronous_commit = off`: they commit without waiting for the WAL flush, which
//! halves the fsyncs per job. Losing one to a database crash at worst re-runs a job whose
//! run already ended (the worker then skips it) or leaves a job queued; run state, logs and
//! events are always committed synchronously (ADR 0005).

use chrono::Utc;
use serde_json::Value;
use sqlx::types::Json;

use crate::BeginWrite;
use crate::{Db, Result, Store, notify::Notice, runs::now_ms, with_db, with_pool};

/// A claimed job.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub payload: Json<Value>,
    pub run_id: Option<i64>,
    /// Including this one.
    pub attempts: i64,
    pub max_attempts: i64,
}

/// A job whose last lease expired with no attempt left.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AbandonedJob {
    pub id: i64,
    pub run_id: Option<i64>,
    pub attempts: i64,
}

const CLAIM_SQLITE: &str = "UPDATE jobs SET status = 'running', attempts = attempts + 1, \
     lease_until_ms = $1, worker_id = $2, updated_at = $3 \
     WHERE id = (SELECT id FROM jobs WHERE (status = 'queued' AND run_at_ms <= $4) \
        OR (status = 'running' AND lease_until_ms < $4 AND attempts < max_attempts) \
        ORDER BY run_at_ms, id LIMIT 1) \
     RETURNING id, kind, payload, run_id, attempts, max_attempts";

const CLAIM_PG: &str = "UPDATE jobs SET status = 'running', attempts = attempts + 1, \
     lease_until_ms = $1, worker_id = $2, updated_at = $3 \
     WHERE id = (SELECT id FROM jobs WHERE (status = 'queued' AND run_at_ms <= $4) \
        OR (status = 'running' AND lease_until_ms < $4 AND attempts < max_attempts) \
        ORDER BY run_at_ms, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
     RETURNING id, kind, payload, run_id, attempts, max_attempts";

impl Store {
    /// Enqueues a job with no run (runs enqueue theirs in [`Store::create_run`]).
    pub async fn enqueue_job(&self, kind: &str, payload: Value, max_attempts: i64) -> Result<i64> {
        let now = Utc::now();
        let id: i64 = with_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO jobs (kind, payload, status, max_attempts, run_at_ms, created_at, \
                 updated_at) VALUES ($1, $2, 'queued', $3, $4, $5, $5) RETURNING id",
            )
            .bind(kind)
            .bind(Json(&payload))
            .bind(max_attempts)
            .bind(now.timestamp_millis())
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            crate::notify::notify_in_tx!(self.db, tx, Notice::JobQueued);
            tx.commit().await?;
            id
        });
        self.local_notify(&[Notice::JobQueued]);
        Ok(id)
    }

    /// Claims one due job for `worker_id` with a lease of `lease_ms`.
    pub async fn claim_job(&self, worker_id: &str, lease_ms: i64) -> Result<Option<Job>> {
        let now = now_ms();
        let sql = match self.db {
            Db::Sqlite(_) => CLAIM_SQLITE,
            Db::Postgres(_) => CLAIM_PG,
        };
        let job = with_db!(&self.queue_db, |p| sqlx::query_as(sql)
            .bind(now + lease_ms)
            .bind(worker_id)
            .bind(Utc::now())
            .bind(now)
            .fetch_optional(p)
            .await)?;
        Ok(job)
    }

    /// Extends the lease; `false` when the worker no longer holds the job.
    pub async fn renew_lease(&self, job_id: i64, worker_id: &str, lease_ms: i64) -> Result<bool> {
        let n = with_pool!(self, |p| {
            sqlx::query(
            "UPDATE jobs SET lease_until_ms = $1 WHERE id = $2 AND worker_id = $3 AND status = 'running'"
        )
        .bind(now_ms() + lease_ms)
        .bind(job_id)
        .bind(worker_id)
        .execute(p)
        .await
        .map(|r| r.rows_affected())
        })?;
        Ok(n > 0)
    }

    /// Removes a finished job; `false` when the worker no longer held it.
    pub async fn complete_job(&self, job_id: i64, worker_id: &str) -> Result<bool> {
        let n = with_db!(&self.queue_db, |p| sqlx::query(
            "DELETE FROM jobs WHERE id = $1 AND worker_id = $2 AND status = 'running'"
        )
        .bind(job_id)
        .bind(worker_id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    /// Puts the job back in the queue, due at `run_at_ms`.
    pub async fn retry_job(
        &self,
        job_id: i64,
        worker_id: &str,
        run_at_ms: i64,
        error: &str,
    ) -> Result<bool> {
        let n = with_pool!(self, |p| sqlx::query(
            "UPDATE jobs SET status = 'queued', run_at_ms = $1, last_error = $2, \
             lease_until_ms = NULL, worker_id = NULL, updated_at = $3 \
             WHERE id = $4 AND worker_id = $5 AND status = 'running'"
        )
        .bind(run_at_ms)
        .bind(error)
        .bind(Utc::now())
        .bind(job_id)
        .bind(worker_id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        if n > 0 {
            self.local_notify(&[Notice::JobQueued]);
        }
        Ok(n > 0)
    }

    /// Marks the job failed for good.
    pub async fn fail_job(&self, job_id: i64, worker_id: &str, error: &str) -> Result<bool> {
        let n = with_pool!(self, |p| {
            sqlx::query(
            "UPDATE jobs SET status = 'failed', last_error = $1, lease_until_ms = NULL, updated_at = $2 \
             WHERE id = $3 AND worker_id = $4 AND status = 'running'"
        )
        .bind(error)
        .bind(Utc::now())
        .bind(job_id)
        .bind(worker_id)
        .execute(p)
        .await
        .map(|r| r.rows_affected())
        })?;
        Ok(n > 0)
    }

    /// Parks a claimed job until [`Store::resume_parked`] (its run waits for an approval);
    /// the attempt is not counted.
    pub async fn park_job(&self, job_id: i64, worker_id: &str) -> Result<bool> {
        let n = with_pool!(self, |p| {
            sqlx::query(
            "UPDATE jobs SET status = 'parked', attempts = attempts - 1, lease_until_ms = NULL, \
             worker_id = NULL, updated_at = $1 WHERE id = $2 AND worker_id = $3 AND status = 'running'"
        )
        .bind(Utc::now())
        .bind(job_id)
        .bind(worker_id)
        .execute(p)
        .await
        .map(|r| r.rows_affected())
        })?;
        Ok(n > 0)
    }

    /// Queues the parked job of `run_id` again (an approval it waited for was decided) and
    /// moves the run from `waiting_approval` back to `queued`. False when nothing was parked.
    pub async fn resume_parked(&self, run_id: i64) -> Result<bool> {
        // The run first, so a worker that claims the job finds it queued, not waiting.
        self.transition_run(
            run_id,
            &[vorg_domain::RunStatus::WaitingApproval],
            vorg_domain::RunStatus::Queued,
            None,
            None,
        )
        .await?;
        let n = with_pool!(self, |p| sqlx::query(
            "UPDATE jobs SET status = 'queued', run_at_ms = $1, updated_at = $2 \
             WHERE run_id = $3 AND status = 'parked'"
        )
        .bind(now_ms())
        .bind(Utc::now())
        .bind(run_id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        if n == 0 {
            return Ok(false);
        }
        self.local_notify(&[Notice::JobQueued]);
        Ok(true)
    }

    /// Gives a claimed job back untouched (graceful shutdown): due now, attempt not counted.
    pub async fn release_job(&self, job_id: i64, worker_id: &str) -> Result<bool> {
        let n = with_pool!(self, |p| sqlx::query(
            "UPDATE jobs SET status = 'queued', attempts = attempts - 1, run_at_ms = $1, \
             lease_until_ms = NULL, worker_id = NULL, updated_at = $2 \
             WHERE id = $3 AND worker_id = $4 AND status = 'running'"
        )
        .bind(now_ms())
        .bind(Utc::now())
        .bind(job_id)
        .bind(worker_id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        if n > 0 {
            self.local_notify(&[Notice::JobQueued]);
        }
        Ok(n > 0)
    }

    /// Fails running jobs whose lease expired with no attempt left, and returns them.
    pub async fn fail_abandoned_jobs(&self) -> Result<Vec<AbandonedJob>> {
        let jobs = with_pool!(self, |p| sqlx::query_as(
            "UPDATE jobs SET status = 'failed', updated_at = $1, \
             last_error = 'its worker stopped renewing the lease (process killed or disconnected)' \
             WHERE status = 'running' AND lease_until_ms < $2 AND attempts >= max_attempts \
             RETURNING id, run_id, attempts"
        )
        .bind(Utc::now())
        .bind(now_ms())
        .fetch_all(p)
        .await)?;
        Ok(jobs)
    }

    /// Jobs per status (for tests, benchmarks and `/metrics`).
    pub async fn job_counts(&self) -> Result<Vec<(String, i64)>> {
        let rows = with_pool!(self, |p| sqlx::query_as(
            "SELECT status, COUNT(*) FROM jobs GROUP BY status ORDER BY status"
        )
        .fetch_all(p)
        .await)?;
        Ok(rows)
    }
}
