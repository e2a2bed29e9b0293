//! The one door between the engines and the outside world: model turns, run logs,
//! checkpoints, approvals and tools. The server implements it over the LLM gateway and the
//! store; tests implement it with scripted answers. Nothing here knows about either.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A boxed, sendable future borrowing from the runtime and the workflow.
pub type BoxFuture<'a, T> = futures_util::future::BoxFuture<'a, T>;

/// Why a step (a model turn, a tool call, a checkpoint write) did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// The model, tool or store failed; the engine may retry.
    #[error("{0}")]
    Failed(String),
    /// The step took longer than its `timeout_ms`.
    #[error("timed out after {0} ms")]
    Timeout(u64),
    /// The persona may not do this (a tool outside its permissions); never retried.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The answer could not be used (not JSON where JSON was asked, a state key of the wrong
    /// type, a routing answer naming no target); the engine may retry.
    #[error("invalid output: {0}")]
    Invalid(String),
    /// The host stopped the run (cancelled, parked on an approval, worker shutting down);
    /// never retried, and the engine winds down.
    #[error("halted: {0}")]
    Halted(String),
}

impl StepError {
    /// Errors no retry can change.
    pub fn is_final(&self) -> bool {
        matches!(self, StepError::Forbidden(_) | StepError::Halted(_))
    }
}

/// One model turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ask<'a> {
    /// The step, node, task or chat round this turn belongs to (for logs and usage).
    pub step: &'a str,
    /// The persona id answering; the caller's actor for usage and permissions.
    pub agent: &'a str,
    pub system: &'a str,
    pub prompt: &'a str,
    /// A JSON Schema the answer must match (a `graph` node with `format: json` and a
    /// `schema`); hosts pass it to providers with structured output.
    pub schema: Option<&'a Value>,
    /// The tools the agent may call in this turn ([`crate::tools`]); their descriptions
    /// are already in `system` for the text protocol, hosts with native tool calling send
    /// them as tools and answer a tool call with its `TOOL <name> <json>` line.
    pub tools: &'a [String],
}

/// The state of a `graph` run after a node completed: enough to resume it without
/// re-executing that node (`next` is the edge already chosen; `None` means the run ended).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The node that just completed.
    pub node: String,
    /// The node to run next, `None` when the run is over.
    pub next: Option<String>,
    /// The shared state after the node's update.
    pub state: Value,
    /// Nodes executed so far (counted against `max_steps`).
    pub steps: u32,
}

/// What the engines need from their host. Every method is called from the run's own task;
/// implementations must be cheap to share (`&self`) and may be called concurrently by the
/// `dag` engine's parallel branches.
pub trait Runtime: Send + Sync {
    /// One model turn; returns the answer text.
    fn ask<'a>(&'a self, ask: Ask<'a>) -> BoxFuture<'a, Result<String, StepError>>;

    /// A line in the run's log (`step` is the step/node/task name, or `run`).
    fn log<'a>(&'a self, step: &'a str, message: &'a str) -> BoxFuture<'a, ()> {
        let _ = (step, message);
        Box::pin(async {})
    }

    /// Persists a `graph` checkpoint; a failure stops the run (state that cannot be resumed
    /// must not advance).
    fn checkpoint<'a>(
        &'a self,
        checkpoint: &'a Checkpoint,
    ) -> BoxFuture<'a, Result<(), StepError>> {
        let _ = checkpoint;
        Box::pin(async { Ok(()) })
    }

    /// Blocks until a human decides the approval requested by an `interrupt` node; `true`
    /// when approved. The host puts the run in `waiting_approval` meanwhile, and must return
    /// the same decision if asked again for the same node after a resume.
    fn wait_for_approval<'a>(
        &'a self,
        node: &'a str,
        request: &'a Value,
    ) -> BoxFuture<'a, Result<bool, StepError>> {
        let _ = (node, request);
        Box::pin(async { Err(StepError::Failed("approvals are not available".into())) })
    }

    /// Calls `tool` on behalf of the persona `agent`; the host checks its permissions.
    fn call_tool<'a>(
        &'a self,
        agent: &'a str,
        tool: &'a str,
        args: &'a Value,
    ) -> BoxFuture<'a, Result<Value, StepError>> {
        let _ = (agent, args);
        Box::pin(async move { Err(StepError::Forbidden(format!("no tool {tool:?}"))) })
    }
}
