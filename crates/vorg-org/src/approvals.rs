//! Submitting an approval under the governance policies, shared by the HTTP route and the
//! agents' `submit_approval` tool: forbidden actions are refused, the amount picks the tier,
//! `required_checks` not attested send even small requests to an approver, and
//! `escalation_matrix` tags route to the named personas' human owners.

use std::collections::HashMap;
use vorg_domain::ApprovalStatus;

use chrono::{Duration, Utc};
use serde_json::Value;
use vorg_store::{Approval, NewApproval, PersonaRow, Store, StoreError};

use crate::{Org, Routing, Tier};

/// What is asked for; the amount is in micro-dollars.
#[derive(Debug, Clone, Default)]
pub struct ApprovalRequest<'a> {
    pub description: &'a str,
    pub amount_micro_usd: i64,
    pub justification: &'a str,
    pub kind: Option<&'a str>,
    pub action: Option<&'a str>,
    pub tags: Vec<String>,
    pub checks: Vec<String>,
    pub run_id: Option<i64>,
    pub requested_by: Option<i64>,
    pub requested_by_label: &'a str,
}

/// The stored request and how it was routed.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub approval: Approval,
    pub escalated_to: Vec<String>,
    pub missing_checks: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The kind or action is in `forbidden_actions`.
    #[error("{0:?} is a forbidden action under the governance policies (forbidden_actions)")]
    Forbidden(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Routes and stores `req` (see the module documentation).
pub async fn submit_approval(
    store: &Store,
    org: &Org,
    req: ApprovalRequest<'_>,
) -> Result<Submitted, SubmitError> {
    let policies = org.policies().await?;
    if let Some(named) = [req.action, req.kind]
        .into_iter()
        .flatten()
        .find(|n| policies.forbids(n))
    {
        return Err(SubmitError::Forbidden(named.to_owned()));
    }
    let mut routing = policies.route(req.amount_micro_usd);
    let missing: Vec<String> = req
        .kind
        .map(|k| policies.checks_for(k))
        .unwrap_or(&[])
        .iter()
        .filter(|c| !req.checks.contains(c))
        .cloned()
        .collect();
    if routing.tier.is_none() && !missing.is_empty() {
        routing = Routing {
            tier: Some(Tier::Approver),
            rule: format!(
                "required_checks: {} needs {} attested",
                req.kind.unwrap_or(""),
                missing.join(", ")
            ),
        };
    }
    let names: Vec<String> = req
        .tags
        .iter()
        .filter_map(|t| policies.escalation_matrix.get(t))
        .flatten()
        .cloned()
        .collect();
    let escalated_to = escalation_owners(store, &names).await?;
    let status = if routing.tier.is_none() {
        ApprovalStatus::AutoApproved
    } else {
        ApprovalStatus::Pending
    };
    let expires_at = match (routing.tier, policies.approval_expiry_hours) {
        (Some(_), Some(h)) => Some(Utc::now() + Duration::seconds((h * 3600.0) as i64)),
        _ => None,
    };
    let approval = store
        .create_approval(NewApproval {
            description: req.description.trim(),
            amount_micro_usd: req.amount_micro_usd,
            justification: req.justification,
            status,
            threshold_micro_usd: policies.auto_approve,
            kind: req.kind,
            tier: routing.tier.map(Tier::as_str),
            rule: &routing.rule,
            tags: req.tags.clone(),
            checks: req.checks.clone(),
            escalated_to: escalated_to.clone(),
            run_id: req.run_id,
            requested_by: req.requested_by,
            requested_by_label: req.requested_by_label,
            expires_at,
        })
        .await?;
    Ok(Submitted {
        approval,
        escalated_to,
        missing_checks: missing,
    })
}

/// The human owners of the personas named by `names` (by id or display name): each
/// persona's `owner`, else its id; unknown names stay as given.
pub async fn escalation_owners(store: &Store, names: &[String]) -> Result<Vec<String>, StoreError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let rows = store.list_personas().await?;
    let by_key: HashMap<String, &PersonaRow> = rows
        .iter()
        .flat_map(|r| {
            let name = r.doc.0.get("name").and_then(Value::as_str).unwrap_or("");
            [(r.id.clone(), r), (name.to_owned(), r)]
        })
        .collect();
    let mut owners = Vec::new();
    for n in names {
        let owner = match by_key.get(n) {
            Some(r) => r
                .doc
                .0
                .get("owner")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| r.id.clone()),
            None => n.clone(),
        };
        if !owners.contains(&owner) {
            owners.push(owner);
        }
    }
    Ok(owners)
}

/// Who decides an approval.
#[derive(Debug, Clone, Copy)]
pub struct Decider<'a> {
    pub user_id: i64,
    pub email: &'a str,
    /// The roles in force for the request that decides.
    pub roles: &'a [vorg_domain::Role],
}

/// A decision and what the decider attests.
#[derive(Debug, Clone, Copy)]
pub struct Decision<'a> {
    pub approved: bool,
    pub comment: Option<&'a str>,
    /// Required checks the decider attests were done.
    pub attested: &'a [String],
}

/// Why a decision was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("no such approval")]
    NotFound,
    /// The approval is not in a state that allows it (already decided, checks missing).
    #[error("{0}")]
    Conflict(String),
    /// The decider may not decide it.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Decides approval `id`: only a pending one, never one's own request, only by the tier's
/// roles, an escalated one only by its owners (or an admin), and an approval only once every
/// required check is attested.
pub async fn decide(
    store: &Store,
    org: &Org,
    by: Decider<'_>,
    id: i64,
    decision: Decision<'_>,
) -> Result<Approval, DecideError> {
    let current = match store.get_approval(id).await {
        Ok(a) => a,
        Err(StoreError::NotFound) => return Err(DecideError::NotFound),
        Err(e) => return Err(e.into()),
    };
    if current.status != ApprovalStatus::Pending {
        return Err(DecideError::Conflict(format!(
            "approval {id} is already {}; a decision cannot be changed",
            current.status
        )));
    }
    if current.requested_by == Some(by.user_id) {
        return Err(DecideError::Refused(
            "separation of duties: you cannot decide your own request".into(),
        ));
    }
    let tier = current
        .tier
        .as_deref()
        .and_then(Tier::parse)
        .unwrap_or(Tier::Admin);
    if !tier.decidable_by(by.roles) {
        return Err(DecideError::Refused(format!(
            "this request is for the {} tier ({}); your roles cannot decide it",
            tier.as_str(),
            current.rule
        )));
    }
    let escalated = &current.escalated_to.0;
    let is_admin = by.roles.contains(&vorg_domain::Role::Admin);
    if !escalated.is_empty() && !is_admin && !escalated.iter().any(|e| e == by.email) {
        return Err(DecideError::Refused(format!(
            "this request was escalated to {}; only they or an admin can decide it",
            escalated.join(", ")
        )));
    }
    if decision.approved
        && let Some(kind) = current.kind.as_deref()
    {
        let policies = org.policies().await?;
        let missing: Vec<&str> = policies
            .checks_for(kind)
            .iter()
            .filter(|c| !current.checks.0.contains(c) && !decision.attested.contains(c))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(DecideError::Conflict(format!(
                "required checks for {kind} are not attested: {}",
                missing.join(", ")
            )));
        }
    }
    Ok(store
        .decide_approval(id, decision.approved, by.user_id, decision.comment)
        .await?)
}
