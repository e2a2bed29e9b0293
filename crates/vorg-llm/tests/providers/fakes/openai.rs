//! A local server that answers as OpenAI's Chat Completions API does: bearer-key check with
//! its 401 body (the key masked as OpenAI masks it), real `chat.completion` bodies, SSE
//! `data:` framing ending with `[DONE]`, the usage chunk only when the request asked for it
//! (`stream_options.include_usage`), `Retry-After` headers and its error shapes. The same
//! server, without a key and ignoring `stream_options`, stands for an OpenAI-compatible one.
//!
//! Shared by the `providers` contract suite and the `openai` provider-specific tests.

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

/// The key OpenAI accepts.
pub const KEY: &str = "sk-test-0123456789abcdef";

/// What the fake answers next.
#[derive(Clone)]
pub enum Reply {
    Json(u16, Vec<(&'static str, String)>, Value),
    /// `data:` events, in order (a usage chunk is dropped unless the request asked for it).
    Sse(Vec<String>),
    /// Some `data:` events, then the connection is reset.
    Cut(Vec<String>),
}

#[derive(Clone)]
pub struct Fake {
    pub replies: Arc<Mutex<VecDeque<Reply>>>,
    /// The bodies of the requests it accepted.
    pub seen: Arc<Mutex<Vec<Value>>>,
    /// Every request that reached it, refused ones included.
    pub hits: Arc<AtomicUsize>,
    /// The key it requires; `None`: a local server that requires none.
    key: Option<&'static str>,
    /// Whether it honours `stream_options.include_usage` (OpenAI does).
    stream_usage: bool,
}

impl Fake {
    /// OpenAI itself.
    pub fn openai() -> Self {
        Fake::new(Some(KEY), true)
    }

    /// A local OpenAI-compatible server: no key, and `stream_options` ignored, so its
    /// streams carry no usage.
    pub fn compatible() -> Self {
        Fake::new(None, false)
    }

    /// A hosted OpenAI-compatible service: its own key required, `stream_options` ignored.
    pub fn compatible_with_key() -> Self {
        Fake::new(Some(KEY), false)
    }

    fn new(key: Option<&'static str>, stream_usage: bool) -> Self {
        Fake {
            replies: Arc::default(),
            seen: Arc::default(),
            hits: Arc::default(),
            key,
            stream_usage,
        }
    }

    pub fn push(&self, reply: Reply) {
        self.replies.lock().unwrap().push_back(reply);
    }

    /// Serves on a free local port; returns the base URL, up to and including `/v1`.
    pub async fn serve(&self) -> String {
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}/v1")
    }
}

/// OpenAI's own masking of a wrong key in its 401 message: a prefix, stars, the last four.
fn masked(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    let head: String = chars.iter().take(8.min(chars.len())).collect();
    let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len().saturating_sub(12)))
}

async fn chat(State(fake): State<Fake>, headers: HeaderMap, body: String) -> Response {
    fake.hits.fetch_add(1, Ordering::SeqCst);
    if let Some(key) = fake.key {
        let sent = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if sent != Some(key) {
            let message = match sent {
                Some(wrong) => format!(
                    "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.",
                    masked(wrong)
                ),
                None => "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).".to_owned(),
            };
            let err = json!({ "error": { "message": message, "type": "invalid_request_error", "param": null, "code": "invalid_api_key" } });
            return (StatusCode::UNAUTHORIZED, axum::Json(err)).into_response();
        }
    }
    let request: Value = serde_json::from_str(&body).unwrap();
    fake.seen.lock().unwrap().push(request.clone());
    let include_usage =
        fake.stream_usage && request["stream_options"]["include_usage"] == json!(true);
    let reply = fake
        .replies
        .lock()
        .unwrap()
        .pop_front()
        .expect("a scripted reply");
    let frame = |events: Vec<String>| -> String {
        events
            .into_iter()
            .filter(|e| include_usage || !is_usage_chunk(e))
            .map(|e| format!("data: {e}\n\n"))
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
            // The first events reach the client, then the connection breaks.
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

fn is_usage_chunk(event: &str) -> bool {
    serde_json::from_str::<Value>(event).is_ok_and(|v| v["usage"].is_object())
}

fn usage(prompt: i64, completion: i64) -> Value {
    usage_cached(prompt, 0, completion)
}

/// OpenAI's `usage`, `cached` of the prompt's tokens read from its prompt cache.
fn usage_cached(prompt: i64, cached: i64, completion: i64) -> Value {
    json!({ "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": { "cached_tokens": cached, "audio_tokens": 0 },
            "completion_tokens_details": { "reasoning_tokens": 0, "audio_tokens": 0,
                "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0 } })
}

fn completion_of(message: Value, finish: &str, prompt: i64, completion: i64) -> Value {
    json!({
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "object": "chat.completion",
        "created": 1741569952, "model": "gpt-4o-mini-2024-07-18",
        "choices": [{ "index": 0, "message": message, "logprobs": null, "finish_reason": finish }],
        "usage": usage(prompt, completion),
        "service_tier": "default", "system_fingerprint": "fp_06737a9306"
    })
}

/// A `chat.completion` with text.
#[allow(dead_code)] // the providers suite uses `completion_cached`; other suites this
pub fn completion(text: &str, prompt: i64, completion: i64) -> Value {
    completion_cached(text, prompt, 0, completion)
}

/// A `chat.completion` with text, `cached` of its prompt tokens read from the prompt cache.
pub fn completion_cached(text: &str, prompt: i64, cached: i64, completion: i64) -> Value {
    let message =
        json!({ "role": "assistant", "content": text, "refusal": null, "annotations": [] });
    let mut body = completion_of(message, "stop", prompt, completion);
    body["usage"] = usage_cached(prompt, cached, completion);
    body
}

/// A `chat.completion` whose message calls one function (`arguments` as a JSON string).
pub fn tool_call_completion(id: &str, name: &str, args: &Value, p: i64, c: i64) -> Value {
    let message = json!({ "role": "assistant", "content": null, "refusal": null, "annotations": [],
        "tool_calls": [{ "id": id, "type": "function",
                         "function": { "name": name, "arguments": args.to_string() } }] });
    completion_of(message, "tool_calls", p, c)
}

/// One `chat.completion.chunk` event.
pub fn chunk(delta: Value, finish: Value) -> String {
    json!({ "id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1694268190,
            "model": "gpt-4o-mini", "system_fingerprint": "fp_44709d6fcb",
            "choices": [{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish }] })
    .to_string()
}

/// The final chunk of a stream whose request set `stream_options.include_usage`.
pub fn usage_chunk(prompt: i64, completion: i64) -> String {
    json!({ "id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1694268190,
            "model": "gpt-4o-mini", "system_fingerprint": "fp_44709d6fcb", "choices": [],
            "usage": usage(prompt, completion) })
    .to_string()
}

/// The opening chunk of a streamed answer.
pub fn role_chunk() -> String {
    chunk(
        json!({ "role": "assistant", "content": "", "refusal": null }),
        Value::Null,
    )
}

/// An error body.
pub fn error(message: &str, kind: &str, code: Value) -> Value {
    json!({ "error": { "message": message, "type": kind, "param": null, "code": code } })
}
