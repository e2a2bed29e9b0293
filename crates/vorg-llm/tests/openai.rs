//! What is particular to the OpenAI provider, against the local server of the contract suite
//! that answers as OpenAI does. Completions, streams, tool calls, errors, retries and usage
//! rows are the provider contract's (`tests/providers`). Usage rows are checked on SQLite
//! and PostgreSQL.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use vorg_domain::Secret;
use vorg_llm::{CallContext, ChatRequest, Gateway, Pricing, Provider, RetryPolicy, openai::OpenAi};
use vorg_store::{Backend, Page, Store, testing::TestDb};

#[path = "providers/fakes/openai.rs"]
#[allow(dead_code)]
mod fake;

use fake::{Fake, Reply};

async fn provider(fake: &Fake) -> OpenAi {
    let base = fake.serve().await;
    let key = Some(Secret::new(fake::KEY));
    OpenAi::new(
        "openai",
        &base,
        key,
        Duration::from_secs(2),
        Duration::from_secs(5),
    )
    .unwrap()
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

both!(unknown_fields_pass_through_and_the_call_is_priced);

async fn unknown_fields_pass_through_and_the_call_is_priced(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = Store::connect_and_migrate(&db.url).await.unwrap();
    let fake = Fake::openai();
    let openai = provider(&fake).await;
    let gateway = Gateway::new(
        store.clone(),
        Pricing::shipped(),
        "openai",
        RetryPolicy::default(),
    )
    .with_provider(openai, "gpt-4o-mini");
    fake.push(Reply::Json(
        200,
        vec![],
        fake::completion("Hello!", 1_000, 2_000),
    ));
    let mut req = ChatRequest::user("gpt-4o-mini", "Say hello");
    req.body.insert("seed".into(), json!(7));
    req.body
        .insert("logit_bias".into(), json!({ "50256": -100 }));
    req.body
        .insert("stream_options".into(), json!({ "include_usage": true }));
    let ctx = CallContext {
        actor: "tester".into(),
        ..Default::default()
    };
    let (resp, _, _) = gateway.complete(&ctx, &req).await.unwrap();
    assert_eq!(resp.text(), "Hello!");
    let sent = fake.seen.lock().unwrap()[0].clone();
    assert_eq!(
        (&sent["seed"], &sent["logit_bias"]["50256"]),
        (&json!(7), &json!(-100))
    );
    assert_eq!(sent["stream"], false);
    assert!(
        sent.get("stream_options").is_none(),
        "only for streams: {sent}"
    );
    gateway.flush_usage().await;
    let rows = store
        .list_usage(Page {
            limit: 10,
            before: None,
        })
        .await
        .unwrap();
    // gpt-4o-mini: $0.15 in / $0.60 out per million tokens.
    assert_eq!(
        (rows[0].cost_micro_usd, rows[0].priced),
        (150 + 1_200, true)
    );
}

#[tokio::test]
async fn a_stream_asks_for_its_usage() {
    let fake = Fake::openai();
    let openai = provider(&fake).await;
    fake.push(Reply::Sse(vec![
        fake::role_chunk(),
        fake::chunk(json!({ "content": "Hi" }), json!("stop")),
        fake::usage_chunk(3, 1),
        "[DONE]".into(),
    ]));
    let req = ChatRequest::user("gpt-4o-mini", "hi");
    let chunks: Vec<Value> = openai
        .stream("gpt-4o-mini", &req)
        .await
        .unwrap()
        .map(|c| c.unwrap())
        .collect()
        .await;
    assert_eq!(chunks.last().unwrap()["usage"]["prompt_tokens"], 3);
    let sent = fake.seen.lock().unwrap()[0].clone();
    assert_eq!(
        (&sent["stream"], &sent["model"]),
        (&json!(true), &json!("gpt-4o-mini"))
    );
    assert_eq!(sent["stream_options"], json!({ "include_usage": true }));
}
