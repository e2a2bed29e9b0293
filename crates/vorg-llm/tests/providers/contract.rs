//! The provider contract: what a provider is ([`ProviderCase`]), what it declares it can do
//! ([`Capabilities`]), how its local upstream is told what to answer ([`Upstream`], in
//! provider-neutral [`Script`]s), and [`provider_contract!`], which generates every contract
//! test of `tests.rs` for one provider: a supported capability's tests run (each usage-row
//! check on SQLite and PostgreSQL), an unsupported one's are generated `#[ignore]`d as
//! `<test>::unsupported` with the provider's reason.

use std::{sync::Arc, time::Duration};

use futures_util::future::BoxFuture;
use serde_json::Value;
use vorg_llm::{
    CallContext, ChatRequest, Gateway, Pricing, Provider, RetryPolicy, Usage, simulated,
};
use vorg_store::{Backend, Page, Store, UsageEvent, testing::TestDb};

/// What a provider declares it supports. Each flag is set by [`provider_contract!`] from the
/// same `[yes]` / `[no "reason"]` that decides whether its tests run.
#[derive(Debug, Clone, Copy)]
pub struct Capabilities {
    /// A completion with text and the upstream's token counts.
    pub completion: bool,
    /// A streamed completion as OpenAI `chat.completion.chunk`s.
    pub streaming: bool,
    /// The stream ends with a chunk carrying the upstream's `usage` (otherwise the gateway
    /// records its estimate).
    pub usage_in_stream: bool,
    /// `tools` in the request, `tool_calls` in the answer.
    pub tool_calls: bool,
    /// `tool_calls` deltas in a stream.
    pub stream_tool_calls: bool,
    /// HTTP error answers mapped to an [`vorg_llm::ErrorKind`]; retried when retryable.
    pub http_errors: bool,
    /// An API key is sent: a wrong one is an auth error, not retried, never shown.
    pub auth: bool,
    /// A 429's `Retry-After` is honoured.
    pub retry_after: bool,
    /// A stream that breaks, stops short or carries an error event is an error.
    pub stream_failures: bool,
    /// Input tokens read from (and, where billed, written to) the prompt cache are reported
    /// and priced at their own rates.
    pub prompt_cache: bool,
}

/// One provider under the contract.
pub struct ProviderCase {
    /// Its configured name (the gateway's provider name).
    pub name: &'static str,
    /// The upstream model the tests call.
    pub model: &'static str,
    pub caps: Capabilities,
    /// Starts its local upstream.
    pub start: fn() -> BoxFuture<'static, Arc<dyn Upstream>>,
}

/// Which key the provider is built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Right,
    Wrong,
}

/// The secret part of every wrong key the tests use: no error text may contain it.
pub const WRONG_SECRET: &str = "wrongKey0123456789abcdef";

/// An upstream failure, each answered in the upstream's own shape.
#[derive(Debug, Clone, Copy)]
pub enum Failure {
    /// 400 with this message.
    BadRequest(&'static str),
    /// 404: no such model.
    NotFound,
    /// 429 with `Retry-After: <secs>`.
    RateLimited { retry_after_secs: u64 },
    /// 500.
    Server,
    /// The upstream's "overloaded" answer (OpenAI 503, Anthropic 529).
    Overloaded,
}

/// What the upstream answers to the next request.
#[derive(Debug, Clone)]
pub enum Script {
    Text {
        text: &'static str,
        usage: Usage,
    },
    ToolCall {
        id: &'static str,
        name: &'static str,
        arguments: Value,
        usage: Usage,
    },
    /// A streamed text answer in these pieces.
    Stream {
        pieces: Vec<&'static str>,
        usage: Usage,
    },
    /// A streamed tool call, its arguments in pieces of JSON text.
    StreamToolCall {
        id: &'static str,
        name: &'static str,
        arguments: Vec<&'static str>,
        usage: Usage,
    },
    /// These pieces, then the connection is reset.
    StreamReset(Vec<&'static str>),
    /// These pieces, then the response ends without the stream's end marker.
    StreamTruncated(Vec<&'static str>),
    /// These pieces, then the upstream's error event (overloaded).
    StreamErrorEvent(Vec<&'static str>),
    Fail(Failure),
}

/// What the provider should say after an [`Upstream::arrange`].
#[derive(Debug, Clone, Default)]
pub struct Expected {
    pub text: String,
    pub usage: Usage,
}

/// What a provider says when its upstream answers `script` as scripted.
pub fn scripted(script: &Script) -> Expected {
    match script {
        Script::Text { text, usage } => Expected {
            text: (*text).to_owned(),
            usage: *usage,
        },
        Script::Stream { pieces, usage } => Expected {
            text: pieces.concat(),
            usage: *usage,
        },
        Script::ToolCall { usage, .. } | Script::StreamToolCall { usage, .. } => Expected {
            text: String::new(),
            usage: *usage,
        },
        _ => Expected::default(),
    }
}

/// A provider's local upstream, and the provider pointed at it.
pub trait Upstream: Send + Sync {
    /// Makes the upstream answer `script` to the next request (`req`); returns what the
    /// provider should then say.
    fn arrange<'a>(&'a self, req: &'a ChatRequest, script: Script) -> BoxFuture<'a, Expected>;
    /// Requests that reached the upstream, refused ones included.
    fn requests(&self) -> usize;
    /// The tool names of the last accepted request, read from its own protocol.
    fn tools_seen(&self) -> Vec<String>;
    /// A new provider pointed at this upstream.
    fn provider(&self, case: &ProviderCase, key: Key) -> Box<dyn Provider>;
    /// A gateway with this provider (see [`gateway`]).
    fn gateway(&self, store: Store, case: &ProviderCase, key: Key) -> Gateway;
}

/// A gateway serving `provider` as `case.name` (also the default provider), `simulated`,
/// and the alias `chain`: the provider, then `simulated`. Retries are quick.
pub fn gateway(store: Store, case: &ProviderCase, provider: impl Provider) -> Gateway {
    let retry = RetryPolicy {
        max_retries: 2,
        base: Duration::from_millis(10),
        max_delay: Duration::from_secs(2),
    };
    Gateway::new(store, Pricing::shipped(), case.name, retry)
        .with_provider(simulated::Simulated, simulated::MODEL)
        .with_provider(provider, case.model)
        .with_alias(
            "chain",
            vec![
                (case.name.into(), case.model.into()),
                (simulated::NAME.into(), simulated::MODEL.into()),
            ],
        )
}

/// A test's world: the upstream, a gateway and its store.
pub struct Env {
    pub up: Arc<dyn Upstream>,
    pub gateway: Gateway,
    pub store: Store,
    _db: TestDb,
}

impl Env {
    pub async fn new(case: &ProviderCase, backend: Backend, key: Key) -> Env {
        let db = TestDb::new(backend).await;
        let store = Store::connect_and_migrate(&db.url).await.unwrap();
        let up = (case.start)().await;
        let gateway = up.gateway(store.clone(), case, key);
        Env {
            up,
            gateway,
            store,
            _db: db,
        }
    }

    /// The usage rows written so far, oldest first.
    pub async fn rows(&self) -> Vec<UsageEvent> {
        self.gateway.flush_usage().await;
        let page = Page {
            limit: 100,
            before: None,
        };
        let mut rows = self.store.list_usage(page).await.unwrap();
        rows.reverse();
        rows
    }
}

pub fn usage(prompt_tokens: i64, completion_tokens: i64) -> Usage {
    Usage {
        prompt_tokens,
        completion_tokens,
        ..Usage::default()
    }
}

/// Who calls, as the usage rows must show.
pub fn ctx() -> CallContext {
    CallContext {
        actor: "contract".into(),
        user_id: Some(7),
        ..Default::default()
    }
}

/// `provider/model`: the case's provider and model, with no fallback.
pub fn direct(case: &ProviderCase, prompt: &str) -> ChatRequest {
    ChatRequest::user(&format!("{}/{}", case.name, case.model), prompt)
}

/// Checks the parts of a usage row every call shares.
pub fn assert_row(row: &UsageEvent, provider: &str, model: &str, status: &str, streamed: bool) {
    assert_eq!(
        (
            row.provider.as_str(),
            row.model.as_str(),
            row.status.as_str()
        ),
        (provider, model, status),
        "{row:?}"
    );
    assert_eq!(row.streamed, streamed, "{row:?}");
    assert_eq!((row.actor.as_str(), row.user_id), ("contract", Some(7)));
    assert_eq!(row.error.is_some(), status == "error", "{row:?}");
    let (cost, priced) = Pricing::shipped().cost_micro_usd(
        provider,
        model,
        Usage {
            cache_read_tokens: row.cache_read_tokens,
            cache_write_tokens: row.cache_write_tokens,
            ..usage(row.prompt_tokens, row.completion_tokens)
        },
    );
    assert_eq!((row.cost_micro_usd, row.priced), (cost, priced), "{row:?}");
}

/// Generates the contract tests of one provider, in the module it is invoked in, from its
/// name, model, upstream and capabilities (each `[yes]` or `[no "why not"]`).
macro_rules! provider_contract {
    (
        name: $name:literal, model: $model:literal, start: $start:path,
        completion: $completion:tt, streaming: $streaming:tt,
        usage_in_stream: $usage_in_stream:tt, tool_calls: $tool_calls:tt,
        stream_tool_calls: $stream_tool_calls:tt, http_errors: $http_errors:tt,
        auth: $auth:tt, retry_after: $retry_after:tt, stream_failures: $stream_failures:tt,
        prompt_cache: $prompt_cache:tt $(,)?
    ) => {
        pub const CASE: crate::contract::ProviderCase = crate::contract::ProviderCase {
            name: $name,
            model: $model,
            start: $start,
            caps: crate::contract::Capabilities {
                completion: declared!($completion),
                streaming: declared!($streaming),
                usage_in_stream: declared!($usage_in_stream),
                tool_calls: declared!($tool_calls),
                stream_tool_calls: declared!($stream_tool_calls),
                http_errors: declared!($http_errors),
                auth: declared!($auth),
                retry_after: declared!($retry_after),
                stream_failures: declared!($stream_failures),
                prompt_cache: declared!($prompt_cache),
            },
        };
        contract_test!([yes], capabilities_are_consistent);
        contract_test!($completion, completion, db);
        contract_test!($streaming, stream, db);
        contract_test!($tool_calls, tool_call, db);
        contract_test!($stream_tool_calls, stream_tool_call, db);
        contract_test!($http_errors, error_kinds);
        contract_test!($http_errors, bad_request_is_not_retried, db);
        contract_test!($http_errors, server_errors_are_retried, db);
        contract_test!($auth, bad_key, db);
        contract_test!($retry_after, rate_limit_honours_retry_after, db);
        contract_test!($stream_failures, stream_failures, db);
        contract_test!($prompt_cache, prompt_cache, db);
    };
}

macro_rules! declared {
    ([yes]) => {
        true
    };
    ([no $why:literal]) => {
        false
    };
}

/// One contract test of `crate::tests`: run (on both databases with `db`), or generated
/// ignored as `<test>::unsupported` when the capability is declared `[no "why"]`.
macro_rules! contract_test {
    ([yes], $test:ident, db) => {
        mod $test {
            #[tokio::test]
            async fn sqlite() {
                crate::tests::$test(&super::CASE, vorg_store::Backend::Sqlite).await
            }
            #[tokio::test]
            async fn postgres() {
                crate::tests::$test(&super::CASE, vorg_store::Backend::Postgres).await
            }
        }
    };
    ([yes], $test:ident) => {
        mod $test {
            #[tokio::test]
            async fn provider() {
                crate::tests::$test(&super::CASE).await
            }
        }
    };
    ([no $why:literal], $test:ident $(, $db:ident)?) => {
        mod $test {
            #[tokio::test]
            #[ignore = $why]
            async fn unsupported() {}
        }
    };
}
