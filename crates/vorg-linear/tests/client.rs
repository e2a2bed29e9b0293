//! The client against the fake Linear: reads, filters, pages, writes, and each way Linear
//! fails (rate limits, a refused key, GraphQL errors, timeouts) — with the key never
//! showing in an error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use serde_json::json;
use vorg_linear::{
    IssueFilter, LinearClient, LinearConfig, LinearError, NewIssue,
    fake::{FAKE_API_KEY, FakeLinear, seed},
};

fn new_issue(title: &str) -> NewIssue {
    NewIssue {
        team_id: seed::TEAM_ENG.into(),
        title: title.into(),
        ..NewIssue::default()
    }
}

fn client_with(fake: &FakeLinear, change: impl FnOnce(&mut LinearConfig)) -> LinearClient {
    let mut config = fake.config();
    change(&mut config);
    LinearClient::new(config).unwrap()
}

#[tokio::test]
async fn the_viewer_is_the_owner_of_the_key() {
    let fake = FakeLinear::start().await;
    let me = fake.client().viewer().await.unwrap();
    assert_eq!(me.id, seed::VIEWER);
    assert_eq!(me.display_name, "ada");
    assert_eq!(fake.operations(), ["Viewer"]);
}

#[tokio::test]
async fn teams_states_labels_and_projects_are_listed() {
    let fake = FakeLinear::start().await;
    let client = fake.client();

    let teams = client.teams().await.unwrap();
    let keys: Vec<_> = teams.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(keys, ["ENG", "GRO"]);

    let states = client.workflow_states(seed::TEAM_ENG).await.unwrap();
    let names: Vec<_> = states.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["Backlog", "Todo", "In Progress", "Done", "Canceled"]
    );
    assert!(states.iter().all(|s| s.team.id == seed::TEAM_ENG));
    assert_eq!(states[2].kind, "started");

    let growth_labels = client.labels(Some(seed::TEAM_GROWTH)).await.unwrap();
    let names: Vec<_> = growth_labels.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        ["Bug", "Feature"],
        "workspace labels, not ENG's Infra"
    );
    assert_eq!(client.labels(None).await.unwrap().len(), 3);

    let projects = client.projects(Some(seed::TEAM_ENG)).await.unwrap();
    assert_eq!(projects.len(), 1);
    assert_eq!(projects[0].id, seed::PROJECT_LAUNCH);
    assert_eq!(projects[0].status.kind, "started");
}

#[tokio::test]
async fn cycles_current_and_upcoming() {
    let fake = FakeLinear::start().await;
    let client = fake.client();

    let all = client.cycles(seed::TEAM_ENG).await.unwrap();
    assert_eq!(
        all.iter().map(|c| c.number).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );

    let current = client.current_cycle(seed::TEAM_ENG).await.unwrap().unwrap();
    assert_eq!(current.id, seed::CYCLE_ENG_CURRENT);
    assert!(current.is_active && current.starts_at < chrono::Utc::now());

    let upcoming = client.upcoming_cycles(seed::TEAM_ENG).await.unwrap();
    let ids: Vec<_> = upcoming.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, [seed::CYCLE_ENG_NEXT, seed::CYCLE_ENG_LATER]);
    assert!(upcoming[0].is_next && !upcoming[1].is_next);
}

#[tokio::test]
async fn issues_are_filtered_by_team_cycle_state_assignee_and_label() {
    let fake = FakeLinear::start().await;
    let client = fake.client();
    let ids = |filter: IssueFilter| {
        let client = client.clone();
        async move {
            let page = client.issues(&filter, 50, None).await.unwrap();
            page.nodes
                .into_iter()
                .map(|i| i.identifier)
                .collect::<Vec<_>>()
        }
    };

    let team = IssueFilter {
        team_id: Some(seed::TEAM_ENG.into()),
        ..Default::default()
    };
    assert_eq!(ids(team.clone()).await, ["ENG-1", "ENG-2", "ENG-3"]);
    let in_cycle = IssueFilter {
        cycle_id: Some(seed::CYCLE_ENG_CURRENT.into()),
        ..team.clone()
    };
    assert_eq!(ids(in_cycle.clone()).await, ["ENG-1", "ENG-2"]);
    let by_state_name = IssueFilter {
        state_name: Some("in progress".into()),
        ..in_cycle
    };
    assert_eq!(ids(by_state_name).await, ["ENG-2"]);
    let by_state_id = IssueFilter {
        state_id: Some(seed::STATE_ENG_TODO.into()),
        ..team.clone()
    };
    assert_eq!(ids(by_state_id).await, ["ENG-1"]);
    let mine = IssueFilter {
        assignee_id: Some(seed::VIEWER.into()),
        ..Default::default()
    };
    assert_eq!(ids(mine).await, ["ENG-1", "GRO-1"]);
    let features = IssueFilter {
        label_name: Some("feature".into()),
        ..Default::default()
    };
    assert_eq!(ids(features).await, ["ENG-2", "GRO-1"]);

    let issue = client.issue("ENG-1").await.unwrap();
    assert_eq!(issue.id, seed::ISSUE_ENG_1);
    assert_eq!(issue.labels[0].name, "Bug");
    assert_eq!(issue.assignee.unwrap().id, seed::VIEWER);
    assert_eq!(issue.cycle.unwrap().number, 2);
}

#[tokio::test]
async fn pages_follow_cursors_past_the_first_page() {
    let fake = FakeLinear::start().await;
    let client = fake.client();
    for n in 0..5 {
        client
            .create_issue(&new_issue(&format!("Paged {n}")))
            .await
            .unwrap();
    }
    let filter = IssueFilter {
        team_id: Some(seed::TEAM_ENG.into()),
        ..Default::default()
    };

    let first = client.issues(&filter, 4, None).await.unwrap();
    assert_eq!(first.nodes.len(), 4);
    assert!(first.page_info.has_next_page);
    let cursor = first.page_info.end_cursor.clone().unwrap();
    let second = client.issues(&filter, 4, Some(&cursor)).await.unwrap();
    assert_eq!(second.nodes.len(), 4);
    assert!(!second.page_info.has_next_page);
    let mut all: Vec<_> = first
        .nodes
        .iter()
        .chain(&second.nodes)
        .map(|i| i.number)
        .collect();
    all.dedup();
    assert_eq!(all, (1..=8).collect::<Vec<_>>());

    let before = fake.request_count();
    assert_eq!(client.issues_up_to(&filter, 100).await.unwrap().len(), 8);
    assert_eq!(client.issues_up_to(&filter, 5).await.unwrap().len(), 5);
    assert!(fake.request_count() - before >= 2);
}

#[tokio::test]
async fn an_issue_is_created_moved_reassigned_and_commented() {
    let fake = FakeLinear::start().await;
    let client = fake.client();

    let created = client
        .create_issue(&NewIssue {
            description: Some("From a **test**".into()),
            priority: Some(1),
            label_ids: vec![seed::LABEL_BUG.into(), seed::LABEL_INFRA.into()],
            assignee_id: Some(seed::OTHER_USER.into()),
            state_id: Some(seed::STATE_ENG_TODO.into()),
            cycle_id: Some(seed::CYCLE_ENG_NEXT.into()),
            ..new_issue("Ship the Linear client")
        })
        .await
        .unwrap();
    assert_eq!(created.identifier, "ENG-4");
    assert_eq!(created.priority_label, "Urgent");
    assert_eq!(created.state.name, "Todo");
    assert_eq!(created.labels.len(), 2);
    assert_eq!(fake.created_issue_count(), 1);

    let moved = client
        .set_issue_state(&created.id, seed::STATE_ENG_DONE)
        .await
        .unwrap();
    assert_eq!(moved.state.kind, "completed");
    let unassigned = client.set_issue_assignee(&created.id, None).await.unwrap();
    assert_eq!(unassigned.assignee, None);
    assert_eq!(fake.issue(&created.id).unwrap()["state"]["name"], "Done");

    let comment = client
        .create_comment(&created.id, "Done and dusted")
        .await
        .unwrap();
    assert_eq!(comment.issue.unwrap().identifier, "ENG-4");
    assert_eq!(comment.user.unwrap().id, seed::VIEWER);
    assert_eq!(fake.comment_count(&created.id), 1);

    // Our JSON is snake_case, labels a plain list.
    let out = serde_json::to_value(&moved).unwrap();
    assert_eq!(out["priority_label"], "Urgent");
    assert_eq!(out["labels"][0]["name"], "Bug");
    assert_eq!(out["state"]["type"], "completed");
}

#[tokio::test]
async fn the_same_idempotency_key_creates_one_issue() {
    let fake = FakeLinear::start().await;
    let client = fake.client();
    let first = client
        .create_issue_idempotent("req-42", &new_issue("Once"))
        .await
        .unwrap();
    let again = client
        .create_issue_idempotent("req-42", &new_issue("Once"))
        .await
        .unwrap();
    assert!(!first.replayed && again.replayed);
    assert_eq!(first.issue.id, again.issue.id);
    assert_eq!(first.issue.id, vorg_linear::issue_id_for_key("req-42"));
    assert_eq!(fake.created_issue_count(), 1);
    let other = client
        .create_issue_idempotent("req-43", &new_issue("Twice"))
        .await
        .unwrap();
    assert_ne!(other.issue.id, first.issue.id);
}

#[tokio::test]
async fn a_short_rate_limit_is_waited_out() {
    let fake = FakeLinear::start().await;
    fake.rate_limit_next(2, Duration::from_millis(300));
    let started = Instant::now();
    let me = fake.client().viewer().await.unwrap();
    assert_eq!(me.id, seed::VIEWER);
    assert_eq!(fake.request_count(), 3);
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out() {
    let fake = FakeLinear::start().await;
    fake.rate_limit_next_with_429(1, Duration::from_secs(1));
    let started = Instant::now();
    fake.client().teams().await.unwrap();
    assert_eq!(fake.request_count(), 2);
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn a_distant_reset_fails_at_once_with_the_reset_time() {
    let fake = FakeLinear::start().await;
    fake.rate_limit_next(1, Duration::from_secs(3600));
    let err = fake.client().viewer().await.unwrap_err();
    let LinearError::RateLimited {
        reset_at: Some(reset_at),
        retry_after: Some(wait),
    } = &err
    else {
        panic!("{err:?}")
    };
    let in_an_hour = chrono::Utc::now() + chrono::Duration::hours(1);
    assert!(
        (*reset_at - in_an_hour).num_seconds().abs() < 5,
        "{reset_at}"
    );
    assert!(*wait > Duration::from_secs(3500));
    assert!(err.to_string().contains("resets at"), "{err}");
    assert_eq!(
        fake.request_count(),
        1,
        "no retry for a reset beyond max_retry_wait"
    );
}

#[tokio::test]
async fn retries_stop_after_max_retries() {
    let fake = FakeLinear::start().await;
    fake.rate_limit_next(5, Duration::from_millis(50));
    let client = client_with(&fake, |c| c.max_retries = 1);
    let err = client.viewer().await.unwrap_err();
    assert!(matches!(err, LinearError::RateLimited { .. }), "{err:?}");
    assert_eq!(fake.request_count(), 2);
}

#[tokio::test]
async fn a_wrong_or_revoked_key_is_an_auth_error_naming_the_setting() {
    let fake = FakeLinear::start().await;
    let wrong = client_with(&fake, |c| c.api_key = "lin_api_wrongwrongwrong".into());
    let err = wrong.viewer().await.unwrap_err();
    assert!(matches!(err, LinearError::Auth { .. }), "{err:?}");
    assert!(err.to_string().contains("LINEAR_API_KEY"), "{err}");

    let client = fake.client();
    client.viewer().await.unwrap();
    fake.revoke_key();
    let err = client.teams().await.unwrap_err();
    assert!(matches!(err, LinearError::Auth { .. }), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("wrongwrong"));
}

#[tokio::test]
async fn graphql_errors_with_http_200_are_errors() {
    let fake = FakeLinear::start().await;
    let client = fake.client();

    fake.fail_next(1, "Argument Validation Error", "INVALID_INPUT");
    let err = client.teams().await.unwrap_err();
    let LinearError::GraphQl {
        status,
        code,
        messages,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!((*status, code.as_deref()), (200, Some("INVALID_INPUT")));
    assert_eq!(messages, &["Argument Validation Error"]);

    // A state of another team is refused by the fake as Linear refuses it.
    let bad = NewIssue {
        state_id: Some(seed::STATE_GROWTH_TODO.into()),
        ..new_issue("x")
    };
    let err = client.create_issue(&bad).await.unwrap_err();
    assert_eq!(err.code(), Some("INVALID_INPUT"), "{err:?}");
    assert_eq!(fake.created_issue_count(), 0);

    let err = client.issue("ENG-999").await.unwrap_err();
    assert!(matches!(err, LinearError::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn the_fake_refuses_documents_that_do_not_validate() {
    let fake = FakeLinear::start().await;
    let resp = reqwest::Client::new()
        .post(fake.url())
        .header("authorization", FAKE_API_KEY)
        .json(&json!({ "query": "query Bad { viewer { id nosuchfield } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nosuchfield")
    );

    // Variables are checked against the schema's input types too.
    let resp = reqwest::Client::new()
        .post(fake.url())
        .header("authorization", FAKE_API_KEY)
        .json(&json!({
            "query": vorg_linear::documents::ISSUES.text,
            "variables": { "first": 5, "filter": { "team": { "idd": { "eq": "x" } } } }
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn an_upstream_that_never_answers_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config =
        LinearConfig::new(FAKE_API_KEY).with_endpoint(format!("http://{addr}/graphql"));
    config.timeout = Duration::from_millis(300);
    let err = LinearClient::new(config)
        .unwrap()
        .viewer()
        .await
        .unwrap_err();
    assert!(matches!(err, LinearError::Timeout), "{err:?}");
    drop(listener);
}

#[tokio::test]
async fn the_key_never_shows_in_errors_or_debug_output() {
    let fake = FakeLinear::start().await;
    let client = fake.client();
    let mut seen = vec![format!("{:?}", fake.config()), format!("{client:?}")];

    fake.rate_limit_next(1, Duration::from_secs(3600));
    seen.push(format!("{0} {0:?}", client.viewer().await.unwrap_err()));
    fake.fail_next(1, &format!("echoing {FAKE_API_KEY}"), "INTERNAL_ERROR");
    seen.push(format!("{0} {0:?}", client.viewer().await.unwrap_err()));
    fake.revoke_key();
    seen.push(format!("{0} {0:?}", client.viewer().await.unwrap_err()));
    let closed = client_with(&fake, |c| c.endpoint = "http://127.0.0.1:9/graphql".into());
    seen.push(format!("{0} {0:?}", closed.viewer().await.unwrap_err()));

    for text in &seen {
        assert!(!text.contains(FAKE_API_KEY), "{text}");
        assert!(!text.contains("fake0000000000"), "{text}");
    }
    assert!(seen[0].contains("[redacted]"), "{}", seen[0]);
}
