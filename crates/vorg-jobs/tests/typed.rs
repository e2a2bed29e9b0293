//! Typed jobs end to end on both databases: the payload and output types round-trip through
//! the queue, a payload that no longer parses fails its run with a clear error, deduplicated
//! jobs are queued once, and an attempt's end is committed in one transaction that a worker
//! which lost the job cannot make.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::time::Duration;
use vorg_domain::LogLevel;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use vorg_domain::RunStatus;
use vorg_jobs::{BackgroundJob, JobContext, JobError, Registry, RunMeta, Worker, WorkerConfig};
use vorg_store::{Backend, JobEnd, NewRun, Store, testing::TestDb};

/// Adds two numbers, with a label from its context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Add {
    a: i64,
    b: i64,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Sum {
    sum: i64,
    by: String,
}

impl BackgroundJob for Add {
    const KIND: &'static str = "add";
    const MAX_ATTEMPTS: i64 = 1;
    type Output = Sum;
    type Context = String;

    async fn run(self, label: &String, job: &JobContext) -> Result<Sum, JobError> {
        job.log(
            LogLevel::Info,
            "adding",
            json!({ "a": self.a, "b": self.b }),
        )
        .await?;
        Ok(Sum {
            sum: self.a + self.b,
            by: label.clone(),
        })
    }
}

/// A deduplicated kind: equal payloads still queued share one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Refresh {
    what: String,
}

impl BackgroundJob for Refresh {
    const KIND: &'static str = "refresh";
    const DEDUPLICATED: bool = true;
    type Output = ();
    type Context = ();

    async fn run(self, _: &(), _: &JobContext) -> Result<(), JobError> {
        Ok(())
    }
}

async fn ends(store: &Store, run: i64) -> vorg_store::Run {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = store.get_run(run).await.unwrap();
        if r.status().is_terminal() {
            return r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "run {run} is still {}",
            r.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn typed_jobs_round_trip(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = Store::connect_and_migrate(&db.url).await.unwrap();
    let tracker = TaskTracker::new();
    let stop = CancellationToken::new();
    store.start_listener(&tracker, stop.clone()).await.unwrap();
    let mut config = WorkerConfig::new(2);
    config.poll = Duration::from_millis(50);
    Worker::new(
        store.clone(),
        Registry::new().job::<Add>("worker-a".to_owned()),
        config,
    )
    .spawn(&tracker, stop.clone());

    // The payload and the output are the types, through the queue.
    let run = Add { a: 2, b: 40 }
        .start(&store, RunMeta::default())
        .await
        .unwrap();
    assert_eq!(run.run_type, "add", "the run type defaults to the kind");
    assert_eq!(run.input.0, json!({ "a": 2, "b": 40 }));
    let done = ends(&store, run.id).await;
    assert_eq!(done.status(), RunStatus::Succeeded, "{:?}", done.error);
    let sum: Sum = serde_json::from_value(done.output.unwrap().0).unwrap();
    assert_eq!(
        sum,
        Sum {
            sum: 42,
            by: "worker-a".into()
        }
    );

    // A payload queued by a version that described the job differently fails the run
    // with a clear error, once: no retry can fix it.
    let stale = store
        .create_run(NewRun {
            run_type: "add",
            summary: None,
            input: json!({ "a": "two", "b": 40 }),
            requested_by: None,
            job_kind: Add::KIND,
            max_attempts: 3,
            deduplicated: false,
            origin: None,
        })
        .await
        .unwrap();
    let failed = ends(&store, stale.id).await;
    assert_eq!(failed.status(), RunStatus::Failed);
    let error = failed.error.unwrap();
    assert!(
        error.contains("the payload of this add job does not parse") && error.contains("a:"),
        "{error}"
    );
    assert_eq!(
        failed.attempts, 1,
        "a payload that does not parse is not retried"
    );

    stop.cancel();
    tracker.close();
    tracker.wait().await;
    store.close().await;
}

async fn deduplicated_jobs_are_queued_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = Store::connect_and_migrate(&db.url).await.unwrap();
    let job = Refresh {
        what: "pricing".into(),
    };
    let first = job.start(&store, RunMeta::default()).await.unwrap();
    let again = job.start(&store, RunMeta::default()).await.unwrap();
    assert_eq!(
        first.id, again.id,
        "an equal job still queued is the same run"
    );
    let other = Refresh {
        what: "personas".into(),
    }
    .start(&store, RunMeta::default())
    .await
    .unwrap();
    assert_ne!(other.id, first.id, "a different payload is another job");
    // Not deduplicated: every start is a run.
    let a = Add { a: 1, b: 1 }
        .start(&store, RunMeta::default())
        .await
        .unwrap();
    let b = Add { a: 1, b: 1 }
        .start(&store, RunMeta::default())
        .await
        .unwrap();
    assert_ne!(a.id, b.id);
    // Once the queued one has been claimed, an equal job is queued anew.
    let mut claimed = Vec::new();
    while let Some(job) = store.claim_job("w", 60_000).await.unwrap() {
        claimed.push(job);
    }
    let held = claimed.iter().find(|j| j.run_id == Some(first.id)).unwrap();
    let after = job.start(&store, RunMeta::default()).await.unwrap();
    assert_ne!(
        after.id, first.id,
        "the claimed job no longer absorbs new ones"
    );
    assert!(
        store
            .finish_job(held, "w", JobEnd::Succeeded(json!(null)))
            .await
            .unwrap()
    );
    store.close().await;
}

async fn an_attempt_ends_in_one_transaction(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = Store::connect_and_migrate(&db.url).await.unwrap();
    let run = Add { a: 1, b: 2 }
        .start(
            &store,
            RunMeta {
                max_attempts: Some(3),
                ..RunMeta::default()
            },
        )
        .await
        .unwrap();
    let job = store.claim_job("w1", 60_000).await.unwrap().unwrap();
    store
        .transition_run(run.id, &[RunStatus::Queued], RunStatus::Running, None, None)
        .await
        .unwrap();

    // A worker that does not hold the job changes nothing.
    let refused = store
        .finish_job(&job, "someone-else", JobEnd::Succeeded(json!({ "sum": 3 })))
        .await
        .unwrap();
    assert!(!refused);
    assert_eq!(
        store.get_run(run.id).await.unwrap().status(),
        RunStatus::Running
    );

    // A retry: the run is queued again with the line saying when, the job is due later.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let due = now_ms + 60_000;
    assert!(
        store
            .finish_job(
                &job,
                "w1",
                JobEnd::Retry {
                    error: "upstream 503",
                    due_ms: due,
                    retry_in_ms: 60_000
                }
            )
            .await
            .unwrap()
    );
    let queued = store.get_run(run.id).await.unwrap();
    assert_eq!(queued.status(), RunStatus::Queued);
    let logs = store.run_logs(run.id, 0, 100).await.unwrap();
    let line = logs
        .iter()
        .find(|l| l.kind == "log" && l.message.contains("attempt 1 failed: upstream 503"))
        .expect("the retry line");
    assert_eq!(line.level, LogLevel::Error);
    assert!(
        store.claim_job("w1", 60_000).await.unwrap().is_none(),
        "the retry is not due yet"
    );
    // The same end twice: the job is no longer held, so nothing happens again.
    assert!(
        !store
            .finish_job(&job, "w1", JobEnd::Failed("again"))
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_run(run.id).await.unwrap().status(),
        RunStatus::Queued
    );
    store.close().await;
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(vorg_store::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(vorg_store::Backend::Postgres).await
                }
            )*
        }
    };
}

both!(
    typed_jobs_round_trip,
    deduplicated_jobs_are_queued_once,
    an_attempt_ends_in_one_transaction,
);
