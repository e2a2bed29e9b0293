//! The `dag` engine: steps start when their dependencies succeeded, at most `max_parallel`
//! at once; a failed step fails its dependants (status `upstream_failed`, naming the step)
//! while independent branches run to the end.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde::Serialize;
use serde_json::{Value, json};

use crate::agent::{turn, with_retries};
use crate::definition::{DagStep, DagWorkflow};
use crate::runtime::{Runtime, StepError};
use crate::template;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Succeeded,
    Failed,
    /// Not run because a dependency failed.
    UpstreamFailed,
}

/// What became of one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepResult {
    pub status: StepStatus,
    pub output: Option<String>,
    pub attempts: u32,
    pub error: Option<String>,
}

/// The result of a `dag` run: every step, by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DagRun {
    pub steps: BTreeMap<String, StepResult>,
}

impl DagRun {
    /// True when every step succeeded.
    pub fn succeeded(&self) -> bool {
        self.steps
            .values()
            .all(|s| s.status == StepStatus::Succeeded)
    }

    /// The ids of the steps with `status`, sorted.
    pub fn with_status(&self, status: StepStatus) -> Vec<&str> {
        self.steps
            .iter()
            .filter(|(_, s)| s.status == status)
            .map(|(id, _)| id.as_str())
            .collect()
    }
}

/// The index a log-only entry of the running set reports (not a step).
const LOG_ONLY: usize = usize::MAX;

type Running<'a> =
    Pin<Box<dyn Future<Output = (usize, Result<String, StepError>, u32)> + Send + 'a>>;

/// Runs `workflow` (validated) with `inputs` (a JSON object for `{{ inputs.<name> }}`).
pub async fn run_dag(workflow: &DagWorkflow, inputs: &Value, rt: &dyn Runtime) -> DagRun {
    let steps = &workflow.steps;
    let index: BTreeMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let mut results: Vec<Option<StepResult>> = vec![None; steps.len()];
    let mut started = vec![false; steps.len()];
    let mut running: FuturesUnordered<Running<'_>> = FuturesUnordered::new();
    let max_parallel = workflow.max_parallel.max(1);
    loop {
        // Dependants of failures fail too, transitively (definition order is not topological,
        // so repeat until nothing changes).
        let mut changed = true;
        while changed {
            changed = false;
            for (i, step) in steps.iter().enumerate() {
                if started[i] {
                    continue;
                }
                let failed_dep = step.depends_on.iter().find(|d| {
                    index
                        .get(d.as_str())
                        .and_then(|&j| results[j].as_ref())
                        .is_some_and(|r| r.status != StepStatus::Succeeded)
                });
                if let Some(dep) = failed_dep {
                    started[i] = true;
                    changed = true;
                    let error = format!("dependency \"{dep}\" failed");
                    // Logged beside the running branches, never while they wait unpolled
                    // (a host's log may take a lock a running branch holds).
                    let line = error.clone();
                    running.push(Box::pin(async move {
                        rt.log(&step.id, &line).await;
                        (LOG_ONLY, Ok(String::new()), 0)
                    }));
                    results[i] = Some(StepResult {
                        status: StepStatus::UpstreamFailed,
                        output: None,
                        attempts: 0,
                        error: Some(error),
                    });
                }
            }
        }
        for (i, step) in steps.iter().enumerate() {
            if running.len() >= max_parallel {
                break;
            }
            let ready = !started[i]
                && step.depends_on.iter().all(|d| {
                    index
                        .get(d.as_str())
                        .and_then(|&j| results[j].as_ref())
                        .is_some_and(|r| r.status == StepStatus::Succeeded)
                });
            if ready {
                started[i] = true;
                let context = context(inputs, steps, &results);
                running.push(Box::pin(async move {
                    let (result, attempts) = run_step(step, &context, rt).await;
                    let line = match &result {
                        Ok(_) => format!("succeeded after {attempts} attempt(s)"),
                        Err(e) => format!("failed after {attempts} attempt(s): {e}"),
                    };
                    rt.log(&step.id, &line).await;
                    (i, result, attempts)
                }));
            }
        }
        let Some((i, result, attempts)) = running.next().await else {
            break;
        };
        if i == LOG_ONLY {
            continue;
        }
        results[i] = Some(match result {
            Ok(output) => StepResult {
                status: StepStatus::Succeeded,
                output: Some(output),
                attempts,
                error: None,
            },
            Err(e) => StepResult {
                status: StepStatus::Failed,
                output: None,
                attempts,
                error: Some(e.to_string()),
            },
        });
    }
    DagRun {
        steps: steps
            .iter()
            .zip(results)
            .map(|(s, r)| {
                // Unreachable for a validated workflow; a cycle would leave steps unstarted.
                let r = r.unwrap_or(StepResult {
                    status: StepStatus::UpstreamFailed,
                    output: None,
                    attempts: 0,
                    error: Some("never ready (dependency cycle?)".into()),
                });
                (s.id.clone(), r)
            })
            .collect(),
    }
}

/// `{"inputs": …, "steps": {"<id>": {"output": …}}}` for the steps done so far.
fn context(inputs: &Value, steps: &[DagStep], results: &[Option<StepResult>]) -> Value {
    let outputs: serde_json::Map<String, Value> = steps
        .iter()
        .zip(results)
        .filter_map(|(s, r)| {
            Some((
                s.id.clone(),
                json!({ "output": r.as_ref()?.output.clone()? }),
            ))
        })
        .collect();
    json!({ "inputs": inputs, "steps": outputs })
}

async fn run_step(
    step: &DagStep,
    context: &Value,
    rt: &dyn Runtime,
) -> (Result<String, StepError>, u32) {
    let prompt = match template::render(&step.prompt, context) {
        Ok(p) => p,
        Err(e) => return (Err(StepError::Invalid(format!("prompt: {e}"))), 0),
    };
    let system = step.system.as_deref().unwrap_or_default();
    rt.log(&step.id, &format!("started ({})", step.agent)).await;
    with_retries(rt, &step.id, step.retries, step.timeout_ms, || {
        turn(
            rt,
            &step.id,
            &step.agent,
            system,
            &prompt,
            &step.tools,
            None,
        )
    })
    .await
}
