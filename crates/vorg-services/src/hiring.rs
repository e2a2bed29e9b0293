//! Hiring plans as runs: the model proposes a team as JSON valid against
//! `schemas/hiring_plan.schema.json`; an invalid answer is sent back with its validation
//! errors, a bounded number of times, then the run fails with them. The plan is stored as
//! an artifact with its estimated monthly cost.

use serde_json::{Value, json};
use vorg_jobs::{BoxFuture, JobContext, JobError, JobHandler};
use vorg_llm::ChatRequest;

use crate::work::{NewBlob, Services, gateway_job_error, parse_json_answer, save_artifact};

pub const JOB_KIND: &str = "hiring_plan";

/// Answers sent back for repair before the run fails.
pub const MAX_REPAIRS: usize = 2;

pub struct HiringHandler {
    pub services: Services,
}

impl JobHandler for HiringHandler {
    fn run<'a>(&'a self, job: &'a JobContext) -> BoxFuture<'a, Result<Value, JobError>> {
        Box::pin(async move { plan(&self.services, job).await })
    }
}

fn schema_text(services: &Services) -> Result<Value, JobError> {
    let src = services
        .org
        .files()
        .read("schemas/hiring_plan.schema.json")
        .map_err(|e| JobError::Fatal(e.to_string()))?;
    serde_json::from_str(&src.text).map_err(|e| JobError::Fatal(format!("{}: {e}", src.origin)))
}

async fn plan(services: &Services, job: &JobContext) -> Result<Value, JobError> {
    let inputs = job.input().get("inputs").cloned().unwrap_or_default();
    let text = |k: &str| {
        inputs
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let model = match (
        inputs.get("provider").and_then(Value::as_str),
        inputs.get("model").and_then(Value::as_str),
    ) {
        (Some(p), Some(m)) => format!("{p}/{m}"),
        (Some(p), None) => format!("{p}/{}", services.llm.default_model_for(p)),
        (None, Some(m)) => m.to_owned(),
        (None, None) => "default".to_owned(),
    };
    let schema = schema_text(services)?;
    let prompt = format!(
        "Propose a hiring plan for an AI-staffed team. Idea: {}. Goal: {}. Budget: ${} per \
         month. Deadline: {} days. Answer with JSON only, matching this JSON Schema: {}. For \
         each role give role_id, mission, deliverables, tools, and monthly_cost_usd (your \
         estimate of its model spend); for each workstream give name, owner (a role_id), \
         milestone and eta_days.",
        text("idea"),
        text("goal"),
        inputs.get("budget_usd").cloned().unwrap_or_default(),
        inputs.get("deadline_days").cloned().unwrap_or_default(),
        schema
    );
    let mut messages = vec![
        json!({ "role": "system", "content": "You are an experienced head of talent who designs lean teams." }),
        json!({ "role": "user", "content": prompt }),
    ];
    let starter = crate::Starter::load(&services.store, job.input()).await?;
    let ctx = starter.call_context("hiring", job.run_id(), None);
    let mut cost = 0;
    let mut last_problems = Vec::new();
    for attempt in 0..=MAX_REPAIRS {
        job.checkpoint().await?;
        let mut req = ChatRequest::user(&model, "");
        req.body.insert("messages".into(), json!(messages));
        req.body.insert("max_tokens".into(), json!(2000));
        req.body.insert(
            "response_format".into(),
            json!({ "type": "json_schema", "json_schema": { "name": "hiring_plan", "schema": schema } }),
        );
        let (resp, provider, used) = services
            .llm
            .complete(&ctx, &req)
            .await
            .map_err(gateway_job_error)?;
        cost += services
            .llm
            .pricing()
            .cost_micro_usd(&provider, &used, resp.usage)
            .0;
        let answer = resp.text();
        let problems: Vec<String> = match parse_json_answer(&answer) {
            None => vec!["the answer is not JSON".to_owned()],
            Some(doc) => services
                .org
                .schemas()
                .hiring_plan
                .problems(&doc)
                .into_iter()
                .map(|p| p.to_string())
                .collect(),
        };
        if problems.is_empty() {
            let doc = parse_json_answer(&answer).unwrap_or_default();
            return finish(services, job, doc, answer, inputs, cost, attempt).await;
        }
        job.log(
            "warn",
            &format!(
                "the plan is invalid (attempt {}): {}",
                attempt + 1,
                problems.join("; ")
            ),
            json!({ "problems": problems }),
        )
        .await?;
        messages.push(json!({ "role": "assistant", "content": answer }));
        messages.push(json!({ "role": "user", "content": format!(
            "That plan does not validate against the schema: {}. Answer again with the whole \
             corrected plan as JSON only.", problems.join("; ")) }));
        last_problems = problems;
    }
    Err(JobError::Fatal(format!(
        "the model's plan stayed invalid after {MAX_REPAIRS} repairs: {}",
        last_problems.join("; ")
    )))
}

async fn finish(
    services: &Services,
    job: &JobContext,
    doc: Value,
    llm_output: String,
    inputs: Value,
    cost: i64,
    repairs: usize,
) -> Result<Value, JobError> {
    let roles = doc.get("roles").cloned().unwrap_or_else(|| json!([]));
    let monthly: f64 = roles
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("monthly_cost_usd").and_then(Value::as_f64))
        .sum();
    let plan = json!({
        "roles": roles,
        "workstreams": doc.get("workstreams").cloned().unwrap_or_else(|| json!([])),
        "llm_output": llm_output,
        "inputs": inputs,
        "estimated_monthly_cost_usd": (monthly * 100.0).round() / 100.0,
        "repairs": repairs,
    });
    let bytes = serde_json::to_vec_pretty(&plan).map_err(|e| JobError::Fatal(e.to_string()))?;
    let run_part = job
        .run_id()
        .map(|r| format!("run-{r}"))
        .unwrap_or_else(|| "adhoc".into());
    let artifact = save_artifact(
        services,
        NewBlob {
            kind: "hiring_plan",
            name: &format!("hiring-plan-{run_part}.json"),
            key: format!("hiring/{run_part}.json"),
            content_type: "application/json",
            bytes,
            meta: json!({ "estimated_monthly_cost_usd": plan["estimated_monthly_cost_usd"],
                          "idea": plan["inputs"]["idea"] }),
            run_id: job.run_id(),
            created_by: job.input().get("requested_by").and_then(Value::as_i64),
        },
    )
    .await?;
    job.log(
        "info",
        &format!("hiring plan stored as artifact {}", artifact.id),
        json!({ "artifact_id": artifact.id, "cost_micro_usd": cost }),
    )
    .await?;
    let mut out = plan;
    out["plan_id"] = json!(artifact.id);
    out["cost_usd"] = json!(vorg_domain::money::micro_to_usd(cost));
    Ok(out)
}
