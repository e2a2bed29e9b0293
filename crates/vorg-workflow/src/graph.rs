//! The `graph` engine (LangGraph's model): nodes update a typed shared state, edges pick
//! the next node (unconditionally, by a state expression, or by an LLM), cycles run until
//! `max_steps`, a [`Checkpoint`] is written after every node and a run resumes from one.

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::agent::{turn, with_retries};
use crate::definition::{END, GraphNode, GraphWorkflow, NodeKind, OutputFormat};
use crate::expr::Expr;
use crate::runtime::{Checkpoint, Runtime, StepError};
use crate::template;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GraphStatus {
    /// An edge led to `END` (or a node had no edge).
    Completed,
    /// `max_steps` nodes ran without reaching the end.
    StepLimit,
    /// A node, its edge or a checkpoint write failed (`error` says which).
    Failed,
}

/// The result of a `graph` run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GraphRun {
    pub status: GraphStatus,
    pub state: Value,
    /// Nodes executed, including those before a resume.
    pub steps: u32,
    /// Nodes executed by this call, in order.
    pub visited: Vec<String>,
    /// `<node>: <reason>` when `Failed`.
    pub error: Option<String>,
}

/// The initial state: each declared key from `inputs` or its type's zero value. Unknown
/// keys and values of the wrong type are errors.
pub fn initial_state(workflow: &GraphWorkflow, inputs: &Value) -> Result<Value, String> {
    let empty = Map::new();
    let given = match inputs {
        Value::Object(m) => m,
        Value::Null => &empty,
        _ => return Err("inputs must be an object".into()),
    };
    check_update(workflow, given).map_err(|e| e.to_string())?;
    let state: Map<String, Value> = workflow
        .state
        .iter()
        .map(|(k, t)| (k.clone(), given.get(k).cloned().unwrap_or_else(|| t.zero())))
        .collect();
    Ok(Value::Object(state))
}

/// Runs `workflow` (validated) from its start node.
pub async fn run_graph(workflow: &GraphWorkflow, inputs: &Value, rt: &dyn Runtime) -> GraphRun {
    match initial_state(workflow, inputs) {
        Ok(state) => drive(workflow, Some(workflow.start.clone()), state, 0, rt).await,
        Err(e) => GraphRun {
            status: GraphStatus::Failed,
            state: Value::Null,
            steps: 0,
            visited: Vec::new(),
            error: Some(format!("inputs: {e}")),
        },
    }
}

/// Continues a run from `checkpoint`: the node it names is not run again.
pub async fn resume_graph(
    workflow: &GraphWorkflow,
    checkpoint: &Checkpoint,
    rt: &dyn Runtime,
) -> GraphRun {
    rt.log(
        "run",
        &format!(
            "resuming after \"{}\" (step {})",
            checkpoint.node, checkpoint.steps
        ),
    )
    .await;
    drive(
        workflow,
        checkpoint.next.clone(),
        checkpoint.state.clone(),
        checkpoint.steps,
        rt,
    )
    .await
}

async fn drive(
    workflow: &GraphWorkflow,
    mut current: Option<String>,
    mut state: Value,
    mut steps: u32,
    rt: &dyn Runtime,
) -> GraphRun {
    let mut visited = Vec::new();
    let fail = |state: Value, steps, visited, error: String| GraphRun {
        status: GraphStatus::Failed,
        state,
        steps,
        visited,
        error: Some(error),
    };
    while let Some(id) = current.take().filter(|id| id != END) {
        if steps >= workflow.max_steps {
            rt.log(
                "run",
                &format!("step limit {} reached before \"{id}\"", workflow.max_steps),
            )
            .await;
            return GraphRun {
                status: GraphStatus::StepLimit,
                state,
                steps,
                visited,
                error: None,
            };
        }
        let Some(node) = workflow.nodes.iter().find(|n| n.id == id) else {
            return fail(state, steps, visited, format!("{id}: unknown node"));
        };
        rt.log(&id, "started").await;
        let approved = match execute(workflow, node, &mut state, rt).await {
            Ok(a) => a,
            Err(e) => return fail(state, steps, visited, format!("{id}: {e}")),
        };
        steps += 1;
        visited.push(id.clone());
        let next = match next_node(node, approved, &state, rt).await {
            Ok(n) => n,
            Err(e) => return fail(state, steps, visited, format!("{id}: edge: {e}")),
        };
        rt.log(&id, &format!("next: {}", next.as_deref().unwrap_or(END)))
            .await;
        let checkpoint = Checkpoint {
            node: id.clone(),
            next: next.clone(),
            state,
            steps,
        };
        if let Err(e) = rt.checkpoint(&checkpoint).await {
            return fail(
                checkpoint.state,
                steps,
                visited,
                format!("{id}: checkpoint: {e}"),
            );
        }
        state = checkpoint.state;
        current = next;
    }
    GraphRun {
        status: GraphStatus::Completed,
        state,
        steps,
        visited,
        error: None,
    }
}

/// Runs `node` and applies its update; for an interrupt, returns the decision.
async fn execute(
    workflow: &GraphWorkflow,
    node: &GraphNode,
    state: &mut Value,
    rt: &dyn Runtime,
) -> Result<Option<bool>, StepError> {
    let context = json!({ "state": &*state });
    // A template that cannot render (a missing value, past its size bound) fails the node
    // before any turn, so it is never retried.
    let render = |field: &str, t: &Option<String>| -> Result<String, StepError> {
        template::render(t.as_deref().unwrap_or_default(), &context)
            .map_err(|e| StepError::Invalid(format!("{field}: {e}")))
    };
    let mut update = Map::new();
    let mut approved = None;
    match node.kind {
        NodeKind::Agent => {
            let prompt = render("prompt", &node.prompt)?;
            let system = node.system.as_deref().unwrap_or_default();
            let agent = node.agent.as_deref().unwrap_or_default();
            let (result, _) = with_retries(rt, &node.id, node.retries, node.timeout_ms, || async {
                let answer = turn(
                    rt,
                    &node.id,
                    agent,
                    system,
                    &prompt,
                    &[],
                    node.schema.as_ref(),
                )
                .await?;
                match node.format {
                    OutputFormat::Text => Ok(node
                        .output
                        .iter()
                        .map(|k| (k.clone(), Value::String(answer.clone())))
                        .collect()),
                    OutputFormat::Json => {
                        let update = parse_object(&answer)?;
                        check_update(workflow, &update)?;
                        Ok(update)
                    }
                }
            })
            .await;
            update = result?;
        }
        NodeKind::Tool => {
            let args = template::render_value(node.args.as_ref().unwrap_or(&json!({})), &context)
                .map_err(|e| StepError::Invalid(format!("args: {e}")))?;
            let agent = node.agent.as_deref().unwrap_or("workflow");
            let tool = node.tool.as_deref().unwrap_or_default();
            let (result, _) = with_retries(rt, &node.id, node.retries, node.timeout_ms, || {
                rt.call_tool(agent, tool, &args)
            })
            .await;
            match (result?, &node.output) {
                (v, Some(key)) => {
                    update.insert(key.clone(), v);
                }
                (Value::Object(m), None) => update = m,
                (_, None) => {}
            }
        }
        NodeKind::Interrupt => {
            let request = json!({ "message": render("message", &node.message)?, "state": &*state });
            rt.log(&node.id, "waiting for approval").await;
            let decision = rt.wait_for_approval(&node.id, &request).await?;
            rt.log(&node.id, if decision { "approved" } else { "rejected" })
                .await;
            if let Some(key) = &node.output {
                update.insert(key.clone(), Value::Bool(decision));
            }
            approved = Some(decision);
        }
        NodeKind::Update => {}
    }
    update.extend(node.set.iter().map(|(k, v)| (k.clone(), v.clone())));
    check_update(workflow, &update)?;
    let Value::Object(map) = state else {
        return Err(StepError::Invalid("state is not an object".into()));
    };
    map.extend(update);
    for key in &node.increment {
        let bumped = match map.get(key) {
            Some(v) if v.is_i64() || v.is_u64() => json!(v.as_i64().unwrap_or(0) + 1),
            Some(v) => json!(v.as_f64().unwrap_or(0.0) + 1.0),
            None => json!(1),
        };
        map.insert(key.clone(), bumped);
    }
    Ok(approved)
}

/// Every key declared, every value of its declared type.
fn check_update(workflow: &GraphWorkflow, update: &Map<String, Value>) -> Result<(), StepError> {
    for (k, v) in update {
        match workflow.state.get(k) {
            None => return Err(StepError::Invalid(format!("undeclared state key \"{k}\""))),
            Some(t) if !t.admits(v) => {
                return Err(StepError::Invalid(format!(
                    "\"{k}\" must be {t:?}, got {v}"
                )));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// A JSON object, possibly inside a ```json fence.
fn parse_object(answer: &str) -> Result<Map<String, Value>, StepError> {
    let text = answer.trim();
    let text = text
        .strip_prefix("```json")
        .or_else(|| text.strip_prefix("```"))
        .and_then(|t| t.strip_suffix("```"))
        .unwrap_or(text);
    match serde_json::from_str(text.trim()) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(StepError::Invalid("the answer is not a JSON object".into())),
        Err(e) => Err(StepError::Invalid(format!("the answer is not JSON: {e}"))),
    }
}

/// The node after `node` (`None` = end of the run).
async fn next_node(
    node: &GraphNode,
    approved: Option<bool>,
    state: &Value,
    rt: &dyn Runtime,
) -> Result<Option<String>, StepError> {
    let end = |t: &str| (t != END).then(|| t.to_owned());
    if approved == Some(false) {
        return Ok(node.on_reject.as_deref().and_then(end));
    }
    if let Some(next) = &node.next {
        return Ok(end(next));
    }
    if !node.branches.is_empty() {
        for b in &node.branches {
            let holds = match &b.when {
                None => true,
                Some(src) => Expr::parse(src).map_err(StepError::Invalid)?.eval(state),
            };
            if holds {
                return Ok(end(&b.to));
            }
        }
        rt.log(&node.id, "no branch holds; ending the run").await;
        return Ok(None);
    }
    if let Some(route) = &node.route {
        let context = json!({ "state": state });
        let prompt = template::render(&route.prompt, &context)
            .map_err(|e| StepError::Invalid(format!("route.prompt: {e}")))?;
        let prompt = format!(
            "{prompt}\n\nAnswer with exactly one of: {}.",
            route.targets.join(", ")
        );
        let system = route.system.as_deref().unwrap_or_default();
        let (result, _) = with_retries(rt, &node.id, node.retries, node.timeout_ms, || async {
            let answer = turn(rt, &node.id, &route.agent, system, &prompt, &[], None).await?;
            pick(&answer, &route.targets).ok_or_else(|| {
                StepError::Invalid(format!("routing answer names no target: {answer:?}"))
            })
        })
        .await;
        let target = result?;
        rt.log(&node.id, &format!("{} routed to {target}", route.agent))
            .await;
        return Ok(end(&target));
    }
    Ok(None)
}

/// The target an answer names: the whole answer, else the first word that is a target
/// (words are split at anything but letters, digits, `_`, `-` and `.`, so a JSON answer
/// such as `{"agent":"cto"}` names `cto`).
pub(crate) fn pick(answer: &str, targets: &[String]) -> Option<String> {
    let clean = |s: &str| {
        s.trim_matches(|c: char| !c.is_alphanumeric() && c != '_' && c != '-')
            .to_owned()
    };
    let whole = clean(answer);
    if let Some(t) = targets.iter().find(|t| t.eq_ignore_ascii_case(&whole)) {
        return Some(t.clone());
    }
    answer
        .split(|c: char| !(c.is_alphanumeric() || "_-.".contains(c)))
        .map(clean)
        .find_map(|w| targets.iter().find(|t| t.eq_ignore_ascii_case(&w)).cloned())
}
