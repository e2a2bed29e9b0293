//! The contract tests, the same for every provider: each takes the provider's case (and a
//! database backend when it checks usage rows). `provider_contract!` decides which run.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};
use vorg_llm::{ErrorKind, GatewayError, ProviderError, Usage};
use vorg_store::Backend;

use crate::contract::{
    Env, Failure, Key, ProviderCase, Script, WRONG_SECRET, assert_row, ctx, direct, usage,
};

/// The flags make sense together: what a capability needs is declared too.
pub async fn capabilities_are_consistent(case: &ProviderCase) {
    let c = case.caps;
    assert!(c.completion, "{}: a provider completes", case.name);
    assert!(!c.usage_in_stream || c.streaming, "{c:?}");
    assert!(
        !c.stream_tool_calls || (c.streaming && c.tool_calls),
        "{c:?}"
    );
    assert!(!c.stream_failures || c.streaming, "{c:?}");
    assert!(!(c.auth || c.retry_after) || c.http_errors, "{c:?}");
    assert!(!c.prompt_cache || c.completion, "{c:?}");
}

/// A completion's text and token counts, and its one usage row.
pub async fn completion(case: &ProviderCase, backend: Backend) {
    let env = Env::new(case, backend, Key::Right).await;
    let req = direct(case, "Say hello");
    let script = Script::Text {
        text: "Hello! How can I help?",
        usage: usage(12, 6),
    };
    let want = env.up.arrange(&req, script).await;
    let (resp, provider, model) = env.gateway.complete(&ctx(), &req).await.unwrap();
    assert_eq!((provider.as_str(), model.as_str()), (case.name, case.model));
    assert_eq!(resp.text(), want.text);
    assert_eq!(resp.usage, want.usage);
    let body = &resp.body;
    assert_eq!(body["object"], "chat.completion", "{body}");
    assert_eq!(body["provider"], case.name, "{body}");
    assert_eq!(body["choices"][0]["message"]["role"], "assistant", "{body}");
    assert_eq!(body["choices"][0]["finish_reason"], "stop", "{body}");
    assert_eq!(
        Usage::from_openai(&body["usage"]),
        Some(want.usage),
        "{body}"
    );
    let rows = env.rows().await;
    assert_eq!(rows.len(), 1);
    assert_row(&rows[0], case.name, case.model, "ok", false);
    let r = &rows[0];
    assert_eq!(usage(r.prompt_tokens, r.completion_tokens), want.usage);
    assert!(!r.estimated);
    // The answer carries the cost its row was charged: priced once, by the gateway.
    assert_eq!(resp.cost_micro_usd, r.cost_micro_usd);
}

/// Prompt caching: of 1 000 input tokens, 800 were read from the cache (and, on Anthropic,
/// which bills them, 100 written to it). The answer and the usage row carry the counts, and
/// the cost uses the cache rates of the shipped table, worked out here by hand.
pub async fn prompt_cache(case: &ProviderCase, backend: Backend) {
    let env = Env::new(case, backend, Key::Right).await;
    let req = direct(case, "Summarise the handbook");
    let writes = if case.name == "anthropic" { 100 } else { 0 };
    let cached = Usage {
        cache_read_tokens: 800,
        cache_write_tokens: writes,
        ..usage(1000, 10)
    };
    let script = Script::Text {
        text: "Done.",
        usage: cached,
    };
    let want = env.up.arrange(&req, script).await;
    let (resp, _, _) = env.gateway.complete(&ctx(), &req).await.unwrap();
    assert_eq!(resp.usage, cached);
    assert_eq!(want.usage, cached);
    assert_eq!(
        resp.body["usage"]["prompt_tokens_details"]["cached_tokens"], 800,
        "{}",
        resp.body
    );
    let rows = env.rows().await;
    assert_eq!(rows.len(), 1);
    assert_row(&rows[0], case.name, case.model, "ok", false);
    let r = &rows[0];
    assert_eq!((r.cache_read_tokens, r.cache_write_tokens), (800, writes));
    // µ$ = tokens × USD per million tokens.
    let expected = match case.name {
        // 200 × 0.15 + 800 × 0.075 + 10 × 0.60 (not 1 000 × 0.15 + 6 = 156)
        "openai" => 96,
        // 100 × 3.00 + 800 × 0.30 + 100 × 3.75 + 10 × 15.00 (not 1 000 × 3.00 + 150 = 3 150)
        "anthropic" => 1065,
        // A local server's model has no price.
        _ => 0,
    };
    assert_eq!(r.cost_micro_usd, expected, "{r:?}");
    assert_eq!(resp.cost_micro_usd, expected);
}

/// Collects a gateway stream that must not fail.
async fn chunks(env: &Env, req: &vorg_llm::ChatRequest) -> Vec<Value> {
    let (stream, _, _) = env.gateway.stream(&ctx(), req).await.unwrap();
    stream.map(|c| c.unwrap()).collect().await
}

fn text_of(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect()
}

/// The row of a stream: the upstream's usage when it sends it, else the gateway's estimate.
fn assert_stream_usage(
    case: &ProviderCase,
    chunks: &[Value],
    row: &vorg_store::UsageEvent,
    want: Usage,
) {
    let counted = usage(row.prompt_tokens, row.completion_tokens);
    if case.caps.usage_in_stream {
        let last = chunks.last().unwrap();
        assert_eq!(last["choices"], json!([]), "{last}");
        assert_eq!(Usage::from_openai(&last["usage"]), Some(want), "{last}");
        assert_eq!((counted, row.estimated), (want, false), "{row:?}");
    } else {
        assert!(
            chunks.iter().all(|c| c["usage"].is_null()),
            "no usage upstream"
        );
        assert!(row.estimated, "{row:?}");
        assert!(
            counted.prompt_tokens > 0 && counted.completion_tokens > 0,
            "{row:?}"
        );
    }
}

/// A stream of OpenAI chunks carrying the text, and its usage recorded.
pub async fn stream(case: &ProviderCase, backend: Backend) {
    let env = Env::new(case, backend, Key::Right).await;
    let req = direct(case, "Say hello");
    let script = Script::Stream {
        pieces: vec!["Hel", "lo", " there!"],
        usage: usage(9, 3),
    };
    let want = env.up.arrange(&req, script).await;
    let chunks = chunks(&env, &req).await;
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk", "{c}");
        assert!(c["choices"].is_array(), "{c}");
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(text_of(&chunks), want.text);
    let finish: Vec<&Value> = chunks
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finish, [&json!("stop")]);
    let rows = env.rows().await;
    assert_eq!(rows.len(), 1);
    assert_row(&rows[0], case.name, case.model, "ok", true);
    assert_stream_usage(case, &chunks, &rows[0], want.usage);
}

/// OpenAI-shaped tools: one described with parameters, one bare (both valid for OpenAI).
fn with_tools(case: &ProviderCase) -> vorg_llm::ChatRequest {
    let mut req = direct(case, "What's the weather in Paris?");
    req.body.insert(
        "tools".into(),
        json!([
            { "type": "function", "function": { "name": "get_weather",
                "description": "The current weather in a city",
                "parameters": { "type": "object", "required": ["city"],
                                "properties": { "city": { "type": "string" } } } } },
            { "type": "function", "function": { "name": "get_time" } },
        ]),
    );
    req
}

/// Tools go out in the upstream's protocol; the call comes back as OpenAI `tool_calls`.
pub async fn tool_call(case: &ProviderCase, backend: Backend) {
    let env = Env::new(case, backend, Key::Right).await;
    let req = with_tools(case);
    let script = Script::ToolCall {
        id: "call_9KxQ3vRj2",
        name: "get_weather",
        arguments: json!({ "city": "Paris" }),
        usage: usage(80, 20),
    };
    let want = env.up.arrange(&req, script).await;
    let (resp, _, _) = env.gateway.complete(&ctx(), &req).await.unwrap();
    assert_eq!(env.up.tools_seen(), ["get_weather", "get_time"]);
    let choice = &resp.body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls", "{choice}");
    let calls = choice["message"]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "{choice}");
    assert_eq!(calls[0]["id"], "call_9KxQ3vRj2");
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    let args = calls[0]["function"]["arguments"].as_str().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(args).unwrap(),
        json!({ "city": "Paris" })
    );
    assert_eq!(resp.usage, want.usage);
    let rows = env.rows().await;
    assert_eq!(rows.len(), 1);
    assert_row(&rows[0], case.name, case.model, "ok", false);
}

/// A streamed tool call arrives as `tool_calls` deltas whose arguments join into the JSON.
pub async fn stream_tool_call(case: &ProviderCase, backend: Backend) {
    let env = Env::new(case, backend, Key::Right).await;
    let req = with_tools(case);
    let script = Script::StreamToolCall {
        id: "call_9KxQ3vRj2",
        name: "get_weather",
        arguments: vec!["{\"ci", "ty\": \"Par", "is\"}"],
        usage: usage(80, 20),
    };
    let want = env.up.arrange(&req, script).await;
    let chunks = chunks(&env, &req).await;
    let deltas: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].as_array())
        .flatten()
        .collect();
    assert_eq!(deltas[0]["id"], "call_9KxQ3vRj2", "{deltas:?}");
    assert_eq!(deltas[0]["type"], "function");
    assert_eq!(deltas[0]["function"]["name"], "get_weather");
    assert!(deltas.iter().all(|d| d["index"] == 0), "{deltas:?}");
    let args: String = deltas
        .iter()
        .filter_map(|d| d["function"]["arguments"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({ "city": "Paris" })
    );
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "tool_calls")
    );
    let rows = env.rows().await;
    assert_eq!(rows.len(), 1);
    assert_row(&rows[0], case.name, case.model, "ok", true);
    assert_stream_usage(case, &chunks, &rows[0], want.usage);
}

/// The error a provider call (plain, or opening a stream) ends with.
async fn provider_error(
    p: &dyn vorg_llm::Provider,
    model: &str,
    req: &vorg_llm::ChatRequest,
    streamed: bool,
) -> ProviderError {
    if streamed {
        match p.stream(model, req).await {
            Err(e) => e,
            Ok(_) => panic!("the stream opened"),
        }
    } else {
        p.complete(model, req).await.unwrap_err()
    }
}

/// Each upstream failure maps to its kind, status and retryability, plain or streamed.
pub async fn error_kinds(case: &ProviderCase) {
    let up = (case.start)().await;
    let p = up.provider(case, Key::Right);
    let req = direct(case, "hi");
    let cases = [
        (
            Failure::BadRequest("Invalid value for 'temperature'"),
            ErrorKind::BadRequest,
            false,
        ),
        (Failure::NotFound, ErrorKind::BadRequest, false),
        (
            Failure::RateLimited {
                retry_after_secs: 3,
            },
            ErrorKind::RateLimited,
            true,
        ),
        (Failure::Server, ErrorKind::Server, true),
        (Failure::Overloaded, ErrorKind::Server, true),
    ];
    for streamed in [false, true] {
        if streamed && !case.caps.streaming {
            continue;
        }
        for (failure, kind, retryable) in cases {
            up.arrange(&req, Script::Fail(failure)).await;
            let e = provider_error(p.as_ref(), case.model, &req, streamed).await;
            let what = format!("{failure:?} (streamed: {streamed}): {e}");
            assert_eq!((e.kind, e.retryable()), (kind, retryable), "{what}");
            assert_eq!(e.provider, case.name, "{what}");
            let status = e.status.unwrap();
            match failure {
                Failure::BadRequest(msg) => {
                    assert_eq!(status, 400, "{what}");
                    assert!(e.message.contains(msg), "{what}");
                }
                Failure::NotFound => assert_eq!(status, 404, "{what}"),
                Failure::RateLimited { retry_after_secs } => {
                    assert_eq!(status, 429, "{what}");
                    assert_eq!(
                        e.retry_after,
                        Some(Duration::from_secs(retry_after_secs)),
                        "{what}"
                    );
                }
                Failure::Server | Failure::Overloaded => {
                    assert!((500..600).contains(&status), "{what}")
                }
            }
        }
    }
    assert_eq!(up.requests(), if case.caps.streaming { 10 } else { 5 });
}

/// A 400 is neither retried nor sent to the next provider of the chain; its message shows.
pub async fn bad_request_is_not_retried(case: &ProviderCase, backend: Backend) {
    let env = Env::new(case, backend, Key::Right).await;
    let req = vorg_llm::ChatRequest::user("chain", "hi");
    let msg = "Invalid value for 'temperature': expected a number";
    env.up
        .arrange(&req, Script::Fail(Failure::BadRequest(msg)))
        .await;
    let err = env.gateway.complete(&ctx(), &req).await.unwrap_err();
    let GatewayError::Provider(e) = &err else {
        panic!("{err}")
    };
    assert_eq!(
        (e.kind, e.status),
        (ErrorKind::BadRequest, Some(400)),
        "{e}"
    );
    assert!(err.to_string().contains(msg), "{err}");
    assert_eq!(env.up.requests(), 1, "not retried");
    let rows = env.rows().await;
    assert_eq!(rows.len(), 1, "not sent to the fallback");
    assert_row(&rows[0], case.name, case.model, "error", false);
    assert!(rows[0].error.as_deref().unwrap().contains(msg), "{rows:?}");
}

/// 5xx and overloaded answers are retried (plain and when opening a stream), every attempt
/// recorded; when retries run out the chain falls back.
pub async fn server_errors_are_retried(case: &ProviderCase, backend: Backend) {
    let env = Env::new(case, backend, Key::Right).await;
    let req = direct(case, "hi");
    env.up.arrange(&req, Script::Fail(Failure::Server)).await;
    env.up
        .arrange(&req, Script::Fail(Failure::Overloaded))
        .await;
    let text = Script::Text {
        text: "Recovered.",
        usage: usage(5, 2),
    };
    env.up.arrange(&req, text).await;
    let (resp, _, _) = env.gateway.complete(&ctx(), &req).await.unwrap();
    assert_eq!(resp.text(), "Recovered.");
    assert_eq!(env.up.requests(), 3);
    let mut want = vec![("error", false), ("error", false), ("ok", false)];
    if case.caps.streaming {
        env.up.arrange(&req, Script::Fail(Failure::Server)).await;
        let s = Script::Stream {
            pieces: vec!["Back."],
            usage: usage(5, 1),
        };
        env.up.arrange(&req, s).await;
        assert_eq!(text_of(&chunks(&env, &req).await), "Back.");
        assert_eq!(env.up.requests(), 5);
        want.extend([("error", true), ("ok", true)]);
    }
    let chain = vorg_llm::ChatRequest::user("chain", "Brainstorm ideas");
    for _ in 0..3 {
        env.up.arrange(&chain, Script::Fail(Failure::Server)).await;
    }
    let (_, provider, _) = env.gateway.complete(&ctx(), &chain).await.unwrap();
    assert_eq!(provider, "simulated", "fell back after the retries");
    let rows = env.rows().await;
    assert_eq!(rows.len(), want.len() + 4, "{rows:?}");
    for (row, (status, streamed)) in rows.iter().zip(want) {
        assert_row(row, case.name, case.model, status, streamed);
    }
    for row in rows.iter().filter(|r| r.status == "error") {
        assert!(
            row.error.as_deref().unwrap().contains(" answered 5"),
            "{row:?}"
        );
    }
    assert_eq!(rows.last().unwrap().provider, "simulated");
}

/// A 429 is retried after its `Retry-After`, each attempt recorded.
pub async fn rate_limit_honours_retry_after(case: &ProviderCase, backend: Backend) {
    let env = Env::new(case, backend, Key::Right).await;
    let req = direct(case, "hi");
    let limited = Failure::RateLimited {
        retry_after_secs: 1,
    };
    env.up.arrange(&req, Script::Fail(limited)).await;
    env.up
        .arrange(
            &req,
            Script::Text {
                text: "ok",
                usage: usage(5, 1),
            },
        )
        .await;
    let started = Instant::now();
    let (resp, _, _) = env.gateway.complete(&ctx(), &req).await.unwrap();
    assert_eq!(resp.text(), "ok");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    assert_eq!(env.up.requests(), 2);
    let rows = env.rows().await;
    assert_eq!(rows.len(), 2);
    assert_row(&rows[0], case.name, case.model, "error", false);
    assert!(
        rows[0].error.as_deref().unwrap().contains("429"),
        "{rows:?}"
    );
    assert_row(&rows[1], case.name, case.model, "ok", false);
}

/// A wrong key is an auth error, not retried (the chain moves on), and never shown.
pub async fn bad_key(case: &ProviderCase, backend: Backend) {
    let env = Env::new(case, backend, Key::Wrong).await;
    let chain = vorg_llm::ChatRequest::user("chain", "Brainstorm ideas");
    let (resp, provider, _) = env.gateway.complete(&ctx(), &chain).await.unwrap();
    assert_eq!(
        (provider.as_str(), &resp.body["provider"]),
        ("simulated", &json!("simulated"))
    );
    assert_eq!(env.up.requests(), 1, "401 is not retried");
    let req = direct(case, "hi");
    let err = env.gateway.complete(&ctx(), &req).await.unwrap_err();
    let GatewayError::Provider(e) = &err else {
        panic!("{err}")
    };
    assert_eq!((e.kind, e.status), (ErrorKind::Auth, Some(401)), "{e}");
    let mut shown = vec![err.to_string(), format!("{err:?}")];
    let mut calls = 1;
    if case.caps.streaming {
        let Err(err) = env.gateway.stream(&ctx(), &req).await else {
            panic!("it streamed")
        };
        assert!(
            matches!(&err, GatewayError::Provider(e) if e.kind == ErrorKind::Auth),
            "{err}"
        );
        shown.push(err.to_string());
        calls += 1;
    }
    assert_eq!(env.up.requests(), calls + 1, "none retried");
    let rows = env.rows().await;
    assert_eq!(rows.len(), calls + 2, "one row per call");
    assert_row(&rows[0], case.name, case.model, "error", false);
    assert_row(&rows[1], "simulated", "sim-1", "ok", false);
    shown.extend(rows.iter().filter_map(|r| r.error.clone()));
    for text in shown {
        assert!(!text.contains(WRONG_SECRET), "the key shows: {text}");
    }
    assert!(
        rows[0].error.as_deref().unwrap().contains("401"),
        "{rows:?}"
    );
}

/// A stream reset, stopped short of its end marker, or ending with an error event is an
/// error after the chunks that came, and its row is recorded (with an estimate).
pub async fn stream_failures(case: &ProviderCase, backend: Backend) {
    let env = Env::new(case, backend, Key::Right).await;
    let req = direct(case, "hi");
    let pieces = || vec!["Hel", "lo"];
    let failures = [
        (Script::StreamReset(pieces()), ErrorKind::Connect),
        (Script::StreamTruncated(pieces()), ErrorKind::Connect),
        (Script::StreamErrorEvent(pieces()), ErrorKind::Server),
    ];
    for (script, kind) in failures {
        let what = format!("{script:?}");
        env.up.arrange(&req, script).await;
        let (stream, _, _) = env.gateway.stream(&ctx(), &req).await.unwrap();
        let items: Vec<_> = stream.collect().await;
        let (last, ok) = items.split_last().unwrap();
        let ok: Vec<Value> = ok.iter().map(|c| c.as_ref().unwrap().clone()).collect();
        assert_eq!(text_of(&ok), "Hello", "{what}");
        let err = last.as_ref().unwrap_err();
        assert_eq!(err.kind, kind, "{what}: {err}");
    }
    let rows = env.rows().await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    for row in &rows {
        assert_row(row, case.name, case.model, "error", true);
        assert!(row.estimated && row.completion_tokens > 0, "{row:?}");
    }
    assert_eq!(env.up.requests(), 3, "a broken stream is not retried");
}
