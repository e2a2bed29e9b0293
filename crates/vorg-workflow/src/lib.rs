//! vorg's workflow engines, in pure Rust: `dag` (dependencies, bounded parallel branches,
//! retries, timeouts), `graph` (a LangGraph-style state graph with conditional and LLM-routed
//! edges, step limit, checkpoints, interrupts), `crew` (CrewAI-style tasks, sequential or
//! hierarchical) and `chat` (AutoGen-style group chat).
//!
//! Definitions are YAML or JSON documents checked by `schemas/workflow.schema.json` and by
//! [`validate`]. The engines never touch the database, the LLM gateway or HTTP: they talk to
//! the host through the [`Runtime`] trait, which the server implements (and tests fake).

mod agent;
pub mod chat;
pub mod crew;
pub mod dag;
pub mod definition;
mod expr;
pub mod graph;
mod problem;
mod runtime;
mod schema;
mod template;
pub mod tools;
mod validate;

pub use agent::MAX_TOOL_CALLS;
pub use chat::{ChatRun, Message, Termination, run_chat};
pub use crew::{CrewRun, TaskResult, run_crew};
pub use dag::{DagRun, StepResult, StepStatus, run_dag};
pub use definition::*;
pub use expr::{CmpOp, Expr, MAX_EXPR_BYTES, MAX_EXPR_DEPTH};
pub use graph::{GraphRun, GraphStatus, initial_state, resume_graph, run_graph};
pub use runtime::{Ask, BoxFuture, Checkpoint, Runtime, StepError};
pub use schema::schema_text;
pub use template::{
    MAX_RENDER_DEPTH, MAX_RENDERED_ARGS_BYTES, MAX_RENDERED_BYTES, MAX_TEMPLATE_BYTES,
    MAX_TEMPLATE_REFERENCES,
};
pub use validate::{Problem, semantic_problems, validate, validate_value};

/// The outcome of [`run`], per engine.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "engine", rename_all = "snake_case")]
pub enum RunOutcome {
    Dag(DagRun),
    Graph(GraphRun),
    Crew(CrewRun),
    Chat(ChatRun),
}

/// Runs any workflow from the start with `inputs`.
pub async fn run(workflow: &Workflow, inputs: &serde_json::Value, rt: &dyn Runtime) -> RunOutcome {
    match workflow {
        Workflow::Dag(w) => RunOutcome::Dag(run_dag(w, inputs, rt).await),
        Workflow::Graph(w) => RunOutcome::Graph(run_graph(w, inputs, rt).await),
        Workflow::Crew(w) => RunOutcome::Crew(run_crew(w, inputs, rt).await),
        Workflow::Chat(w) => RunOutcome::Chat(run_chat(w, inputs, rt).await),
    }
}
