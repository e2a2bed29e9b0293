//! The provider trait: one upstream protocol each.

use std::pin::Pin;

use futures_util::Stream;
use serde_json::Value;

use crate::{ChatRequest, ChatResponse, ProviderError, error::ErrorKind};

pub type BoxFuture<'a, T> = Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// OpenAI `chat.completion.chunk` bodies; the last one carries `usage`.
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<Value, ProviderError>> + Send>>;

/// An upstream model API.
pub trait Provider: Send + Sync + 'static {
    /// The configured name (`openai`, `anthropic`, `simulated`, or an instance name such as
    /// `ollama`).
    fn name(&self) -> &str;

    /// One completion. `model` is the upstream model name.
    fn complete<'a>(
        &'a self,
        model: &'a str,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, ProviderError>>;

    /// A streamed completion, as OpenAI chunks ending with one that carries `usage`.
    fn stream<'a>(
        &'a self,
        model: &'a str,
        req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChunkStream, ProviderError>>;

    /// Embeddings: an OpenAI `embeddings` request (`input`, optional `dimensions` and
    /// `encoding_format`) answered as OpenAI's `list` of embeddings, with its usage.
    /// Providers without embeddings refuse it as a bad request.
    fn embed<'a>(
        &'a self,
        _model: &'a str,
        _req: &'a ChatRequest,
    ) -> BoxFuture<'a, Result<ChatResponse, ProviderError>> {
        Box::pin(async move {
            Err(ProviderError::new(
                self.name(),
                ErrorKind::BadRequest,
                "this provider serves no embeddings",
            ))
        })
    }
}
