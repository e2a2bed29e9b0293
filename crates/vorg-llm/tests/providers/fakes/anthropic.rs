//! A local server that answers as Anthropic's Messages API does: `x-api-key` and
//! `anthropic-version` checked, `max_tokens` and the tool definitions validated with its
//! 400 `invalid_request_error`, real `message` bodies (text and `tool_use` blocks), its SSE
//! event sequence, `retry-after` on 429, `overloaded_error` (529) and `error` events.
//!
//! Shared by the `providers` contract suite and the `anthropic` provider-specific tests.

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    body::Body,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use serde_json::{Value, json};

/// The key Anthropic accepts.
pub const KEY: &str = "sk-ant-api03-test";

#[derive(Clone)]
pub enum Reply {
    Json(u16, Vec<(&'static str, String)>, Value),
    /// `(event, data)` pairs, in order.
    Sse(Vec<(&'static str, Value)>),
    /// Some events, then the connection is reset.
    Cut(Vec<(&'static str, Value)>),
}

#[derive(Clone, Default)]
pub struct Fake {
    pub replies: Arc<Mutex<VecDeque<Reply>>>,
    /// The bodies of the requests it accepted.
    pub seen: Arc<Mutex<Vec<Value>>>,
    /// Every request that reached it, refused ones included.
    pub hits: Arc<AtomicUsize>,
}

impl Fake {
    pub fn push(&self, reply: Reply) {
        self.replies.lock().unwrap().push_back(reply);
    }

    /// Serves on a free local port; returns the base URL (without `/v1`).
    pub async fn serve(&self) -> String {
        let app = Router::new()
            .route("/v1/messages", post(messages))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    }
}

/// An error answer in Anthropic's shape.
pub fn error(kind: &str, message: &str) -> Value {
    json!({ "type": "error", "error": { "type": kind, "message": message },
            "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy" })
}

fn refuse(status: StatusCode, kind: &str, message: &str) -> Response {
    (status, axum::Json(error(kind, message))).into_response()
}

/// The first problem Anthropic's validation finds in a request body, as it words it.
fn invalid(body: &Value) -> Option<String> {
    if !body["max_tokens"].is_u64() {
        return Some("max_tokens: Field required".into());
    }
    for (i, tool) in body["tools"].as_array().into_iter().flatten().enumerate() {
        if !tool["name"].is_string() {
            return Some(format!("tools.{i}.custom.name: Field required"));
        }
        match tool.get("description") {
            None | Some(Value::String(_)) => {}
            Some(_) => {
                return Some(format!(
                    "tools.{i}.custom.description: Input should be a valid string"
                ));
            }
        }
        if !tool["input_schema"].is_object() {
            return Some(format!("tools.{i}.custom.input_schema: Field required"));
        }
    }
    None
}

async fn messages(State(fake): State<Fake>, headers: HeaderMap, body: String) -> Response {
    fake.hits.fetch_add(1, Ordering::SeqCst);
    if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(KEY) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid x-api-key",
        );
    }
    if headers
        .get("anthropic-version")
        .and_then(|v| v.to_str().ok())
        != Some("2023-06-01")
    {
        let msg = "anthropic-version: header is required";
        return refuse(StatusCode::BAD_REQUEST, "invalid_request_error", msg);
    }
    let request: Value = serde_json::from_str(&body).unwrap();
    if let Some(problem) = invalid(&request) {
        return refuse(StatusCode::BAD_REQUEST, "invalid_request_error", &problem);
    }
    fake.seen.lock().unwrap().push(request.clone());
    let reply = fake
        .replies
        .lock()
        .unwrap()
        .pop_front()
        .expect("a scripted reply");
    let frame = |events: Vec<(&'static str, Value)>| -> String {
        events
            .iter()
            .map(|(e, d)| format!("event: {e}\ndata: {d}\n\n"))
            .collect()
    };
    match reply {
        Reply::Json(status, headers, body) => {
            let mut resp =
                (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response();
            for (k, v) in headers {
                resp.headers_mut().insert(k, v.parse().unwrap());
            }
            resp
        }
        Reply::Sse(events) => {
            assert_eq!(
                request["stream"], true,
                "a stream scripted for a plain request"
            );
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from(frame(events)))
                .unwrap()
        }
        Reply::Cut(events) => {
            let text = frame(events);
            let parts = futures_util::stream::unfold(0, move |step| {
                let text = text.clone();
                async move {
                    match step {
                        0 => Some((Ok::<_, std::io::Error>(text), 1)),
                        1 => {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            let reset =
                                std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
                            Some((Err(reset), 2))
                        }
                        _ => None,
                    }
                }
            });
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(parts))
                .unwrap()
        }
    }
}

fn message_of(content: Value, stop: &str, input: i64, output: i64) -> Value {
    json!({
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant",
        "model": "claude-sonnet-4-5-20250929", "content": content,
        "stop_reason": stop, "stop_sequence": null,
        "usage": { "input_tokens": input, "cache_creation_input_tokens": 0,
                   "cache_read_input_tokens": 0, "output_tokens": output, "service_tier": "standard" }
    })
}

/// A `message` with one text block.
#[allow(dead_code)] // the providers suite uses `message_cached`; tests/anthropic.rs this
pub fn message(text: &str, input: i64, output: i64) -> Value {
    message_cached(text, (input, 0, 0), output)
}

/// A `message` with one text block whose input was partly read from and written to the
/// prompt cache: `(input_tokens, cache_read_input_tokens, cache_creation_input_tokens)`, the
/// first counting neither, as Anthropic reports them.
pub fn message_cached(text: &str, (input, read, write): (i64, i64, i64), output: i64) -> Value {
    let mut m = message_of(
        json!([{ "type": "text", "text": text }]),
        "end_turn",
        input,
        output,
    );
    m["usage"]["cache_read_input_tokens"] = json!(read);
    m["usage"]["cache_creation_input_tokens"] = json!(write);
    m
}

/// A `message` that calls a tool, as Claude does: a short text block, then `tool_use`.
pub fn tool_use_message(id: &str, name: &str, input: &Value, i: i64, o: i64) -> Value {
    let content = json!([
        { "type": "text", "text": "I'll look that up." },
        { "type": "tool_use", "id": id, "name": name, "input": input },
    ]);
    message_of(content, "tool_use", i, o)
}

/// The events of a streamed text answer, up to the deltas of `pieces`.
pub fn stream_start(pieces: &[&str], input: i64) -> Vec<(&'static str, Value)> {
    let mut events = vec![
        (
            "message_start",
            json!({ "type": "message_start", "message": { "id": "msg_1", "type": "message", "role": "assistant",
                "content": [], "model": "claude-sonnet-4-5-20250929", "stop_reason": null, "stop_sequence": null,
                "usage": { "input_tokens": input, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                           "output_tokens": 1 } } }),
        ),
        (
            "content_block_start",
            json!({ "type": "content_block_start", "index": 0, "content_block": { "type": "text", "text": "" } }),
        ),
        ("ping", json!({ "type": "ping" })),
    ];
    events.extend(pieces.iter().map(|p| {
        (
            "content_block_delta",
            json!({ "type": "content_block_delta", "index": 0,
                                        "delta": { "type": "text_delta", "text": p } }),
        )
    }));
    events
}

/// The whole event sequence of a streamed text answer.
pub fn stream(pieces: &[&str], input: i64, output: i64) -> Vec<(&'static str, Value)> {
    let mut events = stream_start(pieces, input);
    events.extend([
        ("content_block_stop", json!({ "type": "content_block_stop", "index": 0 })),
        ("message_delta", json!({ "type": "message_delta",
            "delta": { "stop_reason": "end_turn", "stop_sequence": null }, "usage": { "output_tokens": output } })),
        ("message_stop", json!({ "type": "message_stop" })),
    ]);
    events
}

/// The `error` event Anthropic sends when it fails mid-stream.
pub fn overloaded_event() -> (&'static str, Value) {
    ("error", error("overloaded_error", "Overloaded"))
}
