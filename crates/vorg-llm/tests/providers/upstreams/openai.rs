//! OpenAI and an OpenAI-compatible server under the contract: the same `OpenAi` provider,
//! against the OpenAI fake (key required, usage in streams when asked) and its compatible
//! flavour (no key, `stream_options` ignored).

use std::{sync::Arc, time::Duration};

use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use vorg_domain::Secret;
use vorg_llm::{ChatRequest, Gateway, Provider, openai::OpenAi};
use vorg_store::Store;

use crate::{
    contract::{self, Expected, Failure, Key, ProviderCase, Script, Upstream, WRONG_SECRET},
    fakes::openai::{self as fake, Fake, Reply},
};

struct OpenAiUpstream {
    fake: Fake,
    base: String,
    /// Built as vorg builds an OpenAI-compatible instance: without a key.
    keyless: bool,
}

pub fn start() -> BoxFuture<'static, Arc<dyn Upstream>> {
    Box::pin(serve(Fake::openai(), false))
}

pub fn start_compatible() -> BoxFuture<'static, Arc<dyn Upstream>> {
    Box::pin(serve(Fake::compatible(), true))
}

/// A hosted OpenAI-compatible service (Groq, OpenRouter, Together…) configured with its own
/// key (`VORG_LLM_COMPAT=name=url|KEY_VARIABLE`): it checks the key, and ignores
/// `stream_options`.
pub fn start_compatible_with_key() -> BoxFuture<'static, Arc<dyn Upstream>> {
    Box::pin(serve(Fake::compatible_with_key(), false))
}

async fn serve(fake: Fake, keyless: bool) -> Arc<dyn Upstream> {
    let base = fake.serve().await;
    Arc::new(OpenAiUpstream {
        fake,
        base,
        keyless,
    })
}

impl OpenAiUpstream {
    fn build(&self, case: &ProviderCase, key: Key) -> OpenAi {
        let key = match key {
            _ if self.keyless => None,
            Key::Right => Some(Secret::new(fake::KEY)),
            Key::Wrong => Some(Secret::new(format!("sk-proj-{WRONG_SECRET}"))),
        };
        let (connect, total) = (Duration::from_secs(2), Duration::from_secs(5));
        OpenAi::new(case.name, &self.base, key, connect, total).unwrap()
    }
}

/// The opening chunk, then one content chunk per piece.
fn text_events(pieces: &[&str]) -> Vec<String> {
    let mut events = vec![fake::role_chunk()];
    events.extend(
        pieces
            .iter()
            .map(|p| fake::chunk(json!({ "content": p }), Value::Null)),
    );
    events
}

fn tool_call_events(id: &str, name: &str, arguments: &[&str]) -> Vec<String> {
    let first = json!({ "role": "assistant", "content": null, "refusal": null, "tool_calls": [{
        "index": 0, "id": id, "type": "function", "function": { "name": name, "arguments": "" } }] });
    let mut events = vec![fake::chunk(first, Value::Null)];
    events.extend(arguments.iter().map(|a| {
        let delta = json!({ "tool_calls": [{ "index": 0, "function": { "arguments": a } }] });
        fake::chunk(delta, Value::Null)
    }));
    events
}

fn failure(f: Failure) -> Reply {
    let (status, headers, body) = match f {
        Failure::BadRequest(msg) => (
            400,
            vec![],
            fake::error(msg, "invalid_request_error", Value::Null),
        ),
        Failure::NotFound => {
            let msg = "The model `gpt-4o-mini` does not exist or you do not have access to it.";
            (
                404,
                vec![],
                fake::error(msg, "invalid_request_error", json!("model_not_found")),
            )
        }
        Failure::RateLimited { retry_after_secs } => {
            let msg = "Rate limit reached for gpt-4o-mini in organization org-abc on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.";
            let headers = vec![("retry-after", retry_after_secs.to_string())];
            (
                429,
                headers,
                fake::error(msg, "requests", json!("rate_limit_exceeded")),
            )
        }
        Failure::Server => {
            let msg = "The server had an error while processing your request. Sorry about that!";
            (500, vec![], fake::error(msg, "server_error", Value::Null))
        }
        Failure::Overloaded => {
            let msg = "The engine is currently overloaded, please try again later.";
            (503, vec![], fake::error(msg, "server_error", Value::Null))
        }
    };
    Reply::Json(status, headers, body)
}

fn native(script: &Script) -> Reply {
    let done = || "[DONE]".to_owned();
    let end = |finish: &str, u: vorg_llm::Usage| {
        [
            fake::chunk(json!({}), json!(finish)),
            fake::usage_chunk(u.prompt_tokens, u.completion_tokens),
            done(),
        ]
    };
    match script {
        Script::Text { text, usage: u } => Reply::Json(
            200,
            vec![],
            fake::completion_cached(
                text,
                u.prompt_tokens,
                u.cache_read_tokens,
                u.completion_tokens,
            ),
        ),
        Script::ToolCall {
            id,
            name,
            arguments,
            usage: u,
        } => Reply::Json(
            200,
            vec![],
            fake::tool_call_completion(id, name, arguments, u.prompt_tokens, u.completion_tokens),
        ),
        Script::Stream { pieces, usage: u } => {
            let mut events = text_events(pieces);
            events.extend(end("stop", *u));
            Reply::Sse(events)
        }
        Script::StreamToolCall {
            id,
            name,
            arguments,
            usage: u,
        } => {
            let mut events = tool_call_events(id, name, arguments);
            events.extend(end("tool_calls", *u));
            Reply::Sse(events)
        }
        Script::StreamReset(pieces) => Reply::Cut(text_events(pieces)),
        Script::StreamTruncated(pieces) => Reply::Sse(text_events(pieces)),
        Script::StreamErrorEvent(pieces) => {
            let mut events = text_events(pieces);
            let msg = "The server had an error while processing your request. Sorry about that!";
            events.push(fake::error(msg, "server_error", Value::Null).to_string());
            Reply::Sse(events)
        }
        Script::Fail(f) => failure(*f),
    }
}

impl Upstream for OpenAiUpstream {
    fn arrange<'a>(&'a self, _req: &'a ChatRequest, script: Script) -> BoxFuture<'a, Expected> {
        self.fake.push(native(&script));
        Box::pin(async move { contract::scripted(&script) })
    }

    fn requests(&self) -> usize {
        self.fake.hits.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn tools_seen(&self) -> Vec<String> {
        let seen = self.fake.seen.lock().unwrap();
        let last = seen.last().cloned().unwrap_or_default();
        last["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["function"]["name"].as_str().map(str::to_owned))
            .collect()
    }

    fn provider(&self, case: &ProviderCase, key: Key) -> Box<dyn Provider> {
        Box::new(self.build(case, key))
    }

    fn gateway(&self, store: Store, case: &ProviderCase, key: Key) -> Gateway {
        contract::gateway(store, case, self.build(case, key))
    }
}
