//! A fake of Linear's GraphQL API for tests (feature `fake`): an axum server on
//! 127.0.0.1:0 that checks the key, validates every document against Linear's schema,
//! answers the operations vorg uses from seeded in-memory data, and can be told to
//! rate-limit, fail or revoke the key. Error bodies and headers follow Linear's.
//!
//! ```no_run
//! # async fn demo() {
//! let fake = vorg_linear::fake::FakeLinear::start().await;
//! let client = fake.client();
//! let teams = client.teams().await;
//! # }
//! ```

mod exec;
mod seeded;
mod store;

use std::{
    net::SocketAddr,
    sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use apollo_compiler::{Schema, validation::Valid};
use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use chrono::Utc;
use serde_json::{Value, json};

use crate::{LinearClient, LinearConfig};
use store::Store;

/// The key the fake accepts unless told otherwise.
pub const FAKE_API_KEY: &str = "lin_api_fake0000000000000000000000000000000000";

/// Ids of the seeded data.
pub mod seed {
    /// The viewer (Ada Lovelace, admin).
    pub const VIEWER: &str = "user-ada";
    /// Another member (Grace Hopper).
    pub const OTHER_USER: &str = "user-grace";
    /// Team `ENG` "Engineering". Its states are `state-eng-{backlog,todo,in-progress,done,canceled}`.
    pub const TEAM_ENG: &str = "team-eng";
    /// Team `GRO` "Growth". Its states are `state-gro-…` like ENG's.
    pub const TEAM_GROWTH: &str = "team-gro";
    pub const STATE_ENG_BACKLOG: &str = "state-eng-backlog";
    pub const STATE_ENG_TODO: &str = "state-eng-todo";
    pub const STATE_ENG_IN_PROGRESS: &str = "state-eng-in-progress";
    pub const STATE_ENG_DONE: &str = "state-eng-done";
    pub const STATE_GROWTH_TODO: &str = "state-gro-todo";
    /// ENG cycle 1, ended last week.
    pub const CYCLE_ENG_PAST: &str = "cycle-eng-1";
    /// ENG cycle 2, running now.
    pub const CYCLE_ENG_CURRENT: &str = "cycle-eng-2";
    /// ENG cycle 3, starts in a week (`isNext`).
    pub const CYCLE_ENG_NEXT: &str = "cycle-eng-3";
    /// ENG cycle 4, starts in three weeks.
    pub const CYCLE_ENG_LATER: &str = "cycle-eng-4";
    pub const CYCLE_GROWTH_CURRENT: &str = "cycle-gro-1";
    pub const CYCLE_GROWTH_NEXT: &str = "cycle-gro-2";
    /// Workspace labels (no team).
    pub const LABEL_BUG: &str = "label-bug";
    pub const LABEL_FEATURE: &str = "label-feature";
    /// A label of team ENG.
    pub const LABEL_INFRA: &str = "label-infra";
    pub const PROJECT_LAUNCH: &str = "project-launch";
    pub const PROJECT_GROWTH: &str = "project-growth";
    /// ENG-1 "Fix the login redirect": Todo, current cycle, Bug, assigned to the viewer.
    pub const ISSUE_ENG_1: &str = "issue-eng-1";
    /// ENG-2 "Add an audit log": In Progress, current cycle, Feature, assigned to Grace.
    pub const ISSUE_ENG_2: &str = "issue-eng-2";
    /// ENG-3 "Upgrade the database": Backlog, no cycle, Infra, unassigned.
    pub const ISSUE_ENG_3: &str = "issue-eng-3";
    /// GRO-1 "Rewrite the landing page": Todo, Growth's current cycle, Feature, the viewer.
    pub const ISSUE_GROWTH_1: &str = "issue-gro-1";
}

static SCHEMA: LazyLock<Result<Valid<Schema>, String>> = LazyLock::new(|| {
    Schema::parse_and_validate(crate::SCHEMA_SDL, "linear.graphql")
        .map_err(|e| e.errors.to_string())
});

/// Linear's schema, parsed and validated once per process.
pub fn schema() -> Result<&'static Valid<Schema>, String> {
    SCHEMA.as_ref().map_err(Clone::clone)
}

/// What the next requests get instead of an answer.
#[derive(Default)]
struct Knobs {
    rate_limited: u32,
    reset_in: Duration,
    /// 429 with `Retry-After` instead of Linear's usual 400.
    with_429: bool,
    failing: u32,
    failure: (String, String),
}

struct Shared {
    key: Mutex<Option<String>>,
    store: Mutex<Store>,
    knobs: Mutex<Knobs>,
    requests: Mutex<Vec<String>>,
    created: Mutex<u64>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running fake. Dropping it stops the server.
pub struct FakeLinear {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeLinear {
    /// Starts a fake accepting [`FAKE_API_KEY`]; panics if it cannot bind or the schema
    /// does not parse (use [`try_start`](Self::try_start) to handle that).
    pub async fn start() -> Self {
        match Self::try_start().await {
            Ok(fake) => fake,
            Err(e) => panic!("the Linear fake did not start: {e}"),
        }
    }

    /// Starts a fake accepting [`FAKE_API_KEY`].
    pub async fn try_start() -> Result<Self, String> {
        // Parse the 50k-line schema off the runtime before the first request needs it.
        tokio::task::spawn_blocking(|| schema().map(|_| ()))
            .await
            .map_err(|e| e.to_string())??;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let shared = Arc::new(Shared {
            key: Mutex::new(Some(FAKE_API_KEY.to_owned())),
            store: Mutex::new(Store::seeded()),
            knobs: Mutex::new(Knobs::default()),
            requests: Mutex::new(Vec::new()),
            created: Mutex::new(0),
        });
        let app = Router::new()
            .route("/graphql", post(graphql))
            .with_state(shared.clone());
        // The server lives exactly as long as this value: aborted in `Drop`.
        #[allow(clippy::disallowed_methods)]
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeLinear { addr, shared, task })
    }

    /// The GraphQL endpoint, `http://127.0.0.1:<port>/graphql`.
    pub fn url(&self) -> String {
        format!("http://{}/graphql", self.addr)
    }

    /// A client config for this fake: its key, a 10 s timeout, 3 retries within 10 s.
    pub fn config(&self) -> LinearConfig {
        let mut config = LinearConfig::new(FAKE_API_KEY).with_endpoint(self.url());
        config.timeout = Duration::from_secs(10);
        config
    }

    /// A client built from [`config`](Self::config).
    pub fn client(&self) -> LinearClient {
        match LinearClient::new(self.config()) {
            Ok(client) => client,
            Err(e) => panic!("a client for the Linear fake: {e}"),
        }
    }

    /// The next `n` requests get Linear's rate-limit answer (HTTP 400, `RATELIMITED`,
    /// `X-RateLimit-Requests-Remaining: 0`, the reset `reset_in` from each answer).
    pub fn rate_limit_next(&self, n: u32, reset_in: Duration) {
        let mut k = lock(&self.shared.knobs);
        (k.rate_limited, k.reset_in, k.with_429) = (n, reset_in, false);
    }

    /// Like [`rate_limit_next`](Self::rate_limit_next) with HTTP 429 and `Retry-After`.
    pub fn rate_limit_next_with_429(&self, n: u32, retry_after: Duration) {
        let mut k = lock(&self.shared.knobs);
        (k.rate_limited, k.reset_in, k.with_429) = (n, retry_after, true);
    }

    /// The next `n` requests get HTTP 200 with a GraphQL error (`message`, `code`).
    pub fn fail_next(&self, n: u32, message: &str, code: &str) {
        let mut k = lock(&self.shared.knobs);
        (k.failing, k.failure) = (n, (message.to_owned(), code.to_owned()));
    }

    /// From now on every key is refused, as after revoking it in Linear.
    pub fn revoke_key(&self) {
        *lock(&self.shared.key) = None;
    }

    /// Accept `key` (only) from now on.
    pub fn set_api_key(&self, key: &str) {
        *lock(&self.shared.key) = Some(key.to_owned());
    }

    /// Requests received (every POST, answered or refused).
    pub fn request_count(&self) -> usize {
        lock(&self.shared.requests).len()
    }

    /// The `operationName` of every request, in order (`?` when absent).
    pub fn operations(&self) -> Vec<String> {
        lock(&self.shared.requests).clone()
    }

    /// Issues created through `issueCreate`.
    pub fn created_issue_count(&self) -> u64 {
        *lock(&self.shared.created)
    }

    /// An issue as Linear would serve it in full (by id or identifier).
    pub fn issue(&self, id: &str) -> Option<Value> {
        lock(&self.shared.store).issue(id)
    }

    /// How many comments an issue has.
    pub fn comment_count(&self, issue_id: &str) -> usize {
        lock(&self.shared.store).comment_count(issue_id)
    }
}

impl Drop for FakeLinear {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn graphql(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let body: Option<Value> = serde_json::from_slice(&body).ok();
    let operation = body
        .as_ref()
        .and_then(|b| b.get("operationName")?.as_str().map(str::to_owned));
    lock(&shared.requests).push(operation.clone().unwrap_or_else(|| "?".into()));

    let sent = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let accepted = lock(&shared.key).clone();
    if accepted.is_none() || sent != accepted.as_deref() {
        return reply(400, auth_error(), RateHeaders::normal(), None);
    }
    {
        let mut k = lock(&shared.knobs);
        if k.rate_limited > 0 {
            k.rate_limited -= 1;
            let status = if k.with_429 { 429 } else { 400 };
            let retry_after = k.with_429.then_some(k.reset_in);
            return reply(
                status,
                rate_limited(),
                RateHeaders::exhausted(k.reset_in),
                retry_after,
            );
        }
        if k.failing > 0 {
            k.failing -= 1;
            let (message, code) = k.failure.clone();
            let error = json!({ "message": message, "extensions": {
                "code": code, "type": "invalid input", "userError": true,
                "userPresentableMessage": message } });
            return reply(
                200,
                json!({ "data": null, "errors": [error] }),
                RateHeaders::normal(),
                None,
            );
        }
    }
    let Some(body) = body else {
        let error = json!({ "message": "Request body must be JSON",
            "extensions": { "code": "BAD_REQUEST", "type": "graphql error" } });
        return reply(
            400,
            json!({ "errors": [error] }),
            RateHeaders::normal(),
            None,
        );
    };
    let schema = match schema() {
        Ok(schema) => schema,
        Err(e) => {
            return reply(
                500,
                json!({ "errors": [{ "message": e }] }),
                RateHeaders::normal(),
                None,
            );
        }
    };
    let (status, answer) = exec::answer(schema, &mut lock(&shared.store), &body);
    if operation.as_deref() == Some("IssueCreate")
        && answer["data"]["issueCreate"]["success"] == true
    {
        *lock(&shared.created) += 1;
    }
    reply(status, answer, RateHeaders::normal(), None)
}

/// Linear's answer to a missing, wrong or revoked key.
fn auth_error() -> Value {
    json!({ "errors": [{
        "message": "Authentication required, not authenticated",
        "extensions": {
            "type": "authentication error",
            "code": "AUTHENTICATION_ERROR",
            "statusCode": 401,
            "userError": true,
            "userPresentableMessage": "You need to authenticate to access this operation.",
            "meta": {},
            "http": { "status": 401 }
        }
    }] })
}

/// Linear's answer when the request budget is spent.
fn rate_limited() -> Value {
    json!({ "errors": [{
        "message": "Rate limit exceeded. Only 5000 requests are allowed per 1 hour.",
        "extensions": {
            "type": "ratelimited",
            "code": "RATELIMITED",
            "statusCode": 429,
            "userError": true,
            "userPresentableMessage": "Rate limit exceeded. Please try again later."
        }
    }] })
}

/// The `X-RateLimit-*` headers Linear sends on every answer.
struct RateHeaders {
    remaining: u64,
    reset_in: Duration,
}

impl RateHeaders {
    fn normal() -> Self {
        RateHeaders {
            remaining: 4999,
            reset_in: Duration::from_secs(3600),
        }
    }
    fn exhausted(reset_in: Duration) -> Self {
        RateHeaders {
            remaining: 0,
            reset_in,
        }
    }
}

fn reply(status: u16, body: Value, rate: RateHeaders, retry_after: Option<Duration>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (status, axum::Json(body)).into_response();
    let reset_ms = Utc::now().timestamp_millis()
        + i64::try_from(rate.reset_in.as_millis()).unwrap_or(i64::MAX / 2);
    let h = resp.headers_mut();
    let mut put = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    };
    put("x-ratelimit-requests-limit", "5000".into());
    put("x-ratelimit-requests-remaining", rate.remaining.to_string());
    put("x-ratelimit-requests-reset", reset_ms.to_string());
    put("x-ratelimit-complexity-limit", "3000000".into());
    put("x-ratelimit-complexity-remaining", "2999000".into());
    put(
        "x-ratelimit-complexity-reset",
        (Utc::now().timestamp_millis() + 3_600_000).to_string(),
    );
    put("x-complexity", "1000".into());
    if let Some(wait) = retry_after {
        put("retry-after", wait.as_secs_f64().ceil().to_string());
    }
    resp
}
