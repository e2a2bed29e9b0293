//! The Anthropic provider against a local server that answers as the Messages API does:
//! headers checked, real response bodies, its SSE event sequence, `overloaded_error` (529)
//! and an `error` event mid-stream.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
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
use futures_util::StreamExt;
use serde_json::{Value, json};
use vorg_domain::Secret;
use vorg_llm::{ChatRequest, ErrorKind, Provider, anthropic::Anthropic};

const KEY: &str = "sk-ant-api03-test";

#[derive(Clone)]
enum Reply {
    Json(u16, Value),
    Sse(Vec<(&'static str, Value)>),
}

#[derive(Clone, Default)]
struct Fake {
    replies: Arc<Mutex<VecDeque<Reply>>>,
    seen: Arc<Mutex<Vec<Value>>>,
}

async fn messages(State(fake): State<Fake>, headers: HeaderMap, body: String) -> Response {
    if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(KEY) {
        let err = json!({ "type": "error", "error": { "type": "authentication_error", "message": "invalid x-api-key" } });
        return (StatusCode::UNAUTHORIZED, axum::Json(err)).into_response();
    }
    if headers
        .get("anthropic-version")
        .and_then(|v| v.to_str().ok())
        != Some("2023-06-01")
    {
        let err = json!({ "type": "error", "error": { "type": "invalid_request_error", "message": "anthropic-version: header is required" } });
        return (StatusCode::BAD_REQUEST, axum::Json(err)).into_response();
    }
    fake.seen
        .lock()
        .unwrap()
        .push(serde_json::from_str(&body).unwrap());
    match fake
        .replies
        .lock()
        .unwrap()
        .pop_front()
        .expect("a scripted reply")
    {
        Reply::Json(status, body) => {
            (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
        }
        Reply::Sse(events) => {
            let text: String = events
                .iter()
                .map(|(e, d)| format!("event: {e}\ndata: {d}\n\n"))
                .collect();
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from(text))
                .unwrap()
        }
    }
}

async fn provider(fake: Fake, key: &str) -> Anthropic {
    let app = Router::new()
        .route("/v1/messages", post(messages))
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Anthropic::new(
        "anthropic",
        &format!("http://{addr}"),
        Secret::new(key),
        Duration::from_secs(2),
        Duration::from_secs(5),
    )
    .unwrap()
}

fn message(text: &str) -> Value {
    json!({
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [{ "type": "text", "text": text }],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": { "input_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 6 }
    })
}

fn request() -> ChatRequest {
    let mut req = ChatRequest::user("claude-sonnet-4-5", "Hello");
    req.body.insert(
        "messages".into(),
        json!([
            { "role": "system", "content": "You are the CEO." },
            { "role": "user", "content": "Hello" },
        ]),
    );
    req
}

#[tokio::test]
async fn a_message_is_translated_both_ways() {
    let fake = Fake::default();
    fake.replies
        .lock()
        .unwrap()
        .push_back(Reply::Json(200, message("Hi, I am the CEO.")));
    let p = provider(fake.clone(), KEY).await;
    let resp = p.complete("claude-sonnet-4-5", &request()).await.unwrap();
    assert_eq!(resp.text(), "Hi, I am the CEO.");
    assert_eq!(
        (resp.usage.prompt_tokens, resp.usage.completion_tokens),
        (12, 6)
    );
    assert_eq!(resp.body["choices"][0]["finish_reason"], "stop");
    let sent = fake.seen.lock().unwrap()[0].clone();
    assert_eq!(
        sent["system"], "You are the CEO.",
        "system prompt is top-level"
    );
    assert_eq!(
        sent["messages"],
        json!([{ "role": "user", "content": "Hello" }])
    );
    assert_eq!(sent["max_tokens"], 1024, "required, so defaulted");
}

#[tokio::test]
async fn overloaded_is_a_retryable_server_error_and_bad_keys_are_auth_errors() {
    let fake = Fake::default();
    let overloaded = json!({ "type": "error", "error": { "type": "overloaded_error", "message": "Overloaded" } });
    fake.replies
        .lock()
        .unwrap()
        .push_back(Reply::Json(529, overloaded));
    let p = provider(fake.clone(), KEY).await;
    let err = p
        .complete("claude-sonnet-4-5", &request())
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Server);
    assert!(err.retryable());
    assert!(err.message.contains("Overloaded"), "{err}");
    let bad = provider(fake, "sk-ant-wrong-key-000").await;
    let err = bad
        .complete("claude-sonnet-4-5", &request())
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Auth);
    assert!(!err.to_string().contains("sk-ant-wrong"), "{err}");
}

fn stream_events(with_error: bool) -> Vec<(&'static str, Value)> {
    let mut events = vec![
        (
            "message_start",
            json!({ "type": "message_start", "message": { "id": "msg_1", "type": "message", "role": "assistant",
            "content": [], "model": "claude-sonnet-4-5", "stop_reason": null, "stop_sequence": null,
            "usage": { "input_tokens": 25, "output_tokens": 1 } } }),
        ),
        (
            "content_block_start",
            json!({ "type": "content_block_start", "index": 0, "content_block": { "type": "text", "text": "" } }),
        ),
        ("ping", json!({ "type": "ping" })),
        (
            "content_block_delta",
            json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "text_delta", "text": "Hello" } }),
        ),
    ];
    if with_error {
        events.push(("error", json!({ "type": "error", "error": { "type": "overloaded_error", "message": "Overloaded" } })));
        return events;
    }
    events.extend([
        ("content_block_delta", json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "text_delta", "text": "!" } })),
        ("content_block_stop", json!({ "type": "content_block_stop", "index": 0 })),
        ("message_delta", json!({ "type": "message_delta", "delta": { "stop_reason": "end_turn", "stop_sequence": null }, "usage": { "output_tokens": 15 } })),
        ("message_stop", json!({ "type": "message_stop" })),
    ]);
    events
}

#[tokio::test]
async fn its_event_stream_becomes_openai_chunks_ending_with_usage() {
    let fake = Fake::default();
    fake.replies
        .lock()
        .unwrap()
        .push_back(Reply::Sse(stream_events(false)));
    let p = provider(fake.clone(), KEY).await;
    let chunks: Vec<Value> = p
        .stream("claude-sonnet-4-5", &request())
        .await
        .unwrap()
        .map(|c| c.unwrap())
        .collect()
        .await;
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello!");
    let last = chunks.last().unwrap();
    assert_eq!(last["usage"]["prompt_tokens"], 25);
    assert_eq!(last["usage"]["completion_tokens"], 15);
    assert_eq!(
        chunks[chunks.len() - 2]["choices"][0]["finish_reason"],
        "stop"
    );
    assert_eq!(fake.seen.lock().unwrap()[0]["stream"], true);
}

#[tokio::test]
async fn an_error_event_mid_stream_ends_it_with_an_error() {
    let fake = Fake::default();
    fake.replies
        .lock()
        .unwrap()
        .push_back(Reply::Sse(stream_events(true)));
    let p = provider(fake, KEY).await;
    let items: Vec<_> = p
        .stream("claude-sonnet-4-5", &request())
        .await
        .unwrap()
        .collect()
        .await;
    let err = items.last().unwrap().as_ref().unwrap_err();
    assert_eq!(err.kind, ErrorKind::Server);
    assert!(err.message.contains("Overloaded"));
}
