//! The store contract suite: every test body runs on SQLite and on PostgreSQL.
#![allow(clippy::disallowed_methods)] // tests spawn freely

use vorg_domain::{LogLevel, Role, RunStatus};

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
    pools_hold_at_most_the_configured_connections,
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
    cached_personas_are_forgotten_when_any_process_writes_one,
    role_changes_reach_other_processes_by_notice_before_the_ttl,
);

async fn role_changes_reach_other_processes_by_notice_before_the_ttl(store: Store) {
    if store.backend() != Backend::Postgres {
        return; // one process per SQLite database: its own changes are seen at once
    }
    let u = store
        .create_user("kim@example.com", "hash", &[Role::Viewer], false)
        .await
        .unwrap();
    let tracker = tokio_util::task::TaskTracker::new();
    let stop = tokio_util::sync::CancellationToken::new();
    store.start_listener(&tracker, stop.clone()).await.unwrap();
    assert_eq!(
        store.current_roles(u.user.id).await.unwrap(),
        [Role::Viewer]
    );
    // Another process grants a role: the notice empties this one's cache well before the
    // one-second TTL would have.
    let granted = std::time::Instant::now();
    another_process(&store)
        .grant_role(u.user.id, Role::Engineer)
        .await
        .unwrap();
    loop {
        let roles = store.current_roles(u.user.id).await.unwrap();
        if roles.contains(&Role::Engineer) {
            break;
        }
        assert!(
            granted.elapsed() < crate::ROLES_TTL / 2,
            "the change was not seen before half the TTL: {roles:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    stop.cancel();
    tracker.close();
    tracker.wait().await;
}

/// A second handle on the store's database with caches of its own, as another process has.
fn another_process(store: &Store) -> Store {
    Store {
        db: store.db.clone(),
        queue_db: store.queue_db.clone(),
        roles: Default::default(),
        tokens: Default::default(),
        hot_writes: Default::default(),
        notices: crate::notify::channel(),
        personas: Default::default(),
        run_owners: Default::default(),
    }
}

async fn cached_personas_are_forgotten_when_any_process_writes_one(store: Store) {
    use serde_json::json;
    let doc = |spend: f64| json!({ "id": "intern.v1", "risk_limits": { "max_spend": spend } });
    let spend = |row: Option<std::sync::Arc<crate::PersonaRow>>| {
        row.map(|r| r.doc.0["risk_limits"]["max_spend"].clone())
    };
    assert!(store.persona_cached("intern.v1").await.unwrap().is_none());
    store
        .save_persona(
            "intern.v1",
            &doc(1.0),
            None,
            "t",
            crate::PersonaWrite::Upsert,
        )
        .await
        .unwrap();
    // Its own write is seen at once (the negative answer was forgotten).
    assert_eq!(
        spend(store.persona_cached("intern.v1").await.unwrap()),
        Some(json!(1.0))
    );
    // The run owner is read once and kept.
    let run = store.create_run(demo_run(json!({}))).await.unwrap();
    assert_eq!(store.run_owner(run.id).await.unwrap(), None);
    assert!(matches!(
        store.run_owner(run.id + 1000).await,
        Err(StoreError::NotFound)
    ));
    if store.backend() != Backend::Postgres {
        return;
    }
    // Another process writes: this one hears the notice and reads the new document.
    let tracker = tokio_util::task::TaskTracker::new();
    let stop = tokio_util::sync::CancellationToken::new();
    store.start_listener(&tracker, stop.clone()).await.unwrap();
    let other = another_process(&store);
    other
        .save_persona(
            "intern.v1",
            &doc(2.0),
            None,
            "t",
            crate::PersonaWrite::Upsert,
        )
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while spend(store.persona_cached("intern.v1").await.unwrap()) != Some(json!(2.0)) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the notice never came"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stop.cancel();
    tracker.close();
    tracker.wait().await;
}

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
            permissions: vorg_domain::Permissions::of_roles(&[Role::Engineer, Role::Growth]),
            limits: &vorg_domain::TokenLimits::default(),
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
    let no_limits = vorg_domain::TokenLimits::default();
    let mk = |hash: &'static str, expires_at| NewApiToken {
        user_id: u.user.id,
        name: "t",
        token_hash: hash,
        prefix: "p",
        roles: &[Role::Viewer],
        permissions: vorg_domain::Permissions::of_roles(&[Role::Viewer]),
        limits: &no_limits,
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
    assert!(store.token_is_live(live.id).await.unwrap());
    store.revoke_token(live.id, Some(u.user.id)).await.unwrap();
    assert!(store.authenticate_token("live").await.unwrap().is_none());
    // Revoked here: seen at once, not after the liveness is next read.
    assert!(!store.token_is_live(live.id).await.unwrap());
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
    let other = another_process(&store);
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
        deduplicated: false,
        origin: None,
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
        .append_run_log(
            run.id,
            LogLevel::Info,
            "step 1",
            serde_json::json!({ "step": 1 }),
        )
        .await
        .unwrap();
    store
        .append_run_log(
            run.id,
            LogLevel::Info,
            "step 2",
            serde_json::json!({ "step": 2 }),
        )
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
    // By creation time: the run was made within the last minute, not in the future.
    let window = |from: i64, to: i64| RunFilter {
        created_from: Some(chrono::Utc::now() + chrono::Duration::seconds(from)),
        created_to: Some(chrono::Utc::now() + chrono::Duration::seconds(to)),
        ..Default::default()
    };
    let page = Page {
        limit: 10,
        before: None,
    };
    assert_eq!(
        store.list_runs(&window(-60, 60), page).await.unwrap().len(),
        1
    );
    assert!(
        store
            .list_runs(&window(60, 120), page)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_runs(&window(-120, -60), page)
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
        .append_run_log(run.id, LogLevel::Info, "hello", serde_json::json!({}))
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
        actor: "ann@example.com".to_owned(),
        user_id: Some(1),
        token_id: None,
        provider: provider.to_owned(),
        model: "m".to_owned(),
        prompt_tokens: 10,
        completion_tokens: 5,
        cache_read_tokens: 0,
        cache_write_tokens: 0,
        cost_micro_usd: cost,
        priced,
        estimated: false,
        latency_ms: 3,
        streamed: false,
        status,
        error: None,
        charge: None,
    };
    store
        .record_usage(&row("openai", 1_500, "ok", true))
        .await
        .unwrap();
    store
        .record_usage(&row("openai", 0, "error", true))
        .await
        .unwrap();
    store
        .record_usage(&row("ollama", 0, "ok", false))
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

contract!(
    policy_versions_are_kept_in_order,
    personas_are_versioned_and_reporting_lines_cannot_cycle,
    an_approval_is_decided_once_even_under_concurrent_deciders,
    workflows_are_versioned_by_name,
    checkpoints_and_interrupts_belong_to_their_run,
    concurrent_read_then_write_transactions_all_commit,
);

/// Persona writes read (reporting lines, versions) before they write. On SQLite a deferred
/// transaction that did so failed with `SQLITE_BUSY` when another writer committed in
/// between (a 500 under load); write transactions now take the write lock first and wait.
async fn concurrent_read_then_write_transactions_all_commit(store: Store) {
    use crate::PersonaWrite::Create;
    let mut tasks = Vec::new();
    for i in 0..24 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let id = format!("p{i}");
            let doc = serde_json::json!({ "id": id, "name": id, "skills": [] });
            store.save_persona(&id, &doc, None, "t", Create).await?;
            store.delete_persona(&id, "t").await?;
            store
                .delete_persona("nobody", "t")
                .await
                .or_else(|e| match e {
                    StoreError::NotFound => Ok(()),
                    other => Err(other),
                })
        }));
    }
    for t in tasks {
        t.await.expect("the task").expect("every write commits");
    }
}

async fn workflows_are_versioned_by_name(store: Store) {
    let new = |name, source| crate::NewWorkflowVersion {
        name,
        engine: "dag",
        description: Some("d"),
        source,
        created_by: None,
    };
    assert!(store.list_workflows().await.unwrap().is_empty());
    let a1 = store.save_workflow(new("a", "v1")).await.unwrap();
    let a2 = store.save_workflow(new("a", "v2")).await.unwrap();
    let b1 = store.save_workflow(new("b", "b1")).await.unwrap();
    assert_eq!((a1.version, a2.version, b1.version), (1, 2, 1));
    let latest: Vec<(String, i64)> = store
        .list_workflows()
        .await
        .unwrap()
        .into_iter()
        .map(|w| (w.name, w.version))
        .collect();
    assert_eq!(latest, vec![("a".into(), 2), ("b".into(), 1)]);
    assert_eq!(store.get_workflow("a", None).await.unwrap().source, "v2");
    assert_eq!(store.get_workflow("a", Some(1)).await.unwrap().source, "v1");
    assert!(matches!(
        store.get_workflow("a", Some(3)).await,
        Err(StoreError::NotFound)
    ));
    let versions: Vec<i64> = store
        .workflow_versions("a")
        .await
        .unwrap()
        .iter()
        .map(|w| w.version)
        .collect();
    assert_eq!(versions, vec![2, 1]);
    assert!(store.workflow_versions("zzz").await.unwrap().is_empty());
}

async fn checkpoints_and_interrupts_belong_to_their_run(store: Store) {
    let run = store
        .create_run(demo_run(serde_json::json!({})))
        .await
        .unwrap();
    assert!(store.last_checkpoint(run.id).await.unwrap().is_none());
    let state = serde_json::json!({ "n": 1 });
    store
        .save_checkpoint(run.id, 1, "a", Some("b"), &state)
        .await
        .unwrap();
    store
        .save_checkpoint(run.id, 2, "b", None, &serde_json::json!({ "n": 2 }))
        .await
        .unwrap();
    // Rewriting a position replaces it.
    store
        .save_checkpoint(run.id, 2, "b", None, &serde_json::json!({ "n": 3 }))
        .await
        .unwrap();
    let last = store.last_checkpoint(run.id).await.unwrap().unwrap();
    assert_eq!((last.steps, last.node.as_str(), last.next), (2, "b", None));
    assert_eq!(last.state.0, serde_json::json!({ "n": 3 }));
    assert_eq!(
        store.list_checkpoints(run.id, 0, 10).await.unwrap().len(),
        2
    );
    let page = store.list_checkpoints(run.id, 1, 10).await.unwrap();
    assert_eq!(page.iter().map(|c| c.steps).collect::<Vec<_>>(), vec![2]);
    assert_eq!(store.list_checkpoints(run.id, 0, 1).await.unwrap().len(), 1);

    let approval = |label| crate::NewApproval {
        description: "go on?",
        amount_micro_usd: 0,
        justification: "",
        status: vorg_domain::ApprovalStatus::Pending,
        threshold_micro_usd: 0,
        kind: Some("workflow_interrupt"),
        tier: Some("approver"),
        rule: "interrupt",
        tags: vec![],
        checks: vec![],
        escalated_to: vec![],
        run_id: Some(run.id),
        requested_by: None,
        requested_by_label: label,
        expires_at: None,
    };
    let first = store.create_approval(approval("x")).await.unwrap();
    let second = store.create_approval(approval("y")).await.unwrap();
    assert_eq!(
        store.interrupt_approval(run.id, "approve@3").await.unwrap(),
        None
    );
    assert_eq!(
        store
            .link_interrupt(run.id, "approve@3", first.id)
            .await
            .unwrap(),
        first.id
    );
    // A second request for the same interrupt gets the first approval.
    assert_eq!(
        store
            .link_interrupt(run.id, "approve@3", second.id)
            .await
            .unwrap(),
        first.id
    );
    assert_eq!(
        store.interrupt_approval(run.id, "approve@3").await.unwrap(),
        Some(first.id)
    );
}

async fn policy_versions_are_kept_in_order(store: Store) {
    assert!(store.current_policy().await.unwrap().is_none());
    assert_eq!(store.current_policy_version().await.unwrap(), 0);
    store
        .add_policy_version("a: 1", "file", "system")
        .await
        .unwrap();
    let v2 = store
        .add_policy_version("a: 2", "api", "ann@example.com")
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    assert_eq!(store.current_policy().await.unwrap().unwrap().body, "a: 2");
    assert_eq!(store.last_file_policy().await.unwrap().unwrap().version, 1);
    let history = store.policy_history(10).await.unwrap();
    assert_eq!(
        history.iter().map(|v| v.version).collect::<Vec<_>>(),
        [2, 1]
    );
    assert_eq!(store.policy_version(1).await.unwrap().body, "a: 1");
    assert!(matches!(
        store.policy_version(9).await,
        Err(StoreError::NotFound)
    ));
}

async fn personas_are_versioned_and_reporting_lines_cannot_cycle(store: Store) {
    use crate::PersonaWrite::*;
    let doc = |n: &str| serde_json::json!({ "id": n, "name": n, "skills": [] });
    store
        .save_persona("ceo", &doc("ceo"), None, "t", Create)
        .await
        .unwrap();
    store
        .save_persona("cto", &doc("cto"), Some("ceo"), "t", Create)
        .await
        .unwrap();
    store
        .save_persona("eng", &doc("eng"), Some("cto"), "t", Upsert)
        .await
        .unwrap();
    assert!(matches!(
        store
            .save_persona("ceo", &doc("ceo"), None, "t", Create)
            .await,
        Err(StoreError::Refused(_))
    ));
    assert!(matches!(
        store
            .save_persona("nobody", &doc("x"), None, "t", Update)
            .await,
        Err(StoreError::NotFound)
    ));
    match store
        .save_persona("ceo", &doc("ceo"), Some("eng"), "t", Update)
        .await
    {
        Err(StoreError::Invalid { field, reason }) => {
            assert_eq!(field, "reports_to");
            assert!(reason.contains("ceo → eng → cto → ceo"), "{reason}");
        }
        other => panic!("expected a cycle, got {other:?}"),
    }
    assert!(matches!(
        store
            .save_persona("cto", &doc("cto"), Some("ghost"), "t", Update)
            .await,
        Err(StoreError::Invalid { .. })
    ));
    let v2 = store
        .save_persona(
            "eng",
            &serde_json::json!({"id": "eng", "name": "E2", "skills": []}),
            Some("ceo"),
            "u",
            Update,
        )
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    match store.delete_persona("ceo", "t").await {
        Err(StoreError::Refused(m)) => assert!(m.contains("cto, eng"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    store.delete_persona("eng", "t").await.unwrap();
    assert!(matches!(
        store.get_persona("eng").await,
        Err(StoreError::NotFound)
    ));
    let history = store.persona_history("eng").await.unwrap();
    assert_eq!(
        history.iter().map(|v| v.version).collect::<Vec<_>>(),
        [3, 2, 1]
    );
    assert!(history[0].doc.is_none());
    assert_eq!(history[1].doc.as_ref().unwrap().0["name"], "E2");
    let again = store
        .save_persona("eng", &doc("eng"), None, "t", Create)
        .await
        .unwrap();
    assert_eq!(again.version, 4, "history continues after a delete");
    assert_eq!(store.count_personas().await.unwrap(), 3);
    assert!(store.personas_ever_written().await.unwrap());
}

async fn an_approval_is_decided_once_even_under_concurrent_deciders(store: Store) {
    let user = store
        .create_user("ann@example.com", "h", &[Role::Admin], true)
        .await
        .unwrap();
    let new = crate::NewApproval {
        description: "laptops",
        amount_micro_usd: 120_000_000,
        justification: "team",
        status: vorg_domain::ApprovalStatus::Pending,
        threshold_micro_usd: 50_000_000,
        kind: None,
        tier: Some("approver"),
        rule: "human_review_usd: 50-500",
        tags: vec![],
        checks: vec![],
        escalated_to: vec![],
        run_id: None,
        requested_by: None,
        requested_by_label: "bob@example.com",
        expires_at: None,
    };
    let a = store.create_approval(new.clone()).await.unwrap();
    assert_eq!(a.status, vorg_domain::ApprovalStatus::Pending);
    assert!(a.decided_at.is_none());
    // A row whose status this version does not know is an error, never a wrong value.
    let odd = store.create_approval(new.clone()).await.unwrap();
    let raw = |sql: &'static str| {
        let store = store.clone();
        async move {
            with_pool!(store, |p| sqlx::query(sql)
                .bind(odd.id)
                .execute(p)
                .await
                .map(|_| ()))
        }
    };
    raw("UPDATE approvals SET status = 'maybe' WHERE id = $1")
        .await
        .unwrap();
    assert!(store.get_approval(odd.id).await.is_err());
    raw("DELETE FROM approvals WHERE id = $1").await.unwrap();
    let uid = user.user.id;
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let s = store.clone();
            tokio::spawn(async move { s.decide_approval(a.id, i % 2 == 0, uid, Some("ok")).await })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => wins += 1,
            Err(StoreError::Refused(m)) => assert!(m.contains("already")),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(wins, 1);
    assert!(matches!(
        store.decide_approval(999, true, uid, None).await,
        Err(StoreError::NotFound)
    ));
    let expired = store
        .create_approval(crate::NewApproval {
            expires_at: Some(chrono::Utc::now() - chrono::Duration::seconds(1)),
            ..new.clone()
        })
        .await
        .unwrap();
    assert_eq!(
        store.get_approval(expired.id).await.unwrap().status,
        vorg_domain::ApprovalStatus::Expired
    );
    let auto = store
        .create_approval(crate::NewApproval {
            status: vorg_domain::ApprovalStatus::AutoApproved,
            tier: None,
            ..new
        })
        .await
        .unwrap();
    assert!(auto.decided_at.is_some());
    let pending = store
        .list_approvals(
            Some(vorg_domain::ApprovalStatus::Pending),
            Page {
                limit: 10,
                before: None,
            },
        )
        .await
        .unwrap();
    assert!(pending.is_empty());
    let all = store
        .list_approvals(
            None,
            Page {
                limit: 10,
                before: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|a| a.id).collect::<Vec<_>>(),
        [auto.id, expired.id, a.id]
    );
    let kinds: Vec<String> = store
        .events_after(0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds.iter().filter(|k| *k == "approval.decided").count(), 1);
    // Three, and the one with an unknown status (deleted since).
    assert_eq!(
        kinds.iter().filter(|k| *k == "approval.submitted").count(),
        4
    );
}

mod automation;
mod budgets;
mod tokens;

async fn pools_hold_at_most_the_configured_connections(store: Store) {
    let (main, queue) = store.max_connections();
    match store.backend() {
        Backend::Postgres => assert_eq!((main, queue), (16, 8), "the default: 24 in all"),
        Backend::Sqlite => assert_eq!(main, 8),
    }
    assert_eq!(crate::PoolSize { max: 6 }.split(), (4, 2));
    assert_eq!(
        crate::PoolSize { max: 1 }.split(),
        (2, 1),
        "never fewer than 3"
    );
    assert_eq!(crate::PoolSize { max: 100 }.split(), (66, 34));
}
