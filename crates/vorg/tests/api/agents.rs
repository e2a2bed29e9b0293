//! Keys an agent can be trusted with: permissions instead of whole roles, limits of their
//! own (models, budgets, rates, addresses), spend on the token, enrolments — and the
//! OpenAI-exact door and the MCP server driven by the official Python clients.

use std::process::Command;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use vorg_domain::{Role, Secret};
use vorg_store::Backend;

use crate::{both, helpers::*};

both!(
    an_admin_mints_an_engineer_key_or_a_narrower_one,
    a_token_cannot_exceed_its_minter_and_a_limited_token_mints_nothing,
    a_tokens_model_list_rate_and_addresses_are_enforced,
    a_tokens_budget_refuses_in_openai_shape_and_its_spend_is_shown,
    an_agent_enrols_once_with_the_permissions_it_was_given,
    the_openai_client_raises_its_own_errors_and_embeds,
    the_official_mcp_client_drives_vorg_over_http_and_stdio,
    embeddings_pass_through_to_openai_and_are_priced,
);

async fn embeddings_pass_through_to_openai_and_are_priced(backend: Backend) {
    let (_upstream, app) = with_openai(backend).await;
    let admin = app.admin().await;
    let (_, t) = mint(&app, &admin, json!({ "name": "e", "roles": ["engineer"] })).await;
    let (id, token) = (t["id"].as_i64().unwrap(), secret(&t));
    let resp = app
        .client
        .post(app.url("/v1/embeddings"))
        .bearer_auth(&token)
        .json(&json!({ "model": "openai/text-embedding-3-large", "input": ["a", "b"] }))
        .send()
        .await
        .unwrap();
    let (status, body) = read(resp).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    assert_eq!(body["usage"]["prompt_tokens"], 8);
    // 8 tokens at $0.13 a million, charged to the token.
    let mut spent = 0;
    for _ in 0..50 {
        let (_, detail) = app.get(&format!("/auth/tokens/{id}"), &admin).await;
        spent = (detail["spend"]["total_usd"].as_f64().unwrap() * 1e6).round() as i64;
        if spent > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(spent >= 1, "8 tokens at $0.13/M were not charged: {spent}");
    // A bad body is OpenAI's 400 naming the param.
    let resp = app
        .client
        .post(app.url("/v1/embeddings"))
        .bearer_auth(&token)
        .json(&json!({ "model": "openai/text-embedding-3-large", "input": [] }))
        .send()
        .await
        .unwrap();
    let (status, body) = read(resp).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["param"], "input", "{body}");
}

/// vorg with its `openai` provider pointed at a scripted OpenAI-compatible upstream.
async fn with_openai(backend: Backend) -> (Scripted, TestApp) {
    let (upstream, url) = scripted(&["fine"]).await;
    let app = TestApp::spawn_with(backend, |s| {
        s.openai_api_key = Some(Secret::new("sk-test-0123456789abcdef"));
        s.openai_base_url = url;
    })
    .await;
    (upstream, app)
}

async fn mint(app: &TestApp, by: &str, body: Value) -> (StatusCode, Value) {
    app.post("/auth/tokens", Some(by), body).await
}

fn secret(created: &Value) -> String {
    created["token"].as_str().unwrap().to_owned()
}

async fn an_admin_mints_an_engineer_key_or_a_narrower_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    // Equal to `engineer`, though the admin does not hold that role.
    let (status, eng) = mint(
        &app,
        &admin,
        json!({ "name": "crew", "roles": ["engineer"] }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{eng}");
    assert_eq!(eng["roles"], json!(["engineer"]));
    let eng = secret(&eng);
    let (_, me) = app.get("/auth/me", &eng).await;
    assert!(
        me["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("hold_meetings"))
    );
    assert!(
        !me["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("manage_users"))
    );
    assert_eq!(app.get("/users", &eng).await.0, StatusCode::FORBIDDEN);
    assert_eq!(app.get("/runs", &eng).await.0, StatusCode::OK);
    // Narrower than any role: two permissions.
    let (status, narrow) = mint(
        &app,
        &admin,
        json!({ "name": "reader", "permissions": ["use_llm", "view_runs"] }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{narrow}");
    assert_eq!(narrow["permissions"], json!(["view_runs", "use_llm"]));
    let narrow = secret(&narrow);
    assert_eq!(app.get("/runs", &narrow).await.0, StatusCode::OK);
    let (status, body) = app.get("/personas", &narrow).await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "forbidden");
    assert!(
        body["detail"].as_str().unwrap().contains("view_org"),
        "{body}"
    );
    let (status, _) = app
        .post("/meetings/standup", Some(&narrow), json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A run it starts cannot do more than the token: the token's permissions are recorded.
    let (_, me) = app.get("/auth/me", &narrow).await;
    assert_eq!(
        me["permissions"],
        json!(["view_self", "view_runs", "use_llm"])
    );
}

async fn a_token_cannot_exceed_its_minter_and_a_limited_token_mints_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.admin().await;
    let (_, engineer) = app.user_with("eng@example.com", &[Role::Engineer]).await;
    let (status, body) = mint(
        &app,
        &engineer,
        json!({ "name": "x", "permissions": ["use_llm", "manage_users", "launch"] }),
    )
    .await;
    assert_problem(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
    assert_eq!(field_names(&body), ["permissions[1]", "permissions[2]"]);
    let (status, body) = mint(
        &app,
        &engineer,
        json!({ "name": "x", "roles": ["approver"] }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("you do not hold the role approver"),
        "{body}"
    );
    let (status, body) = mint(
        &app,
        &engineer,
        json!({ "name": "x", "limits": { "requests_per_minute": 0, "allowed_ips": ["nowhere"], "daily_budget_usd": -1 } }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        field_names(&body),
        [
            "limits.daily_budget_usd",
            "limits.requests_per_minute",
            "limits.allowed_ips"
        ]
    );
    // A key with limits cannot mint an unlimited sibling, nor lift its own limits.
    let (_, limited) = mint(
        &app,
        &engineer,
        json!({ "name": "agent", "limits": { "requests_per_minute": 100 } }),
    )
    .await;
    let id = limited["id"].as_i64().unwrap();
    let limited = secret(&limited);
    let (status, _) = mint(&app, &limited, json!({ "name": "escape" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/auth/tokens/{id}"),
            Some(&limited),
            Some(json!({ "limits": {} })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Its owner (a human session) can.
    let (status, changed) = app
        .call(
            Method::PATCH,
            &format!("/auth/tokens/{id}"),
            Some(&engineer),
            Some(json!({ "limits": { "requests_per_minute": 5, "models": ["simulated/*"] } })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(
        changed["limits"],
        json!({ "requests_per_minute": 5, "models": ["simulated/*"] })
    );
}

async fn chat(app: &TestApp, token: &str, model: &str) -> reqwest::Response {
    app.client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(token)
        .json(&json!({ "model": model, "max_tokens": 10, "messages": [{ "role": "user", "content": "Hi" }] }))
        .send()
        .await
        .unwrap()
}

async fn a_tokens_model_list_rate_and_addresses_are_enforced(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let (_, t) = mint(
        &app,
        &admin,
        json!({ "name": "a", "roles": ["engineer"], "limits": { "models": ["openai/*"], "requests_per_minute": 4 } }),
    )
    .await;
    let token = secret(&t);
    // The model allow-list: /v1/models shows nothing it cannot use; a call is refused in
    // OpenAI's shape, naming the list.
    let (status, models) = app.get("/v1/models", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        models["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["id"].as_str().unwrap().starts_with("openai/")),
        "{models}"
    );
    let resp = chat(&app, &token, "simulated/sim-1").await;
    assert_eq!(resp.headers()["x-ratelimit-limit-requests"], "4");
    let (status, body) = read(resp).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "model_not_allowed");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("openai/*"),
        "{body}"
    );
    // The request rate: 4 a minute, counted over every route (2 so far).
    assert_eq!(app.get("/runs", &token).await.0, StatusCode::OK);
    assert_eq!(app.get("/runs", &token).await.0, StatusCode::OK);
    let resp = chat(&app, &token, "simulated/sim-1").await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(resp.headers()["x-ratelimit-remaining-requests"], "0");
    let (_, body) = read(resp).await;
    assert_eq!(body["error"]["code"], "rate_limit_exceeded", "{body}");
    let (status, body) = app.get("/runs", &token).await;
    assert_problem(status, &body, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    // Client addresses: the token works only from its ranges.
    let (_, far) = mint(
        &app,
        &admin,
        json!({ "name": "far", "limits": { "allowed_ips": ["10.0.0.0/8"] } }),
    )
    .await;
    let (status, body) = app.get("/runs", &secret(&far)).await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "refused");
    assert!(
        body["detail"].as_str().unwrap().contains("127.0.0.1"),
        "{body}"
    );
    let (_, near) = mint(
        &app,
        &admin,
        json!({ "name": "near", "limits": { "allowed_ips": ["127.0.0.1", "::1"] } }),
    )
    .await;
    assert_eq!(app.get("/runs", &secret(&near)).await.0, StatusCode::OK);
}

async fn a_tokens_budget_refuses_in_openai_shape_and_its_spend_is_shown(backend: Backend) {
    let (_upstream, app) = with_openai(backend).await;
    let admin = app.admin().await;
    // Each scripted answer costs 50 prompt + 80 completion tokens of gpt-4o-mini: $0.0000555.
    let (_, t) = mint(
        &app,
        &admin,
        json!({ "name": "thrifty", "roles": ["engineer"], "limits": { "daily_budget_usd": 0.0001 } }),
    )
    .await;
    let (id, token) = (t["id"].as_i64().unwrap(), secret(&t));
    let mut refused = None;
    // Settlements are applied just after each answer (off the response path): pace the calls
    // so each sees the last one's real cost.
    for _ in 0..30 {
        let resp = chat(&app, &token, "openai/gpt-4o-mini").await;
        if resp.status() == StatusCode::PAYMENT_REQUIRED {
            refused = Some(resp);
            break;
        }
        assert_eq!(resp.status(), StatusCode::OK);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let resp = refused.expect("the token's budget refuses a call");
    assert_eq!(resp.headers()["x-should-retry"], "false");
    let (_, body) = read(resp).await;
    assert_eq!(body["error"]["code"], "budget_exceeded");
    assert_eq!(body["error"]["budget"]["scope"], "token", "{body}");
    assert_eq!(body["error"]["budget"]["subject"], id.to_string());
    assert_eq!(body["error"]["budget"]["limit_usd"], 0.0001);
    let (status, detail) = app.get(&format!("/auth/tokens/{id}"), &admin).await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["spend"]["today_usd"], detail["spend"]["total_usd"]);
    assert!(
        detail["spend"]["today_usd"].as_f64().unwrap() >= 0.000111,
        "{detail}"
    );
    assert_eq!(detail["spend"]["daily_headroom_usd"], 0.0);
    assert!(detail["last_used_at"].is_string());
    assert!(detail.get("token").is_none(), "never the secret");
    // Only its owner (or an admin) reads it.
    let (_, other) = app.user_with("other@example.com", &[Role::Engineer]).await;
    assert_eq!(
        app.get(&format!("/auth/tokens/{id}"), &other).await.0,
        StatusCode::NOT_FOUND
    );
}

async fn an_agent_enrols_once_with_the_permissions_it_was_given(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let (status, e) = app
        .post(
            "/auth/enrolments",
            Some(&admin),
            json!({ "name": "research agent", "roles": ["engineer"], "permissions": ["use_llm", "view_runs", "hold_meetings"], "limits": { "requests_per_minute": 100 }, "expires_in_hours": 2 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{e}");
    let invite = e["enrolment_token"].as_str().unwrap().to_owned();
    assert!(invite.starts_with("vorgenrol_"));
    // It is no API token.
    assert_eq!(
        app.get("/auth/me", &invite).await.0,
        StatusCode::UNAUTHORIZED
    );
    let enrol = |email: &str| json!({ "enrolment_token": invite, "email": email });
    let (status, key) = app
        .post("/auth/enrol", None, enrol("agent@example.com"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let key_secret = secret(&key);
    let (_, me) = app.get("/auth/me", &key_secret).await;
    assert_eq!(me["email"], "agent@example.com");
    assert_eq!(me["roles"], json!(["engineer"]));
    assert_eq!(
        me["permissions"],
        json!(["view_self", "view_runs", "use_llm", "hold_meetings"])
    );
    assert_eq!(
        app.get("/personas", &key_secret).await.0,
        StatusCode::FORBIDDEN
    );
    // Once only.
    let (status, body) = app
        .post("/auth/enrol", None, enrol("agent2@example.com"))
        .await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED, "unauthenticated");
    let (status, _) = app
        .post(
            "/auth/enrol",
            None,
            json!({ "enrolment_token": "vorgenrol_guess", "email": "x@example.com" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, listed) = app.get("/auth/enrolments", &admin).await;
    assert!(listed["items"][0]["used_at"].is_string(), "{listed}");
    assert!(listed["items"][0].get("enrolment_token").is_none());
    // Only admins invite.
    let (status, _) = app
        .post(
            "/auth/enrolments",
            Some(&key_secret),
            json!({ "name": "x", "roles": ["engineer"] }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// The venv made by scripts/ensure-python-openai.sh (make test runs it first).
fn python() -> String {
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/pyenv/bin/python");
    assert!(
        std::path::Path::new(venv).exists(),
        "the Python clients are missing: run `bash scripts/ensure-python-openai.sh` (make test does)"
    );
    venv.to_owned()
}

async fn run_python(args: Vec<String>) -> String {
    let out = tokio::task::spawn_blocking(move || Command::new(python()).args(&args).output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

async fn the_openai_client_raises_its_own_errors_and_embeds(backend: Backend) {
    let (_upstream, app) = with_openai(backend).await;
    let admin = app.admin().await;
    let (_, broke) = mint(
        &app,
        &admin,
        json!({ "name": "broke", "roles": ["engineer"], "limits": { "daily_budget_usd": 0.000001 } }),
    )
    .await;
    let (_, slow) = mint(
        &app,
        &admin,
        json!({ "name": "slow", "roles": ["engineer"], "limits": { "requests_per_minute": 1 } }),
    )
    .await;
    let (_, ok) = mint(&app, &admin, json!({ "name": "ok", "roles": ["engineer"] })).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/openai_errors.py");
    let out = run_python(vec![
        script.into(),
        app.url("/v1"),
        secret(&ok),
        secret(&broke),
        secret(&slow),
    ])
    .await;
    let seen: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(seen["bad_key"]["class"], "AuthenticationError", "{seen}");
    assert_eq!(seen["bad_key"]["code"], "invalid_api_key");
    assert_eq!(seen["unknown_model"]["class"], "NotFoundError");
    assert_eq!(seen["unknown_model"]["code"], "model_not_found");
    assert_eq!(seen["bad_body"]["class"], "BadRequestError");
    assert_eq!(seen["bad_body"]["param"], "messages");
    assert_eq!(seen["budget"]["status"], 402);
    assert!(
        seen["budget"]["message"]
            .as_str()
            .unwrap()
            .contains("token budget"),
        "{seen}"
    );
    assert_eq!(seen["rate"]["class"], "RateLimitError");
    assert!(
        seen["rate"]["retry_after"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert_eq!(seen["embedding"]["dims"], 256);
    assert_eq!(seen["embedding"]["count"], 2);
    assert!(seen["embedding"]["prompt_tokens"].as_i64().unwrap() > 0);
    // The SDK did not retry the budget refusal: one usage-less attempt, one refusal event.
    let refusals = app
        .store
        .events_after(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "budget.refused")
        .count();
    assert_eq!(refusals, 1);
    // Embeddings are accounted like chat.
    let (_, usage) = app.get("/usage/summary?group_by=model", &admin).await;
    assert!(usage["rows"].to_string().contains("sim-1"), "{usage}");
}

async fn the_official_mcp_client_drives_vorg_over_http_and_stdio(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let (_, full) = mint(
        &app,
        &admin,
        json!({ "name": "full", "roles": ["engineer"] }),
    )
    .await;
    let (_, narrow) = mint(
        &app,
        &admin,
        json!({ "name": "narrow", "permissions": ["view_runs", "use_llm"] }),
    )
    .await;
    let (full, narrow) = (secret(&full), secret(&narrow));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/mcp_client.py");
    let vorg = env!("CARGO_BIN_EXE_vorg");
    // The SDK's own negotiation (2026-07-28: subscriptions/listen) and the initialize
    // handshake (2025-11-25: resources/subscribe), over streamable HTTP and over stdio.
    for mode in ["auto", "legacy"] {
        let out = run_python(vec![
            script.into(),
            "http".into(),
            app.url("/mcp"),
            full.clone(),
            narrow.clone(),
            mode.into(),
        ])
        .await;
        assert!(out.contains("mcp client ok (http)"), "{out}");
        let out = run_python(vec![
            script.into(),
            "stdio".into(),
            vorg.into(),
            app.base.clone(),
            full.clone(),
            narrow.clone(),
            mode.into(),
        ])
        .await;
        assert!(out.contains("mcp client ok (stdio)"), "{out}");
    }
    // Bad JSON-RPC gets a JSON-RPC error; no cookie, no entry.
    let post = |body: &'static str| {
        app.client
            .post(app.url("/mcp"))
            .bearer_auth(&full)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body)
            .send()
    };
    let (status, body) = read(post("{not json").await.unwrap()).await;
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (StatusCode::BAD_REQUEST, Some(-32700)),
        "{body}"
    );
    let (status, body) = read(post(r#"{"hello": 1}"#).await.unwrap()).await;
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (StatusCode::BAD_REQUEST, Some(-32600)),
        "{body}"
    );
    let resp = app
        .client
        .post(app.url("/mcp"))
        .header("cookie", format!("vorg_session={full}"))
        .header("x-vorg-csrf", "1")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // Every tool call was audited with the token's owner as actor.
    let (_, audit) = app.get("/audit?limit=200", &admin).await;
    let tool_calls = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "mcp.tool_call")
        .count();
    assert!(tool_calls >= 4, "{audit}");
}

/// Two `vorg serve` processes on one PostgreSQL: a token's request rate and budget are one
/// count and one ledger, so concurrent calls spread over both never pass either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_limits_hold_across_two_servers_on_postgres() {
    let (_upstream, url) = scripted(&["fine"]).await;
    let first = TestApp::spawn_with(Backend::Postgres, |s| {
        s.openai_api_key = Some(Secret::new("sk-test-0123456789abcdef"));
        s.openai_base_url = url;
    })
    .await;
    let second = TestApp::start(first.settings.clone()).await;
    let admin = first.admin().await;
    let apps = [&first, &second];

    // The rate: 10 a minute over 30 concurrent requests spread over both servers.
    let (_, t) = mint(
        &first,
        &admin,
        json!({ "name": "rated", "roles": ["engineer"], "limits": { "requests_per_minute": 10 } }),
    )
    .await;
    let rated = secret(&t);
    let minute = || chrono::Utc::now().timestamp() / 60;
    let started = minute();
    let calls = (0..30).map(|i| {
        let (app, token) = (apps[i % 2], rated.clone());
        async move { app.get("/runs", &token).await.0 }
    });
    let statuses = futures_util::future::join_all(calls).await;
    let admitted = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(admitted + limited, 30, "{statuses:?}");
    let windows = usize::try_from(minute() - started + 1).unwrap();
    assert!(
        admitted <= 10 * windows,
        "{admitted} admitted over {windows} minute(s)"
    );
    if windows == 1 {
        assert_eq!(admitted, 10);
    }

    // The budget: $0.0003 a day; each call reserves its worst case (100 completion tokens
    // of gpt-4o-mini) and really costs 50 + 80 tokens, so at most a few fit.
    let (_, t) = mint(
        &first,
        &admin,
        json!({ "name": "budgeted", "roles": ["engineer"], "limits": { "daily_budget_usd": 0.0003 } }),
    )
    .await;
    let (id, budgeted) = (t["id"].as_i64().unwrap(), secret(&t));
    let calls = (0..16).map(|i| {
        let (app, token) = (apps[i % 2], budgeted.clone());
        async move {
            app.client
                .post(app.url("/v1/chat/completions"))
                .bearer_auth(&token)
                .json(&json!({ "model": "openai/gpt-4o-mini", "max_tokens": 100, "messages": [{ "role": "user", "content": "Hi" }] }))
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    let statuses = futures_util::future::join_all(calls).await;
    assert!(
        statuses.contains(&StatusCode::PAYMENT_REQUIRED),
        "{statuses:?}"
    );
    assert!(statuses.contains(&StatusCode::OK), "{statuses:?}");
    // Usage rows are written just after each answer: wait for them.
    let admitted = statuses.iter().filter(|s| **s == StatusCode::OK).count() as i64;
    let mut today = 0;
    for _ in 0..50 {
        let now = chrono::Utc::now();
        [today, _, _] = first
            .store
            .token_spend(id, [now - chrono::Duration::days(1), now])
            .await
            .unwrap();
        if today >= admitted * 55 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(today > 0);
    assert!(
        today <= 300,
        "the token spent {today} micro-dollars of a 300 budget"
    );
}
