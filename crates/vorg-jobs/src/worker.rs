//! The worker: claims jobs, executes them with bounded concurrency, keeps their leases,
//! retries with backoff, fails runs whose workers were lost, and shuts down gracefully.

use std::{sync::Arc, time::Duration};
use tracing::Instrument;

use rand::Rng;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, broadcast::error::RecvError};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use vorg_domain::RunStatus;
use vorg_store::{Job, Notice, Store, StoreError};

use crate::{JobContext, JobError, Registry};

/// How a worker behaves.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Unique among live workers; shown in the jobs table.
    pub worker_id: String,
    /// Jobs executed at once.
    pub concurrency: usize,
    /// How long a claim lasts without renewal; renewed every third of it. A killed worker's
    /// jobs are picked up again after at most this long.
    pub lease: Duration,
    /// How often to look for due jobs when no notice arrives (retries with a delay).
    pub poll: Duration,
    /// On shutdown, how long running jobs may take to finish before they are released.
    pub shutdown_grace: Duration,
    /// First retry delay; doubles per attempt (with jitter), capped at 5 minutes.
    pub retry_base: Duration,
}

impl WorkerConfig {
    pub fn new(concurrency: usize) -> Self {
        WorkerConfig {
            worker_id: default_worker_id(),
            concurrency: concurrency.max(1),
            lease: Duration::from_secs(30),
            poll: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(10),
            retry_base: Duration::from_secs(2),
        }
    }
}

/// `host:pid:random`, so two workers never share an id.
pub fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "host".to_owned());
    let tag: u32 = rand::rng().random_range(0..0xFFFF);
    format!("{host}:{}:{tag:04x}", std::process::id())
}

/// A pool of job executors sharing one claim loop.
pub struct Worker {
    store: Store,
    registry: Registry,
    config: WorkerConfig,
}

impl Worker {
    pub fn new(store: Store, registry: Registry, config: WorkerConfig) -> Self {
        Worker {
            store,
            registry,
            config,
        }
    }

    /// Runs the worker on `tracker` until `shutdown`.
    pub fn spawn(self, tracker: &TaskTracker, shutdown: CancellationToken) {
        tracker.spawn(self.run(shutdown));
    }

    /// Claims and executes jobs until `shutdown`; then waits up to the grace period for
    /// running jobs and releases the rest.
    pub async fn run(self, shutdown: CancellationToken) {
        let cfg = Arc::new(self.config);
        tracing::info!(worker = %cfg.worker_id, concurrency = cfg.concurrency, "worker started");
        let permits = Arc::new(Semaphore::new(cfg.concurrency));
        let hard_stop = CancellationToken::new();
        let running = TaskTracker::new();
        let mut notices = self.store.subscribe();
        let mut last_reap: Option<tokio::time::Instant> = None;
        let lease_ms = i64::try_from(cfg.lease.as_millis()).unwrap_or(i64::MAX);
        loop {
            if last_reap.is_none_or(|t| t.elapsed() >= cfg.lease / 2) {
                reap(&self.store).await;
                last_reap = Some(tokio::time::Instant::now());
            }
            let permit = tokio::select! {
                p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                _ = shutdown.cancelled() => break,
            };
            match self.store.claim_job(&cfg.worker_id, lease_ms).await {
                Ok(Some(job)) => {
                    let (store, registry, cfg) =
                        (self.store.clone(), self.registry.clone(), cfg.clone());
                    let stop = hard_stop.child_token();
                    let inner = running.clone();
                    running.spawn(async move {
                        execute(store, registry, cfg, job, stop, &inner).await;
                        drop(permit);
                    });
                }
                Ok(None) => {
                    drop(permit);
                    tokio::select! {
                        _ = wait_for_job(&mut notices) => {}
                        _ = tokio::time::sleep(cfg.poll) => {}
                        _ = shutdown.cancelled() => break,
                    }
                }
                Err(e) => {
                    drop(permit);
                    tracing::warn!(error = %e, "claiming a job failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(cfg.poll) => {}
                        _ = shutdown.cancelled() => break,
                    }
                }
            }
        }
        running.close();
        if tokio::time::timeout(cfg.shutdown_grace, running.wait())
            .await
            .is_err()
        {
            tracing::info!("grace period over: releasing the jobs still running");
            hard_stop.cancel();
            running.wait().await;
        }
        tracing::info!(worker = %cfg.worker_id, "worker stopped");
    }
}

async fn wait_for_job(notices: &mut tokio::sync::broadcast::Receiver<Notice>) {
    loop {
        match notices.recv().await {
            Ok(Notice::JobQueued | Notice::Resync) | Err(RecvError::Lagged(_)) => return,
            Ok(_) => {}
            Err(RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}

/// Fails the runs of jobs whose workers vanished with no attempt left.
async fn reap(store: &Store) {
    match store.fail_abandoned_jobs().await {
        Ok(jobs) => {
            for job in jobs {
                let Some(run_id) = job.run_id else { continue };
                let error = format!(
                    "the worker executing this run was lost (its lease expired) and no attempt \
                     is left ({} made)",
                    job.attempts
                );
                tracing::warn!(run_id, "{error}");
                let _ = store
                    .transition_run(
                        run_id,
                        &[RunStatus::Queued, RunStatus::Running],
                        RunStatus::Failed,
                        None,
                        Some(&error),
                    )
                    .await;
            }
        }
        Err(e) => tracing::warn!(error = %e, "failing abandoned jobs"),
    }
}

fn backoff(cfg: &WorkerConfig, attempts: i64) -> Duration {
    let exp = u32::try_from(attempts.clamp(1, 16) - 1).unwrap_or(0);
    let base = cfg.retry_base.saturating_mul(2u32.saturating_pow(exp));
    let capped = base.min(Duration::from_secs(300));
    let jitter = rand::rng().random_range(0.75..1.25);
    capped.mul_f64(jitter)
}

const LIVE: [RunStatus; 2] = [RunStatus::Queued, RunStatus::Running];

/// Executes one claimed job to an end: success, cancellation, retry, failure or release.
/// Everything it and the job's handler log is inside the job's span.
async fn execute(
    store: Store,
    registry: Registry,
    cfg: Arc<WorkerConfig>,
    job: Job,
    stop: CancellationToken,
    tasks: &TaskTracker,
) {
    let span = tracing::info_span!("job", job_id = job.id, kind = %job.kind, run_id = job.run_id, attempt = job.attempts);
    execute_in_span(store, registry, cfg, job, stop, tasks, span.clone())
        .instrument(span)
        .await;
}

async fn execute_in_span(
    store: Store,
    registry: Registry,
    cfg: Arc<WorkerConfig>,
    job: Job,
    stop: CancellationToken,
    tasks: &TaskTracker,
    span: tracing::Span,
) {
    let worker = cfg.worker_id.as_str();
    let run_id = job.run_id;
    if let Some(run_id) = run_id {
        match store.get_run(run_id).await {
            Ok(run) if run.status().is_terminal() => {
                let _ = store.complete_job(job.id, worker).await;
                return;
            }
            Ok(run) if run.cancel_requested_at.is_some() => {
                let _ = store
                    .transition_run(
                        run_id,
                        &LIVE,
                        RunStatus::Cancelled,
                        None,
                        Some("cancelled by request"),
                    )
                    .await;
                let _ = store.complete_job(job.id, worker).await;
                return;
            }
            Ok(_) => {}
            Err(StoreError::NotFound) => {
                let _ = store.complete_job(job.id, worker).await;
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the run; releasing the job");
                let _ = store.release_job(job.id, worker).await;
                return;
            }
        }
        let _ = store
            .transition_run(run_id, &LIVE, RunStatus::Running, None, None)
            .await;
        if job.attempts > 1 {
            let _ = store
                .append_run_log(
                    run_id,
                    "warn",
                    &format!("attempt {} of {} (on worker {worker})", job.attempts, job.max_attempts),
                    json!({ "attempt": job.attempts, "max_attempts": job.max_attempts, "worker": worker }),
                )
                .await;
        }
    }

    let Some(handler) = registry.get(&job.kind) else {
        let error = format!("no handler for job kind {:?} on this worker", job.kind);
        finish_failed(&store, worker, &job, &error).await;
        return;
    };

    let lease_lost = CancellationToken::new();
    let ctx = JobContext {
        store: store.clone(),
        job: job.clone(),
        worker_id: worker.to_owned(),
        stop: stop.clone(),
        cancel_checked: std::sync::Mutex::new(None),
    };
    let handle = tasks.spawn(async move { handler.run(&ctx).await }.instrument(span));
    let heartbeat = async {
        let lease_ms = i64::try_from(cfg.lease.as_millis()).unwrap_or(i64::MAX);
        loop {
            tokio::time::sleep(cfg.lease / 3).await;
            match store.renew_lease(job.id, worker, lease_ms).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!("lost the lease to another worker; stopping this attempt");
                    lease_lost.cancel();
                    stop.cancel();
                    std::future::pending::<()>().await;
                }
                Err(e) => tracing::warn!(error = %e, "renewing a lease failed; retrying"),
            }
        }
    };
    let outcome = tokio::select! {
        joined = handle => joined,
        // The heartbeat never completes; if it did, the lease would simply run out.
        _ = heartbeat => return,
    };

    let outcome = match outcome {
        Ok(result) => result,
        Err(e) if e.is_panic() => Err(JobError::Fatal("the job panicked".to_owned())),
        Err(e) => Err(JobError::Fatal(format!("the job task failed: {e}"))),
    };
    match outcome {
        Ok(output) => {
            if let Some(run_id) = run_id {
                let _ = store
                    .transition_run(run_id, &LIVE, RunStatus::Succeeded, Some(output), None)
                    .await;
            }
            let _ = store.complete_job(job.id, worker).await;
        }
        Err(JobError::Cancelled) => {
            if let Some(run_id) = run_id {
                let _ = store
                    .transition_run(
                        run_id,
                        &LIVE,
                        RunStatus::Cancelled,
                        None,
                        Some("cancelled by request"),
                    )
                    .await;
            }
            let _ = store.complete_job(job.id, worker).await;
        }
        Err(JobError::WaitingApproval(approval_id)) => {
            let parked = store.park_job(job.id, worker).await.unwrap_or(false);
            if let (true, Some(run_id)) = (parked, run_id) {
                let _ = store
                    .transition_run(
                        run_id,
                        &[RunStatus::Running],
                        RunStatus::WaitingApproval,
                        None,
                        None,
                    )
                    .await;
                let _ = store
                    .append_run_log(
                        run_id,
                        "info",
                        &format!(
                            "waiting for approval {approval_id}; the decision resumes the run"
                        ),
                        json!({ "approval_id": approval_id }),
                    )
                    .await;
                // Decided while we were parking (the decision found nothing parked yet):
                // resume now.
                if let Ok(a) = store.get_approval(approval_id).await
                    && a.status != vorg_domain::ApprovalStatus::Pending
                {
                    let _ = store.resume_parked(run_id).await;
                }
            }
        }
        Err(JobError::Interrupted) if lease_lost.is_cancelled() => {}
        Err(JobError::Interrupted) => {
            // Shutdown: give the job back; the run waits in the queue for the next worker.
            let released = store.release_job(job.id, worker).await.unwrap_or(false);
            if let (true, Some(run_id)) = (released, run_id) {
                let _ = store
                    .append_run_log(
                        run_id,
                        "warn",
                        &format!(
                            "worker {worker} shut down; the run will resume on the next worker"
                        ),
                        Value::Null,
                    )
                    .await;
                let _ = store
                    .transition_run(run_id, &[RunStatus::Running], RunStatus::Queued, None, None)
                    .await;
            }
        }
        Err(JobError::Retryable(error)) if job.attempts < job.max_attempts => {
            let delay = backoff(&cfg, job.attempts);
            if let Some(run_id) = run_id {
                let _ = store
                    .append_run_log(
                        run_id,
                        "error",
                        &format!("attempt {} failed: {error}; retrying in {:.1} s", job.attempts, delay.as_secs_f64()),
                        json!({ "error": error, "attempt": job.attempts, "retry_in_ms": delay.as_millis() as u64 }),
                    )
                    .await;
                let _ = store
                    .transition_run(run_id, &[RunStatus::Running], RunStatus::Queued, None, None)
                    .await;
            }
            let due = chrono_now_ms() + i64::try_from(delay.as_millis()).unwrap_or(0);
            let _ = store.retry_job(job.id, worker, due, &error).await;
        }
        Err(JobError::Retryable(error) | JobError::Fatal(error)) => {
            finish_failed(&store, worker, &job, &error).await;
        }
    }
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

async fn finish_failed(store: &Store, worker: &str, job: &Job, error: &str) {
    tracing::warn!(error, "job failed");
    if let Some(run_id) = job.run_id {
        let _ = store
            .transition_run(run_id, &LIVE, RunStatus::Failed, None, Some(error))
            .await;
    }
    let _ = store.fail_job(job.id, worker, error).await;
}
