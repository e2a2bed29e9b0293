//! Runs executed by workers, their logs, cancellation and live streams, on both databases.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use vorg_domain::Role;
use vorg_store::Backend;

use crate::{
    both,
    helpers::*,
    sse::{Frame, SseReader},
};

both!(
    a_demo_run_lives_from_queued_to_succeeded,
    a_running_run_is_cancelled_at_its_next_step,
    a_failing_run_is_retried_then_fails_with_its_error,
    the_stream_sends_history_then_live_and_resumes_after_last_event_id,
    stream_tokens_open_streams_and_nothing_else,
    the_org_stream_carries_run_status_changes,
    a_slow_client_slows_neither_the_run_nor_other_clients,
    a_disconnected_client_is_forgotten,
);

async fn start(app: &TestApp, token: &str, body: Value) -> i64 {
    let (status, started) = app.post("/runs/start_demo", Some(token), body).await;
    assert_eq!(status, StatusCode::OK, "{started}");
    assert_eq!(started["status"], "queued");
    started["run_id"].as_i64().unwrap()
}

/// Polls the run until `done(run)` holds.
pub async fn wait_run(
    app: &TestApp,
    token: &str,
    id: i64,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, run) = app.get(&format!("/runs/{id}"), token).await;
        assert_eq!(status, StatusCode::OK, "{run}");
        if done(&run) {
            return run;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "run {id} never became {what}: {run}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls the run until it succeeded or failed.
pub async fn wait_ended(app: &TestApp, token: &str, id: i64) -> Value {
    wait_run(app, token, id, "succeeded or failed", |r| {
        r["status"] == "succeeded" || r["status"] == "failed"
    })
    .await
}

/// The messages of the run's log rows, oldest first.
pub async fn log_messages(app: &TestApp, token: &str, id: i64) -> Vec<String> {
    logs(app, token, id)
        .await
        .iter()
        .map(|l| l["message"].as_str().unwrap().to_owned())
        .collect()
}

async fn logs(app: &TestApp, token: &str, id: i64) -> Vec<Value> {
    let (status, page) = app.get(&format!("/runs/{id}/logs?limit=1000"), token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"].as_array().unwrap().clone()
}

async fn a_demo_run_lives_from_queued_to_succeeded(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    // The original's call: no body at all.
    let resp = app
        .client
        .post(app.url("/runs/start_demo"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let (status, body) = read(resp).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let first = body["run_id"].as_i64().unwrap();
    let id = start(&app, &admin, json!({ "steps": 3, "step_ms": 20 })).await;
    let run = wait_run(&app, &admin, id, "succeeded", |r| {
        r["status"] == "succeeded"
    })
    .await;
    assert_eq!(run["output"], json!({ "steps": 3 }));
    assert_eq!(run["attempts"], 1);
    assert!(run["started_at"].is_string() && run["completed_at"].is_string());
    let lines: Vec<String> = logs(&app, &admin, id)
        .await
        .iter()
        .map(|l| l["message"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(lines.len(), 6, "{lines:?}");
    assert_eq!(lines[0], "status: running");
    assert!(
        lines[1].starts_with("demo run started on worker"),
        "{lines:?}"
    );
    assert_eq!(
        lines[2..],
        [
            "step 1 of 3 done",
            "step 2 of 3 done",
            "step 3 of 3 done",
            "status: succeeded"
        ]
    );
    wait_run(&app, &admin, first, "succeeded", |r| {
        r["status"] == "succeeded"
    })
    .await;

    let (_, page) = app
        .get("/runs?status=succeeded&type=demo&limit=1", &admin)
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["id"], id, "newest first");
    assert!(page["next_cursor"].is_string());
    let (status, body) = app.get("/runs?status=finished", &admin).await;
    assert_problem(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );
    assert_eq!(field_names(&body), ["query.status"]);
    let (status, body) = app
        .post(
            "/runs/start_demo",
            Some(&admin),
            json!({ "steps": 0, "stepz": 1 }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(field_names(&body), ["stepz"]);
    let (status, body) = app
        .post("/runs/start_demo", Some(&admin), json!({ "steps": 0 }))
        .await;
    assert_eq!(field_names(&body), ["steps"], "{status} {body}");
    assert_eq!(app.get("/runs/999", &admin).await.0, StatusCode::NOT_FOUND);

    // Viewers watch but may not start runs.
    let (_, viewer) = app.user_with("v@example.com", &[Role::Viewer]).await;
    assert_eq!(
        app.get(&format!("/runs/{id}"), &viewer).await.0,
        StatusCode::OK
    );
    assert_eq!(
        app.post("/runs/start_demo", Some(&viewer), json!({}))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
}

async fn a_running_run_is_cancelled_at_its_next_step(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let id = start(&app, &admin, json!({ "steps": 100, "step_ms": 50 })).await;
    wait_run(&app, &admin, id, "running", |r| r["status"] == "running").await;
    let (status, run) = app
        .post(&format!("/runs/{id}/cancel"), Some(&admin), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{run}");
    assert!(run["cancel_requested_at"].is_string());
    let run = wait_run(&app, &admin, id, "cancelled", |r| {
        r["status"] == "cancelled"
    })
    .await;
    assert_eq!(run["error"], "cancelled by request");
    let steps = logs(&app, &admin, id)
        .await
        .iter()
        .filter(|l| l["message"].as_str().unwrap().starts_with("step "))
        .count();
    assert!(steps < 100, "it stopped early ({steps} steps)");
    let (status, body) = app
        .post(&format!("/runs/{id}/cancel"), Some(&admin), json!({}))
        .await;
    assert_problem(status, &body, StatusCode::CONFLICT, "conflict");
    let (_, audit) = app.get("/audit?limit=1", &admin).await;
    assert_eq!(audit["items"][0]["action"], "run.cancel");
}

async fn a_failing_run_is_retried_then_fails_with_its_error(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let id = start(
        &app,
        &admin,
        json!({ "steps": 2, "step_ms": 0, "fail_at": 1, "max_attempts": 2 }),
    )
    .await;
    let run = wait_run(&app, &admin, id, "failed", |r| r["status"] == "failed").await;
    assert_eq!(run["attempts"], 2);
    assert_eq!(run["error"], "step 1 failed (as asked)");
    let lines: Vec<String> = logs(&app, &admin, id)
        .await
        .iter()
        .map(|l| l["message"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("attempt 1 failed: step 1 failed (as asked); retrying in")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("attempt 2 of 2")),
        "{lines:?}"
    );
    assert_eq!(lines.last().unwrap(), "status: failed");
}

async fn open(app: &TestApp, path: &str, token: &str, last_event_id: Option<i64>) -> SseReader {
    let mut req = app.client.get(app.url(path)).bearer_auth(token);
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id.to_string());
    }
    SseReader::new(req.send().await.unwrap())
}

const WAIT: Duration = Duration::from_secs(20);

async fn the_stream_sends_history_then_live_and_resumes_after_last_event_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let id = start(&app, &admin, json!({ "steps": 8, "step_ms": 100 })).await;
    wait_run(&app, &admin, id, "past its first step", |_| true).await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    let path = format!("/streams/runs/{id}");
    let mut first = open(&app, &path, &admin, None).await;
    let mut seen: Vec<Frame> = Vec::new();
    for _ in 0..4 {
        seen.push(first.next(WAIT).await.unwrap());
    }
    drop(first);
    let resume = seen.last().unwrap().id.unwrap();
    let mut second = open(&app, &path, &admin, Some(resume)).await;
    seen.extend(second.rest(WAIT).await);

    let done = seen.last().unwrap();
    assert_eq!(done.event, "done");
    assert_eq!(
        serde_json::from_str::<Value>(&done.data).unwrap()["status"],
        "succeeded"
    );
    let ids: Vec<i64> = seen[..seen.len() - 1]
        .iter()
        .map(|f| f.id.unwrap())
        .collect();
    let stored: Vec<i64> = logs(&app, &admin, id)
        .await
        .iter()
        .map(|l| l["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ids, stored,
        "every row once, in order, across the reconnect"
    );
    let log_data: Vec<&str> = seen
        .iter()
        .filter(|f| f.event == "log")
        .map(|f| f.data.as_str())
        .collect();
    assert_eq!(
        log_data.last(),
        Some(&"step 8 of 8 done"),
        "`log` data is the message, as the original sent"
    );

    // A client resuming after the end gets `done` at once; JSON format carries fields.
    let mut late = open(
        &app,
        &format!("{path}?format=json"),
        &admin,
        Some(*stored.last().unwrap()),
    )
    .await;
    let frames = late.rest(WAIT).await;
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].event, "done");
    let mut json_stream = open(&app, &format!("{path}?format=json"), &admin, None).await;
    let frames = json_stream.rest(WAIT).await;
    let log: Value =
        serde_json::from_str(&frames.iter().find(|f| f.event == "log").unwrap().data).unwrap();
    assert_eq!(log["level"], "info");
    assert!(log["ts"].is_string());

    let resp = app
        .client
        .get(app.url(&path))
        .bearer_auth(&admin)
        .header("last-event-id", "abc")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = app
        .client
        .get(app.url("/streams/runs/999"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

async fn stream_tokens_open_streams_and_nothing_else(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let id = start(&app, &admin, json!({ "steps": 1, "step_ms": 0 })).await;
    let (status, body) = app
        .post("/auth/stream-token", Some(&admin), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["expires_in"], 60);
    let stream_token = body["token"].as_str().unwrap();
    let url = app.url(&format!("/streams/runs/{id}?access_token={stream_token}"));
    let mut reader = SseReader::new(app.client.get(url).send().await.unwrap());
    assert_eq!(reader.rest(WAIT).await.last().unwrap().event, "done");
    assert_eq!(
        app.get("/auth/me", stream_token).await.0,
        StatusCode::UNAUTHORIZED,
        "not a session"
    );
    let url = app.url(&format!("/runs/{id}?access_token={stream_token}"));
    assert_eq!(
        app.client.get(url).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED,
        "only on /streams"
    );
    let url = app.url(&format!("/streams/runs/{id}?access_token={admin}"));
    assert_eq!(
        app.client.get(url).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED,
        "sessions stay out of URLs"
    );
}

async fn the_org_stream_carries_run_status_changes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let mut events = open(&app, "/streams/events", &admin, None).await;
    let id = start(&app, &admin, json!({ "steps": 1, "step_ms": 0 })).await;
    let mut statuses = Vec::new();
    let mut ids = Vec::new();
    while statuses.last().map(String::as_str) != Some("succeeded") {
        let f = events.next(WAIT).await.unwrap();
        assert_eq!(f.event, "run.status");
        let data: Value = serde_json::from_str(&f.data).unwrap();
        assert_eq!(data["run_id"], id);
        statuses.push(data["status"].as_str().unwrap().to_owned());
        ids.push(f.id.unwrap());
    }
    assert_eq!(statuses, ["queued", "running", "succeeded"]);
    drop(events);
    // Resuming replays what came after.
    let mut again = open(&app, "/streams/events", &admin, Some(ids[0])).await;
    assert_eq!(again.next(WAIT).await.unwrap().id, Some(ids[1]));
}

async fn a_slow_client_slows_neither_the_run_nor_other_clients(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let id = start(&app, &admin, json!({ "steps": 1000, "step_ms": 0 })).await;
    let path = format!("/streams/runs/{id}");
    // This client never reads until the end.
    let mut slow = open(&app, &path, &admin, None).await;
    let mut fast = open(&app, &path, &admin, None).await;
    let started = std::time::Instant::now();
    let fast_frames = fast.rest(Duration::from_secs(60)).await;
    let elapsed = started.elapsed();
    assert_eq!(fast_frames.last().unwrap().event, "done");
    wait_run(&app, &admin, id, "succeeded", |r| {
        r["status"] == "succeeded"
    })
    .await;
    assert!(elapsed < Duration::from_secs(60), "{elapsed:?}");
    // The slow one, read now, still gets every row once, in order (past the hub's buffer).
    let slow_frames = slow.rest(WAIT).await;
    let ids = |frames: &[Frame]| {
        frames
            .iter()
            .filter(|f| f.event != "done")
            .map(|f| f.id.unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&slow_frames), ids(&fast_frames));
    assert_eq!(
        ids(&fast_frames).len(),
        1003,
        "running, started, 1000 steps, succeeded"
    );
}

async fn stream_clients(app: &TestApp, token: &str) -> f64 {
    app.metric(token, "vorg_stream_clients{stream=\"run\"}")
        .await
        .unwrap_or(-1.0)
}

async fn a_disconnected_client_is_forgotten(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let id = start(&app, &admin, json!({ "steps": 200, "step_ms": 50 })).await;
    let mut reader = open(&app, &format!("/streams/runs/{id}"), &admin, None).await;
    reader.next(WAIT).await.unwrap();
    assert_eq!(stream_clients(&app, &admin).await, 1.0);
    drop(reader);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while stream_clients(&app, &admin).await != 0.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server kept the client's subscription"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.post(&format!("/runs/{id}/cancel"), Some(&admin), json!({}))
        .await;
}
