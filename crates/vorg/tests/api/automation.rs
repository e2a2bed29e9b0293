//! The organization acting on its own, over HTTP, on both databases: schedules that fire
//! and show their next slots, signed hooks that start their target once per delivery,
//! event triggers cut off by loop protection, and webhooks verified by the
//! `standardwebhooks` library (retried, redelivered, disabled on 410 or a failure streak,
//! refused for private targets).

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use hmac::{Hmac, KeyInit, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2_hmac::Sha256;
use vorg_domain::Role;
use vorg_store::Backend;

use crate::{both, helpers::*};

both!(
    a_schedule_fires_every_slot_and_shows_the_next_ones,
    schedules_are_checked_like_the_routes_they_stand_for,
    a_signed_hook_starts_its_target_once_per_delivery,
    an_event_trigger_chain_stops_at_its_depth,
    webhooks_are_signed_retried_and_redelivered_with_the_same_id,
    a_gone_receiver_or_a_failure_streak_disables_a_subscription,
    private_targets_are_refused,
    a_budget_exceeded_alert_goes_out_once_per_period,
    an_approval_request_reaches_its_approvers_with_console_links,
    schedules_declared_in_the_config_folder_are_loaded_and_read_only,
);

pub fn python() -> String {
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/pyenv/bin/python");
    assert!(
        std::path::Path::new(venv).exists(),
        "the Python clients are missing: run `bash scripts/ensure-python-openai.sh` (make test does)"
    );
    venv.to_owned()
}

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/webhooks.py");

/// The `standardwebhooks` receiver: verifies every request and logs it.
pub struct Receiver {
    child: Child,
    pub port: u16,
    secret_file: PathBuf,
    log: PathBuf,
}

impl Receiver {
    pub fn start() -> Receiver {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("vorg-hooks-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (secret_file, log) = (dir.join("secret"), dir.join("log.jsonl"));
        std::fs::write(
            &secret_file,
            "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
        .unwrap();
        let _ = std::fs::remove_file(&log);
        let mut child = Command::new(python())
            .args([SCRIPT, "receive"])
            .arg(&secret_file)
            .arg(&log)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the receiver");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the receiver's port");
        Receiver {
            child,
            port,
            secret_file,
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn set_secret(&self, secret: &str) {
        std::fs::write(&self.secret_file, secret).unwrap();
    }

    pub fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Waits until `pred` holds for the requests logged so far.
    pub async fn wait_for(&self, what: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let reqs = self.requests();
            if pred(&reqs) {
                return reqs;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the receiver never saw {what}: {reqs:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn app_for_hooks(backend: Backend) -> (TestApp, String) {
    let app = TestApp::spawn_with(backend, |s| {
        s.webhooks_allow_private = true;
        s.webhook_retry_secs = Some(vec![0.2, 0.2, 0.2]);
        s.public_url = Some("https://vorg.example.com".into());
    })
    .await;
    let admin = app.admin().await;
    (app, admin)
}

async fn put(app: &TestApp, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    app.call(Method::PUT, path, Some(token), Some(body)).await
}

fn standup(extra: Value) -> Value {
    let mut body = json!({ "today": ["review the plan"], "yesterday": ["wrote the plan"] });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    json!({ "kind": "meeting", "type": "standup", "body": body })
}

async fn a_schedule_fires_every_slot_and_shows_the_next_ones(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let (status, s) = app
        .post(
            "/schedules",
            Some(&admin),
            json!({ "name": "every second", "cron": "* * * * * *", "timezone": "Europe/Berlin",
                    "target": standup(json!({})) }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{s}");
    let id = s["id"].as_i64().unwrap();
    let next: Vec<chrono::DateTime<chrono::Utc>> =
        serde_json::from_value(s["next_fire_times"].clone()).unwrap();
    assert_eq!(next.len(), 5);
    assert!(
        next.windows(2)
            .all(|w| w[1] - w[0] == chrono::Duration::seconds(1))
    );
    assert_eq!(s["owner"], "admin@example.com");
    // Runs start on their own, each linked to the schedule, and succeed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let runs = loop {
        let (_, runs) = app.get(&format!("/schedules/{id}/runs"), &admin).await;
        let ended = runs
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["status"] == "succeeded")
            .count();
        if ended >= 3 {
            break runs;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "too few runs: {runs}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let first = &runs.as_array().unwrap()[0];
    assert_eq!(first["origin"]["kind"], "schedule");
    assert_eq!(first["origin"]["link"], format!("/schedules/{id}"));
    assert_eq!(first["requested_by"], s["owner_id"]);
    let (_, got) = app.get(&format!("/schedules/{id}"), &admin).await;
    assert!(got["last_run_id"].is_i64(), "{got}");
    // Paused: nothing more starts, and no next slot is shown.
    let mut body = json!({ "name": "every second", "cron": "* * * * * *",
        "timezone": "Europe/Berlin", "target": standup(json!({})), "enabled": false });
    let (status, paused) = put(&app, &format!("/schedules/{id}"), &admin, body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{paused}");
    assert_eq!(paused["next_fire_times"], json!([]));
    assert_eq!(paused["version"], 2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, before) = app.get(&format!("/schedules/{id}/runs"), &admin).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, after) = app.get(&format!("/schedules/{id}/runs"), &admin).await;
    assert_eq!(
        before.as_array().unwrap().len(),
        after.as_array().unwrap().len()
    );
    body["enabled"] = json!(true);
    let (status, _) = put(&app, &format!("/schedules/{id}"), &admin, body).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/schedules/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.get(&format!("/schedules/{id}"), &admin).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn schedules_are_checked_like_the_routes_they_stand_for(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.scheduler = false).await;
    let admin = app.admin().await;
    let bad = |field: &str, body: Value| (field.to_owned(), body);
    for (field, body) in [
        bad(
            "cron",
            json!({ "name": "x", "cron": "61 * * * *", "target": standup(json!({})) }),
        ),
        bad(
            "cron",
            json!({ "name": "x", "cron": "0 0 30 2 *", "target": standup(json!({})) }),
        ),
        bad(
            "timezone",
            json!({ "name": "x", "cron": "0 9 * * *", "timezone": "Mars/Base", "target": standup(json!({})) }),
        ),
        bad(
            "catch_up",
            json!({ "name": "x", "cron": "0 9 * * *", "catch_up": "always", "target": standup(json!({})) }),
        ),
        bad(
            "target.body.participants[0]",
            json!({ "name": "x", "cron": "0 9 * * *",
            "target": standup(json!({ "participants": ["nobody.v1"] })) }),
        ),
        bad(
            "target.workflow",
            json!({ "name": "x", "cron": "0 9 * * *",
            "target": { "kind": "workflow", "workflow": "missing" } }),
        ),
    ] {
        let (status, problem) = app.post("/schedules", Some(&admin), body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert!(field_names(&problem).contains(&field), "{field}: {problem}");
    }
    // A growth user may hold meetings but not start workflow runs: they may schedule a
    // stand-up, not a workflow; a viewer may schedule nothing.
    let (_, growth) = app.user_with("growth@example.com", &[Role::Growth]).await;
    let (status, _) = app
        .post(
            "/schedules",
            Some(&growth),
            json!({ "name": "mine", "cron": "0 9 * * *", "target": standup(json!({})) }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, problem) = app
        .post(
            "/schedules",
            Some(&growth),
            json!({ "name": "wf", "cron": "0 9 * * *",
                    "target": { "kind": "workflow", "workflow": "anything" } }),
        )
        .await;
    assert_problem(status, &problem, StatusCode::FORBIDDEN, "forbidden");
    let (_, viewer) = app.user_with("viewer@example.com", &[Role::Viewer]).await;
    let (status, problem) = app
        .post(
            "/schedules",
            Some(&viewer),
            json!({ "name": "v", "cron": "0 9 * * *", "target": standup(json!({})) }),
        )
        .await;
    assert_problem(status, &problem, StatusCode::FORBIDDEN, "forbidden");
    // Only an admin makes a schedule act for someone else, and only for one who may.
    let (status, problem) = app
        .post(
            "/schedules",
            Some(&admin),
            json!({ "name": "for v", "cron": "0 9 * * *", "owner": "viewer@example.com",
                    "target": standup(json!({})) }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(field_names(&problem).contains(&"owner".to_owned()));
    let (status, _) = app
        .post(
            "/schedules",
            Some(&admin),
            json!({ "name": "mine", "cron": "0 9 * * *", "target": standup(json!({})) }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "names are unique");
    // An admin pausing the growth user's schedule does not take it over.
    let (_, list) = app.get("/schedules", &admin).await;
    let mine = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "mine")
        .unwrap()
        .clone();
    let (status, paused) = put(&app, &format!("/schedules/{}", mine["id"]), &admin,
        json!({ "name": "mine", "cron": "0 9 * * *", "target": standup(json!({})), "enabled": false })).await;
    assert_eq!(status, StatusCode::OK, "{paused}");
    assert_eq!(paused["owner"], "growth@example.com", "{paused}");
    assert_eq!(paused["enabled"], false);
}

fn hex_hmac(secret: &str, body: &[u8]) -> String {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    m.update(body);
    m.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn deliver(
    app: &TestApp,
    path: &str,
    body: &[u8],
    headers: &[(&str, String)],
) -> (StatusCode, Value) {
    let mut req = app.client.post(app.url(path)).body(body.to_vec());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    read(req.send().await.unwrap()).await
}

async fn a_signed_hook_starts_its_target_once_per_delivery(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.scheduler = false).await;
    let admin = app.admin().await;
    const SECRET: &str = "a-github-secret-of-some-length";
    let (status, t) = app
        .post(
            "/triggers",
            Some(&admin),
            json!({
                "name": "prs", "auth": "github", "secret": SECRET,
                "target": standup(json!({})), "mapping": { "yesterday": "/commits" },
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    assert_eq!(t["secret"], SECRET);
    let hook_url = t["hook_url"].as_str().unwrap();
    let path = &hook_url[hook_url.find("/hooks/").unwrap()..];
    let body = br#"{"action":"opened","commits":["add schedules","add webhooks"]}"#;
    let signed = |delivery: &str| {
        vec![
            (
                "x-hub-signature-256",
                format!("sha256={}", hex_hmac(SECRET, body)),
            ),
            ("x-github-delivery", delivery.to_owned()),
            ("content-type", "application/json".to_owned()),
        ]
    };
    let (status, first) = deliver(&app, path, body, &signed("d-1")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let (status, again) = deliver(&app, path, body, &signed("d-1")).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(
        again["run_id"], first["run_id"],
        "the same delivery starts nothing new"
    );
    assert_eq!(again["created"], false);
    let run_id = first["run_id"].as_i64().unwrap();
    let (_, run) = app.get(&format!("/runs/{run_id}"), &admin).await;
    assert_eq!(
        run["input"]["body"]["yesterday"],
        json!(["add schedules", "add webhooks"])
    );
    assert_eq!(run["origin"]["kind"], "trigger");
    // Wrong signature, no signature, a different body: 401 and nothing started.
    let mut forged = signed("d-2");
    forged[0].1 = format!("sha256={}", hex_hmac("another secret", body));
    for headers in [forged, vec![("x-github-delivery", "d-3".to_owned())]] {
        let (status, problem) = deliver(&app, path, body, &headers).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{problem}");
    }
    let (status, _) = deliver(&app, path, br#"{"commits":[]}"#, &signed("d-4")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let id = t["id"].as_i64().unwrap();
    let (_, runs) = app.get(&format!("/triggers/{id}/runs"), &admin).await;
    assert_eq!(runs.as_array().unwrap().len(), 1, "{runs}");
    let (status, _) = deliver(&app, "/hooks/hk_nope", body, &signed("d-5")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Linear: the signed body carries its timestamp; a stale one is refused.
    const LINEAR: &str = "lin_wh_0123456789abcdef";
    let (status, t) = app
        .post(
            "/triggers",
            Some(&admin),
            json!({
                "name": "linear", "auth": "linear", "secret": LINEAR,
                "target": standup(json!({})), "mapping": { "today": "/data/labels" },
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    let lpath = format!(
        "/hooks/{}",
        t["hook_url"].as_str().unwrap().rsplit('/').next().unwrap()
    );
    let now = chrono::Utc::now().timestamp_millis();
    for (ts, delivery, want) in [
        (now, "l-1", StatusCode::ACCEPTED),
        (now, "l-1", StatusCode::OK),
        (now - 5 * 60_000, "l-2", StatusCode::UNAUTHORIZED),
    ] {
        let body = json!({ "action": "create", "type": "Issue", "webhookTimestamp": ts,
            "data": { "labels": ["bug"] } })
        .to_string();
        let headers = vec![
            ("linear-signature", hex_hmac(LINEAR, body.as_bytes())),
            ("linear-delivery", delivery.to_owned()),
        ];
        let (status, answer) = deliver(&app, &lpath, body.as_bytes(), &headers).await;
        assert_eq!(status, want, "{answer}");
    }

    // Standard Webhooks, signed by the PyPI library.
    let (status, t) = app
        .post(
            "/triggers",
            Some(&admin),
            json!({
                "name": "ci", "target": standup(json!({})), "mapping": { "blockers": "/failing" },
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    let secret = t["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"));
    let url = app.url(&format!(
        "/hooks/{}",
        t["hook_url"].as_str().unwrap().rsplit('/').next().unwrap()
    ));
    let out = Command::new(python())
        .args([SCRIPT, "send", &url, secret, r#"{"failing":["lint"]}"#])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(out.starts_with("202 "), "{out}");
    let answer: Value = serde_json::from_str(out.trim_start_matches("202 ")).unwrap();
    let (_, run) = app
        .get(&format!("/runs/{}", answer["run_id"]), &admin)
        .await;
    assert_eq!(run["input"]["body"]["blockers"], json!(["lint"]));
}

async fn an_event_trigger_chain_stops_at_its_depth(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    // Each stand-up that succeeds holds another: a loop, cut at depth 2.
    let (status, t) = app
        .post(
            "/triggers",
            Some(&admin),
            json!({
                "name": "again", "kind": "event", "events": ["run.succeeded"],
                "filter": { "run_type": "meeting" }, "max_depth": 2,
                "target": standup(json!({})),
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    assert!(t["hook_url"].is_null());
    let (status, first) = app
        .call(
            Method::POST,
            "/meetings/standup",
            Some(&admin),
            Some(json!({ "today": ["start"], "yesterday": ["nothing"] })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let id = t["id"].as_i64().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, runs) = app.get(&format!("/triggers/{id}/runs"), &admin).await;
        let runs = runs.as_array().unwrap().clone();
        let refused = app
            .store
            .events_after(0, 1000)
            .await
            .unwrap()
            .into_iter()
            .any(|e| e.kind == "trigger.refused");
        if runs.len() == 2 && refused && runs.iter().all(|r| r["status"] == "succeeded") {
            let mut depths: Vec<i64> = runs
                .iter()
                .map(|r| r["origin"]["depth"].as_i64().unwrap())
                .collect();
            depths.sort();
            assert_eq!(depths, vec![1, 2]);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "runs: {runs:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, runs) = app.get(&format!("/triggers/{id}/runs"), &admin).await;
    assert_eq!(runs.as_array().unwrap().len(), 2, "no third link: {runs}");
}

async fn subscribe(app: &TestApp, admin: &str, rx: &Receiver, path: &str, events: Value) -> i64 {
    let (status, w) = app
        .post(
            "/webhooks",
            Some(admin),
            json!({
                "name": format!("hook {path}"), "url": rx.url(path), "events": events,
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{w}");
    rx.set_secret(w["secret"].as_str().unwrap());
    w["id"].as_i64().unwrap()
}

async fn demo_run(app: &TestApp, admin: &str) -> i64 {
    let (status, body) = app
        .post(
            "/runs/start_demo",
            Some(admin),
            json!({ "steps": 1, "step_ms": 0 }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["run_id"].as_i64().unwrap()
}

async fn webhooks_are_signed_retried_and_redelivered_with_the_same_id(backend: Backend) {
    let (app, admin) = app_for_hooks(backend).await;
    let rx = Receiver::start();
    let id = subscribe(&app, &admin, &rx, "/fail/2", json!(["run.succeeded"])).await;
    let run_id = demo_run(&app, &admin).await;
    let reqs = rx
        .wait_for("a third attempt", |r| r.iter().any(|q| q["n"] == 3))
        .await;
    assert!(reqs.iter().all(|q| q["verified"] == true), "{reqs:#?}");
    let ids: std::collections::HashSet<&str> =
        reqs.iter().map(|q| q["msg_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 1, "every attempt carries the same webhook-id");
    let body: Value = serde_json::from_str(reqs[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["type"], "run.succeeded");
    assert_eq!(body["data"]["run_id"], run_id);
    assert_eq!(body["data"]["run_type"], "demo");
    assert_eq!(
        body["data"]["links"]["console"],
        format!("https://vorg.example.com/console/runs/{run_id}")
    );
    // The delivery log: three attempts, 500, 500, 204.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let delivery = loop {
        let (status, page) = app.get(&format!("/webhooks/{id}/deliveries"), &admin).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let d = page["items"][0].clone();
        if d["status"] == "delivered" {
            break d;
        }
        assert!(tokio::time::Instant::now() < deadline, "{page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(delivery["attempts"], 3);
    let (_, detail) = app
        .get(
            &format!("/webhooks/{id}/deliveries/{}", delivery["id"]),
            &admin,
        )
        .await;
    let codes: Vec<i64> = detail["attempts_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, vec![500, 500, 204]);
    // Redelivered by hand: the same webhook-id once more.
    let (status, again) = app
        .post(
            &format!("/webhooks/{id}/deliveries/{}/redeliver", delivery["id"]),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    let reqs = rx.wait_for("the redelivery", |r| r.len() == 4).await;
    assert_eq!(reqs[3]["msg_id"], reqs[0]["msg_id"]);
    assert_eq!(reqs[3]["verified"], true);
    // A test ping, and the subscription's secret never shown again.
    let (status, _) = app
        .post(&format!("/webhooks/{id}/test"), Some(&admin), json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    rx.wait_for("the test ping", |r| {
        r.iter().any(|q| q["type"] == "webhook.test")
    })
    .await;
    let (_, got) = app.get(&format!("/webhooks/{id}"), &admin).await;
    assert!(got.get("secret").is_none(), "{got}");
}

async fn a_gone_receiver_or_a_failure_streak_disables_a_subscription(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.webhooks_allow_private = true;
        s.webhook_retry_secs = Some(vec![0.1, 0.1, 0.1, 0.1, 0.1]);
        s.webhook_disable_after = 3;
    })
    .await;
    let admin = app.admin().await;
    let rx = Receiver::start();
    let gone = subscribe(&app, &admin, &rx, "/gone", json!(["run.started"])).await;
    // Nothing listens on port 9 of 127.0.0.1: every attempt fails to connect.
    let (status, w) = app
        .post(
            "/webhooks",
            Some(&admin),
            json!({
            "name": "dead", "url": "http://127.0.0.1:9/hook", "events": ["run.started"] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{w}");
    let dead = w["id"].as_i64().unwrap();
    demo_run(&app, &admin).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, a) = app.get(&format!("/webhooks/{gone}"), &admin).await;
        let (_, b) = app.get(&format!("/webhooks/{dead}"), &admin).await;
        if a["enabled"] == false && b["enabled"] == false {
            assert_eq!(a["disabled_reason"], "the receiver answered 410 Gone");
            assert_eq!(b["disabled_reason"], "3 attempts in a row failed");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{a}\n{b}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rx.requests().len(), 1, "a 410 is not retried");
    let (_, page) = app
        .get(&format!("/webhooks/{dead}/deliveries"), &admin)
        .await;
    let d = &page["items"][0];
    assert_eq!(d["status"], "failed");
    let (_, detail) = app
        .get(&format!("/webhooks/{dead}/deliveries/{}", d["id"]), &admin)
        .await;
    let err = detail["attempts_log"][0]["error"].as_str().unwrap();
    assert!(err.contains("connect"), "{err}");
    let (_, audit) = app.get("/audit", &admin).await;
    let disabled = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "webhook.disable")
        .count();
    assert_eq!(disabled, 2, "{audit}");
    // A redelivery to a disabled subscription is refused until it is enabled again.
    let (status, _) = app
        .post(
            &format!("/webhooks/{dead}/deliveries/{}/redeliver", d["id"]),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

async fn private_targets_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://10.1.2.3/hook",
        "http://localhost/hook",
        "http://[::ffff:192.168.0.1]/hook",
        "ftp://example.com/hook",
    ] {
        let (status, problem) = app
            .post(
                "/webhooks",
                Some(&admin),
                json!({ "name": "x", "url": url, "events": ["*"] }),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {problem}");
        assert_eq!(field_names(&problem), vec!["url".to_owned()], "{url}");
    }
    // A name that resolves to a private address passes the form and is refused when
    // delivered: the client resolves names itself and checks every address.
    let rx = Receiver::start();
    let w = app
        .store
        .create_webhook(
            &vorg_store::WebhookWrite {
                name: "by name",
                url: &format!("http://localhost:{}/ok", rx.port),
                events: "run.started",
                format: "standard",
                enabled: true,
            },
            "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            None,
        )
        .await
        .unwrap();
    demo_run(&app, &admin).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let err = loop {
        let (_, page) = app
            .get(&format!("/webhooks/{}/deliveries", w.id), &admin)
            .await;
        let d = &page["items"][0];
        if d["attempts"].as_i64().unwrap_or(0) >= 1 {
            break d["last_error"].as_str().unwrap_or_default().to_owned();
        }
        assert!(tokio::time::Instant::now() < deadline, "{page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(err.contains("private or reserved address"), "{err}");
    assert!(
        rx.requests().is_empty(),
        "nothing reached the private address"
    );
}

/// A `vorg worker` process (which also runs a scheduler and the event dispatcher) on the
/// app's database; killed when dropped.
struct Process(Child);

impl Process {
    fn start(app: &TestApp, env: &[(&str, &str)]) -> Process {
        let child = Command::new(env!("CARGO_BIN_EXE_vorg"))
            .args(["worker", "--concurrency", "4"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", app.settings.database_url())
            .env("VORG_DATA_DIR", &app.settings.data_dir)
            .env("VORG_CONFIG", app.settings.data_dir.join("absent.toml"))
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start vorg worker");
        Process(child)
    }

    fn kill_9(&mut self) {
        let status = Command::new("kill")
            .args(["-9", &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let _ = self.0.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Two processes fire a per-second schedule for several seconds while one of them is
/// killed with SIGKILL and restarted again and again (often while firing): every slot from
/// the first to the last started exactly one run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_fire_each_slot_once_through_kill_9() {
    let app = TestApp::spawn_with(Backend::Postgres, |s| {
        s.workers = 0;
        s.scheduler = false;
    })
    .await;
    let admin = app.admin().await;
    let env = [
        ("VORG_SCHEDULE_GRACE_SECS", "30"),
        ("VORG_JOB_LEASE_MS", "1000"),
    ];
    let mut a = Process::start(&app, &env);
    let _b = Process::start(&app, &env);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, s) = app
        .post(
            "/schedules",
            Some(&admin),
            json!({
            "name": "tick", "cron": "* * * * * *", "target": standup(json!({})) }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{s}");
    let id = s["id"].as_i64().unwrap();
    for i in 0..8u64 {
        tokio::time::sleep(Duration::from_millis(700 + (i * 97) % 400)).await;
        a.kill_9();
        a = Process::start(&app, &env);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("/schedules/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let runs = app
        .store
        .runs_of_origin("schedule", id, 1000)
        .await
        .unwrap();
    let mut slots: Vec<chrono::DateTime<chrono::Utc>> = runs
        .iter()
        .map(|r| {
            let summary = r.summary.clone().unwrap();
            let slot = summary.rsplit(", ").next().unwrap().trim_end_matches(')');
            slot.parse().unwrap()
        })
        .collect();
    slots.sort();
    let n = slots.len();
    slots.dedup();
    assert_eq!(slots.len(), n, "a slot fired twice: {slots:?}");
    assert!(n >= 8, "too few slots fired: {slots:?}");
    let span = (*slots.last().unwrap() - slots[0]).num_seconds() + 1;
    assert_eq!(
        span, n as i64,
        "a slot was lost between the first and the last: {slots:?}"
    );
}

/// A process killed while a receiver holds its delivery open: the job's lease runs out,
/// another process sends the delivery again with the same `webhook-id`, and it is recorded
/// delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_cut_by_kill_9_is_sent_again_with_the_same_id() {
    let app = TestApp::spawn_with(Backend::Postgres, |s| {
        s.workers = 0;
        s.scheduler = false;
        s.webhooks_allow_private = true;
    })
    .await;
    let admin = app.admin().await;
    let rx = Receiver::start();
    let id = subscribe(&app, &admin, &rx, "/slow/2", json!(["run.succeeded"])).await;
    let env = [
        ("VORG_WEBHOOKS_ALLOW_PRIVATE", "true"),
        ("VORG_JOB_LEASE_MS", "1000"),
    ];
    let mut a = Process::start(&app, &env);
    demo_run(&app, &admin).await;
    let first = rx.wait_for("the first attempt", |r| !r.is_empty()).await;
    a.kill_9();
    let _b = Process::start(&app, &env);
    let reqs = rx
        .wait_for("the attempt after the kill", |r| r.len() >= 2)
        .await;
    assert_eq!(reqs[1]["msg_id"], first[0]["msg_id"], "the same webhook-id");
    assert!(reqs.iter().all(|q| q["verified"] == true));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, page) = app.get(&format!("/webhooks/{id}/deliveries"), &admin).await;
        if page["items"][0]["status"] == "delivered" {
            assert_eq!(
                page["items"].as_array().unwrap().len(),
                1,
                "one delivery: {page}"
            );
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn a_budget_exceeded_alert_goes_out_once_per_period(backend: Backend) {
    let upstream = crate::org::Upstream::start().await;
    let app = crate::org::budget_app_with(backend, &upstream, |s| {
        s.webhooks_allow_private = true;
        s.public_url = Some("https://vorg.example.com".into());
    })
    .await;
    let admin = app.admin().await;
    let rx = Receiver::start();
    subscribe(&app, &admin, &rx, "/ok", json!(["budget.exceeded"])).await;
    let (status, w) = app
        .post(
            "/webhooks",
            Some(&admin),
            json!({ "name": "slack", "url": rx.url("/ok/slack"),
            "events": ["budget.exceeded"], "format": "slack" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{w}");
    for _ in 0..2 {
        let (status, problem) = app
            .post(
                "/llm/generate",
                Some(&admin),
                json!({ "prompt": "x", "max_tokens": 1_000_000 }),
            )
            .await;
        assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{problem}");
    }
    rx.wait_for("both alerts", |r| {
        !rx_path(r, "/ok").is_empty() && !rx_path(r, "/ok/slack").is_empty()
    })
    .await;
    // Time for a second alert to arrive, were one sent.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let reqs = rx.requests();
    let standard: Vec<&Value> = rx_path(&reqs, "/ok");
    assert_eq!(
        standard.len(),
        1,
        "once per period, though refused twice: {reqs:#?}"
    );
    assert_eq!(standard[0]["verified"], true);
    let body: Value = serde_json::from_str(standard[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["type"], "budget.exceeded");
    assert_eq!(body["data"]["scope"], "actor");
    assert_eq!(body["data"]["subject"], "admin@example.com");
    assert_eq!(body["data"]["limit_usd"], 0.01);
    let slack = rx_path(&reqs, "/ok/slack");
    assert_eq!(slack.len(), 1);
    // The Slack message is signed too (with its own subscription's secret).
    assert!(slack[0]["msg_id"].as_str().unwrap().starts_with("msg_"));
    let text: Value = serde_json::from_str(slack[0]["body"].as_str().unwrap()).unwrap();
    let text = text["text"].as_str().unwrap();
    assert!(
        text.starts_with("*Budget exceeded*: actor budget admin@example.com"),
        "{text}"
    );
    assert!(
        text.contains("<https://vorg.example.com/console/|Budgets>"),
        "{text}"
    );
}

fn rx_path<'a>(reqs: &'a [Value], path: &str) -> Vec<&'a Value> {
    reqs.iter().filter(|q| q["path"] == path).collect()
}

async fn an_approval_request_reaches_its_approvers_with_console_links(backend: Backend) {
    let (app, admin) = app_for_hooks(backend).await;
    app.user_with("approver@example.com", &[Role::Approver])
        .await;
    let (_, engineer) = app.user_with("eng@example.com", &[Role::Engineer]).await;
    let rx = Receiver::start();
    subscribe(
        &app,
        &admin,
        &rx,
        "/ok",
        json!(["approval.requested", "approval.decided"]),
    )
    .await;
    let (status, answer) = app
        .post("/approvals/submit", Some(&engineer),
            json!({ "description": "a GPU for a week", "amount_usd": 500.0, "justification": "training" }))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let reqs = rx.wait_for("the request", |r| !r.is_empty()).await;
    let body: Value = serde_json::from_str(reqs[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["type"], "approval.requested", "{body}");
    assert_eq!(body["data"]["amount_usd"], 500.0);
    let approvers = body["data"]["approvers"].as_array().unwrap();
    assert!(approvers.contains(&json!("approver@example.com")), "{body}");
    assert!(approvers.contains(&json!("admin@example.com")), "{body}");
    assert!(!approvers.contains(&json!("eng@example.com")), "{body}");
    let slack = vorg_automation::deliver::slack_message(&body, "https://vorg.example.com");
    let text = slack["text"].as_str().unwrap();
    assert!(
        text.contains("Approval #") && text.contains("a GPU for a week"),
        "{text}"
    );
    assert!(
        text.contains("https://vorg.example.com/console/approvals"),
        "{text}"
    );
}

async fn schedules_declared_in_the_config_folder_are_loaded_and_read_only(backend: Backend) {
    let db = vorg_store::testing::TestDb::new(backend).await;
    let dir = std::env::temp_dir().join(format!(
        "vorg-sched-file-{}-{}",
        std::process::id(),
        backend as u8
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let config = dir.join("config");
    std::fs::create_dir_all(config.join("governance")).unwrap();
    let file = config.join("schedules.yaml");
    std::fs::write(
        &file,
        "schedules:
  - name: weekday standup
    cron: \"0 9 * * MON-FRI\"
    timezone: Europe/Berlin
    owner: admin@example.com
    target: { kind: meeting, type: standup }
  - name: monthly all-hands
    cron: \"0 16 L * *\"
    catch_up: run_once
    owner: admin@example.com
    target: { kind: meeting, type: allhands }
",
    )
    .unwrap();
    let mut settings = test_settings(&db, dir.join("data"));
    settings.config_dir = Some(config.clone());
    settings.scheduler = false;
    let mut app = TestApp::start(settings.clone()).await;
    let admin = app.admin().await;
    let (_, list) = app.get("/schedules", &admin).await;
    let list = list.as_array().unwrap().clone();
    assert_eq!(list.len(), 2, "{list:?}");
    assert!(list.iter().all(|s| s["source"] == "file"));
    // The owner did not exist at the first start: loaded again, the schedules have one.
    assert!(list.iter().all(|s| s["owner_id"].is_null()), "{list:?}");
    app.stop().await;
    std::fs::write(
        &file,
        "schedules:
  - name: weekday standup
    cron: \"30 9 * * MON-FRI\"
    timezone: Europe/Berlin
    owner: admin@example.com
    target: { kind: meeting, type: standup }
",
    )
    .unwrap();
    let app = TestApp::start(settings.clone()).await;
    let (status, login) = app.login("admin@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    let admin = login["access_token"].as_str().unwrap().to_owned();
    let (_, list) = app.get("/schedules", &admin).await;
    let list = list.as_array().unwrap().clone();
    assert_eq!(
        list.len(),
        1,
        "removed from the file, removed here: {list:?}"
    );
    let s = &list[0];
    assert_eq!(s["cron"], "30 9 * * MON-FRI");
    assert_eq!(s["version"], 2);
    assert_eq!(s["owner"], "admin@example.com");
    let id = s["id"].as_i64().unwrap();
    let (status, problem) = put(
        &app,
        &format!("/schedules/{id}"),
        &admin,
        json!({ "name": "weekday standup", "cron": "0 8 * * *", "target": standup(json!({})) }),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("schedules.yaml"),
        "{problem}"
    );
    // A broken file stops the start, naming the place.
    std::fs::write(&file, "schedules:\n  - name: bad\n    cron: \"0 25 * * *\"\n    owner: a@b.c\n    target: { kind: meeting, type: standup }\n").unwrap();
    let err = vorg::Application::build(settings)
        .await
        .err()
        .expect("refused")
        .to_string();
    let err = format!("{err:#}");
    assert!(err.contains("schedules.yaml"), "{err}");
}
