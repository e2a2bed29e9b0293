//! Worker processes sharing one PostgreSQL database: no job runs twice, and a killed
//! worker's run is finished by another or failed clearly, never left running.

use std::{
    collections::HashMap,
    process::{Child, Command, Stdio},
    time::Duration,
};

use reqwest::StatusCode;
use serde_json::{Value, json};
use vorg_store::Backend;

use crate::{
    helpers::*,
    runs::{log_messages, wait_run},
    sse::SseReader,
};

/// A `vorg worker` process on the app's database; killed when dropped.
struct WorkerProcess(Child);

impl WorkerProcess {
    fn start(app: &TestApp, concurrency: usize, lease_ms: u64) -> WorkerProcess {
        Self::start_with(app, concurrency, lease_ms, &[])
    }

    fn start_with(
        app: &TestApp,
        concurrency: usize,
        lease_ms: u64,
        env: &[(&str, &str)],
    ) -> WorkerProcess {
        let child = Command::new(env!("CARGO_BIN_EXE_vorg"))
            .args(["worker", "--concurrency", &concurrency.to_string()])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", app.settings.database_url())
            .env("VORG_DATA_DIR", &app.settings.data_dir)
            .env("VORG_CONFIG", app.settings.data_dir.join("absent.toml"))
            .env("VORG_JOB_LEASE_MS", lease_ms.to_string())
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start vorg worker");
        WorkerProcess(child)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    fn kill_9(&mut self) {
        let status = Command::new("kill")
            .args(["-9", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let _ = self.0.wait();
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn api_without_workers() -> (TestApp, String) {
    let app = TestApp::spawn_with(Backend::Postgres, |s| s.workers = 0).await;
    let admin = app.admin().await;
    (app, admin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_worker_processes_share_the_queue_and_never_run_a_job_twice() {
    let (app, admin) = api_without_workers().await;
    let mut ids = Vec::new();
    for _ in 0..120 {
        let (status, body) = app
            .post(
                "/runs/start_demo",
                Some(&admin),
                json!({ "steps": 1, "step_ms": 5 }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        ids.push(body["run_id"].as_i64().unwrap());
    }
    let _a = WorkerProcess::start(&app, 4, 30_000);
    let _b = WorkerProcess::start(&app, 4, 30_000);
    let mut per_worker: HashMap<String, usize> = HashMap::new();
    for id in ids {
        let run = wait_run(&app, &admin, id, "succeeded", |r: &Value| {
            r["status"] == "succeeded"
        })
        .await;
        assert_eq!(run["attempts"], 1, "run {id} was attempted twice");
        let started: Vec<String> = log_messages(&app, &admin, id)
            .await
            .into_iter()
            .filter(|m| m.starts_with("demo run started on worker "))
            .collect();
        assert_eq!(
            started.len(),
            1,
            "run {id} executed {} times",
            started.len()
        );
        let worker = started[0]
            .trim_start_matches("demo run started on worker ")
            .to_owned();
        *per_worker.entry(worker).or_default() += 1;
    }
    assert_eq!(
        per_worker.len(),
        2,
        "both processes took work: {per_worker:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_run_is_retried_on_the_other_and_finishes() {
    let (app, admin) = api_without_workers().await;
    let mut a = WorkerProcess::start(&app, 2, 1500);
    let (_, body) = app
        .post(
            "/runs/start_demo",
            Some(&admin),
            json!({ "steps": 10, "step_ms": 200 }),
        )
        .await;
    let id = body["run_id"].as_i64().unwrap();
    wait_run(&app, &admin, id, "running", |r| r["status"] == "running").await;
    // This process executes nothing: its stream relays rows written by the worker processes.
    let resp = app
        .client
        .get(app.url(&format!("/streams/runs/{id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let mut stream = SseReader::new(resp);
    let b = WorkerProcess::start(&app, 2, 1500);
    let first = log_messages(&app, &admin, id).await;
    assert!(
        first.iter().any(|m| m.contains(&format!(":{}:", a.pid()))),
        "ran on a: {first:?}"
    );
    a.kill_9();
    let run = wait_run(&app, &admin, id, "succeeded", |r| {
        r["status"] == "succeeded"
    })
    .await;
    assert_eq!(run["attempts"], 2);
    let all = log_messages(&app, &admin, id).await;
    let retry = all
        .iter()
        .find(|m| m.starts_with("attempt 2 of 3 (on worker"))
        .unwrap_or_else(|| panic!("{all:?}"));
    assert!(retry.contains(&format!(":{}:", b.pid())), "{retry}");
    assert_eq!(all.last().unwrap(), "status: succeeded");
    let frames = stream.rest(Duration::from_secs(20)).await;
    assert_eq!(frames.last().unwrap().event, "done");
    let streamed = frames.iter().filter(|f| f.event != "done").count();
    assert_eq!(
        streamed,
        all.len(),
        "the stream carried every row written by both workers"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_worker_dies_with_no_attempt_left_fails_clearly() {
    let (app, admin) = api_without_workers().await;
    let mut a = WorkerProcess::start(&app, 1, 1000);
    let (_, body) = app
        .post(
            "/runs/start_demo",
            Some(&admin),
            json!({ "steps": 50, "step_ms": 200, "max_attempts": 1 }),
        )
        .await;
    let id = body["run_id"].as_i64().unwrap();
    wait_run(&app, &admin, id, "running", |r| r["status"] == "running").await;
    a.kill_9();
    let _b = WorkerProcess::start(&app, 1, 1000);
    let run = wait_run(&app, &admin, id, "failed", |r| r["status"] == "failed").await;
    let error = run["error"].as_str().unwrap();
    assert!(
        error.contains("worker executing this run was lost"),
        "{error}"
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stopped_with_sigterm_releases_its_run_to_the_next_worker() {
    let (app, admin) = api_without_workers().await;
    let mut a = WorkerProcess::start_with(&app, 1, 30_000, &[("VORG_SHUTDOWN_GRACE_MS", "300")]);
    let (_, body) = app
        .post(
            "/runs/start_demo",
            Some(&admin),
            json!({ "steps": 20, "step_ms": 200 }),
        )
        .await;
    let id = body["run_id"].as_i64().unwrap();
    wait_run(&app, &admin, id, "running", |r| r["status"] == "running").await;
    let term = Command::new("kill")
        .args(["-TERM", &a.pid().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = tokio::task::spawn_blocking(move || a.0.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "the worker exits cleanly: {status}");
    // Released, not failed and not left running: it waits in the queue.
    let run = wait_run(&app, &admin, id, "queued", |r| r["status"] == "queued").await;
    assert_eq!(run["attempts"], 1);
    let all = log_messages(&app, &admin, id).await;
    assert!(
        all.iter()
            .any(|m| m.contains("shut down; the run will resume on the next worker")),
        "{all:?}"
    );
    // The lease was released, so the next worker takes it at once (not after 30 s).
    let _b = WorkerProcess::start(&app, 1, 30_000);
    let run = wait_run(&app, &admin, id, "succeeded", |r| {
        r["status"] == "succeeded"
    })
    .await;
    assert_eq!(run["attempts"], 2);
}

/// An OpenAI-compatible upstream that takes `delay_ms` per completion.
async fn slow_upstream(delay_ms: u64) -> String {
    use axum::{Router, routing::post};
    async fn chat(axum::Json(_req): axum::Json<Value>) -> axum::Json<Value> {
        tokio::time::sleep(Duration::from_millis(
            DELAY.load(std::sync::atomic::Ordering::Relaxed),
        ))
        .await;
        axum::Json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1741569952, "model": "gpt-4o-mini",
            "choices": [{ "index": 0, "message": { "role": "assistant", "content": "done" }, "finish_reason": "stop" }],
            "usage": { "prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25 }
        }))
    }
    static DELAY: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    DELAY.store(delay_ms, std::sync::atomic::Ordering::Relaxed);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let router = Router::new().route("/v1/chat/completions", post(chat));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    url
}

const CHAIN: &str = r#"
engine: graph
name: chain
state: { a: string, b: string, c: string, d: string, e: string, f: string }
start: a
nodes:
  - { id: a, agent: cto, prompt: "Step a", output: a, next: b }
  - { id: b, agent: cto, prompt: "Step b after {{ state.a }}", output: b, next: c }
  - { id: c, agent: cto, prompt: "Step c", output: c, next: d }
  - { id: d, agent: cto, prompt: "Step d", output: d, next: e }
  - { id: e, agent: cto, prompt: "Step e", output: e, next: f }
  - { id: f, agent: cto, prompt: "Step f", output: f }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graph_run_resumes_from_its_last_checkpoint_after_its_worker_is_killed() {
    let (app, admin) = api_without_workers().await;
    let upstream = slow_upstream(400).await;
    let env = [
        ("OPENAI_API_KEY", "sk-test-0123456789abcdef"),
        ("OPENAI_BASE_URL", upstream.as_str()),
    ];
    let mut a = WorkerProcess::start_with(&app, 1, 1500, &env);
    let (status, started) = app
        .post(
            "/workflows/run",
            Some(&admin),
            json!({ "workflow": CHAIN, "model": "openai/gpt-4o-mini" }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let id = started["run_id"].as_i64().unwrap();
    // Kill the worker once two nodes are checkpointed (the third is then in flight).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let done_before_kill: Vec<String> = loop {
        let (_, cps) = app.get(&format!("/runs/{id}/checkpoints"), &admin).await;
        let nodes: Vec<String> = cps["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["node"].as_str().unwrap().to_owned())
            .collect();
        if nodes.len() >= 2 {
            a.kill_9();
            break nodes;
        }
        assert!(tokio::time::Instant::now() < deadline, "no checkpoints");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Read again after the kill: a checkpoint may have landed between the read and the kill.
    let (_, cps) = app.get(&format!("/runs/{id}/checkpoints"), &admin).await;
    let checkpointed: Vec<String> = cps["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["node"].as_str().unwrap().to_owned())
        .collect();
    assert!(checkpointed.len() >= done_before_kill.len() && checkpointed.len() < 6);

    let _b = WorkerProcess::start_with(&app, 1, 1500, &env);
    let run = wait_run(&app, &admin, id, "succeeded", |r| {
        r["status"] == "succeeded" || r["status"] == "failed"
    })
    .await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["attempts"], 2, "{run}");
    let all = log_messages(&app, &admin, id).await;
    for node in &checkpointed {
        let runs = all
            .iter()
            .filter(|m| *m == &format!("[{node}] started"))
            .count();
        assert_eq!(
            runs, 1,
            "{node} was checkpointed, so never run again: {all:#?}"
        );
    }
    let resumed = format!(
        "[run] resuming after \"{}\" (step {})",
        checkpointed.last().unwrap(),
        checkpointed.len()
    );
    assert!(all.contains(&resumed), "{all:#?}");
    let (_, cps) = app.get(&format!("/runs/{id}/checkpoints"), &admin).await;
    let nodes: Vec<&str> = cps["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["node"].as_str().unwrap())
        .collect();
    assert_eq!(nodes, vec!["a", "b", "c", "d", "e", "f"]);
    assert_eq!(run["output"]["results"]["f"], "done");
}
