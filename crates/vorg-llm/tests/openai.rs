//! The OpenAI provider and the gateway against a local server that answers as OpenAI does
//! (bodies, headers, SSE framing and error shapes of real responses). Usage rows are checked
//! on SQLite and PostgreSQL.
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
use vorg_llm::{
    CallContext, ChatRequest, ErrorKind, Gateway, GatewayError, Pricing, RetryPolicy,
    openai::OpenAi, simulated::Simulated,
};
use vorg_store::{Backend, Page, Store, testing::TestDb};

const KEY: &str = "sk-test-0123456789abcdef";

/// What the fake answers next.
#[derive(Clone)]
enum Reply {
    Json(u16, Vec<(&'static str, &'static str)>, Value),
    Sse(Vec<String>),
    /// Some SSE data, then the connection is cut.
    Cut(Vec<String>),
}

#[derive(Clone, Default)]
struct Fake {
    replies: Arc<Mutex<VecDeque<Reply>>>,
    seen: Arc<Mutex<Vec<Value>>>,
}

async fn chat(State(fake): State<Fake>, headers: HeaderMap, body: String) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {KEY}"))
    {
        let err = json!({ "error": { "message": "Incorrect API key provided: sk-wr***ng.", "type": "invalid_request_error", "param": null, "code": "invalid_api_key" } });
        return (StatusCode::UNAUTHORIZED, axum::Json(err)).into_response();
    }
    fake.seen
        .lock()
        .unwrap()
        .push(serde_json::from_str(&body).unwrap());
    let reply = fake
        .replies
        .lock()
        .unwrap()
        .pop_front()
        .expect("a scripted reply");
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
            let text: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from(text))
                .unwrap()
        }
        Reply::Cut(events) => {
            let text: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
            // The first events reach the client, then the connection breaks.
            let parts = futures_util::stream::unfold(0, move |step| {
                let text = text.clone();
                async move {
                    match step {
                        0 => Some((Ok::<_, std::io::Error>(text), 1)),
                        1 => {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            Some((
                                Err(std::io::Error::new(
                                    std::io::ErrorKind::ConnectionReset,
                                    "reset",
                                )),
                                2,
                            ))
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

async fn fake_server(fake: Fake) -> String {
    let app = Router::new()
        .route("/v1/chat/completions", post(chat))
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/v1")
}

fn completion(text: &str, prompt: i64, completion: i64) -> Value {
    json!({
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", "object": "chat.completion",
        "created": 1741569952, "model": "gpt-4o-mini-2024-07-18",
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": text, "refusal": null,
                      "annotations": [] }, "logprobs": null, "finish_reason": "stop" }],
        "usage": { "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                   "prompt_tokens_details": { "cached_tokens": 0, "audio_tokens": 0 },
                   "completion_tokens_details": { "reasoning_tokens": 0, "audio_tokens": 0,
                       "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0 } },
        "service_tier": "default", "system_fingerprint": "fp_06737a9306"
    })
}

fn chunk(delta: Value, finish: Value) -> String {
    json!({ "id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1694268190,
            "model": "gpt-4o-mini", "system_fingerprint": "fp_44709d6fcb",
            "choices": [{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish }] })
    .to_string()
}

fn usage_chunk(prompt: i64, completion: i64) -> String {
    json!({ "id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1694268190,
            "model": "gpt-4o-mini", "choices": [],
            "usage": { "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion } })
    .to_string()
}

struct Setup {
    gateway: Gateway,
    store: Store,
    fake: Fake,
    _db: TestDb,
}

async fn setup(backend: Backend, key: &str) -> Setup {
    let db = TestDb::new(backend).await;
    let store = Store::connect_and_migrate(&db.url).await.unwrap();
    let fake = Fake::default();
    let base = fake_server(fake.clone()).await;
    let openai = OpenAi::new(
        "openai",
        &base,
        Some(Secret::new(key)),
        Duration::from_secs(2),
        Duration::from_secs(5),
    )
    .unwrap();
    let retry = RetryPolicy {
        max_retries: 2,
        base: Duration::from_millis(10),
        max_delay: Duration::from_secs(2),
    };
    let gateway = Gateway::new(store.clone(), Pricing::shipped(), "openai", retry)
        .with_provider(openai, "gpt-4o-mini")
        .with_provider(Simulated, "sim-1")
        .with_alias(
            "smart",
            vec![
                ("openai".into(), "gpt-4o-mini".into()),
                ("simulated".into(), "sim-1".into()),
            ],
        );
    Setup {
        gateway,
        store,
        fake,
        _db: db,
    }
}

fn ctx() -> CallContext {
    CallContext {
        actor: "tester".into(),
        user_id: Some(7),
        ..Default::default()
    }
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() { super::$name(vorg_store::Backend::Sqlite).await }
            #[tokio::test]
            async fn postgres() { super::$name(vorg_store::Backend::Postgres).await }
        }
    )*};
}

both!(
    a_completion_is_priced_and_recorded,
    a_429_is_retried_after_retry_after_and_every_attempt_is_recorded,
    a_bad_key_is_not_retried_falls_back_and_is_never_shown,
    a_stream_passes_chunks_through_and_records_its_usage,
    a_stream_cut_mid_way_is_an_error_and_still_recorded,
    a_bad_request_is_neither_retried_nor_sent_elsewhere,
);

async fn a_completion_is_priced_and_recorded(backend: Backend) {
    let s = setup(backend, KEY).await;
    s.fake.replies.lock().unwrap().push_back(Reply::Json(
        200,
        vec![],
        completion("Hello!", 1_000, 2_000),
    ));
    let mut req = ChatRequest::user("gpt-4o-mini", "Say hello");
    req.body.insert(
        "tools".into(),
        json!([{ "type": "function", "function": { "name": "f", "parameters": {} } }]),
    );
    let (resp, provider, model) = s.gateway.complete(&ctx(), &req).await.unwrap();
    assert_eq!(
        (resp.text().as_str(), provider.as_str(), model.as_str()),
        ("Hello!", "openai", "gpt-4o-mini")
    );
    let sent = s.fake.seen.lock().unwrap()[0].clone();
    assert_eq!(sent["stream"], false);
    assert_eq!(
        sent["tools"][0]["function"]["name"], "f",
        "unknown fields pass through"
    );
    s.gateway.flush_usage().await;
    let rows = s
        .store
        .list_usage(Page {
            limit: 10,
            before: None,
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(
        (r.prompt_tokens, r.completion_tokens, r.status.as_str()),
        (1_000, 2_000, "ok")
    );
    // gpt-4o-mini: $0.15 in / $0.60 out per million tokens.
    assert_eq!(r.cost_micro_usd, 150 + 1_200);
    assert!(r.priced);
    assert_eq!((r.actor.as_str(), r.user_id), ("tester", Some(7)));
}

async fn a_429_is_retried_after_retry_after_and_every_attempt_is_recorded(backend: Backend) {
    let s = setup(backend, KEY).await;
    let limited = json!({ "error": { "message": "Rate limit reached for gpt-4o-mini", "type": "requests", "param": null, "code": "rate_limit_exceeded" } });
    s.fake.replies.lock().unwrap().extend([
        Reply::Json(429, vec![("retry-after", "1")], limited),
        Reply::Json(
            500,
            vec![],
            json!({ "error": { "message": "The server had an error", "type": "server_error" } }),
        ),
        Reply::Json(200, vec![], completion("ok", 5, 1)),
    ]);
    let started = std::time::Instant::now();
    let (resp, _, _) = s
        .gateway
        .complete(&ctx(), &ChatRequest::user("gpt-4o-mini", "hi"))
        .await
        .unwrap();
    assert_eq!(resp.text(), "ok");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    s.gateway.flush_usage().await;
    let rows = s
        .store
        .list_usage(Page {
            limit: 10,
            before: None,
        })
        .await
        .unwrap();
    let statuses: Vec<&str> = rows.iter().rev().map(|r| r.status.as_str()).collect();
    assert_eq!(statuses, ["error", "error", "ok"]);
    assert!(
        rows[2].error.as_deref().unwrap().contains("429"),
        "{:?}",
        rows[2].error
    );
}

async fn a_bad_key_is_not_retried_falls_back_and_is_never_shown(backend: Backend) {
    let s = setup(backend, "sk-wrong-key-123456789").await;
    let (resp, provider, _) = s
        .gateway
        .complete(&ctx(), &ChatRequest::user("smart", "Brainstorm ideas"))
        .await
        .unwrap();
    assert_eq!(provider, "simulated", "fell back along the alias chain");
    assert_eq!(resp.body["provider"], "simulated");
    s.gateway.flush_usage().await;
    let rows = s
        .store
        .list_usage(Page {
            limit: 10,
            before: None,
        })
        .await
        .unwrap();
    assert_eq!(
        rows.len(),
        2,
        "one failed openai attempt (401 is not retried), one simulated"
    );
    let error = rows[1].error.clone().unwrap();
    assert!(
        error.contains("401") && !error.contains("sk-wrong-key"),
        "{error}"
    );
    // Without a fallback the caller gets the auth error.
    let err = s
        .gateway
        .complete(&ctx(), &ChatRequest::user("gpt-4o-mini", "hi"))
        .await
        .unwrap_err();
    match err {
        GatewayError::Provider(e) => assert_eq!(e.kind, ErrorKind::Auth),
        other => panic!("{other}"),
    }
}

async fn a_stream_passes_chunks_through_and_records_its_usage(backend: Backend) {
    let s = setup(backend, KEY).await;
    s.fake.replies.lock().unwrap().push_back(Reply::Sse(vec![
        chunk(json!({ "role": "assistant", "content": "" }), Value::Null),
        chunk(json!({ "content": "Hel" }), Value::Null),
        chunk(json!({ "content": "lo" }), Value::Null),
        chunk(json!({}), json!("stop")),
        usage_chunk(9, 2),
        "[DONE]".into(),
    ]));
    let (stream, _, _) = s
        .gateway
        .stream(&ctx(), &ChatRequest::user("gpt-4o-mini", "hi"))
        .await
        .unwrap();
    let chunks: Vec<Value> = stream.map(|c| c.unwrap()).collect().await;
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Hello");
    let sent = s.fake.seen.lock().unwrap()[0].clone();
    assert_eq!(sent["stream_options"]["include_usage"], true);
    s.gateway.flush_usage().await;
    let rows = s
        .store
        .list_usage(Page {
            limit: 10,
            before: None,
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].streamed);
    assert_eq!(
        (
            rows[0].prompt_tokens,
            rows[0].completion_tokens,
            rows[0].status.as_str()
        ),
        (9, 2, "ok")
    );
}

async fn a_stream_cut_mid_way_is_an_error_and_still_recorded(backend: Backend) {
    let s = setup(backend, KEY).await;
    s.fake
        .replies
        .lock()
        .unwrap()
        .push_back(Reply::Cut(vec![chunk(
            json!({ "content": "Hel" }),
            Value::Null,
        )]));
    let (stream, _, _) = s
        .gateway
        .stream(&ctx(), &ChatRequest::user("gpt-4o-mini", "hi"))
        .await
        .unwrap();
    let items: Vec<_> = stream.collect().await;
    assert!(items[0].is_ok());
    let err = items.last().unwrap().as_ref().unwrap_err();
    assert_eq!(err.kind, ErrorKind::Connect, "{err}");
    s.gateway.flush_usage().await;
    let rows = s
        .store
        .list_usage(Page {
            limit: 10,
            before: None,
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, "error");
}

async fn a_bad_request_is_neither_retried_nor_sent_elsewhere(backend: Backend) {
    let s = setup(backend, KEY).await;
    let bad = json!({ "error": { "message": "Invalid value for 'temperature'", "type": "invalid_request_error", "param": "temperature", "code": null } });
    s.fake
        .replies
        .lock()
        .unwrap()
        .push_back(Reply::Json(400, vec![], bad));
    let err = s
        .gateway
        .complete(&ctx(), &ChatRequest::user("smart", "hi"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("Invalid value for 'temperature'"),
        "{err}"
    );
    s.gateway.flush_usage().await;
    let rows = s
        .store
        .list_usage(Page {
            limit: 10,
            before: None,
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
}
