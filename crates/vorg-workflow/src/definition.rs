//! Workflow documents as types: one struct per engine, selected by `engine:`. These only
//! describe; [`crate::validate`] checks them and the engine modules run them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A workflow document (YAML or JSON), tagged by `engine`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "engine", rename_all = "snake_case")]
pub enum Workflow {
    Dag(DagWorkflow),
    Graph(GraphWorkflow),
    Crew(CrewWorkflow),
    Chat(ChatWorkflow),
}

impl Workflow {
    pub fn name(&self) -> &str {
        match self {
            Workflow::Dag(w) => &w.name,
            Workflow::Graph(w) => &w.name,
            Workflow::Crew(w) => &w.name,
            Workflow::Chat(w) => &w.name,
        }
    }

    /// `dag`, `graph`, `crew` or `chat`.
    pub fn engine(&self) -> &'static str {
        match self {
            Workflow::Dag(_) => "dag",
            Workflow::Graph(_) => "graph",
            Workflow::Crew(_) => "crew",
            Workflow::Chat(_) => "chat",
        }
    }
}

/// Input names a run must provide, each with a description; templates read them as
/// `{{ inputs.<name> }}`.
pub type Inputs = BTreeMap<String, String>;

fn default_max_parallel() -> usize {
    4
}

/// `engine: dag` — steps with dependencies, independent branches run concurrently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DagWorkflow {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub inputs: Inputs,
    /// At most this many steps run at once.
    #[serde(default = "default_max_parallel")]
    pub max_parallel: usize,
    pub steps: Vec<DagStep>,
}

/// One model turn of a `dag`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DagStep {
    pub id: String,
    /// The persona id answering.
    pub agent: String,
    /// A template: `{{ inputs.topic }}`, `{{ steps.<dependency>.output }}`.
    pub prompt: String,
    #[serde(default)]
    pub system: Option<String>,
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Extra attempts after a failure or a timeout.
    #[serde(default)]
    pub retries: u32,
    /// Per attempt.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Tools the agent may call in this step (see [`crate::agent`]).
    #[serde(default)]
    pub tools: Vec<String>,
}

fn default_max_steps() -> u32 {
    25
}

/// The type of a declared state key of a `graph`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateType {
    String,
    Number,
    Integer,
    Boolean,
    Array,
    Object,
}

impl StateType {
    /// The value a key starts with when the run's input does not set it.
    pub fn zero(self) -> Value {
        match self {
            StateType::String => Value::String(String::new()),
            StateType::Number | StateType::Integer => Value::from(0),
            StateType::Boolean => Value::Bool(false),
            StateType::Array => Value::Array(Vec::new()),
            StateType::Object => Value::Object(serde_json::Map::new()),
        }
    }

    pub fn admits(self, v: &Value) -> bool {
        match self {
            StateType::String => v.is_string(),
            StateType::Number => v.is_number(),
            StateType::Integer => v.is_i64() || v.is_u64(),
            StateType::Boolean => v.is_boolean(),
            StateType::Array => v.is_array(),
            StateType::Object => v.is_object(),
        }
    }
}

/// `engine: graph` — a state machine over a typed shared state (LangGraph's model).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphWorkflow {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The declared state keys and their types; the run's input sets initial values.
    pub state: BTreeMap<String, StateType>,
    /// The first node.
    pub start: String,
    /// The run stops (status `step_limit`) after this many node executions.
    #[serde(default = "default_max_steps")]
    pub max_steps: u32,
    pub nodes: Vec<GraphNode>,
}

/// What a node does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// A model turn; the answer goes to `output` (text) or is merged (`format: json`).
    #[default]
    Agent,
    /// A tool call with `args`; the result goes to `output` or is merged when an object.
    Tool,
    /// Waits for a human approval; continues on the node's edges or on `on_reject`.
    Interrupt,
    /// Only `set`/`increment`.
    Update,
}

/// How an agent node's answer updates the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputFormat {
    #[default]
    Text,
    /// The answer is a JSON object merged into the state.
    Json,
}

/// The edge of a node: the default is to end the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphNode {
    pub id: String,
    #[serde(default)]
    pub kind: NodeKind,
    #[serde(default)]
    pub agent: Option<String>,
    /// Template over `{{ state.<key> }}`.
    #[serde(default)]
    pub prompt: Option<String>,
    #[serde(default)]
    pub system: Option<String>,
    #[serde(default)]
    pub format: OutputFormat,
    /// `format: json`: a JSON Schema for the answer, passed to the provider (structured
    /// output); the update is still checked against the declared state types.
    #[serde(default)]
    pub schema: Option<Value>,
    /// The state key receiving the answer / tool result / approval decision.
    #[serde(default)]
    pub output: Option<String>,
    #[serde(default)]
    pub tool: Option<String>,
    /// Tool arguments; strings are templates.
    #[serde(default)]
    pub args: Option<Value>,
    /// The approval request's text (interrupt nodes), a template.
    #[serde(default)]
    pub message: Option<String>,
    /// Constant updates applied after the node's own.
    #[serde(default)]
    pub set: BTreeMap<String, Value>,
    /// Numeric keys incremented by one after the node's own update.
    #[serde(default)]
    pub increment: Vec<String>,
    #[serde(default)]
    pub retries: u32,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Unconditional edge (`END` ends the run).
    #[serde(default)]
    pub next: Option<String>,
    /// Conditional edges, the first whose `when` holds wins; one without `when` is the
    /// fallback.
    #[serde(default)]
    pub branches: Vec<Branch>,
    /// An LLM picks the next node among `targets`.
    #[serde(default)]
    pub route: Option<Route>,
    /// Interrupt nodes: where a rejection goes (default: end the run).
    #[serde(default)]
    pub on_reject: Option<String>,
}

/// The name of the pseudo-node that ends a `graph` run.
pub const END: &str = "END";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Branch {
    /// A state expression ([`crate::Expr`]); absent = always.
    #[serde(default)]
    pub when: Option<String>,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub agent: String,
    pub prompt: String,
    #[serde(default)]
    pub system: Option<String>,
    pub targets: Vec<String>,
}

fn default_max_revisions() -> u32 {
    1
}

/// `engine: crew` — personas working through tasks (CrewAI's model).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrewWorkflow {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub inputs: Inputs,
    pub process: Process,
    /// The persona who delegates and reviews (`hierarchical` only).
    #[serde(default)]
    pub manager: Option<String>,
    /// How many times the manager may send one task back.
    #[serde(default = "default_max_revisions")]
    pub max_revisions: u32,
    pub agents: Vec<CrewAgent>,
    pub tasks: Vec<CrewTask>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Process {
    Sequential,
    Hierarchical,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrewAgent {
    /// The persona id.
    pub id: String,
    pub role: String,
    pub goal: String,
    #[serde(default)]
    pub backstory: Option<String>,
    #[serde(default)]
    pub tools: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrewTask {
    pub id: String,
    /// A template over `{{ inputs.<name> }}`.
    pub description: String,
    pub expected_output: String,
    /// Required for `sequential`; under `hierarchical` the manager assigns tasks without one.
    #[serde(default)]
    pub agent: Option<String>,
}

fn default_keyword() -> Option<String> {
    Some("TERMINATE".into())
}

/// `engine: chat` — a group chat (AutoGen's model); the transcript is the output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatWorkflow {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub inputs: Inputs,
    /// The opening message, a template over `{{ inputs.<name> }}`.
    pub task: String,
    pub participants: Vec<Participant>,
    pub speaker_selection: SpeakerSelection,
    /// `selector`: the persona picking the next speaker (default: the first participant).
    #[serde(default)]
    pub selector: Option<String>,
    /// `manual`: the speaking order, repeated.
    #[serde(default)]
    pub order: Vec<String>,
    /// Messages by participants before the chat stops.
    pub max_rounds: u32,
    /// A message containing it ends the chat (`null` disables).
    #[serde(default = "default_keyword")]
    pub termination_keyword: Option<String>,
    /// A condition checked after every message, over `state.rounds` (messages written),
    /// `state.last.speaker` and `state.last.content` (e.g. `state.last.speaker == "cfo"`).
    #[serde(default)]
    pub terminate_when: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Participant {
    /// The persona id.
    pub id: String,
    /// Who they are, for their own system prompt and for the selector.
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpeakerSelection {
    RoundRobin,
    Selector,
    Manual,
}
