//! What is particular to the Anthropic provider: the translation of requests to the Messages
//! API and back, against the local server of the contract suite that answers as Anthropic
//! does. Completions, streams, tool calls, errors, retries and usage rows are the provider
//! contract's (`tests/providers`).
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::json;
use vorg_domain::Secret;
use vorg_llm::{ChatRequest, Provider, anthropic::Anthropic};

#[path = "providers/fakes/anthropic.rs"]
#[allow(dead_code)]
mod fake;

use fake::{Fake, Reply};

async fn provider(fake: &Fake) -> Anthropic {
    let base = fake.serve().await;
    let key = Secret::new(fake::KEY);
    Anthropic::new(
        "anthropic",
        &base,
        key,
        Duration::from_secs(2),
        Duration::from_secs(5),
    )
    .unwrap()
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
    fake.push(Reply::Json(
        200,
        vec![],
        fake::message("Hi, I am the CEO.", 12, 6),
    ));
    let p = provider(&fake).await;
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
async fn tools_are_sent_in_its_shape() {
    let fake = Fake::default();
    fake.push(Reply::Json(200, vec![], fake::message("ok", 12, 1)));
    let p = provider(&fake).await;
    let mut req = request();
    let params = json!({ "type": "object", "properties": { "city": { "type": "string" } } });
    req.body.insert(
        "tools".into(),
        json!([
            { "type": "function", "function": { "name": "get_weather", "description": "Weather",
                                                "parameters": params } },
            { "type": "function", "function": { "name": "get_time" } },
        ]),
    );
    p.complete("claude-sonnet-4-5", &req).await.unwrap();
    let sent = fake.seen.lock().unwrap()[0].clone();
    assert_eq!(
        sent["tools"],
        json!([
            { "name": "get_weather", "description": "Weather", "input_schema": params },
            { "name": "get_time", "input_schema": { "type": "object", "properties": {} } },
        ]),
        "no null description; an empty schema when the function takes no parameters"
    );
}
