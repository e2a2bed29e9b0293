//! Health, readiness, metrics, request ids, docs, graceful shutdown.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use vorg_domain::Role;
use vorg_store::Backend;

use crate::{both, helpers::*};

both!(
    health_ready_and_request_ids_answer,
    metrics_count_requests_by_route_and_status_for_admins,
    in_flight_requests_finish_on_shutdown,
);

async fn health_ready_and_request_ids_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let resp = app.client.get(app.url("/health")).send().await.unwrap();
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 36, "a uuid");
    let (status, body) = read(resp).await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "status": "ok" })));
    let (status, body) = read(app.client.get(app.url("/ready")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let want = if backend == Backend::Sqlite {
        "sqlite"
    } else {
        "postgres"
    };
    assert_eq!(body["database"], want);
    // A client's own request id is kept.
    let resp = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "abc-123");
}

async fn metrics_count_requests_by_route_and_status_for_admins(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let (_, viewer) = app.user_with("v@example.com", &[Role::Viewer]).await;
    app.get("/users/", &admin).await;
    assert_eq!(app.get("/users", &viewer).await.0, StatusCode::FORBIDDEN);
    let resp = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = resp.text().await.unwrap();
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("http_requests_total")
                && l.contains("route=\"/users\"")
                && l.contains("status=\"403\"")
        })
        .unwrap_or_else(|| panic!("no counter for GET /users 403 in:\n{text}"));
    assert!(line.contains("method=\"GET\""));
    assert!(text.contains("http_request_duration_seconds_bucket"));
    assert!(
        text.contains("route=\"unmatched\""),
        "unknown paths share one label"
    );
    assert_eq!(
        app.client
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.client
            .get(app.url("/metrics"))
            .bearer_auth(&viewer)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );

    let public = TestApp::spawn_with(backend, |s| s.metrics_public = true).await;
    assert_eq!(
        public
            .client
            .get(public.url("/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

async fn in_flight_requests_finish_on_shutdown(backend: Backend) {
    let mut app = TestApp::spawn_with(backend, |s| {
        s.allow_signup = Some(true);
        s.shutdown_grace_ms = 200;
    })
    .await;
    let admin = app.admin().await;
    // A live stream that would never end by itself must not hold shutdown up.
    let (_, run) = app
        .post(
            "/runs/start_demo",
            Some(&admin),
            json!({ "steps": 1000, "step_ms": 1000 }),
        )
        .await;
    let resp = app
        .client
        .get(app.url(&format!("/streams/runs/{}", run["run_id"])))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let mut stream = crate::sse::SseReader::new(resp);
    // Registrations hash passwords (tens of ms each, two at a time): several are in flight.
    let mut pending = Vec::new();
    for i in 0..6 {
        let client = app.client.clone();
        let url = app.url("/auth/register");
        pending.push(tokio::spawn(async move {
            client
                .post(url)
                .json(&json!({ "email": format!("u{i}@example.com"), "password": PASSWORD }))
                .send()
                .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    app.stop().await;
    for p in pending {
        let resp = p.await.unwrap().expect("an in-flight request was cut off");
        assert_eq!(resp.status(), StatusCode::OK);
    }
    assert!(
        app.client.get(app.url("/health")).send().await.is_err(),
        "no longer listening"
    );
    let rest = stream.rest(Duration::from_secs(10)).await;
    assert!(
        rest.iter().all(|f| f.event != "done"),
        "the stream ended with the server, not with the run"
    );
}

#[tokio::test]
async fn the_docs_are_served_from_the_binary_with_nothing_external() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (status, doc) = read(
        app.client
            .get(app.url("/openapi.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/auth/login"]["post"].is_object());
    assert!(doc["components"]["schemas"]["Problem"].is_object());

    let html = app
        .client
        .get(app.url("/docs/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    for attr in [
        "src=\"http",
        "href=\"http",
        "src='http",
        "href='http",
        "//cdn",
        "unpkg",
        "jsdelivr",
    ] {
        assert!(
            !html.contains(attr),
            "external reference {attr} in the docs page"
        );
    }
    for asset in [
        "/docs/swagger-ui.css",
        "/docs/swagger-ui-bundle.js",
        "/docs/swagger-initializer.js",
    ] {
        let resp = app.client.get(app.url(asset)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{asset}");
        let text = resp.text().await.unwrap();
        assert!(text.len() > 100, "{asset}");
        if asset.ends_with("initializer.js") {
            assert!(text.contains("/openapi.json"), "{text}");
        }
    }
}
