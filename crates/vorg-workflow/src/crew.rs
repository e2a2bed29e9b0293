//! The `crew` engine (CrewAI's model): personas with a role and a goal work through tasks.
//! `sequential`: in order, each seeing the earlier outputs. `hierarchical`: a manager
//! persona assigns tasks that name no agent, reviews each result and may send it back up to
//! `max_revisions` times.

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::agent::turn;
use crate::definition::{CrewAgent, CrewTask, CrewWorkflow, Process};
use crate::graph::pick;
use crate::runtime::{Runtime, StepError};
use crate::template;

/// What became of one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskResult {
    pub id: String,
    /// The persona who did it (`None` if it failed before assignment).
    pub agent: Option<String>,
    pub output: Option<String>,
    /// How many times the manager sent it back.
    pub revisions: u32,
    pub error: Option<String>,
}

/// The result of a `crew` run. A failed task stops the crew; later tasks are absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CrewRun {
    pub succeeded: bool,
    pub tasks: Vec<TaskResult>,
    /// The last task's output.
    pub output: Option<String>,
}

/// Runs `workflow` (validated) with `inputs` for `{{ inputs.<name> }}`.
pub async fn run_crew(workflow: &CrewWorkflow, inputs: &Value, rt: &dyn Runtime) -> CrewRun {
    let mut done: Vec<TaskResult> = Vec::new();
    for task in &workflow.tasks {
        let mut result = TaskResult {
            id: task.id.clone(),
            agent: task.agent.clone(),
            output: None,
            revisions: 0,
            error: None,
        };
        match run_task(workflow, task, inputs, &done, &mut result, rt).await {
            Ok(output) => {
                rt.log(&task.id, "done").await;
                result.output = Some(output);
                done.push(result);
            }
            Err(e) => {
                rt.log(&task.id, &format!("failed: {e}")).await;
                result.error = Some(e.to_string());
                done.push(result);
                return CrewRun {
                    succeeded: false,
                    tasks: done,
                    output: None,
                };
            }
        }
    }
    let output = done.last().and_then(|t| t.output.clone());
    CrewRun {
        succeeded: true,
        tasks: done,
        output,
    }
}

async fn run_task(
    workflow: &CrewWorkflow,
    task: &CrewTask,
    inputs: &Value,
    done: &[TaskResult],
    result: &mut TaskResult,
    rt: &dyn Runtime,
) -> Result<String, StepError> {
    let outputs: Map<String, Value> = done
        .iter()
        .map(|t| (t.id.clone(), json!({ "output": t.output })))
        .collect();
    let context = json!({ "inputs": inputs, "tasks": outputs });
    let description = template::render(&task.description, &context)
        .map_err(|e| StepError::Invalid(format!("description: {e}")))?;
    let manager = match workflow.process {
        Process::Hierarchical => workflow.manager.as_deref(),
        Process::Sequential => None,
    };
    let agent_id = match (&task.agent, manager) {
        (Some(a), _) => a.clone(),
        (None, Some(manager)) => assign(workflow, manager, task, &description, rt).await?,
        (None, None) => return Err(StepError::Invalid("no agent for the task".into())),
    };
    result.agent = Some(agent_id.clone());
    let agent = workflow
        .agents
        .iter()
        .find(|a| a.id == agent_id)
        .ok_or_else(|| StepError::Invalid(format!("unknown agent \"{agent_id}\"")))?;
    let mut prompt = format!(
        "Task: {description}\nExpected output: {}",
        task.expected_output
    );
    if !done.is_empty() {
        prompt.push_str("\n\nContext from earlier tasks:");
        for t in done {
            prompt.push_str(&format!(
                "\n### {}\n{}",
                t.id,
                t.output.as_deref().unwrap_or_default()
            ));
        }
    }
    let system = system_prompt(agent);
    rt.log(&task.id, &format!("assigned to {}", agent.id)).await;
    let mut output = turn(
        rt,
        &task.id,
        &agent.id,
        &system,
        &prompt,
        &agent.tools,
        None,
    )
    .await?;
    let Some(manager) = manager else {
        return Ok(output);
    };
    loop {
        let review = format!(
            "Review the result of task \"{}\".\nTask: {description}\nExpected output: {}\n\nResult:\n{output}\n\nReply APPROVE if it meets the expected output, otherwise REVISE: followed by what to change.",
            task.id, task.expected_output
        );
        let schema = json!({ "type": "object",
            "properties": { "verdict": { "type": "string", "enum": ["APPROVE", "REVISE"] },
                            "changes": { "type": "string" } },
            "required": ["verdict"] });
        let answer = turn(
            rt,
            &task.id,
            manager,
            "You are the manager of this crew.",
            &review,
            &[],
            Some(&schema),
        )
        .await?;
        let verdict = structured_verdict(&answer).unwrap_or(answer);
        if verdict
            .trim_start()
            .to_ascii_uppercase()
            .starts_with("APPROVE")
        {
            rt.log(&task.id, &format!("{manager} approved")).await;
            return Ok(output);
        }
        if result.revisions >= workflow.max_revisions {
            rt.log(&task.id, &format!("{manager} still asks for changes; revision limit {} reached, keeping the last result", workflow.max_revisions)).await;
            return Ok(output);
        }
        result.revisions += 1;
        let feedback = verdict.trim_start();
        let feedback = feedback
            .get(..7)
            .filter(|p| p.eq_ignore_ascii_case("REVISE:"))
            .map_or(feedback, |_| &feedback[7..])
            .trim();
        rt.log(
            &task.id,
            &format!("{manager} sends it back ({}): {feedback}", result.revisions),
        )
        .await;
        let again = format!(
            "{prompt}\n\nYour previous answer:\n{output}\n\nThe manager asks for changes:\n{feedback}"
        );
        output = turn(rt, &task.id, &agent.id, &system, &again, &agent.tools, None).await?;
    }
}

async fn assign(
    workflow: &CrewWorkflow,
    manager: &str,
    task: &CrewTask,
    description: &str,
    rt: &dyn Runtime,
) -> Result<String, StepError> {
    let roster: Vec<String> = workflow
        .agents
        .iter()
        .map(|a| format!("- {}: {} ({})", a.id, a.role, a.goal))
        .collect();
    let prompt = format!(
        "Your crew:\n{}\n\nWhich agent should do this task?\nTask: {description}\nExpected output: {}\n\nAnswer with exactly one agent id.",
        roster.join("\n"),
        task.expected_output
    );
    let ids: Vec<String> = workflow.agents.iter().map(|a| a.id.clone()).collect();
    let schema = json!({ "type": "object",
        "properties": { "agent": { "type": "string", "enum": ids } }, "required": ["agent"] });
    let answer = turn(
        rt,
        &task.id,
        manager,
        "You are the manager of this crew.",
        &prompt,
        &[],
        Some(&schema),
    )
    .await?;
    pick(&answer, &ids)
        .ok_or_else(|| StepError::Invalid(format!("the manager named no agent: {answer:?}")))
}

fn system_prompt(agent: &CrewAgent) -> String {
    let mut s = format!("You are {}. Your goal: {}.", agent.role, agent.goal);
    if let Some(b) = &agent.backstory {
        s.push_str(&format!("\n{b}"));
    }
    s
}

/// A structured review (`{"verdict": "REVISE", "changes": "…"}`) as the text protocol's
/// `APPROVE` / `REVISE: …`; `None` for a plain-text answer.
fn structured_verdict(answer: &str) -> Option<String> {
    let v: Value = serde_json::from_str(answer.trim()).ok()?;
    let verdict = v.get("verdict")?.as_str()?;
    let changes = v.get("changes").and_then(Value::as_str).unwrap_or("");
    Some(if verdict.eq_ignore_ascii_case("APPROVE") {
        "APPROVE".to_owned()
    } else {
        format!("REVISE: {changes}")
    })
}
