//! The security review's reproductions, run against a real `vorg serve` process on each
//! database: parser bombs, expansion bombs, floods and oversized inputs. The server's
//! resident memory is watched the whole time; past [`RSS_LIMIT_KIB`] the watchdog kills it,
//! so a regression fails in seconds instead of eating the machine. After each attack the
//! server must still answer `/health`.
#![allow(clippy::disallowed_methods)] // tests spawn freely
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use vorg_store::{Backend, testing::TestDb};

/// The most resident memory the server may reach during the attacks (it idles near 60 MiB).
const RSS_LIMIT_KIB: u64 = 1024 * 1024;
const JWT_SECRET: &str = "attack-secret-attack-secret-attack-secret";

struct Server {
    child: Child,
    base: String,
    client: Client,
    peak_kib: Arc<AtomicU64>,
    killed: Arc<AtomicBool>,
    data_dir: std::path::PathBuf,
    db: TestDb,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Resident memory of `pid` in KiB (`None` once it is gone).
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

impl Server {
    async fn start(backend: Backend, upstream: &str) -> Server {
        let db = TestDb::new(backend).await;
        let data_dir = std::env::temp_dir().join(format!(
            "vorg-attacks-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&data_dir).unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let log = std::fs::File::create(data_dir.join("server.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_vorg"))
            .args(["serve", "--bind", &addr])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("VORG_DATA_DIR", &data_dir)
            .env("DATABASE_URL", &db.url)
            .env("JWT_SECRET", JWT_SECRET)
            .env("VORG_LOGIN_PER_MINUTE_PER_IP", "1000")
            .env("OPENAI_API_KEY", "sk-test-attack-0123456789")
            .env("OPENAI_BASE_URL", upstream)
            .env("VORG_LLM_ALIASES", "default=simulated/sim-1")
            .env("ALLOW_SIGNUP", "true")
            .env("VORG_TRUSTED_PROXIES", "127.0.0.1")
            .env("VORG_LOGIN_PER_MINUTE_PER_ACCOUNT", "3")
            .env("RUST_LOG", "warn")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start vorg serve");
        let peak_kib = Arc::new(AtomicU64::new(0));
        let killed = Arc::new(AtomicBool::new(false));
        let (pid, peak, kill) = (child.id(), peak_kib.clone(), killed.clone());
        std::thread::spawn(move || {
            while let Some(rss) = rss_kib(pid) {
                peak.fetch_max(rss, Ordering::Relaxed);
                if rss > RSS_LIMIT_KIB {
                    kill.store(true, Ordering::Relaxed);
                    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let server = Server {
            child,
            base: format!("http://{addr}"),
            client: Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            peak_kib,
            killed,
            data_dir,
            db,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = server.client.get(server.url("/health")).send().await
                && r.status() == StatusCode::OK
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "vorg serve did not start: {}",
                server.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("server.log")).unwrap_or_default()
    }

    /// The server still answers, and never passed the memory limit.
    async fn assert_alive(&self, after: &str) {
        assert!(
            !self.killed.load(Ordering::Relaxed),
            "{after}: the server passed {RSS_LIMIT_KIB} KiB and was killed"
        );
        // A fresh connection: a pooled one may be one the server just closed on purpose (it
        // hangs up after refusing an oversized body).
        let fresh = Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let health = fresh.get(self.url("/health")).send().await;
        assert!(
            health.is_ok_and(|r| r.status() == StatusCode::OK),
            "{after}: the server no longer answers /health\n{}",
            self.log()
        );
        eprintln!(
            "{after}: alive, peak RSS {} MiB",
            self.peak_kib.load(Ordering::Relaxed) / 1024
        );
    }

    async fn post(&self, path: &str, token: &str, body: &Value) -> (StatusCode, Value) {
        let resp = self
            .client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap();
        read(resp).await
    }

    async fn post_yaml(&self, path: &str, token: &str, yaml: String) -> (StatusCode, Value) {
        let resp = self
            .client
            .post(self.url(path))
            .bearer_auth(token)
            .header("content-type", "application/yaml")
            .body(yaml)
            .send()
            .await
            .unwrap();
        read(resp).await
    }

    async fn admin(&self) -> String {
        let (status, body) = self
            .post(
                "/auth/register",
                "",
                &json!({ "email": "admin@example.com", "password": "correct horse battery" }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Waits for run `id` to end; returns it.
    async fn ended(&self, token: &str, id: i64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let resp = self
                .client
                .get(self.url(&format!("/runs/{id}")))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let (_, run) = read(resp).await;
            if matches!(run["status"].as_str(), Some("succeeded" | "failed")) {
                return run;
            }
            assert!(Instant::now() < deadline, "run {id} did not end: {run}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

async fn read(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A 4xx problem naming `field` (part of one of its field errors).
fn refused_at(status: StatusCode, body: &Value, field: &str) {
    assert!(status.is_client_error(), "{status} {body}");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["field"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        fields.iter().any(|f| f.contains(field)),
        "no problem at {field}: {body}"
    );
}

fn graph_with_when(when: &str) -> String {
    format!(
        "engine: graph\nname: bomb\nstate: {{ x: string }}\nstart: a\nnodes:\n  - id: a\n    agent: ceo\n    prompt: hi\n    output: x\n    branches:\n      - {{ when: {when:?}, to: END }}\n      - {{ to: END }}\n"
    )
}

async fn expression_bombs_are_refused(s: &Server, admin: &str) {
    let nots = format!("{}state.x", "!".repeat(9_000));
    let (status, body) = s
        .post(
            "/workflows/run",
            admin,
            &json!({ "workflow": graph_with_when(&nots) }),
        )
        .await;
    refused_at(status, &body, "nodes[0].branches[0].when");
    // Short enough, but nested past the depth bound.
    let deep = format!("{}state.x", "!".repeat(1_000));
    let (status, body) = s
        .post(
            "/workflows/run",
            admin,
            &json!({ "workflow": graph_with_when(&deep) }),
        )
        .await;
    refused_at(status, &body, "nodes[0].branches[0].when");
    assert!(
        body["detail"].as_str().unwrap().contains("nested"),
        "{body}"
    );
    let parens = format!("{}state.rounds > 1{}", "(".repeat(4_000), ")".repeat(4_000));
    let chat = format!(
        "engine: chat\nname: bomb\ntask: talk\nparticipants: [{{ id: ceo }}, {{ id: cto }}]\nspeaker_selection: round_robin\nmax_rounds: 2\nterminate_when: {parens:?}\n"
    );
    let (status, body) = s.post_yaml("/workflows", admin, chat).await;
    refused_at(status, &body, "terminate_when");
    s.assert_alive("expression bombs").await;
}

/// Nine levels of ten aliases each: 10^9 strings once expanded, 2 KB as text.
fn billion_laughs() -> String {
    let mut yaml = String::from(
        "a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for i in 1..10 {
        let prev = format!("*a{}", i - 1);
        let list = [prev.as_str(); 10].join(",");
        yaml.push_str(&format!("a{i}: &a{i} [{list}]\n"));
    }
    yaml
}

async fn alias_bombs_are_refused(s: &Server, admin: &str) {
    let started = Instant::now();
    let doc = format!("engine: dag\nname: laughs\n{}steps: []\n", billion_laughs());
    let (status, body) = s.post_yaml("/workflows", admin, doc).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("alias")
            || body["detail"].as_str().unwrap().contains("anchor"),
        "{body}"
    );
    let resp = s
        .client
        .put(s.url("/governance/policies"))
        .bearer_auth(admin)
        .header("content-type", "application/yaml")
        .body(billion_laughs())
        .send()
        .await
        .unwrap();
    let (status, body) = read(resp).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(started.elapsed() < Duration::from_secs(5));
    s.assert_alive("alias bombs").await;
}

async fn template_bombs_are_bounded(s: &Server, admin: &str) {
    // Too many references in one template: refused before it runs.
    let big = "x".repeat(400_000);
    let prompt = "{{ inputs.big }}".repeat(10_000);
    let doc = format!(
        "engine: dag\nname: bomb\ninputs: {{ big: a large input }}\nsteps:\n  - id: s\n    agent: ceo\n    prompt: {prompt:?}\n"
    );
    let (status, body) = s
        .post(
            "/workflows/run",
            admin,
            &json!({ "workflow": doc, "inputs": { "big": big } }),
        )
        .await;
    refused_at(status, &body, "steps[0]");
    // Within the reference limit, the rendered prompt still may not pass its cap: the step
    // fails at once, without a model call.
    let prompt = "{{ inputs.big }}".repeat(60);
    let doc = format!(
        "engine: dag\nname: bomb\ninputs: {{ big: a large input }}\nsteps:\n  - id: s\n    agent: ceo\n    prompt: {prompt:?}\n"
    );
    let (status, started) = s
        .post(
            "/workflows/run",
            admin,
            &json!({ "workflow": doc, "inputs": { "big": big } }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let run = s.ended(admin, started["run_id"].as_i64().unwrap()).await;
    assert_eq!(run["status"], "failed", "{run}");
    s.assert_alive("template bombs").await;
}

async fn graph_state_is_bounded(s: &Server, admin: &str) {
    let doc = "engine: graph\nname: hoard\nstate: { big: string, log: string }\nstart: a\nmax_steps: 50\nnodes:\n  - { id: a, agent: ceo, prompt: again, output: log, next: a }\n";
    let (status, started) = s
        .post(
            "/workflows/run",
            admin,
            &json!({ "workflow": doc, "inputs": { "big": "y".repeat(300_000) } }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let id = started["run_id"].as_i64().unwrap();
    let run = s.ended(admin, id).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert!(
        run["error"].as_str().unwrap().contains("graph state"),
        "{run}"
    );
    s.assert_alive("graph state").await;
}

async fn streams_are_capped(s: &Server, admin: &str) {
    let mut open = Vec::new();
    let mut refused = 0;
    for _ in 0..100 {
        let resp = s
            .client
            .get(s.url("/streams/events"))
            .bearer_auth(admin)
            .send()
            .await
            .unwrap();
        match resp.status() {
            StatusCode::OK => open.push(resp),
            StatusCode::TOO_MANY_REQUESTS => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(open.len(), 32, "the default per-credential cap");
    assert_eq!(refused, 68);
    // Missing runs cost nothing, however many are asked for.
    let before = rss_kib(s.child.id()).unwrap();
    for _ in 0..2_000 {
        let resp = s
            .client
            .get(s.url("/streams/runs/999999"))
            .bearer_auth(admin)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    }
    let grown = rss_kib(s.child.id()).unwrap().saturating_sub(before);
    assert!(grown < 64 * 1024, "grew {grown} KiB");
    drop(open);
    s.assert_alive("stream flood").await;
}

async fn oversized_inputs_are_refused_fast(s: &Server, admin: &str) {
    let participants: Vec<String> = (0..50_000).map(|i| format!("persona-{i}")).collect();
    let started = Instant::now();
    let (status, body) = s
        .post(
            "/meetings/standup",
            admin,
            &json!({ "participants": participants }),
        )
        .await;
    refused_at(status, &body, "participants");
    assert!(started.elapsed() < Duration::from_secs(2));
    // JSON nested past serde_json's limit.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let resp = s
        .client
        .post(s.url("/meetings/standup"))
        .bearer_auth(admin)
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());
    // A body over the limit.
    let resp = s
        .client
        .post(s.url("/workflows/run"))
        .bearer_auth(admin)
        .header("content-type", "application/json")
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    s.assert_alive("oversized inputs").await;
}

/// An OpenAI-compatible upstream that is expensive to be fooled by: every answer claims
/// 1,000 prompt and 100,000 completion tokens; a stream sends 900 one-token chunks and its
/// finish, then its usage two seconds later; `gpt-4.1-nano` fails quoting keys.
async fn costly_upstream() -> String {
    use axum::{body::Body, response::IntoResponse};
    async fn chat(axum::Json(req): axum::Json<Value>) -> axum::response::Response {
        let model = req["model"].as_str().unwrap_or("").to_owned();
        if model == "gpt-4.1-nano" {
            let body = json!({ "error": { "message": "Incorrect API key provided: sk-proj-LeAkEd123456789. Authorization: Bearer sk-ant-api03-SeCrEt987654 api_key=hunter2hunter2", "type": "invalid_request_error" } });
            return (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
        }
        if model == "gpt-4.1-mini" {
            let event = json!({ "error": { "message": "quota: key sk-proj-MidStream12345 is over", "type": "server_error" } });
            return (
                [(axum::http::header::CONTENT_TYPE, "text/event-stream")],
                format!("data: {event}\n\n"),
            )
                .into_response();
        }
        if req["stream"] != true {
            return axum::Json(json!({
                "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
                "choices": [{ "index": 0, "finish_reason": "stop",
                              "message": { "role": "assistant", "content": "ok" } }],
                "usage": { "prompt_tokens": 1000, "completion_tokens": 100000, "total_tokens": 101000 }
            }))
            .into_response();
        }
        let chunk = |delta: Value, finish: Value| {
            let c = json!({ "id": "c", "object": "chat.completion.chunk", "created": 1,
                "model": "gpt-4o", "choices": [{ "index": 0, "delta": delta, "finish_reason": finish }] });
            format!("data: {c}\n\n")
        };
        let mut head = String::new();
        for _ in 0..900 {
            head.push_str(&chunk(json!({ "content": "tok " }), Value::Null));
        }
        head.push_str(&chunk(json!({}), json!("stop")));
        let usage = json!({ "id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o",
            "choices": [], "usage": { "prompt_tokens": 10, "completion_tokens": 900, "total_tokens": 910 } });
        let tail = format!("data: {usage}\n\ndata: [DONE]\n\n");
        let parts = futures_util::stream::iter([(head, 0u64), (tail, 2000)]).then(
            |(text, wait)| async move {
                tokio::time::sleep(Duration::from_millis(wait)).await;
                Ok::<_, std::convert::Infallible>(text)
            },
        );
        (
            [(axum::http::header::CONTENT_TYPE, "text/event-stream")],
            Body::from_stream(parts),
        )
            .into_response()
    }
    let router = axum::Router::new().route("/v1/chat/completions", axum::routing::post(chat));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    url
}

async fn set_budgets(s: &Server, admin: &str, actor_daily_usd: &str) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../governance/policies.yaml"
    );
    let text = std::fs::read_to_string(path).unwrap().replace(
        "actor_daily_usd: 50",
        &format!("actor_daily_usd: {actor_daily_usd}"),
    );
    let resp = s
        .client
        .put(s.url("/governance/policies"))
        .bearer_auth(admin)
        .header("content-type", "application/yaml")
        .body(text)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

fn chat(model: &str, extra: Value) -> Value {
    let mut body = json!({ "model": model, "messages": [{ "role": "user", "content": "hi" }] });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

/// The usage rows so far, newest first.
async fn usage(s: &Server, admin: &str) -> Vec<Value> {
    let resp = s
        .client
        .get(s.url("/usage/events?limit=200"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    read(resp).await.1["items"].as_array().unwrap().clone()
}

async fn budgets_hold(s: &Server, admin: &str) {
    set_budgets(s, admin, "0.1").await;
    // An unpriced model under a budget is refused, and the upstream never sees the call.
    let (status, body) = s
        .post(
            "/v1/chat/completions",
            admin,
            &chat("openai/mystery-model", json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("price"),
        "{body}"
    );
    // n completions and a null field do not shrink the reservation: $0.1 cannot cover
    // 20 × 1,000 tokens of gpt-4o ($0.20), nor 100,000 of them ($1), nor gpt-4o's own
    // 16,384-token maximum when no limit is set ($0.16).
    for extra in [
        json!({ "n": 20, "max_tokens": 1000 }),
        json!({ "max_completion_tokens": null, "max_tokens": 100000 }),
        json!({}),
    ] {
        let (status, body) = s
            .post("/v1/chat/completions", admin, &chat("openai/gpt-4o", extra))
            .await;
        assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{body}");
    }
    // A dated snapshot is priced as its model: its (large) usage is charged.
    let (status, body) = s
        .post(
            "/v1/chat/completions",
            admin,
            &chat("openai/gpt-4o-mini-2024-07-18", json!({ "max_tokens": 10 })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let row = usage(s, admin).await.into_iter().next().unwrap();
    assert_eq!(row["model"], "gpt-4o-mini-2024-07-18", "{row}");
    assert!(
        row["priced"] == true && row["cost_micro_usd"].as_i64().unwrap() > 60_000,
        "{row}"
    );
    s.assert_alive("budgets").await;
}

async fn an_abandoned_stream_is_charged(s: &Server, admin: &str) {
    set_budgets(s, admin, "50").await;
    let mut resp = s
        .client
        .post(s.url("/v1/chat/completions"))
        .bearer_auth(admin)
        .json(&chat(
            "openai/gpt-4o",
            json!({ "stream": true, "max_tokens": 2000 }),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut text = String::new();
    while !text.contains("\"finish_reason\":\"stop\"") {
        let chunk = resp.chunk().await.unwrap().expect("the stream ended early");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(resp); // before the usage chunk
    let deadline = Instant::now() + Duration::from_secs(15);
    let row = loop {
        let rows = usage(s, admin).await;
        if let Some(r) = rows.into_iter().find(|r| r["streamed"] == true) {
            break r;
        }
        assert!(Instant::now() < deadline, "no usage row for the stream");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(row["estimated"], true, "{row}");
    assert!(row["completion_tokens"].as_i64().unwrap() >= 900, "{row}");
    assert!(row["cost_micro_usd"].as_i64().unwrap() >= 9_000, "{row}");
    s.assert_alive("abandoned stream").await;
}

async fn upstream_keys_never_reach_callers(s: &Server, admin: &str) {
    let (status, body) = s
        .post(
            "/v1/chat/completions",
            admin,
            &chat("openai/gpt-4.1-nano", json!({})),
        )
        .await;
    assert!(
        status.is_client_error() || status.is_server_error(),
        "{body}"
    );
    let text = body.to_string();
    for secret in ["LeAkEd123456789", "SeCrEt987654", "hunter2hunter2"] {
        assert!(!text.contains(secret), "{text}");
    }
    let rows = usage(s, admin).await;
    let row = rows
        .iter()
        .find(|r| r["model"] == "gpt-4.1-nano")
        .expect("a usage row");
    let error = row["error"].as_str().unwrap();
    for secret in ["LeAkEd123456789", "SeCrEt987654", "hunter2hunter2"] {
        assert!(!error.contains(secret), "{error}");
    }
    assert!(
        !s.log().contains("hunter2hunter2"),
        "the server log shows a key"
    );
    // An error event in the middle of a stream is not passed on raw.
    let resp = s
        .client
        .post(s.url("/v1/chat/completions"))
        .bearer_auth(admin)
        .json(&chat(
            "openai/gpt-4.1-mini",
            json!({ "stream": true, "max_tokens": 10 }),
        ))
        .send()
        .await
        .unwrap();
    let text = resp.text().await.unwrap_or_default();
    assert!(!text.contains("MidStream12345"), "{text}");
    s.assert_alive("upstream keys").await;
}

/// A user holding `role` (and `viewer`, from signing up): their id and session token.
async fn user(s: &Server, admin: &str, email: &str, role: &str) -> (i64, String) {
    let password = "correct horse battery";
    let (status, body) = s
        .post(
            "/auth/register",
            "",
            &json!({ "email": email, "password": password }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["user_id"].as_i64().unwrap();
    let (status, granted) = s
        .post(
            &format!("/users/{id}/roles"),
            admin,
            &json!({ "role": role }),
        )
        .await;
    assert!(status.is_success(), "{granted}");
    (id, body["access_token"].as_str().unwrap().to_owned())
}

async fn rights_hold(s: &Server, admin: &str, backend: Backend) {
    let (_, alice) = user(s, admin, "alice@example.com", "engineer").await;
    let (_, bob) = user(s, admin, "bob@example.com", "engineer").await;
    // Someone else's run: neither cancelled nor charged.
    let (_, run) = s
        .post(
            "/runs/start_demo",
            &alice,
            &json!({ "steps": 20, "step_ms": 200 }),
        )
        .await;
    let run = run["run_id"].as_i64().unwrap();
    let (status, _) = s
        .post(&format!("/runs/{run}/cancel"), &bob, &json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s
        .post(
            "/llm/generate",
            &bob,
            &json!({ "prompt": "hi", "run_id": run }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // Someone else's workflow: no new version.
    let wf = "engine: dag\nname: mine\nsteps:\n  - { id: a, agent: ceo, prompt: hi }\n";
    assert_eq!(
        s.post_yaml("/workflows", &alice, wf.into()).await.0,
        StatusCode::CREATED
    );
    let (status, _) = s
        .post_yaml("/workflows", &bob, wf.replace("hi", "leak"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A run's approval is its starter's request: the starter cannot decide it.
    let ask = "engine: graph\nname: ask\nstate: { a: object }\nstart: ask\nnodes:\n  - { id: ask, kind: tool, tool: submit_approval, args: { description: laptops, amount_usd: 900 }, output: a, next: END }\n";
    let (status, started) = s
        .post("/workflows/run", admin, &json!({ "workflow": ask }))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let id = started["run_id"].as_i64().unwrap();
    let run = s.ended(admin, id).await;
    let approval = run["output"]["results"]["a"]["id"]
        .as_i64()
        .expect("an approval");
    let (status, _) = s
        .post(&format!("/approvals/{approval}/approve"), admin, &json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A revoked token loses its open streams and the stream tokens minted with it.
    let (status, created) = s
        .post("/auth/tokens", admin, &json!({ "name": "watch" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (token_id, token) = (
        created["id"].as_i64().unwrap(),
        created["token"].as_str().unwrap().to_owned(),
    );
    let (_, minted) = s.post("/auth/stream-token", &token, &json!({})).await;
    let stream_url = s.url(&format!(
        "/streams/events?access_token={}",
        minted["token"].as_str().unwrap()
    ));
    let mut open = s.client.get(&stream_url).send().await.unwrap();
    assert_eq!(open.status(), StatusCode::OK);
    let revoked = s
        .client
        .delete(s.url(&format!("/auth/tokens/{token_id}")))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let ended = tokio::time::timeout(Duration::from_secs(8), async {
        while let Ok(Some(_)) = open.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived its token's revocation");
    let again = s.client.get(&stream_url).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    // Behind the trusted proxy, an attacker's failures do not lock the owner out.
    let login = |ip: &'static str, password: &'static str| {
        s.client
            .post(s.url("/auth/login"))
            .header("x-forwarded-for", ip)
            .json(&json!({ "email": "alice@example.com", "password": password }))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(
            login("203.0.113.9", "wrong").await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login("203.0.113.9", "wrong").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        login("198.51.100.4", "correct horse battery")
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    // The docs are framed by nobody; the data is readable by its owner only.
    let docs = s.client.get(s.url("/docs/")).send().await.unwrap();
    assert!(
        docs.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&s.data_dir), 0o700);
        if backend == Backend::Sqlite {
            let db = s.db.url.trim_start_matches("sqlite://");
            assert_eq!(mode(std::path::Path::new(db)), 0o600);
        }
    }
    s.assert_alive("rights").await;
}

async fn attacks(backend: Backend) {
    let upstream = costly_upstream().await;
    let s = Server::start(backend, &upstream).await;
    let admin = s.admin().await;
    budgets_hold(&s, &admin).await;
    an_abandoned_stream_is_charged(&s, &admin).await;
    upstream_keys_never_reach_callers(&s, &admin).await;
    rights_hold(&s, &admin, backend).await;
    expression_bombs_are_refused(&s, &admin).await;
    alias_bombs_are_refused(&s, &admin).await;
    template_bombs_are_bounded(&s, &admin).await;
    graph_state_is_bounded(&s, &admin).await;
    streams_are_capped(&s, &admin).await;
    oversized_inputs_are_refused_fast(&s, &admin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_server_survives_the_reviews_attacks_on_sqlite() {
    attacks(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_server_survives_the_reviews_attacks_on_postgres() {
    attacks(Backend::Postgres).await;
}
