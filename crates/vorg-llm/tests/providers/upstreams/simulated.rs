//! The simulated provider under the contract. It has no upstream: it answers from its input,
//! the same way every time, so what it should say is its own answer to the request, with
//! tokens counted its documented way (one per four characters, rounded up). It cannot be
//! scripted to fail or to call tools natively; its capabilities say so.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use vorg_llm::{
    ChatRequest, Gateway, Provider, Usage,
    simulated::{MODEL, Simulated, count_tokens},
};
use vorg_store::Store;

use crate::contract::{self, Expected, Key, ProviderCase, Script, Upstream};

struct Offline;

pub fn start() -> BoxFuture<'static, Arc<dyn Upstream>> {
    Box::pin(async { Arc::new(Offline) as Arc<dyn Upstream> })
}

impl Upstream for Offline {
    fn arrange<'a>(&'a self, req: &'a ChatRequest, script: Script) -> BoxFuture<'a, Expected> {
        Box::pin(async move {
            assert!(
                matches!(script, Script::Text { .. } | Script::Stream { .. }),
                "the simulated provider cannot be scripted to {script:?}"
            );
            let text = Simulated.complete(MODEL, req).await.unwrap().text();
            let usage = Usage {
                prompt_tokens: count_tokens(&req.prompt_text()),
                completion_tokens: count_tokens(&text),
                ..Usage::default()
            };
            Expected { text, usage }
        })
    }

    fn requests(&self) -> usize {
        0
    }

    fn tools_seen(&self) -> Vec<String> {
        Vec::new()
    }

    fn provider(&self, _case: &ProviderCase, _key: Key) -> Box<dyn Provider> {
        Box::new(Simulated)
    }

    fn gateway(&self, store: Store, case: &ProviderCase, _key: Key) -> Gateway {
        contract::gateway(store, case, Simulated)
    }
}
