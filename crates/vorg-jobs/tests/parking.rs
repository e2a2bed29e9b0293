//! A run that waits for an approval is parked, and the decision resumes it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use vorg_domain::RunStatus;
use vorg_jobs::{BoxFuture, JobContext, JobError, JobHandler, Registry, Worker, WorkerConfig};
use vorg_store::{Backend, NewApproval, NewRun, Page, Store, testing::TestDb};

/// Asks for an approval (once per run: a resumed run finds the one it asked for) and
/// answers with the decision.
struct Gate;

impl JobHandler for Gate {
    fn run<'a>(&'a self, ctx: &'a JobContext) -> BoxFuture<'a, Result<Value, JobError>> {
        Box::pin(async move {
            let run_id = ctx.run_id().unwrap();
            let page = Page {
                limit: 10,
                before: None,
            };
            let mine = ctx.store.list_approvals(None, page).await.unwrap();
            let id = match mine.iter().find(|a| a.run_id == Some(run_id)) {
                Some(a) => a.id,
                None => {
                    ctx.store
                        .create_approval(approval(run_id))
                        .await
                        .unwrap()
                        .id
                }
            };
            let decision = ctx.wait_for_approval(id).await?;
            Ok(json!({ "decision": decision }))
        })
    }
}

async fn status_becomes(store: &Store, run: i64, want: RunStatus) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = store.get_run(run).await.unwrap();
        if r.status() == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "run {run} is {:?}, want {want:?}",
            r.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn approval(run_id: i64) -> NewApproval<'static> {
    NewApproval {
        description: "deploy",
        amount_micro_usd: 100_000_000,
        justification: "",
        status: vorg_domain::ApprovalStatus::Pending,
        threshold_micro_usd: 50_000_000,
        kind: None,
        tier: Some("approver"),
        rule: "human_review_usd: 50-500",
        tags: vec![],
        checks: vec![],
        escalated_to: vec![],
        run_id: Some(run_id),
        requested_by: None,
        requested_by_label: "test",
        expires_at: None,
    }
}

async fn decisions_resume_parked_runs(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = Store::connect_and_migrate(&db.url).await.unwrap();
    let user = store
        .create_user("ann@example.com", "h", &[vorg_domain::Role::Admin], true)
        .await
        .unwrap();
    let tracker = TaskTracker::new();
    let stop = CancellationToken::new();
    store.start_listener(&tracker, stop.clone()).await.unwrap();
    let mut config = WorkerConfig::new(2);
    config.poll = Duration::from_millis(50);
    Worker::new(
        store.clone(),
        Registry::new().register("gate", Gate),
        config,
    )
    .spawn(&tracker, stop.clone());

    for (approve, want) in [(true, "approved"), (false, "rejected")] {
        let run = store
            .create_run(NewRun {
                run_type: "gate",
                summary: None,
                input: json!({}),
                requested_by: None,
                job_kind: "gate",
                max_attempts: 1,
                deduplicated: false,
                origin: None,
            })
            .await
            .unwrap();
        status_becomes(&store, run.id, RunStatus::WaitingApproval).await;
        let page = Page {
            limit: 10,
            before: None,
        };
        let pending = store
            .list_approvals(Some(vorg_domain::ApprovalStatus::Pending), page)
            .await
            .unwrap();
        let a = pending.iter().find(|a| a.run_id == Some(run.id)).unwrap();
        store
            .decide_approval(a.id, approve, user.user.id, None)
            .await
            .unwrap();
        status_becomes(&store, run.id, RunStatus::Succeeded).await;
        let done = store.get_run(run.id).await.unwrap();
        assert_eq!(done.output.unwrap().0["decision"], want);
        assert_eq!(done.attempts, 2, "parked once, resumed once");
    }
    stop.cancel();
    tracker.close();
    tracker.wait().await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_resume_parked_runs_sqlite() {
    decisions_resume_parked_runs(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_resume_parked_runs_postgres() {
    decisions_resume_parked_runs(Backend::Postgres).await
}
