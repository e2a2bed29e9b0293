//! The built-in tools agents may call, with the JSON Schema of their arguments. The host
//! implements them ([`crate::Runtime::call_tool`]) and checks the calling persona's
//! permissions; the engines only pass their descriptions to the model.

use serde_json::{Value, json};

/// One tool: its name, what it does, and its arguments as a JSON Schema.
#[derive(Debug, Clone, Copy)]
pub struct ToolSpec {
    pub name: &'static str,
    pub description: &'static str,
    parameters: &'static str,
}

impl ToolSpec {
    pub fn parameters(&self) -> Value {
        serde_json::from_str(self.parameters).unwrap_or_else(|_| json!({ "type": "object" }))
    }

    /// The tool in the OpenAI `tools` format (which vorg's gateway also maps to Anthropic).
    pub fn openai(&self) -> Value {
        json!({ "type": "function", "function": {
            "name": self.name, "description": self.description, "parameters": self.parameters() } })
    }
}

/// Every built-in tool (the names `schemas/workflow.schema.json` accepts).
pub const TOOLS: [ToolSpec; 4] = [
    ToolSpec {
        name: "submit_approval",
        description: "Ask for approval of a spend or an action under the governance policies. \
                      Returns the approval's id, status (auto_approved or pending) and tier.",
        parameters: r#"{"type":"object","properties":{
            "description":{"type":"string","minLength":1},
            "amount_usd":{"type":"number","minimum":0},
            "justification":{"type":"string"},
            "kind":{"type":"string"},
            "action":{"type":"string"},
            "tags":{"type":"array","items":{"type":"string"}}},
            "required":["description","amount_usd"]}"#,
    },
    ToolSpec {
        name: "create_linear_issue",
        description: "File an issue in Linear (when the organization has Linear configured), \
                      in the team the run names (else the first team).",
        parameters: r#"{"type":"object","properties":{
            "title":{"type":"string","minLength":1},
            "description":{"type":"string"}},
            "required":["title"]}"#,
    },
    ToolSpec {
        name: "search_artifacts",
        description: "Full-text search over the organization's artifacts (minutes, plans, \
                      decisions). Returns matches with a snippet.",
        parameters: r#"{"type":"object","properties":{
            "q":{"type":"string","minLength":1},
            "limit":{"type":"integer","minimum":1,"maximum":20}},
            "required":["q"]}"#,
    },
    ToolSpec {
        name: "record_decision",
        description: "Record a decision as an artifact of the organization.",
        parameters: r#"{"type":"object","properties":{
            "title":{"type":"string","minLength":1},
            "body":{"type":"string","minLength":1}},
            "required":["title","body"]}"#,
    },
];

/// The built-in tool named `name`.
pub fn tool(name: &str) -> Option<&'static ToolSpec> {
    TOOLS.iter().find(|t| t.name == name)
}

/// What a model is told about `tools` under the text protocol (appended to its system
/// prompt): one line per tool with its argument schema.
pub fn protocol_text(tools: &[String]) -> String {
    let mut s = String::from(
        "You may call tools. To call one, answer with a single line \
         `TOOL <name> <JSON object of arguments>` and nothing else; the result comes back as \
         `TOOL RESULT <name>: <JSON>` (or `TOOL ERROR <name>: <reason>`), then continue. Tools:",
    );
    for t in tools.iter().filter_map(|n| tool(n)) {
        s.push_str(&format!(
            "\n- {}: {} Arguments: {}",
            t.name,
            t.description,
            t.parameters()
        ));
    }
    s
}
