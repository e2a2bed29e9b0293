//! The test application and its helpers.

use std::path::PathBuf;

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vorg::{Application, Settings};
use vorg_domain::{Role, Secret};
use vorg_store::{Backend, Store, testing::TestDb};

pub const PASSWORD: &str = "correct horse battery";
pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";

/// Instantiates `async fn $name(backend: Backend)` for SQLite and PostgreSQL.
#[macro_export]
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() { super::$name(vorg_store::Backend::Sqlite).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { super::$name(vorg_store::Backend::Postgres).await }
        }
    )*};
}

/// A running vorg with its own database and data directory.
pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub store: Store,
    pub settings: Settings,
    shutdown: CancellationToken,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
    pub db: Option<TestDb>,
}

pub fn test_settings(db: &TestDb, data_dir: PathBuf) -> Settings {
    Settings {
        bind: "127.0.0.1:0".into(),
        data_dir,
        database_url: Some(Secret::new(db.url.clone())),
        jwt_secret: Some(Secret::new(JWT_SECRET)),
        ..Settings::default()
    }
}

fn temp_data_dir() -> PathBuf {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("vorg-api-test-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> TestApp {
        init_logs();
        let db = TestDb::new(backend).await;
        let mut settings = test_settings(&db, temp_data_dir());
        tweak(&mut settings);
        let mut app = Self::start(settings).await;
        app.db = Some(db);
        app
    }

    /// Starts an application on `settings` (a database that already exists).
    pub async fn start(settings: Settings) -> TestApp {
        let app = Application::build(settings.clone())
            .await
            .expect("build app");
        let base = format!("http://{}", app.local_addr());
        let store = Store::connect(&settings.database_url())
            .await
            .expect("store");
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(app.run_until_stopped(shutdown.clone()));
        TestApp {
            base,
            client: Client::new(),
            store,
            settings,
            shutdown,
            handle: Some(handle),
            db: None,
        }
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(h) = self.handle.take() {
            h.await.expect("join").expect("server error");
        }
        self.store.close().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        read(req.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub async fn register(&self, email: &str, password: &str) -> (StatusCode, Value) {
        self.post(
            "/auth/register",
            None,
            json!({ "email": email, "password": password }),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> (StatusCode, Value) {
        self.post(
            "/auth/login",
            None,
            json!({ "email": email, "password": password }),
        )
        .await
    }

    /// Registers the first user (admin) and returns its session token.
    pub async fn admin(&self) -> String {
        let (status, body) = self.register("admin@example.com", PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().expect("token").to_owned()
    }

    /// Creates a user holding exactly `roles` (through the store) and logs in as them.
    pub async fn user_with(&self, email: &str, roles: &[Role]) -> (i64, String) {
        let hasher = vorg_api::PasswordHasher::new().expect("hasher");
        let hash = hasher.hash(PASSWORD).await.expect("hash");
        let user = self
            .store
            .create_user(email, &hash, roles, false)
            .await
            .expect("create user");
        let (status, body) = self.login(email, PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (
            user.user.id,
            body["access_token"].as_str().expect("token").to_owned(),
        )
    }
}

impl TestApp {
    /// The value of the first `/metrics` line starting with `prefix` (`None`: no such line).
    pub async fn metric(&self, token: &str, prefix: &str) -> Option<f64> {
        let text = self
            .client
            .get(self.url("/metrics"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse().ok())
    }

    /// Starts an ad hoc workflow run (`POST /workflows/run`); returns its id.
    pub async fn start_workflow(&self, token: &str, source: &str, inputs: Value) -> i64 {
        let (status, started) = self
            .post(
                "/workflows/run",
                Some(token),
                json!({ "workflow": source, "inputs": inputs }),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{started}");
        started["run_id"].as_i64().unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let _ = std::fs::remove_dir_all(&self.settings.data_dir);
    }
}

/// Status and JSON body (`null` for an empty or non-JSON body).
pub async fn read(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Asserts a problem document with `status` and `code` whose field errors name `field`.
pub fn assert_problem(status: StatusCode, body: &Value, want: StatusCode, code: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], want.as_u16(), "{body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
}

pub fn field_names(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn init_logs() {
    if std::env::var("TEST_LOG").is_ok() {
        vorg::telemetry::init(vorg::config::LogFormat::Text);
    }
}

/// An OpenAI-compatible upstream that answers the scripted messages in turn (the last one
/// repeats) and keeps the requests it got. A string answer is the assistant's text; an
/// object is the whole assistant message (e.g. with `tool_calls`).
#[derive(Clone, Default)]
pub struct Scripted {
    answers: std::sync::Arc<Vec<Value>>,
    pub seen: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
}

async fn scripted_chat(
    axum::extract::State(s): axum::extract::State<Scripted>,
    axum::Json(req): axum::Json<Value>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if req["model"] == "gpt-4.1-nano" {
        // A priced model this upstream does not serve: what OpenAI answers for one.
        let body = json!({ "error": {
            "message": "The model `gpt-4.1-nano` does not exist or you do not have access to it.",
            "type": "invalid_request_error", "param": null, "code": "model_not_found",
        }});
        return (axum::http::StatusCode::NOT_FOUND, axum::Json(body)).into_response();
    }
    let n = {
        let mut seen = s.seen.lock().unwrap();
        seen.push(req);
        seen.len() - 1
    };
    let answer = s.answers.get(n).or(s.answers.last()).cloned();
    let (message, finish) = match answer {
        Some(Value::Object(m)) => (Value::Object(m), "tool_calls"),
        Some(Value::String(text)) => (json!({ "role": "assistant", "content": text }), "stop"),
        _ => (json!({ "role": "assistant", "content": "" }), "stop"),
    };
    axum::Json(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1741569952, "model": "gpt-4o-mini",
        "choices": [{ "index": 0, "message": message, "finish_reason": finish }],
        "usage": { "prompt_tokens": 50, "completion_tokens": 80, "total_tokens": 130 }
    }))
    .into_response()
}

/// OpenAI's embeddings answer: one 3-number vector per input, 4 tokens an input.
async fn scripted_embeddings(axum::Json(req): axum::Json<Value>) -> axum::Json<Value> {
    let n = req["input"].as_array().map_or(1, Vec::len);
    let data: Vec<Value> = (0..n)
        .map(|i| json!({ "object": "embedding", "index": i, "embedding": [0.1, 0.2, i as f64] }))
        .collect();
    axum::Json(json!({
        "object": "list", "data": data, "model": req["model"],
        "usage": { "prompt_tokens": 4 * n, "total_tokens": 4 * n }
    }))
}

/// [`Scripted`] answering `answers` (texts), and its base URL.
pub async fn scripted(answers: &[&str]) -> (Scripted, String) {
    scripted_messages(answers.iter().map(|a| json!(a)).collect()).await
}

/// [`Scripted`] answering `answers` (texts or whole messages), and its base URL.
pub async fn scripted_messages(answers: Vec<Value>) -> (Scripted, String) {
    let s = Scripted {
        answers: std::sync::Arc::new(answers),
        ..Default::default()
    };
    let router = axum::Router::new()
        .route("/v1/chat/completions", axum::routing::post(scripted_chat))
        .route("/v1/embeddings", axum::routing::post(scripted_embeddings))
        .with_state(s.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (s, url)
}
