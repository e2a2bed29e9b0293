//! What a schedule or a trigger starts, checked as the route that starts it by hand would
//! check it, and started on its owner's behalf under a unique origin key.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use vorg_domain::Permission;
use vorg_jobs::{BackgroundJob, RunMeta};
use vorg_services::{
    Requester,
    hiring::{HiringPlanJob, HiringRequest},
    meetings::{MeetingBody, MeetingType, unknown_participants},
    workflows::{WorkflowRun, input_problems},
};
use vorg_store::{Run, RunOrigin, Store, StoreError};

/// What to start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Target {
    /// A meeting of `type` (`standup`, `brainstorm`, `allhands`) with the body its
    /// `POST /meetings/{type}` route takes.
    Meeting {
        #[serde(rename = "type")]
        meeting: MeetingType,
        #[serde(default)]
        #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
        body: Map<String, Value>,
    },
    /// A run of the saved workflow `workflow` (its latest version unless `version`) with
    /// `inputs`.
    Workflow {
        workflow: String,
        #[serde(default)]
        #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
        inputs: Map<String, Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<i64>,
    },
    /// A hiring review: a plan drafted from `inputs` (the body of `POST /hiring/plan`).
    HiringReview {
        #[serde(default)]
        #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
        inputs: Map<String, Value>,
    },
}

/// A field of a target (or of what a delivery mapped into it) that is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub reason: String,
}

/// Why a target did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{}", .0.iter().map(|p| format!("{}: {}", p.path, p.reason)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Problem>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn problem(path: impl Into<String>, reason: impl Into<String>) -> StartError {
    StartError::Invalid(vec![Problem {
        path: path.into(),
        reason: reason.into(),
    }])
}

/// Values merged over a target's own (a hook delivery's mapped fields): top-level keys of
/// the meeting body, the workflow inputs or the hiring inputs.
pub type Overlay = Map<String, Value>;

fn merged(base: &Map<String, Value>, overlay: Option<&Overlay>) -> Map<String, Value> {
    let mut out = base.clone();
    if let Some(o) = overlay {
        for (k, v) in o {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

impl Target {
    /// The permission its owner needs (the one its route needs).
    pub fn permission(&self) -> Permission {
        match self {
            Target::Meeting { .. } => Permission::HoldMeetings,
            Target::Workflow { .. } | Target::HiringReview { .. } => Permission::StartRuns,
        }
    }

    /// One line for run lists.
    pub fn describe(&self) -> String {
        match self {
            Target::Meeting { meeting, .. } => format!("{} meeting", meeting.as_str()),
            Target::Workflow { workflow, .. } => format!("workflow {workflow}"),
            Target::HiringReview { .. } => "hiring review".to_owned(),
        }
    }

    /// Reads a stored target; `field` names where it came from in problems.
    pub fn from_value(value: &Value, field: &str) -> Result<Target, StartError> {
        serde_json::from_value(value.clone()).map_err(|e| problem(field, e.to_string()))
    }

    /// Checks the target (with `overlay` merged in) as its route would, without starting
    /// it. Problems are reported under `prefix` (`target`).
    pub async fn check(
        &self,
        store: &Store,
        overlay: Option<&Overlay>,
        prefix: &str,
    ) -> Result<(), StartError> {
        self.job(store, overlay, prefix, Requester::default())
            .await
            .map(|_| ())
    }

    /// Starts the target for `requester` unless `origin` already started a run: the run,
    /// and whether this call created it.
    pub async fn start(
        &self,
        store: &Store,
        overlay: Option<&Overlay>,
        requester: Requester,
        origin: RunOrigin<'_>,
        summary: &str,
    ) -> Result<(Run, bool), StartError> {
        let requested_by = requester.requested_by;
        let job = self.job(store, overlay, "target", requester).await?;
        let meta = RunMeta {
            summary: Some(summary),
            requested_by,
            origin: Some(origin),
            ..RunMeta::default()
        };
        Ok(match job {
            Job::Meeting(j) => j.start_once(store, meta).await?,
            Job::Workflow(j) => j.start_once(store, meta).await?,
            Job::Hiring(j) => j.start_once(store, meta).await?,
        })
    }

    async fn job(
        &self,
        store: &Store,
        overlay: Option<&Overlay>,
        prefix: &str,
        requester: Requester,
    ) -> Result<Job, StartError> {
        match self {
            Target::Meeting { meeting, body } => {
                let body = Value::Object(merged(body, overlay));
                let body = MeetingBody::from_value(*meeting, body)
                    .map_err(|e| problem(format!("{prefix}.body"), e.to_string()))?;
                let problems = body.problems();
                if !problems.is_empty() {
                    return Err(StartError::Invalid(
                        problems
                            .into_iter()
                            .map(|p| Problem {
                                path: format!("{prefix}.body.{}", p.path),
                                reason: p.reason,
                            })
                            .collect(),
                    ));
                }
                let ids = &body.extras().participants;
                if !ids.is_empty() {
                    let known: std::collections::HashSet<String> = store
                        .list_personas()
                        .await?
                        .into_iter()
                        .map(|p| p.id)
                        .collect();
                    let unknown = unknown_participants(ids, |id| known.contains(id));
                    if !unknown.is_empty() {
                        return Err(StartError::Invalid(
                            unknown
                                .into_iter()
                                .map(|p| Problem {
                                    path: format!("{prefix}.body.{}", p.path),
                                    reason: p.reason,
                                })
                                .collect(),
                        ));
                    }
                }
                Ok(Job::Meeting(body.into_job(requester)))
            }
            Target::Workflow {
                workflow,
                inputs,
                version,
            } => {
                let row = match store.get_workflow(workflow, *version).await {
                    Ok(row) => row,
                    Err(StoreError::NotFound) => {
                        return Err(problem(
                            format!("{prefix}.workflow"),
                            format!("no saved workflow {workflow:?} (of that version)"),
                        ));
                    }
                    Err(e) => return Err(e.into()),
                };
                let wf = vorg_workflow::validate(&row.source).map_err(|list| {
                    StartError::Invalid(
                        list.into_iter()
                            .map(|p| Problem {
                                path: format!("{prefix}.workflow"),
                                reason: format!(
                                    "the saved workflow no longer validates: {}: {}",
                                    p.path, p.message
                                ),
                            })
                            .collect(),
                    )
                })?;
                let inputs = Value::Object(merged(inputs, overlay));
                let problems = input_problems(&wf, &inputs);
                if !problems.is_empty() {
                    return Err(StartError::Invalid(
                        problems
                            .into_iter()
                            .map(|p| Problem {
                                path: format!(
                                    "{prefix}.inputs.{}",
                                    p.path.trim_start_matches("inputs.")
                                ),
                                reason: p.message,
                            })
                            .collect(),
                    ));
                }
                Ok(Job::Workflow(WorkflowRun {
                    source: row.source.clone(),
                    name: wf.name().to_owned(),
                    version: Some(row.version),
                    inputs,
                    model: None,
                    linear_team_id: None,
                    requester,
                }))
            }
            Target::HiringReview { inputs } => {
                let inputs = Value::Object(merged(inputs, overlay));
                let req: HiringRequest = serde_json::from_value(inputs)
                    .map_err(|e| problem(format!("{prefix}.inputs"), e.to_string()))?;
                let problems = req.problems(std::iter::empty());
                let problems: Vec<_> = problems
                    .into_iter()
                    // Providers are checked when the plan is drafted (the worker's gateway).
                    .filter(|p| p.path != "provider")
                    .map(|p| Problem {
                        path: format!("{prefix}.inputs.{}", p.path),
                        reason: p.reason,
                    })
                    .collect();
                if !problems.is_empty() {
                    return Err(StartError::Invalid(problems));
                }
                Ok(Job::Hiring(HiringPlanJob {
                    inputs: req,
                    requester,
                }))
            }
        }
    }
}

enum Job {
    Meeting(vorg_services::meetings::Meeting),
    Workflow(WorkflowRun),
    Hiring(HiringPlanJob),
}

/// The requester a schedule's or trigger's owner is: their roles as they hold them when
/// the run starts (the run is narrowed to them by the worker).
pub fn owner_requester(owner_id: i64) -> Requester {
    Requester {
        requested_by: Some(owner_id),
        ..Requester::default()
    }
}

/// Whether `owner_id` may start `target` now (their current roles).
pub async fn owner_may(store: &Store, owner_id: i64, target: &Target) -> Result<bool, StoreError> {
    let roles = match store.current_roles(owner_id).await {
        Ok(r) => r,
        Err(StoreError::NotFound) => return Ok(false),
        Err(e) => return Err(e),
    };
    Ok(vorg_domain::Permissions::of_roles(&roles).contains(target.permission()))
}
