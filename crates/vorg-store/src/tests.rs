//! The store contract suite: every test body runs on SQLite and on PostgreSQL.
#![allow(clippy::disallowed_methods)] // tests spawn freely

use vorg_domain::{Role, RunStatus};

use crate::{
    Backend, NewApiToken, NewAuditEntry, NewRun, Notice, Page, RunFilter, Store, StoreError,
    testing::TestDb,
};

/// Instantiates `async fn $name(store: Store)` once per backend.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use super::*;
            #[tokio::test]
            async fn sqlite() { run(Backend::Sqlite, super::$name).await }
            #[tokio::test]
            async fn postgres() { run(Backend::Postgres, super::$name).await }
        }
    )*};
}

async fn run<F, Fut>(backend: Backend, body: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let db = TestDb::new(backend).await;
    let store = Store::connect_and_migrate(&db.url).await.unwrap();
    assert_eq!(store.backend(), backend);
    body(store.clone()).await;
    store.close().await;
}

contract!(
    user_lifecycle,
    duplicate_email_is_a_conflict,
    only_the_first_user_can_be_created_with_only_if_no_users,
    the_last_admin_cannot_be_demoted,
    tokens_carry_only_roles_the_owner_still_holds,
    revoked_and_expired_tokens_do_not_authenticate,
    audit_rows_page_newest_first,
    migrating_twice_is_a_no_op,
    listing_users_carries_their_roles,
    a_run_lives_from_queued_to_succeeded_with_an_ordered_stream,
    concurrent_claimers_never_take_the_same_job,
    an_expired_lease_is_reclaimed_until_attempts_run_out,
    cancelling_a_queued_run_ends_it_and_drops_its_job,
    committed_rows_are_announced_to_subscribers,
    usage_is_recorded_listed_and_summarised,
    role_changes_are_seen_by_current_roles_at_once_here_and_within_the_ttl_elsewhere,
);

async fn user_lifecycle(store: Store) {
    let created = store
        .create_user("ann@example.com", "hash", &[Role::Admin], true)
        .await
        .unwrap();
    assert!(created.user.is_admin);
    let found = store
        .find_user_by_email("ann@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.user.id, created.user.id);
    assert_eq!(found.roles, vec![Role::Admin]);
    assert!(
        store
            .grant_role(created.user.id, Role::Engineer)
            .await
            .unwrap()
    );
    assert!(
        !store
            .grant_role(created.user.id, Role::Engineer)
            .await
            .unwrap()
    );
    assert_eq!(
        store.user_roles(created.user.id).await.unwrap(),
        vec![Role::Admin, Role::Engineer]
    );
    store.record_login(created.user.id).await.unwrap();
    assert!(
        store
            .get_user(created.user.id)
            .await
            .unwrap()
            .user
            .last_login_at
            .is_some()
    );
    assert!(matches!(
        store.get_user(999).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.user_roles(999).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.count_users().await.unwrap(), 1);
}

async fn duplicate_email_is_a_conflict(store: Store) {
    store
        .create_user("a@x.io", "h", &[Role::Viewer], false)
        .await
        .unwrap();
    let err = store
        .create_user("a@x.io", "h", &[Role::Viewer], false)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
}

async fn only_the_first_user_can_be_created_with_only_if_no_users(store: Store) {
    store
        .create_user("a@x.io", "h", &[Role::Admin], true)
        .await
        .unwrap();
    let err = store
        .create_user("b@x.io", "h", &[Role::Admin], true)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Rule(_)), "{err:?}");
    assert_eq!(store.count_users().await.unwrap(), 1);
}

async fn the_last_admin_cannot_be_demoted(store: Store) {
    let a = store
        .create_user("a@x.io", "h", &[Role::Admin], true)
        .await
        .unwrap();
    let b = store
        .create_user("b@x.io", "h", &[Role::Viewer], false)
        .await
        .unwrap();
    let err = store.revoke_role(a.user.id, Role::Admin).await.unwrap_err();
    assert!(matches!(err, StoreError::Rule(_)), "{err:?}");
    store.grant_role(b.user.id, Role::Admin).await.unwrap();
    assert!(store.revoke_role(a.user.id, Role::Admin).await.unwrap());
    assert!(!store.get_user(a.user.id).await.unwrap().user.is_admin);
    assert!(!store.revoke_role(a.user.id, Role::Admin).await.unwrap());
    assert!(store.revoke_role(b.user.id, Role::Admin).await.is_err());
    assert_eq!(
        store.user_roles(b.user.id).await.unwrap(),
        vec![Role::Admin, Role::Viewer]
    );
}

async fn tokens_carry_only_roles_the_owner_still_holds(store: Store) {
    let u = store
        .create_user("a@x.io", "h", &[Role::Engineer, Role::Growth], false)
        .await
        .unwrap();
    let t = store
        .create_token(NewApiToken {
            user_id: u.user.id,
            name: "ci",
            token_hash: "hash1",
            prefix: "vorg_abc",
            roles: &[Role::Engineer, Role::Growth],
            expires_at: None,
        })
        .await
        .unwrap();
    assert_eq!(t.role_list(), vec![Role::Engineer, Role::Growth]);
    let owner = store.authenticate_token("hash1").await.unwrap().unwrap();
    assert_eq!(owner.user_id, u.user.id);
    assert_eq!(owner.roles, vec![Role::Engineer, Role::Growth]);
    assert!(
        store.list_tokens(u.user.id).await.unwrap()[0]
            .last_used_at
            .is_some()
    );
    store.revoke_role(u.user.id, Role::Growth).await.unwrap();
    let owner = store.authenticate_token("hash1").await.unwrap().unwrap();
    assert_eq!(owner.roles, vec![Role::Engineer]);
    assert!(store.authenticate_token("nope").await.unwrap().is_none());
}

async fn revoked_and_expired_tokens_do_not_authenticate(store: Store) {
    let u = store
        .create_user("a@x.io", "h", &[Role::Viewer], false)
        .await
        .unwrap();
    let other = store
        .create_user("b@x.io", "h", &[Role::Viewer], false)
        .await
        .unwrap();
    let mk = |hash: &'static str, expires_at| NewApiToken {
        user_id: u.user.id,
        name: "t",
        token_hash: hash,
        prefix: "p",
        roles: &[Role::Viewer],
        expires_at,
    };
    let live = store.create_token(mk("live", None)).await.unwrap();
    store
        .create_token(mk(
            "old",
            Some(chrono::Utc::now() - chrono::Duration::seconds(1)),
        ))
        .await
        .unwrap();
    assert!(store.authenticate_token("old").await.unwrap().is_none());
    assert!(matches!(
        store.revoke_token(live.id, Some(other.user.id)).await,
        Err(StoreError::NotFound)
    ));
    store.revoke_token(live.id, Some(u.user.id)).await.unwrap();
    assert!(store.authenticate_token("live").await.unwrap().is_none());
    assert!(matches!(
        store.revoke_token(live.id, None).await,
        Err(StoreError::NotFound)
    ));
}

async fn audit_rows_page_newest_first(store: Store) {
    for i in 0..5 {
        store
            .record_audit(NewAuditEntry {
                actor_user_id: None,
                actor: "cli".into(),
                action: "test.event",
                target: Some(format!("n:{i}")),
                detail: serde_json::json!({ "i": i }),
                request_id: None,
            })
            .await
            .unwrap();
    }
    let first = store
        .list_audit(Page {
            limit: 2,
            before: None,
        })
        .await
        .unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(first[0].target.as_deref(), Some("n:4"));
    assert_eq!(first[0].detail.0["i"], 4);
    let next = store
        .list_audit(Page {
            limit: 10,
            before: Some(first[1].id),
        })
        .await
        .unwrap();
    let targets: Vec<_> = next.iter().filter_map(|e| e.target.clone()).collect();
    assert_eq!(targets, ["n:2", "n:1", "n:0"]);
}

async fn migrating_twice_is_a_no_op(store: Store) {
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
}

async fn listing_users_carries_their_roles(store: Store) {
    store
        .create_user("a@x.io", "h", &[Role::Admin, Role::Growth], false)
        .await
        .unwrap();
    store.create_user("b@x.io", "h", &[], false).await.unwrap();
    store
        .create_user("c@x.io", "h", &[Role::Viewer], false)
        .await
        .unwrap();
    let page = store
        .list_users(Page {
            limit: 2,
            before: None,
        })
        .await
        .unwrap();
    let got: Vec<(&str, Vec<Role>)> = page
        .iter()
        .map(|u| (u.user.email.as_str(), u.roles.clone()))
        .collect();
    assert_eq!(got, [("c@x.io", vec![Role::Viewer]), ("b@x.io", vec![])]);
    let rest = store
        .list_users(Page {
            limit: 2,
            before: Some(page[1].user.id),
        })
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].roles, vec![Role::Admin, Role::Growth]);
}

async fn role_changes_are_seen_by_current_roles_at_once_here_and_within_the_ttl_elsewhere(
    store: Store,
) {
    let u = store
        .create_user("a@x.io", "h", &[Role::Viewer], false)
        .await
        .unwrap();
    assert_eq!(
        store.current_roles(u.user.id).await.unwrap(),
        vec![Role::Viewer]
    );
    store.grant_role(u.user.id, Role::Engineer).await.unwrap();
    assert_eq!(
        store.current_roles(u.user.id).await.unwrap(),
        vec![Role::Engineer, Role::Viewer],
        "this store's own change is seen at once"
    );
    // Another process (another Store on the same database) changes the roles.
    let other = Store {
        db: store.db.clone(),
        queue_db: store.queue_db.clone(),
        roles: Default::default(),
        notices: crate::notify::channel(),
    };
    other.revoke_role(u.user.id, Role::Engineer).await.unwrap();
    tokio::time::sleep(crate::ROLES_TTL + std::time::Duration::from_millis(50)).await;
    assert_eq!(
        store.current_roles(u.user.id).await.unwrap(),
        vec![Role::Viewer]
    );
}

fn demo_run(input: serde_json::Value) -> NewRun<'static> {
    NewRun {
        run_type: "demo",
        summary: Some("a demo"),
        input,
        requested_by: None,
        job_kind: "demo",
        max_attempts: 3,
    }
}

async fn a_run_lives_from_queued_to_succeeded_with_an_ordered_stream(store: Store) {
    let run = store
        .create_run(demo_run(serde_json::json!({ "steps": 2 })))
        .await
        .unwrap();
    assert_eq!(run.status(), RunStatus::Queued);
    let job = store.claim_job("w1", 30_000).await.unwrap().unwrap();
    assert_eq!(
        (job.run_id, job.attempts, job.kind.as_str()),
        (Some(run.id), 1, "demo")
    );
    assert_eq!(job.payload.0["steps"], 2);
    assert!(
        store.claim_job("w2", 30_000).await.unwrap().is_none(),
        "held by w1"
    );
    let running = store
        .transition_run(run.id, &[RunStatus::Queued], RunStatus::Running, None, None)
        .await
        .unwrap()
        .unwrap();
    assert!(running.started_at.is_some());
    assert_eq!(running.attempts, 1);
    store
        .append_run_log(run.id, "info", "step 1", serde_json::json!({ "step": 1 }))
        .await
        .unwrap();
    store
        .append_run_log(run.id, "info", "step 2", serde_json::json!({ "step": 2 }))
        .await
        .unwrap();
    assert!(
        store
            .transition_run(
                run.id,
                &[RunStatus::Queued],
                RunStatus::Failed,
                None,
                Some("x")
            )
            .await
            .unwrap()
            .is_none(),
        "a transition from the wrong status does nothing"
    );
    let done = store
        .transition_run(
            run.id,
            &[RunStatus::Running],
            RunStatus::Succeeded,
            Some(serde_json::json!({ "ok": true })),
            None,
        )
        .await
        .unwrap()
        .unwrap();
    assert!(done.completed_at.is_some());
    assert_eq!(done.output.unwrap().0["ok"], true);
    assert!(store.complete_job(job.id, "w1").await.unwrap());
    let logs = store.run_logs(run.id, 0, 100).await.unwrap();
    let lines: Vec<(&str, &str)> = logs
        .iter()
        .map(|l| (l.kind.as_str(), l.message.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            ("status", "status: running"),
            ("log", "step 1"),
            ("log", "step 2"),
            ("status", "status: succeeded")
        ]
    );
    let after = store.run_logs(run.id, logs[1].id, 100).await.unwrap();
    assert_eq!(after.len(), 2);
    let events = store.events_after(0, 100).await.unwrap();
    let statuses: Vec<&str> = events
        .iter()
        .map(|e| e.data.0["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["queued", "running", "succeeded"]);
    let listed = store
        .list_runs(
            &RunFilter {
                status: Some(RunStatus::Succeeded),
                ..Default::default()
            },
            Page {
                limit: 10,
                before: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert!(
        store
            .list_runs(
                &RunFilter {
                    run_type: Some("other".into()),
                    ..Default::default()
                },
                Page {
                    limit: 10,
                    before: None
                }
            )
            .await
            .unwrap()
            .is_empty()
    );
}

async fn concurrent_claimers_never_take_the_same_job(store: Store) {
    for i in 0..40 {
        store
            .enqueue_job("noop", serde_json::json!({ "i": i }), 1)
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for w in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Some(job) = store.claim_job(&format!("w{w}"), 30_000).await.unwrap() {
                mine.push(job.id);
                assert!(store.complete_job(job.id, &format!("w{w}")).await.unwrap());
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!(before, all.len(), "a job was claimed twice");
    assert_eq!(all.len(), 40);
    assert!(store.job_counts().await.unwrap().is_empty());
}

async fn an_expired_lease_is_reclaimed_until_attempts_run_out(store: Store) {
    let id = store
        .enqueue_job("noop", serde_json::json!({}), 2)
        .await
        .unwrap();
    // A lease that has already run out: as if the worker died.
    let first = store.claim_job("dead", -1).await.unwrap().unwrap();
    assert_eq!((first.id, first.attempts), (id, 1));
    assert!(!store.renew_lease(id, "other", 1000).await.unwrap());
    let second = store.claim_job("alive", -1).await.unwrap().unwrap();
    assert_eq!((second.id, second.attempts), (id, 2));
    assert!(
        !store.complete_job(id, "dead").await.unwrap(),
        "the dead worker lost it"
    );
    assert!(
        store.claim_job("third", 1000).await.unwrap().is_none(),
        "no attempt left"
    );
    let abandoned = store.fail_abandoned_jobs().await.unwrap();
    assert_eq!(abandoned.len(), 1);
    assert_eq!(abandoned[0].attempts, 2);
    assert_eq!(
        store.job_counts().await.unwrap(),
        [("failed".to_owned(), 1)]
    );
    // Release on shutdown gives the attempt back.
    let j = store
        .enqueue_job("noop", serde_json::json!({}), 1)
        .await
        .unwrap();
    store.claim_job("w", 30_000).await.unwrap().unwrap();
    assert!(store.release_job(j, "w").await.unwrap());
    assert_eq!(
        store
            .claim_job("w", 30_000)
            .await
            .unwrap()
            .unwrap()
            .attempts,
        1
    );
}

async fn cancelling_a_queued_run_ends_it_and_drops_its_job(store: Store) {
    let run = store
        .create_run(demo_run(serde_json::json!({})))
        .await
        .unwrap();
    let cancelled = store.request_cancel(run.id).await.unwrap();
    assert_eq!(cancelled.status(), RunStatus::Cancelled);
    assert!(cancelled.cancel_requested_at.is_some());
    assert!(store.claim_job("w", 1000).await.unwrap().is_none());
    assert!(matches!(
        store.request_cancel(run.id).await,
        Err(StoreError::Rule(_))
    ));
    assert!(matches!(
        store.request_cancel(999).await,
        Err(StoreError::NotFound)
    ));
    // A running run is only marked.
    let run = store
        .create_run(demo_run(serde_json::json!({})))
        .await
        .unwrap();
    store
        .transition_run(run.id, &[RunStatus::Queued], RunStatus::Running, None, None)
        .await
        .unwrap();
    assert_eq!(
        store.request_cancel(run.id).await.unwrap().status(),
        RunStatus::Running
    );
    assert!(store.cancel_requested(run.id).await.unwrap());
}

async fn committed_rows_are_announced_to_subscribers(store: Store) {
    let tracker = tokio_util::task::TaskTracker::new();
    let stop = tokio_util::sync::CancellationToken::new();
    store.start_listener(&tracker, stop.clone()).await.unwrap();
    let mut rx = store.subscribe();
    let run = store
        .create_run(demo_run(serde_json::json!({})))
        .await
        .unwrap();
    let log = store
        .append_run_log(run.id, "info", "hello", serde_json::json!({}))
        .await
        .unwrap();
    let mut seen = Vec::new();
    while !seen.contains(&Notice::RunLog {
        run_id: run.id,
        id: log.id,
    }) {
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
            .await
            .expect("a notice within 5 s")
            .unwrap();
        seen.push(n);
    }
    assert!(seen.contains(&Notice::JobQueued), "{seen:?}");
    assert!(
        seen.iter().any(|n| matches!(n, Notice::Event { .. })),
        "{seen:?}"
    );
    stop.cancel();
    tracker.close();
    tracker.wait().await;
}

async fn usage_is_recorded_listed_and_summarised(store: Store) {
    use crate::{NewUsage, UsageGroup};
    let row = |provider: &'static str, cost: i64, status: &'static str, priced: bool| NewUsage {
        run_id: None,
        actor: "ann@example.com",
        user_id: Some(1),
        token_id: None,
        provider,
        model: "m",
        prompt_tokens: 10,
        completion_tokens: 5,
        cost_micro_usd: cost,
        priced,
        latency_ms: 3,
        streamed: false,
        status,
        error: None,
    };
    store
        .record_usage(row("openai", 1_500, "ok", true))
        .await
        .unwrap();
    store
        .record_usage(row("openai", 0, "error", true))
        .await
        .unwrap();
    store
        .record_usage(row("ollama", 0, "ok", false))
        .await
        .unwrap();
    let listed = store
        .list_usage(Page {
            limit: 2,
            before: None,
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].provider, "ollama");
    assert!(!listed[0].priced);
    let now = chrono::Utc::now();
    let day = chrono::Duration::days(1);
    let by_provider = store
        .usage_summary(UsageGroup::Provider, now - day, now + day)
        .await
        .unwrap();
    let openai = by_provider
        .iter()
        .find(|r| r.key.as_deref() == Some("openai"))
        .unwrap();
    assert_eq!(
        (
            openai.calls,
            openai.errors,
            openai.cost_micro_usd,
            openai.prompt_tokens
        ),
        (2, 1, 1_500, 20)
    );
    let ollama = by_provider
        .iter()
        .find(|r| r.key.as_deref() == Some("ollama"))
        .unwrap();
    assert_eq!(ollama.unpriced_calls, 1);
    let by_day = store
        .usage_summary(UsageGroup::Day, now - day, now + day)
        .await
        .unwrap();
    assert_eq!(by_day.len(), 1);
    assert_eq!(
        by_day[0].key.as_deref(),
        Some(now.format("%Y-%m-%d").to_string().as_str())
    );
    for group in [UsageGroup::Model, UsageGroup::Actor, UsageGroup::Run] {
        let rows = store
            .usage_summary(group, now - day, now + day)
            .await
            .unwrap();
        assert_eq!(rows.iter().map(|r| r.calls).sum::<i64>(), 3);
    }
    assert!(
        store
            .usage_summary(UsageGroup::Provider, now + day, now + day + day)
            .await
            .unwrap()
            .is_empty()
    );
}
