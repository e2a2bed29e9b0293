//! Anthropic under the contract, against the Messages API fake.

use std::{sync::Arc, time::Duration};

use futures_util::future::BoxFuture;
use vorg_domain::Secret;
use vorg_llm::{ChatRequest, Gateway, Provider, anthropic::Anthropic};
use vorg_store::Store;

use crate::{
    contract::{self, Expected, Failure, Key, ProviderCase, Script, Upstream, WRONG_SECRET},
    fakes::anthropic::{self as fake, Fake, Reply},
};

struct AnthropicUpstream {
    fake: Fake,
    base: String,
}

pub fn start() -> BoxFuture<'static, Arc<dyn Upstream>> {
    Box::pin(async {
        let fake = Fake::default();
        let base = fake.serve().await;
        Arc::new(AnthropicUpstream { fake, base }) as Arc<dyn Upstream>
    })
}

impl AnthropicUpstream {
    fn build(&self, case: &ProviderCase, key: Key) -> Anthropic {
        let key = match key {
            Key::Right => Secret::new(fake::KEY),
            Key::Wrong => Secret::new(format!("sk-ant-api03-{WRONG_SECRET}")),
        };
        let (connect, total) = (Duration::from_secs(2), Duration::from_secs(5));
        Anthropic::new(case.name, &self.base, key, connect, total).unwrap()
    }
}

fn failure(f: Failure) -> Reply {
    let (status, headers, body) = match f {
        Failure::BadRequest(msg) => (400, vec![], fake::error("invalid_request_error", msg)),
        Failure::NotFound => (
            404,
            vec![],
            fake::error("not_found_error", "model: claude-sonnet-4-5"),
        ),
        Failure::RateLimited { retry_after_secs } => {
            let msg = "This request would exceed the rate limit for your organization of 50 requests per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits.";
            let headers = vec![("retry-after", retry_after_secs.to_string())];
            (429, headers, fake::error("rate_limit_error", msg))
        }
        Failure::Server => (
            500,
            vec![],
            fake::error("api_error", "Internal server error"),
        ),
        Failure::Overloaded => (529, vec![], fake::error("overloaded_error", "Overloaded")),
    };
    Reply::Json(status, headers, body)
}

/// The input tokens of a stream cut short (its usage never arrives).
const STARTED_INPUT: i64 = 9;

fn native(script: &Script) -> Reply {
    match script {
        Script::Text { text, usage: u } => {
            let (read, write) = (u.cache_read_tokens, u.cache_write_tokens);
            let input = (u.prompt_tokens - read - write, read, write);
            Reply::Json(
                200,
                vec![],
                fake::message_cached(text, input, u.completion_tokens),
            )
        }
        Script::ToolCall {
            id,
            name,
            arguments,
            usage: u,
        } => Reply::Json(
            200,
            vec![],
            fake::tool_use_message(id, name, arguments, u.prompt_tokens, u.completion_tokens),
        ),
        Script::Stream { pieces, usage: u } => {
            Reply::Sse(fake::stream(pieces, u.prompt_tokens, u.completion_tokens))
        }
        Script::StreamReset(pieces) => Reply::Cut(fake::stream_start(pieces, STARTED_INPUT)),
        Script::StreamTruncated(pieces) => Reply::Sse(fake::stream_start(pieces, STARTED_INPUT)),
        Script::StreamErrorEvent(pieces) => {
            let mut events = fake::stream_start(pieces, STARTED_INPUT);
            events.push(fake::overloaded_event());
            Reply::Sse(events)
        }
        Script::StreamToolCall { .. } => {
            panic!("anthropic declares no stream_tool_calls: {script:?}")
        }
        Script::Fail(f) => failure(*f),
    }
}

impl Upstream for AnthropicUpstream {
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
            .filter_map(|t| t["name"].as_str().map(str::to_owned))
            .collect()
    }

    fn provider(&self, case: &ProviderCase, key: Key) -> Box<dyn Provider> {
        Box::new(self.build(case, key))
    }

    fn gateway(&self, store: Store, case: &ProviderCase, key: Key) -> Gateway {
        contract::gateway(store, case, self.build(case, key))
    }
}
