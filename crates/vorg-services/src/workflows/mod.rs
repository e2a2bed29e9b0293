//! Workflows as runs: the host side of `vorg-workflow`'s engines. Every model turn goes
//! through the gateway as the step's persona (usage per run and per persona is exact),
//! every step and tool call is a line of the run's log, `graph` checkpoints are rows the run
//! resumes from, interrupts are approvals that park the run, and tools are checked against
//! the persona's `tools` and the policies' `forbidden_actions`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use vorg_domain::LogLevel;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use vorg_domain::money::micro_to_usd;
use vorg_jobs::{BackgroundJob, JobContext, JobError};
use vorg_store::PersonaRow;
use vorg_workflow::{Checkpoint, Problem, RunOutcome, Workflow};

use vorg_org::Persona;

use crate::{
    Requester,
    work::{Services, Speaker},
};

mod host;

use host::Host;
pub use host::MAX_STATE_BYTES;

/// The `workflow` job: a workflow to run, as queued.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WorkflowRun {
    /// The workflow document (YAML or JSON) as it was when the run started.
    pub source: String,
    pub name: String,
    /// The saved version run (none: a document sent with the request).
    pub version: Option<i64>,
    /// The workflow's inputs, valid against its `inputs` schema.
    #[serde(default)]
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    pub inputs: Value,
    /// A model, alias or `provider/model` for every turn (default: each persona's).
    pub model: Option<String>,
    /// The Linear team `create_linear_issue` files in (default: the first team).
    pub linear_team_id: Option<String>,
    #[serde(flatten)]
    pub requester: Requester,
}

/// What a workflow run answers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WorkflowOutcome {
    pub workflow: String,
    /// `dag`, `graph`, `crew` or `chat`.
    pub engine: String,
    pub version: Option<i64>,
    /// What each step produced: a `dag`'s step outputs, a `graph`'s final state, a `crew`'s
    /// task outputs, a `chat`'s transcript.
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    pub results: Value,
    /// The engine's full outcome.
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    pub outcome: Value,
    pub cost_usd: f64,
    pub llm_calls: u64,
    /// The run (in answers; not stored with the output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<i64>,
}

impl BackgroundJob for WorkflowRun {
    const KIND: &'static str = "workflow";
    const MAX_ATTEMPTS: i64 = 3;
    type Output = WorkflowOutcome;
    type Context = Services;

    async fn run(self, services: &Services, job: &JobContext) -> Result<WorkflowOutcome, JobError> {
        execute(services, job, self).await
    }
}

/// The persona an agent name of a workflow means: the persona with that id, else the one
/// persona whose id starts with `<name>.` (`ceo` → `ceo.org.v1`).
pub fn resolve<'p>(rows: &'p [PersonaRow], name: &str) -> Option<&'p PersonaRow> {
    if let Some(r) = rows.iter().find(|r| r.id == name) {
        return Some(r);
    }
    let prefix = format!("{name}.");
    let mut matches = rows.iter().filter(|r| r.id.starts_with(&prefix));
    match (matches.next(), matches.next()) {
        (Some(r), None) => Some(r),
        _ => None,
    }
}

/// Every agent a workflow names, with its path in the document.
fn agents(wf: &Workflow) -> Vec<(String, &str)> {
    let mut out = Vec::new();
    match wf {
        Workflow::Dag(w) => {
            for (i, s) in w.steps.iter().enumerate() {
                out.push((format!("steps[{i}].agent"), s.agent.as_str()));
            }
        }
        Workflow::Graph(w) => {
            for (i, n) in w.nodes.iter().enumerate() {
                if let Some(a) = &n.agent {
                    out.push((format!("nodes[{i}].agent"), a.as_str()));
                }
                if let Some(r) = &n.route {
                    out.push((format!("nodes[{i}].route.agent"), r.agent.as_str()));
                }
            }
        }
        Workflow::Crew(w) => {
            for (i, a) in w.agents.iter().enumerate() {
                out.push((format!("agents[{i}].id"), a.id.as_str()));
            }
            if let Some(m) = &w.manager {
                out.push(("manager".into(), m.as_str()));
            }
        }
        Workflow::Chat(w) => {
            for (i, p) in w.participants.iter().enumerate() {
                out.push((format!("participants[{i}].id"), p.id.as_str()));
            }
            if let Some(s) = &w.selector {
                out.push(("selector".into(), s.as_str()));
            }
        }
    }
    out
}

/// Agents that name no persona of the organization (or more than one).
pub fn agent_problems(wf: &Workflow, rows: &[PersonaRow]) -> Vec<Problem> {
    agents(wf)
        .into_iter()
        .filter(|(_, name)| resolve(rows, name).is_none())
        .map(|(path, name)| {
            let prefix = format!("{name}.");
            let n = rows.iter().filter(|r| r.id.starts_with(&prefix)).count();
            let reason = if n > 1 {
                format!("\"{name}\" matches {n} personas; use the full persona id")
            } else {
                format!("unknown persona \"{name}\"")
            };
            Problem::new(path, reason)
        })
        .collect()
}

/// The keys a run's `inputs` must have (`dag`, `crew`, `chat` declare them; a `graph`
/// takes its declared state keys, all optional).
pub fn input_problems(wf: &Workflow, inputs: &Value) -> Vec<Problem> {
    let declared = match wf {
        Workflow::Dag(w) => &w.inputs,
        Workflow::Crew(w) => &w.inputs,
        Workflow::Chat(w) => &w.inputs,
        Workflow::Graph(g) => {
            return match vorg_workflow::initial_state(g, inputs) {
                Ok(_) => Vec::new(),
                Err(e) => vec![Problem::new("inputs", e)],
            };
        }
    };
    let Some(given) = inputs.as_object() else {
        return vec![Problem::new("inputs", "must be an object")];
    };
    let mut out: Vec<Problem> = declared
        .keys()
        .filter(|k| !given.contains_key(*k))
        .map(|k| Problem::new(format!("inputs.{k}"), "required by the workflow"))
        .collect();
    out.extend(
        given
            .keys()
            .filter(|k| !declared.contains_key(*k))
            .map(|k| Problem::new(format!("inputs.{k}"), "not an input of the workflow")),
    );
    out
}

async fn execute(
    services: &Services,
    job: &JobContext,
    run: WorkflowRun,
) -> Result<WorkflowOutcome, JobError> {
    let wf = vorg_workflow::validate(&run.source).map_err(|problems| {
        JobError::Fatal(format!(
            "invalid workflow: {}",
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        ))
    })?;
    let inputs = match &run.inputs {
        Value::Null => json!({}),
        other => other.clone(),
    };
    let rows = services
        .store
        .list_personas()
        .await
        .map_err(|e| JobError::Retryable(format!("reading personas: {e}")))?;
    let unknown = agent_problems(&wf, &rows);
    if !unknown.is_empty() {
        let list: Vec<String> = unknown.iter().map(ToString::to_string).collect();
        return Err(JobError::Fatal(list.join("; ")));
    }
    let personas = agents(&wf)
        .into_iter()
        .filter_map(|(_, name)| {
            resolve(&rows, name).map(|r| (name.to_owned(), Persona::trusted(r.doc.0.clone())))
        })
        .collect();
    let max_steps = services
        .org
        .policies()
        .await
        .map_err(|e| JobError::Retryable(format!("reading the policies: {e}")))?
        .run_limits
        .max_steps;
    let host = Host {
        services,
        job,
        speaker: Speaker::new(services, job, &run.requester, run.model.clone()),
        linear_team_id: run.linear_team_id.clone(),
        personas,
        name: wf.name().to_owned(),
        halt: Mutex::new(None),
        steps: AtomicU32::new(0),
        work: AtomicU32::new(0),
        max_steps,
    };
    job.log(
        LogLevel::Info,
        &format!("workflow {} ({}) started", wf.name(), wf.engine()),
        json!({ "workflow": wf.name(), "engine": wf.engine(),
                "version": run.version }),
    )
    .await?;
    let outcome = run_engine(services, job, &wf, &inputs, &host).await?;
    if let Some(stop) = host.halt.lock().unwrap_or_else(|e| e.into_inner()).take() {
        return Err(stop);
    }
    let failure = failure(&outcome);
    let cost = host.speaker.cost_micro_usd();
    let results = results(&outcome);
    let outcome = serde_json::to_value(&outcome).unwrap_or(Value::Null);
    if let Some(why) = failure {
        job.log(
            LogLevel::Error,
            &format!("workflow {} failed: {why}", wf.name()),
            json!({ "outcome": outcome, "cost_micro_usd": cost }),
        )
        .await?;
        return Err(JobError::Fatal(why));
    }
    job.log(
        LogLevel::Info,
        &format!("workflow {} finished", wf.name()),
        json!({ "cost_micro_usd": cost, "llm_calls": host.speaker.calls() }),
    )
    .await?;
    Ok(WorkflowOutcome {
        workflow: wf.name().to_owned(),
        engine: wf.engine().to_owned(),
        version: run.version,
        results,
        outcome,
        cost_usd: micro_to_usd(cost),
        llm_calls: host.speaker.calls(),
        run_id: None,
    })
}

/// Runs the engine; a `graph` run resumes from its last checkpoint.
async fn run_engine(
    services: &Services,
    job: &JobContext,
    wf: &Workflow,
    inputs: &Value,
    host: &Host<'_>,
) -> Result<RunOutcome, JobError> {
    Ok(match (wf, job.run_id()) {
        (Workflow::Graph(g), Some(run_id)) => {
            let last = services
                .store
                .last_checkpoint(run_id)
                .await
                .map_err(|e| JobError::Retryable(format!("reading the checkpoint: {e}")))?;
            match last {
                Some(c) => {
                    let checkpoint = Checkpoint {
                        node: c.node,
                        next: c.next,
                        state: c.state.0,
                        steps: u32::try_from(c.steps).unwrap_or(u32::MAX),
                    };
                    host.steps.store(checkpoint.steps, Ordering::SeqCst);
                    RunOutcome::Graph(vorg_workflow::resume_graph(g, &checkpoint, host).await)
                }
                None => RunOutcome::Graph(vorg_workflow::run_graph(g, inputs, host).await),
            }
        }
        _ => vorg_workflow::run(wf, inputs, host).await,
    })
}

/// Why the outcome is a failure, if it is.
fn failure(outcome: &RunOutcome) -> Option<String> {
    match outcome {
        RunOutcome::Dag(d) if !d.succeeded() => Some(
            d.steps
                .iter()
                .filter_map(|(id, s)| s.error.as_ref().map(|e| format!("{id}: {e}")))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        RunOutcome::Graph(g) => match g.status {
            vorg_workflow::GraphStatus::Completed => None,
            vorg_workflow::GraphStatus::StepLimit => {
                Some(format!("step limit reached after {} steps", g.steps))
            }
            vorg_workflow::GraphStatus::Failed => g.error.clone(),
        },
        RunOutcome::Crew(c) if !c.succeeded => Some(
            c.tasks
                .iter()
                .filter_map(|t| t.error.as_ref().map(|e| format!("{}: {e}", t.id)))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        RunOutcome::Chat(c) if c.error.is_some() => c.error.clone(),
        _ => None,
    }
}

/// What each step produced: a `dag`'s step outputs, a `graph`'s final state, a `crew`'s
/// task outputs, a `chat`'s transcript.
fn results(outcome: &RunOutcome) -> Value {
    match outcome {
        RunOutcome::Dag(d) => d
            .steps
            .iter()
            .map(|(id, s)| (id.clone(), json!(s.output)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        RunOutcome::Graph(g) => g.state.clone(),
        RunOutcome::Crew(c) => c
            .tasks
            .iter()
            .map(|t| (t.id.clone(), json!(t.output)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        RunOutcome::Chat(c) => json!(c.transcript),
    }
}
