//! `/linear` against a fake Linear that validates every document against Linear's schema.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use vorg_domain::Role;
use vorg_linear::fake::{FAKE_API_KEY, FakeLinear, seed};
use vorg_store::Backend;

use crate::{
    both,
    helpers::{TestApp, assert_problem, field_names},
};

both!(
    without_a_key_every_route_says_how_to_configure_linear,
    the_originals_routes_answer_from_linear,
    creates_are_idempotent_linked_to_their_run_and_validated,
    linear_failures_become_clear_problems,
);

async fn with_linear(backend: Backend, fake: &FakeLinear) -> TestApp {
    let url = fake.url();
    TestApp::spawn_with(backend, move |s| {
        s.linear_api_key = Some(vorg_domain::Secret::new(FAKE_API_KEY));
        s.linear_api_url = url;
    })
    .await
}

async fn without_a_key_every_route_says_how_to_configure_linear(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    for path in [
        "/linear/teams",
        "/linear/cycles?team_id=t",
        "/linear/issues?team_id=t&cycle_id=c",
    ] {
        let (status, body) = app.get(path, &admin).await;
        assert_problem(
            status,
            &body,
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
        );
        assert!(
            body["detail"].as_str().unwrap().contains("LINEAR_API_KEY"),
            "{body}"
        );
    }
    let (status, body) = app
        .post(
            "/linear/issues",
            Some(&admin),
            json!({"team_id": "t", "title": "x"}),
        )
        .await;
    assert_problem(
        status,
        &body,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
    );
}

async fn the_originals_routes_answer_from_linear(backend: Backend) {
    let fake = FakeLinear::start().await;
    let app = with_linear(backend, &fake).await;
    let admin = app.admin().await;
    let (_, viewer) = app.user_with("viewer@example.com", &[Role::Viewer]).await;

    let (status, teams) = app.get("/linear/teams", &viewer).await;
    assert_eq!(status, StatusCode::OK, "{teams}");
    let keys: Vec<&str> = teams
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["key"].as_str().unwrap())
        .collect();
    assert!(keys.contains(&"ENG") && keys.contains(&"GRO"), "{teams}");

    let (status, cycles) = app
        .get(
            &format!("/linear/cycles?team_id={}", seed::TEAM_ENG),
            &admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cycles}");
    assert_eq!(cycles.as_array().unwrap().len(), 4);
    let (_, current) = app
        .get(
            &format!("/linear/cycles?team_id={}&when=current", seed::TEAM_ENG),
            &admin,
        )
        .await;
    assert_eq!(current[0]["id"], seed::CYCLE_ENG_CURRENT, "{current}");
    let (status, body) = app
        .get(
            &format!("/linear/cycles?team_id={}&when=soon", seed::TEAM_ENG),
            &admin,
        )
        .await;
    assert_problem(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
    assert_eq!(field_names(&body), ["query.when"]);

    // The original's query, and pages beyond the first.
    let (status, page) = app
        .get(
            &format!("/linear/issues?team_id={}", seed::TEAM_ENG),
            &admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let all: Vec<String> = ids(&page);
    assert_eq!(all.len(), 3, "{page}");
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/linear/issues?team_id={}&limit=1", seed::TEAM_ENG);
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = app.get(&path, &admin).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        paged.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(paged, all);
    let (_, in_cycle) = app
        .get(
            &format!(
                "/linear/issues?team_id={}&cycle_id={}",
                seed::TEAM_ENG,
                seed::CYCLE_ENG_CURRENT
            ),
            &admin,
        )
        .await;
    for issue in in_cycle["items"].as_array().unwrap() {
        assert_eq!(issue["cycle"]["id"], seed::CYCLE_ENG_CURRENT);
    }
    let (status, body) = app.get("/linear/issues?limit=0", &admin).await;
    assert_problem(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn creates_are_idempotent_linked_to_their_run_and_validated(backend: Backend) {
    let fake = FakeLinear::start().await;
    let app = with_linear(backend, &fake).await;
    let admin = app.admin().await;
    let (_, run) = app
        .post(
            "/runs/start_demo",
            Some(&admin),
            json!({"steps": 1, "step_ms": 0}),
        )
        .await;
    let run_id = run["run_id"].as_i64().unwrap();
    let body = json!({
        "team_id": seed::TEAM_ENG, "title": "Ship the console", "description": "From the standup",
        "priority": 2, "labels": ["Feature", seed::LABEL_INFRA], "run_id": run_id,
    });
    let send = |key: &'static str| {
        let req = app
            .client
            .post(app.url("/linear/issues"))
            .bearer_auth(&admin)
            .header("Idempotency-Key", key)
            .json(&body);
        async move { crate::helpers::read(req.send().await.unwrap()).await }
    };
    let (status, first) = send("standup-42-item-1").await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["replayed"], false);
    assert_eq!(first["title"], "Ship the console");
    assert_eq!(first["priority"], 2);
    let labels: Vec<&str> = first["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(labels.len(), 2, "{first}");
    let (status, again) = send("standup-42-item-1").await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["replayed"], true);
    assert_eq!(again["id"], first["id"]);
    assert_eq!(
        fake.created_issue_count(),
        1,
        "a retry made no second issue"
    );
    let (status, _) = send("standup-42-item-2").await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(fake.created_issue_count(), 2);

    // Linked back: the run shows its issues and logged them.
    let (_, detail) = app.get(&format!("/runs/{run_id}"), &admin).await;
    let linked: Vec<&str> = detail["linear_issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["identifier"].as_str().unwrap())
        .collect();
    assert_eq!(linked.len(), 2, "{detail}");
    assert!(linked.contains(&first["identifier"].as_str().unwrap()));
    let (_, logs) = app.get(&format!("/runs/{run_id}/logs"), &admin).await;
    assert!(
        logs.to_string().contains(first["url"].as_str().unwrap()),
        "{logs}"
    );

    // Bad input is named and nothing is created.
    let (status, bad) = app
        .post(
            "/linear/issues",
            Some(&admin),
            json!({"team_id": seed::TEAM_ENG, "title": " ", "priority": 9, "run_id": 999_999}),
        )
        .await;
    assert_problem(
        status,
        &bad,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
    let mut fields = field_names(&bad);
    fields.sort();
    assert_eq!(fields, ["priority", "run_id", "title"]);
    let (status, bad) = app
        .post(
            "/linear/issues",
            Some(&admin),
            json!({"team_id": seed::TEAM_ENG, "title": "x", "labels": ["nope"]}),
        )
        .await;
    assert_problem(
        status,
        &bad,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
    assert_eq!(field_names(&bad), ["labels[0]"]);
    assert_eq!(fake.created_issue_count(), 2);

    let (_, viewer) = app.user_with("viewer@example.com", &[Role::Viewer]).await;
    let (status, _) = app
        .post(
            "/linear/issues",
            Some(&viewer),
            json!({"team_id": seed::TEAM_ENG, "title": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, growth) = app.user_with("growth@example.com", &[Role::Growth]).await;
    let (status, body) = app
        .post(
            "/linear/issues",
            Some(&growth),
            json!({"team_id": seed::TEAM_GROWTH, "title": "Launch post"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn linear_failures_become_clear_problems(backend: Backend) {
    let fake = FakeLinear::start().await;
    let app = with_linear(backend, &fake).await;
    let admin = app.admin().await;
    // A short rate limit is waited out.
    fake.rate_limit_next(1, Duration::from_millis(300));
    let (status, body) = app.get("/linear/teams", &admin).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A long one is a 429 with the wait.
    fake.rate_limit_next(1, Duration::from_secs(3600));
    let resp = app
        .client
        .get(app.url("/linear/teams"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait > 3000, "{wait}");
    // A revoked key is Linear's fault, named for the operator; the key never shows.
    fake.revoke_key();
    let (status, body) = app.get("/linear/teams", &admin).await;
    assert_problem(status, &body, StatusCode::BAD_GATEWAY, "upstream_failed");
    assert!(
        body["detail"].as_str().unwrap().contains("LINEAR_API_KEY"),
        "{body}"
    );
    assert!(!body.to_string().contains(FAKE_API_KEY));
}
