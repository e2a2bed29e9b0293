//! The worker: claims jobs, executes them with bounded concurrency, keeps their leases,
//! retries with backoff, fails runs whose workers were lost, and shuts down gracefully.

use std::{sync::Arc, time::Duration};
use tracing::Instrument;
use vorg_domain::LogLevel;

use rand::Rng;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, broadcast::error::RecvError};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use vorg_domain::RunStatus;
use vorg_store::{Job, JobEnd, Notice, Store, StoreError};

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

/// Executes one claimed job to an end: prepare (is there still work, and for which run),
/// run (the handler, with the lease kept alive), finish (one store transaction). Everything
/// it and the job's handler log is inside the job's span.
async fn execute(
    store: Store,
    registry: Registry,
    cfg: Arc<WorkerConfig>,
    job: Job,
    stop: CancellationToken,
    tasks: &TaskTracker,
) {
    let span = tracing::info_span!("job", job_id = job.id, kind = %job.kind, run_id = job.run_id, attempt = job.attempts);
    async {
        let worker = Attempt {
            store: &store,
            cfg: &cfg,
            job: &job,
        };
        let end = match worker.prepare().await {
            Prepared::Run => worker.run(&registry, stop, tasks).await,
            Prepared::Done(end) => end,
        };
        if let Some(end) = end {
            worker.finish(end).await;
        }
    }
    .instrument(span)
    .await;
}

/// One attempt at one job, on this worker.
struct Attempt<'a> {
    store: &'a Store,
    cfg: &'a WorkerConfig,
    job: &'a Job,
}

enum Prepared {
    /// Execute the handler.
    Run,
    /// No handler to run: end the attempt so (or leave it, `None`).
    Done(Option<Ending>),
}

/// How an attempt ends, owned (the store's [`JobEnd`] borrows from it).
enum Ending {
    Succeeded(Value),
    Cancelled(&'static str),
    Failed(String),
    Retry { error: String, delay: Duration },
    Release,
    Park(i64),
    Discard,
}

impl Attempt<'_> {
    fn worker(&self) -> &str {
        &self.cfg.worker_id
    }

    /// Reads the run: an ended or missing run needs no attempt; a cancelled one ends now;
    /// otherwise the run is `running` (with a line when this is a retry).
    async fn prepare(&self) -> Prepared {
        let Some(run_id) = self.job.run_id else {
            return Prepared::Run;
        };
        match self.store.get_run(run_id).await {
            Ok(run) if run.status().is_terminal() => return Prepared::Done(Some(Ending::Discard)),
            Ok(run) if run.cancel_requested_at.is_some() => {
                return Prepared::Done(Some(Ending::Cancelled("cancelled by request")));
            }
            Ok(_) => {}
            Err(StoreError::NotFound) => return Prepared::Done(Some(Ending::Discard)),
            Err(e) => {
                tracing::warn!(error = %e, "reading the run; releasing the job");
                return Prepared::Done(Some(Ending::Release));
            }
        }
        let job = self.job;
        let started = self
            .store
            .transition_run(run_id, &LIVE, RunStatus::Running, None, None)
            .await;
        if let Err(e) = started {
            tracing::warn!(error = %e, "marking the run running; releasing the job");
            return Prepared::Done(Some(Ending::Release));
        }
        if job.attempts > 1 {
            let worker = self.worker();
            let logged = self
                .store
                .append_run_log(
                    run_id,
                    LogLevel::Warn,
                    &format!("attempt {} of {} (on worker {worker})", job.attempts, job.max_attempts),
                    json!({ "attempt": job.attempts, "max_attempts": job.max_attempts, "worker": worker }),
                )
                .await;
            if let Err(e) = logged {
                tracing::warn!(error = %e, "writing the attempt line");
            }
        }
        Prepared::Run
    }

    /// Runs the handler on `tasks`, renewing the lease meanwhile. `None` when the lease was
    /// lost: the job is another worker's now, and nothing of it is ours to finish.
    async fn run(
        &self,
        registry: &Registry,
        stop: CancellationToken,
        tasks: &TaskTracker,
    ) -> Option<Ending> {
        let job = self.job;
        let Some(handler) = registry.get(&job.kind) else {
            return Some(Ending::Failed(format!(
                "no handler for job kind {:?} on this worker",
                job.kind
            )));
        };
        let lease_lost = CancellationToken::new();
        let ctx = JobContext {
            store: self.store.clone(),
            job: job.clone(),
            worker_id: self.worker().to_owned(),
            stop: stop.clone(),
            cancel_checked: std::sync::Mutex::new(None),
        };
        let span = tracing::Span::current();
        let handle = tasks.spawn(async move { handler.run(&ctx).await }.instrument(span));
        let heartbeat = async {
            let lease_ms = i64::try_from(self.cfg.lease.as_millis()).unwrap_or(i64::MAX);
            loop {
                tokio::time::sleep(self.cfg.lease / 3).await;
                match self
                    .store
                    .renew_lease(job.id, self.worker(), lease_ms)
                    .await
                {
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
        let joined = tokio::select! {
            joined = handle => joined,
            // The heartbeat never completes; if it did, the lease would simply run out.
            _ = heartbeat => return None,
        };
        let outcome = match joined {
            Ok(result) => result,
            Err(e) if e.is_panic() => Err(JobError::Fatal("the job panicked".to_owned())),
            Err(e) => Err(JobError::Fatal(format!("the job task failed: {e}"))),
        };
        Some(match outcome {
            Ok(output) => Ending::Succeeded(output),
            Err(JobError::Cancelled) => Ending::Cancelled("cancelled by request"),
            Err(JobError::WaitingApproval(approval_id)) => Ending::Park(approval_id),
            Err(JobError::Interrupted) if lease_lost.is_cancelled() => return None,
            // Shutdown: give the job back; the run waits in the queue for the next worker.
            Err(JobError::Interrupted) => Ending::Release,
            Err(JobError::Retryable(error)) if job.attempts < job.max_attempts => {
                let delay = backoff(self.cfg, job.attempts);
                Ending::Retry { error, delay }
            }
            Err(JobError::Retryable(error) | JobError::Fatal(error)) => Ending::Failed(error),
        })
    }

    /// Commits the end in one store transaction, retrying a failed commit a few times; if
    /// it never commits, the lease runs out and another worker takes the job again.
    async fn finish(&self, ending: Ending) {
        let end = match &ending {
            Ending::Succeeded(output) => JobEnd::Succeeded(output.clone()),
            Ending::Cancelled(reason) => JobEnd::Cancelled(reason),
            Ending::Failed(error) => {
                tracing::warn!(error, "job failed");
                JobEnd::Failed(error)
            }
            Ending::Retry { error, delay } => JobEnd::Retry {
                error,
                due_ms: chrono_now_ms() + i64::try_from(delay.as_millis()).unwrap_or(0),
                retry_in_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            },
            Ending::Release => JobEnd::Release,
            Ending::Park(approval_id) => JobEnd::Park {
                approval_id: *approval_id,
            },
            Ending::Discard => JobEnd::Discard,
        };
        let mut pause = Duration::from_millis(100);
        for attempt in 1..=FINISH_TRIES {
            match self
                .store
                .finish_job(self.job, self.worker(), end.clone())
                .await
            {
                Ok(true) => break,
                Ok(false) => {
                    tracing::warn!("the job was no longer ours to finish (its lease was lost)");
                    return;
                }
                Err(e) if attempt < FINISH_TRIES => {
                    tracing::warn!(error = %e, attempt, "finishing the job failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause *= 4;
                }
                Err(e) => {
                    tracing::error!(error = %e, "finishing the job failed; its lease will run out and another attempt will follow");
                    return;
                }
            }
        }
        if let (Ending::Park(approval_id), Some(run_id)) = (&ending, self.job.run_id) {
            // Decided while we were parking (the decision found nothing parked yet): resume.
            if let Ok(a) = self.store.get_approval(*approval_id).await
                && a.status != vorg_domain::ApprovalStatus::Pending
                && let Err(e) = self.store.resume_parked(run_id).await
            {
                tracing::warn!(error = %e, "resuming a run whose approval was decided");
            }
        }
    }
}

/// Attempts at committing an attempt's end before leaving it to the lease.
const FINISH_TRIES: u32 = 4;

const LIVE: [RunStatus; 2] = [RunStatus::Queued, RunStatus::Running];

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
