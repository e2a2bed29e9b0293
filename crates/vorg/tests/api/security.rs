//! Regressions of the security review (issue 14): each test reproduces one hole as a client
//! would and asserts that it is closed.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vorg_domain::{Role, Secret};
use vorg_store::Backend;

use crate::{
    both,
    helpers::{TestApp, assert_problem, read},
    runs::wait_ended,
};

both!(
    a_missing_runs_stream_costs_nothing,
    stream_caps_answer_429_and_free_their_slots,
    open_streams_close_when_their_token_is_revoked,
    stream_tokens_die_with_their_parent_token,
    tokens_minted_by_an_expiring_credential_expire_with_it,
    a_run_may_use_only_the_models_its_starter_may,
    a_run_spends_within_its_starters_budget,
    run_limits_stop_a_run,
    checkpoints_come_a_page_at_a_time,
    only_the_owner_publishes_a_workflows_next_version,
    a_huge_participant_list_is_refused_before_any_query,
    only_the_starter_cancels_or_charges_a_run,
    behind_a_trusted_proxy_each_client_has_its_own_login_bucket,
    a_workflow_tool_node_acts_within_its_starters_permissions,
    an_approvers_meeting_files_no_linear_issues,
);

async fn demo_run(app: &TestApp, token: &str, steps: u64, step_ms: u64) -> i64 {
    let (status, run) = app
        .post(
            "/runs/start_demo",
            Some(token),
            json!({ "steps": steps, "step_ms": step_ms }),
        )
        .await;
    assert!(status.is_success(), "{run}");
    run["run_id"].as_i64().unwrap()
}

async fn open_stream(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn a_missing_runs_stream_costs_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    for _ in 0..200 {
        let resp = open_stream(&app, "/streams/runs/987654", &admin).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    }
    // No run channel was made for the missing run (one used to live 15 s per request).
    assert_eq!(app_hub_clients(&app, &admin).await, 0.0);
}

async fn app_hub_clients(app: &TestApp, token: &str) -> f64 {
    app.metric(token, "vorg_stream_run_channels")
        .await
        .unwrap_or(0.0)
}

async fn stream_caps_answer_429_and_free_their_slots(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.streams_per_caller = 2;
        s.streams_per_ip = 3;
    })
    .await;
    let admin = app.admin().await;
    let run = demo_run(&app, &admin, 50, 200).await;
    let path = format!("/streams/runs/{run}");
    let first = open_stream(&app, &path, &admin).await;
    let second = open_stream(&app, "/streams/events", &admin).await;
    assert_eq!(
        (first.status(), second.status()),
        (StatusCode::OK, StatusCode::OK)
    );
    let third = open_stream(&app, &path, &admin).await;
    assert_eq!(third.headers()["retry-after"], "5");
    let (status, body) = read(third).await;
    assert_problem(
        status,
        &body,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_streams",
    );
    assert!(
        body["detail"].as_str().unwrap().contains("credential"),
        "{body}"
    );
    // Another caller from the same address: the per-address cap (3) is next.
    let (_, viewer) = app.user_with("v@example.com", &[Role::Viewer]).await;
    let fourth = open_stream(&app, &path, &viewer).await;
    assert_eq!(fourth.status(), StatusCode::OK);
    let (status, body) = read(open_stream(&app, &path, &viewer).await).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("address"),
        "{body}"
    );
    // A closed stream gives its slot back.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let again = open_stream(&app, &path, &admin).await;
        if again.status() == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "the slot was never freed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Health and login still answer while every slot is taken.
    let health = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

async fn api_token(app: &TestApp, session: &str, body: Value) -> (i64, String) {
    let (status, created) = app.post("/auth/tokens", Some(session), body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    (
        created["id"].as_i64().unwrap(),
        created["token"].as_str().unwrap().to_owned(),
    )
}

/// Reads `resp` until the server ends it; fails if that takes longer than `within`.
async fn ends_within(mut resp: reqwest::Response, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, resp.chunk()).await {
            Ok(Ok(Some(_))) => continue,
            Ok(Ok(None)) | Ok(Err(_)) => return,
            Err(_) => panic!("the stream was still open after {within:?}"),
        }
    }
}

async fn open_streams_close_when_their_token_is_revoked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let (id, token) = api_token(&app, &admin, json!({ "name": "watcher" })).await;
    let events = open_stream(&app, "/streams/events", &token).await;
    assert_eq!(events.status(), StatusCode::OK);
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/auth/tokens/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    ends_within(events, Duration::from_secs(8)).await;
}

async fn stream_tokens_die_with_their_parent_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let (id, token) = api_token(&app, &admin, json!({ "name": "console" })).await;
    let (status, minted) = app
        .post("/auth/stream-token", Some(&token), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{minted}");
    let stream_token = minted["token"].as_str().unwrap().to_owned();
    let url = app.url(&format!("/streams/events?access_token={stream_token}"));
    let open = app.client.get(&url).send().await.unwrap();
    assert_eq!(open.status(), StatusCode::OK);
    app.call(
        Method::DELETE,
        &format!("/auth/tokens/{id}"),
        Some(&admin),
        None,
    )
    .await;
    // The stream opened with it ends, and the stream token opens nothing any more.
    ends_within(open, Duration::from_secs(8)).await;
    let again = app.client.get(&url).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
}

async fn tokens_minted_by_an_expiring_credential_expire_with_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let (_, engineer) = app.user_with("e@example.com", &[Role::Engineer]).await;
    let (_, short) = api_token(
        &app,
        &engineer,
        json!({ "name": "short", "expires_in_days": 1 }),
    )
    .await;
    // Asked for no expiry, or for longer: capped at the parent's day.
    let (status, child) = app
        .post("/auth/tokens", Some(&short), json!({ "name": "child" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{child}");
    let expiry = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v["expires_at"].as_str().expect("an expiry")).unwrap()
    };
    let in_a_day = chrono::Utc::now() + chrono::Duration::days(1);
    assert!(expiry(&child) <= in_a_day + chrono::Duration::seconds(5));
    let (_, longer) = app
        .post(
            "/auth/tokens",
            Some(&short),
            json!({ "name": "longer", "expires_in_days": 30 }),
        )
        .await;
    assert!(expiry(&longer) <= in_a_day + chrono::Duration::seconds(5));
    // A session (a JWT of 2 hours) cannot mint a never-expiring token either.
    let (_, from_session) = app
        .post("/auth/tokens", Some(&engineer), json!({ "name": "s" }))
        .await;
    assert!(expiry(&from_session) <= chrono::Utc::now() + chrono::Duration::hours(3));
    // An admin (manage_users) may issue long-lived tokens for agents.
    let (_, agent) = app
        .post("/auth/tokens", Some(&admin), json!({ "name": "agent" }))
        .await;
    assert!(agent["expires_at"].is_null(), "{agent}");
}

/// The shipped policies with `edit` applied, put in force by `admin`.
async fn set_policies(app: &TestApp, admin: &str, edit: impl Fn(String) -> String) {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../governance/policies.yaml");
    let text = edit(std::fs::read_to_string(path).unwrap());
    let (status, body) = crate::org::put_yaml(app, admin, &text).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn start_async(app: &TestApp, token: &str, path: &str, body: Value) -> i64 {
    let resp = app
        .client
        .post(app.url(path))
        .bearer_auth(token)
        .header("Prefer", "respond-async")
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, started) = read(resp).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    started["run_id"].as_i64().unwrap()
}

async fn a_run_may_use_only_the_models_its_starter_may(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    set_policies(&app, &admin, |p| {
        p.replace("growth: [\"*\"]", "growth: [\"simulated/sim-1\"]")
    })
    .await;
    let (_, growth) = app.user_with("g@example.com", &[Role::Growth]).await;
    let body = json!({ "participants": ["ceo.org.v1"], "model": "simulated/sim-2" });
    let id = start_async(&app, &growth, "/meetings/standup", body).await;
    let run = wait_ended(&app, &admin, id).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert!(
        run["error"].as_str().unwrap().contains("not allowed"),
        "{run}"
    );
    // The model the growth role may use works.
    let body = json!({ "participants": ["ceo.org.v1"], "model": "simulated/sim-1" });
    let id = start_async(&app, &growth, "/meetings/standup", body).await;
    let run = wait_ended(&app, &admin, id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
}

/// An OpenAI-compatible upstream whose every answer used 1,000 prompt and 3,000
/// completion tokens ($0.00195 on gpt-4o-mini).
async fn costly_upstream() -> String {
    async fn chat(axum::Json(_req): axum::Json<Value>) -> axum::Json<Value> {
        axum::Json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1741569952,
            "model": "gpt-4o-mini",
            "choices": [{ "index": 0, "finish_reason": "stop",
                "message": { "role": "assistant", "content": "{\"yesterday\": [], \"today\": [], \"blockers\": [], \"summary\": \"s\", \"action_items\": []}" } }],
            "usage": { "prompt_tokens": 1000, "completion_tokens": 3000, "total_tokens": 4000 }
        }))
    }
    let router = axum::Router::new().route("/v1/chat/completions", axum::routing::post(chat));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    url
}

async fn a_run_spends_within_its_starters_budget(backend: Backend) {
    let url = costly_upstream().await;
    let app = TestApp::spawn_with(backend, move |s| {
        s.openai_api_key = Some(Secret::new("sk-test-0123456789abcdef"));
        s.openai_base_url = url;
        s.openai_model = "gpt-4o-mini".into();
    })
    .await;
    let admin = app.admin().await;
    set_policies(&app, &admin, |p| {
        p.replace("actor_daily_usd: 50", "actor_daily_usd: 0.002")
    })
    .await;
    let (_, engineer) = app.user_with("e@example.com", &[Role::Engineer]).await;
    // The engineer spends most of their day's budget themselves...
    let (status, spent) = app
        .post(
            "/v1/chat/completions",
            Some(&engineer),
            json!({ "model": "openai/gpt-4o-mini", "max_tokens": 10,
                    "messages": [{ "role": "user", "content": "hi" }] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{spent}");
    // (Reading usage applies the settlements still queued by the writer.)
    let (status, _) = app.get("/usage/events", &admin).await;
    assert_eq!(status, StatusCode::OK);
    // ...so a meeting they start cannot spend on their behalf, though the persona's own
    // budget has room.
    let body = json!({ "participants": ["ceo.org.v1"], "model": "openai/gpt-4o-mini" });
    let id = start_async(&app, &engineer, "/meetings/standup", body).await;
    let run = wait_ended(&app, &admin, id).await;
    assert_eq!(run["status"], "failed", "{run}");
    let error = run["error"].as_str().unwrap();
    assert!(
        error.contains("budget") && error.contains("e@example.com"),
        "{run}"
    );
}

async fn run_limits_stop_a_run(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    set_policies(&app, &admin, |p| {
        p.replace("max_llm_calls: 200", "max_llm_calls: 3")
    })
    .await;
    let steps: Vec<Value> = (0..6)
        .map(|i| json!({ "id": format!("s{i}"), "agent": "ceo", "prompt": "Say hi" }))
        .collect();
    let workflow = json!({ "engine": "dag", "name": "many", "steps": steps });
    let source = serde_yaml::to_string(&workflow).unwrap();
    let id = app.start_workflow(&admin, &source, json!({})).await;
    let run = wait_ended(&app, &admin, id).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert!(
        run["error"].as_str().unwrap().contains("run limit"),
        "{run}"
    );
    let (_, usage) = app.get("/usage/events?limit=200", &admin).await;
    let calls = usage["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["run_id"] == id)
        .count();
    assert!(calls <= 3, "{calls} calls went through");
}

const LOOP: &str = r#"
engine: graph
name: counter
state: { n: integer, log: string }
start: step
max_steps: 12
nodes:
  - { id: step, agent: ceo, prompt: "Count once more", output: log, next: step }
"#;

async fn checkpoints_come_a_page_at_a_time(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let id = app.start_workflow(&admin, LOOP, json!({})).await;
    wait_ended(&app, &admin, id).await;
    let mut steps = Vec::new();
    let mut path = format!("/runs/{id}/checkpoints?limit=5");
    loop {
        let (status, page) = app.get(&path, &admin).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 5);
        steps.extend(items.iter().map(|c| c["steps"].as_i64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/runs/{id}/checkpoints?limit=5&after={c}"),
            None => break,
        }
    }
    assert_eq!(steps, (1..=12).collect::<Vec<_>>());
    let (status, body) = app
        .get(&format!("/runs/{id}/checkpoints?limit=5000"), &admin)
        .await;
    assert_problem(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
}

async fn post_yaml(app: &TestApp, token: &str, yaml: &str) -> (StatusCode, Value) {
    crate::workflows::post_yaml(app, token, "/workflows", yaml).await
}

async fn only_the_owner_publishes_a_workflows_next_version(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let (_, alice) = app.user_with("alice@example.com", &[Role::Engineer]).await;
    let (_, mallory) = app.user_with("m@example.com", &[Role::Engineer]).await;
    let (status, saved) = post_yaml(&app, &alice, LOOP).await;
    assert_eq!(status, StatusCode::CREATED, "{saved}");
    let (status, body) = post_yaml(&app, &mallory, &LOOP.replace("Count", "Leak")).await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "refused");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("manage_workflows"),
        "{body}"
    );
    let (status, _) = post_yaml(&app, &alice, &LOOP.replace("Count", "Tally")).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, v3) = post_yaml(&app, &admin, &LOOP.replace("Count", "Sum")).await;
    assert_eq!(status, StatusCode::CREATED, "{v3}");
    assert_eq!(v3["version"], 3);
}

async fn a_huge_participant_list_is_refused_before_any_query(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let participants: Vec<String> = (0..40_000).map(|i| format!("p{i}")).collect();
    let started = Instant::now();
    let (status, body) = app
        .post(
            "/meetings/standup",
            Some(&admin),
            json!({ "participants": participants }),
        )
        .await;
    assert_problem(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
    assert_eq!(body["errors"][0]["field"], "participants", "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

async fn only_the_starter_cancels_or_charges_a_run(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let (_, alice) = app.user_with("alice@example.com", &[Role::Engineer]).await;
    let (_, bob) = app.user_with("bob@example.com", &[Role::Engineer]).await;
    let run = demo_run(&app, &alice, 30, 200).await;
    let (status, body) = app
        .post(&format!("/runs/{run}/cancel"), Some(&bob), json!({}))
        .await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "refused");
    let (status, body) = app
        .post(
            "/v1/chat/completions",
            Some(&bob),
            json!({ "model": "default", "messages": [{ "role": "user", "content": "hi" }] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let resp = app
        .client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&bob)
        .header("x-vorg-run-id", run.to_string())
        .json(&json!({ "model": "default", "messages": [{ "role": "user", "content": "hi" }] }))
        .send()
        .await
        .unwrap();
    let (status, body) = read(resp).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("someone else"),
        "{body}"
    );
    let (status, body) = app
        .post(
            "/llm/generate",
            Some(&bob),
            json!({ "prompt": "hi", "run_id": run }),
        )
        .await;
    assert_problem(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
    // The starter and admins may.
    let (status, _) = app
        .post(&format!("/runs/{run}/cancel"), Some(&alice), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let other = demo_run(&app, &alice, 30, 200).await;
    let (status, _) = app
        .post(&format!("/runs/{other}/cancel"), Some(&admin), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
}

async fn login_from(app: &TestApp, ip: &str, email: &str, password: &str) -> StatusCode {
    app.client
        .post(app.url("/auth/login"))
        .header("x-forwarded-for", ip)
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap()
        .status()
}

async fn behind_a_trusted_proxy_each_client_has_its_own_login_bucket(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        s.login_per_minute_per_account = 3;
    })
    .await;
    app.admin().await;
    app.user_with("victim@example.com", &[Role::Viewer]).await;
    for _ in 0..3 {
        let status = login_from(&app, "203.0.113.66", "victim@example.com", "wrong").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let status = login_from(&app, "203.0.113.66", "victim@example.com", "wrong").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // The victim, elsewhere, is not locked out by the attacker's failures.
    let status = login_from(
        &app,
        "198.51.100.7",
        "victim@example.com",
        crate::helpers::PASSWORD,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

const TOOL_ONLY: &str = r#"
engine: graph
name: ask-money
state: { answer: object }
start: ask
nodes:
  - id: ask
    kind: tool
    tool: submit_approval
    args: { description: "new laptops", amount_usd: 900, justification: "team" }
    output: answer
    next: END
"#;

async fn a_workflow_tool_node_acts_within_its_starters_permissions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let id = app.start_workflow(&admin, TOOL_ONLY, json!({})).await;
    let run = wait_ended(&app, &admin, id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let (_, page) = app.get("/approvals?status=pending", &admin).await;
    let approval = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["run_id"] == id)
        .cloned()
        .expect("the tool's approval");
    // The starter asked: they cannot approve it themselves.
    let me = app.get("/auth/me", &admin).await.1;
    assert_eq!(approval["requested_by"], me["id"], "{approval}");
    let aid = approval["id"].as_i64().unwrap();
    let (status, body) = app
        .post(
            &format!("/approvals/{aid}/approve"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "refused");
}

async fn an_approvers_meeting_files_no_linear_issues(backend: Backend) {
    let fake = vorg_linear::fake::FakeLinear::start().await;
    let url = fake.url();
    let app = TestApp::spawn_with(backend, move |s| {
        s.linear_api_key = Some(Secret::new(vorg_linear::fake::FAKE_API_KEY));
        s.linear_api_url = url;
    })
    .await;
    let admin = app.admin().await;
    let (_, approver) = app.user_with("a@example.com", &[Role::Approver]).await;
    let (status, out) = app
        .post(
            "/meetings/brainstorm",
            Some(&approver),
            json!({ "topic": "Pricing", "rounds": 1,
                    "linear_team_id": vorg_linear::fake::seed::TEAM_ENG }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    assert!(!out["action_items"].as_array().unwrap().is_empty(), "{out}");
    // The approver may not create Linear issues, so their meeting does not either.
    assert_eq!(out["linear_issues"], json!([]), "{out}");
    assert_eq!(fake.created_issue_count(), 0);
    let run = out["run_id"].as_i64().unwrap();
    let lines = crate::runs::log_messages(&app, &admin, run).await;
    assert!(
        lines.iter().any(|l| l.contains("create_linear_issues")),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn the_docs_pages_carry_a_content_security_policy() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    for path in ["/docs/", "/docs/swagger-initializer.js", "/openapi.json"] {
        let resp = app.client.get(app.url(path)).send().await.unwrap();
        if path != "/openapi.json" {
            assert_eq!(resp.status(), StatusCode::OK, "{path}");
            let csp = resp.headers()["content-security-policy"].to_str().unwrap();
            assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
            assert!(csp.contains("script-src 'self'"), "{csp}");
            assert_eq!(resp.headers()["x-frame-options"], "DENY");
            assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
        }
    }
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_and_database_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let app = TestApp::spawn_with(Backend::Sqlite, |s| s.database_url = None).await;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = app.settings.data_dir.clone();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("vorg.db")), 0o600);
    for side in ["vorg.db-wal", "vorg.db-shm", "jwt_secret"] {
        let p = dir.join(side);
        if p.exists() {
            assert_eq!(mode(&p) & 0o077, 0, "{side}");
        }
    }
}
