//! Hiring plans as runs: the model proposes a team as JSON valid against
//! `schemas/hiring_plan.schema.json`; an invalid answer is sent back with its validation
//! errors, a bounded number of times, then the run fails with them. The plan is stored as
//! an artifact with its estimated monthly cost.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use vorg_domain::LogLevel;
use vorg_jobs::{BackgroundJob, JobContext, JobError};
use vorg_llm::ChatRequest;
use vorg_org::Problem;

use crate::{
    Requester,
    work::{NewBlob, Services, gateway_job_error, parse_json_answer, save_artifact},
};

/// Answers sent back for repair before the run fails.
pub const MAX_REPAIRS: usize = 2;

/// What `POST /hiring/plan` takes: the idea a team is proposed for.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HiringRequest {
    pub idea: String,
    /// The monthly budget in USD.
    pub budget_usd: f64,
    pub deadline_days: u32,
    pub goal: String,
    /// A configured provider to ask (default: the gateway's default model).
    pub provider: Option<String>,
    pub model: Option<String>,
}

impl HiringRequest {
    /// What is wrong with the request, given the configured providers.
    pub fn problems<'a>(&self, mut providers: impl Iterator<Item = &'a str>) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut push = |path: &str, reason: String| {
            problems.push(Problem {
                path: path.to_owned(),
                reason,
            })
        };
        for (field, value) in [("idea", &self.idea), ("goal", &self.goal)] {
            if value.trim().is_empty() || value.len() > 5000 {
                push(field, "must be 1 to 5000 bytes".into());
            }
        }
        if vorg_domain::money::usd_to_micro(self.budget_usd).is_none() {
            push("budget_usd", "must be a non-negative amount in USD".into());
        }
        if self.deadline_days == 0 || self.deadline_days > 3650 {
            push("deadline_days", "must be between 1 and 3650".into());
        }
        if let Some(p) = &self.provider
            && !providers.any(|n| n == p)
        {
            push("provider", format!("{p:?} is not a configured provider"));
        }
        problems
    }
}

/// The `hiring_plan` job: a plan to draft, as queued.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HiringPlanJob {
    pub inputs: HiringRequest,
    #[serde(flatten)]
    pub requester: Requester,
}

/// A drafted hiring plan, stored as an artifact (its id is the plan's id).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HiringPlan {
    /// The roles, each valid against `schemas/hiring_plan.schema.json`.
    #[schema(value_type = Vec<std::collections::HashMap<String, serde_json::Value>>)]
    pub roles: Vec<Value>,
    #[schema(value_type = Vec<std::collections::HashMap<String, serde_json::Value>>)]
    pub workstreams: Vec<Value>,
    /// The model's answer as it came.
    pub llm_output: String,
    pub inputs: HiringRequest,
    /// The roles' monthly cost, summed and rounded to cents.
    pub estimated_monthly_cost_usd: f64,
    /// How many times the answer was sent back for repair.
    pub repairs: usize,
    /// The artifact holding the plan; `POST /hiring/plans/{plan_id}/apply` hires it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<i64>,
    /// What drafting the plan cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// The run that drafted it (in answers; not stored with the output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<i64>,
}

impl BackgroundJob for HiringPlanJob {
    const KIND: &'static str = "hiring_plan";
    const MAX_ATTEMPTS: i64 = 2;
    type Output = HiringPlan;
    type Context = Services;

    async fn run(self, services: &Services, job: &JobContext) -> Result<HiringPlan, JobError> {
        plan(services, job, self).await
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

async fn plan(
    services: &Services,
    job: &JobContext,
    request: HiringPlanJob,
) -> Result<HiringPlan, JobError> {
    let inputs = &request.inputs;
    let model = match (inputs.provider.as_deref(), inputs.model.as_deref()) {
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
        inputs.idea, inputs.goal, inputs.budget_usd, inputs.deadline_days, schema
    );
    let mut messages = vec![
        json!({ "role": "system", "content": "You are an experienced head of talent who designs lean teams." }),
        json!({ "role": "user", "content": prompt }),
    ];
    let starter = crate::Starter::load(&services.store, &request.requester).await?;
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
        let (resp, _, _) = services
            .llm
            .complete(&ctx, &req)
            .await
            .map_err(gateway_job_error)?;
        cost += resp.cost_micro_usd;
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
            return finish(services, job, doc, answer, &request, cost, attempt).await;
        }
        job.log(
            LogLevel::Warn,
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
    request: &HiringPlanJob,
    cost: i64,
    repairs: usize,
) -> Result<HiringPlan, JobError> {
    let list = |key: &str| {
        doc.get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let roles = list("roles");
    let monthly: f64 = roles
        .iter()
        .filter_map(|r| r.get("monthly_cost_usd").and_then(Value::as_f64))
        .sum();
    let mut plan = HiringPlan {
        roles,
        workstreams: list("workstreams"),
        llm_output,
        inputs: request.inputs.clone(),
        estimated_monthly_cost_usd: (monthly * 100.0).round() / 100.0,
        repairs,
        plan_id: None,
        cost_usd: None,
        run_id: None,
    };
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
            meta: json!({ "estimated_monthly_cost_usd": plan.estimated_monthly_cost_usd,
                          "idea": plan.inputs.idea }),
            run_id: job.run_id(),
            created_by: request.requester.requested_by,
        },
    )
    .await?;
    job.log(
        LogLevel::Info,
        &format!("hiring plan stored as artifact {}", artifact.id),
        json!({ "artifact_id": artifact.id, "cost_micro_usd": cost }),
    )
    .await?;
    plan.plan_id = Some(artifact.id);
    plan.cost_usd = Some(vorg_domain::money::micro_to_usd(cost));
    Ok(plan)
}

mod apply;

pub use apply::{Actor, Applied, ApplyError, ApplyPlan, ApprovalNeeded, Hired, apply_plan};
