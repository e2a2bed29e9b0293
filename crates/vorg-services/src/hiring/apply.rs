//! Applying a hiring plan: one persona per role, behind an approval when the plan's monthly
//! cost is above the policies' auto-approve threshold.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use vorg_artifacts::Blobs;
use vorg_domain::{
    ApprovalStatus,
    money::{micro_to_usd, usd_to_micro},
};
use vorg_org::{Org, Persona};
use vorg_store::{NewApproval, PersonaWrite, Store, StoreError};

/// What `POST /hiring/plans/{id}/apply` asks.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyPlan {
    /// The persona the new hires report to.
    pub reports_to: Option<String>,
    /// An approved approval for this plan (when its cost needed one).
    pub approval_id: Option<i64>,
}

/// Who applies the plan.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub user_id: i64,
    /// How approvals and persona versions name them (their e-mail).
    pub label: &'a str,
}

/// The plan's cost needs an approval first: this one was filed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApprovalNeeded {
    pub approval_id: i64,
    pub status: ApprovalStatus,
    pub tier: String,
    /// The policy rule that routed it.
    pub rule: String,
    pub estimated_monthly_cost_usd: f64,
}

/// The personas the plan hired.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Hired {
    /// Persona ids created.
    pub created: Vec<String>,
    /// Persona ids that already existed (the plan was applied before).
    pub skipped: Vec<String>,
}

/// How applying a plan ended.
#[derive(Debug)]
pub enum Applied {
    NeedsApproval(ApprovalNeeded),
    Hired(Hired),
}

/// Why a plan was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("no such hiring plan")]
    NotFound,
    /// A field of the request is wrong.
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// The plan or its approval is not in a state that allows it.
    #[error("{0}")]
    Conflict(String),
    /// Artifact storage could not be read.
    #[error("{0}")]
    Unavailable(String),
    /// The stored plan does not parse.
    #[error("stored plan {0}: {1}")]
    Corrupt(i64, String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ApplyError {
    ApplyError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// Hires the team of plan `plan_id` for `actor`: files an approval first when the plan's
/// cost needs one (and hires once `approval_id` names it, approved).
pub async fn apply_plan(
    store: &Store,
    org: &Org,
    blobs: &Blobs,
    plan_id: i64,
    req: &ApplyPlan,
    actor: Actor<'_>,
) -> Result<Applied, ApplyError> {
    let artifact = match store.get_artifact(plan_id).await {
        Ok(a) if a.kind == "hiring_plan" => a,
        Ok(_) | Err(StoreError::NotFound) => return Err(ApplyError::NotFound),
        Err(e) => return Err(e.into()),
    };
    if let Some(m) = &req.reports_to
        && let Err(StoreError::NotFound) = store.get_persona(m).await
    {
        return Err(invalid("reports_to", format!("no persona {m:?}")));
    }
    let key = artifact.path.clone().unwrap_or_default();
    let bytes = blobs
        .get(&key)
        .await
        .map_err(|e| ApplyError::Unavailable(format!("reading the plan: {e}")))?;
    let plan: Value =
        serde_json::from_slice(&bytes).map_err(|e| ApplyError::Corrupt(plan_id, e.to_string()))?;
    let cost = plan
        .get("estimated_monthly_cost_usd")
        .and_then(Value::as_f64)
        .and_then(usd_to_micro)
        .unwrap_or(0);
    let policies = org.policies().await?;
    let routing = policies.route(cost);
    if let Some(tier) = routing.tier {
        let approved = match req.approval_id {
            None => false,
            Some(aid) => {
                let a = store.get_approval(aid).await.map_err(|e| match e {
                    StoreError::NotFound => invalid("approval_id", "no such approval"),
                    other => other.into(),
                })?;
                if a.kind.as_deref() != Some("hiring") || a.run_id != artifact.run_id {
                    return Err(invalid("approval_id", "is not the approval of this plan"));
                }
                if a.status != ApprovalStatus::Approved {
                    return Err(ApplyError::Conflict(format!(
                        "approval {aid} is {}; the plan can be applied once it is approved",
                        a.status
                    )));
                }
                true
            }
        };
        if !approved {
            let row = store
                .create_approval(NewApproval {
                    description: &format!("Apply hiring plan {plan_id} ({})", artifact.name),
                    amount_micro_usd: cost,
                    justification: plan["inputs"]["goal"].as_str().unwrap_or(""),
                    status: ApprovalStatus::Pending,
                    threshold_micro_usd: policies.auto_approve,
                    kind: Some("hiring"),
                    tier: Some(tier.as_str()),
                    rule: &routing.rule,
                    tags: vec![],
                    checks: vec![],
                    escalated_to: vec![],
                    run_id: artifact.run_id,
                    requested_by: Some(actor.user_id),
                    requested_by_label: actor.label,
                    expires_at: None,
                })
                .await?;
            return Ok(Applied::NeedsApproval(ApprovalNeeded {
                approval_id: row.id,
                status: ApprovalStatus::Pending,
                tier: tier.as_str().to_owned(),
                rule: routing.rule.clone(),
                estimated_monthly_cost_usd: micro_to_usd(cost),
            }));
        }
    }
    hire(store, org, plan_id, &plan, req, actor).await
}

/// One persona per role of the plan; an existing one is skipped.
async fn hire(
    store: &Store,
    org: &Org,
    plan_id: i64,
    plan: &Value,
    req: &ApplyPlan,
    actor: Actor<'_>,
) -> Result<Applied, ApplyError> {
    let mut created = Vec::new();
    let mut skipped = Vec::new();
    for role in plan["roles"].as_array().into_iter().flatten() {
        let role_id = role["role_id"].as_str().unwrap_or("role");
        let slug: String = role_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        let persona_id = format!("{slug}.hired.v1");
        let monthly = role["monthly_cost_usd"].as_f64().unwrap_or(0.0);
        let doc = json!({
            "id": persona_id,
            "name": role_id.replace(['_', '-'], " "),
            "title": role_id,
            "reports_to": req.reports_to,
            "goals": [role["mission"]],
            "skills": role["tools"].as_array().cloned().unwrap_or_default(),
            "tools": role["tools"].as_array().cloned().unwrap_or_default(),
            "risk_limits": { "max_spend": ((monthly / 30.0) * 100.0).round() / 100.0 },
            "context_pack": [],
            "hired_from_plan": plan_id,
        });
        let persona = Persona::validate(doc, &org.schemas().persona, None).map_err(|p| {
            ApplyError::Conflict(format!(
                "role {role_id} does not make a valid persona: {}",
                p.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ))
        })?;
        match store
            .save_persona(
                persona.id(),
                persona.doc(),
                persona.reports_to(),
                actor.label,
                PersonaWrite::Create,
            )
            .await
        {
            Ok(_) => created.push(persona.id().to_owned()),
            Err(StoreError::Refused(_)) => skipped.push(persona.id().to_owned()),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Applied::Hired(Hired { created, skipped }))
}
