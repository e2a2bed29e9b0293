//! The LLM gateway: the only way any vorg code reaches a model.
//!
//! Requests and responses use the OpenAI Chat Completions shape throughout (the lingua
//! franca of agent frameworks); each [`Provider`] translates to its upstream protocol:
//! `openai` (and any OpenAI-compatible server), `anthropic`, and `simulated` (offline,
//! deterministic, the default when no key is set). The [`Gateway`] wraps them with retries,
//! fallback chains, pricing and a usage row for every call.

pub mod anthropic;
pub mod budget;
pub mod call;
mod error;
pub mod gateway;
pub mod ledger;
pub mod openai;
pub mod pricing;
mod provider;
pub mod simulated;
mod types;
pub mod usage_writer;

pub use budget::{BudgetExceeded, CallPolicy, Governor};
pub use call::CallContext;
pub use error::{ErrorKind, ProviderError};
pub use gateway::{Gateway, GatewayError, RetryPolicy};
pub use ledger::{LeaseConfig, Ledger};
pub use pricing::Pricing;
pub use provider::{ChunkStream, Provider};
pub use types::{ChatRequest, ChatResponse, Usage};
