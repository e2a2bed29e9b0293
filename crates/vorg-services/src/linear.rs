//! Filing Linear issues for the organization's work: one path for the API's `POST
//! /linear/issues`, meeting action items and the workflows' `create_linear_issue` tool.
//! Each issue is created idempotently when it has a key and linked to the run (and artifact)
//! that produced it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vorg_domain::LogLevel;
use vorg_linear::{Issue, LinearClient, LinearError, NewIssue};
use vorg_org::Problem;
use vorg_store::{LinearLink, NewLinearLink, Store, StoreError};

/// What `POST /linear/issues` asks.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    pub team_id: String,
    pub title: String,
    pub description: Option<String>,
    /// 0 none, 1 urgent, 2 high, 3 medium, 4 low.
    pub priority: Option<u8>,
    /// Label names or ids.
    #[serde(default)]
    pub labels: Vec<String>,
    /// The run that produced this issue (linked both ways).
    pub run_id: Option<i64>,
    /// The artifact that produced it (e.g. meeting minutes).
    pub artifact_id: Option<i64>,
    /// Retrying with the same key returns the first issue instead of making another (the
    /// `Idempotency-Key` header works too).
    pub idempotency_key: Option<String>,
}

/// An issue filed (or found again by its key) and its link.
#[derive(Debug, Clone)]
pub struct Filed {
    pub issue: Issue,
    /// The key was used before: this is the first issue.
    pub replayed: bool,
    pub link: LinearLink,
}

/// Why an issue was not filed.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The request is wrong; each problem names its field.
    #[error("invalid issue")]
    Invalid(Vec<Problem>),
    #[error("{0}")]
    Linear(#[from] LinearError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn problem(path: impl Into<String>, reason: impl Into<String>) -> Problem {
    Problem {
        path: path.into(),
        reason: reason.into(),
    }
}

impl IssueRequest {
    /// What is wrong with the request on its own (`key` is the effective idempotency key).
    pub fn problems(&self, key: Option<&str>) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.title.trim().is_empty() || self.title.len() > 500 {
            problems.push(problem("title", "must be 1 to 500 characters"));
        }
        if self.team_id.trim().is_empty() {
            problems.push(problem("team_id", "must not be empty"));
        }
        if self.priority.is_some_and(|p| p > 4) {
            problems.push(problem("priority", "must be 0 (none) to 4 (low)"));
        }
        if key.is_some_and(|k| k.is_empty() || k.len() > 200) {
            problems.push(problem("idempotency_key", "must be 1 to 200 characters"));
        }
        problems
    }
}

/// Every problem of `req` (`key`: the effective idempotency key), including a run that
/// does not exist.
pub async fn check_issue(
    store: &Store,
    req: &IssueRequest,
    key: Option<&str>,
) -> Result<Vec<Problem>, StoreError> {
    let mut problems = req.problems(key);
    if let Some(run_id) = req.run_id
        && let Err(StoreError::NotFound) = store.get_run(run_id).await
    {
        problems.push(problem("run_id", format!("no run with id {run_id}")));
    }
    Ok(problems)
}

/// Files `req` for `created_by` (the request's own key, else `key`): checks it, answers the
/// first issue again for a key used before, resolves label names, creates and links the
/// issue, and notes it in the run's log.
pub async fn file_issue(
    store: &Store,
    linear: &LinearClient,
    req: &IssueRequest,
    key: Option<&str>,
    created_by: Option<i64>,
) -> Result<Filed, FileError> {
    let key = req.idempotency_key.as_deref().or(key);
    let problems = check_issue(store, req, key).await?;
    if !problems.is_empty() {
        return Err(FileError::Invalid(problems));
    }
    if let Some(k) = key
        && let Some(link) = store.linear_link_by_key(k).await?
    {
        let issue = linear.issue(&link.linear_issue_id).await?;
        return Ok(Filed {
            issue,
            replayed: true,
            link,
        });
    }
    let label_ids = resolve_labels(linear, &req.team_id, &req.labels).await?;
    let new = NewIssue {
        team_id: req.team_id.clone(),
        title: req.title.trim().to_owned(),
        description: req.description.clone(),
        priority: req.priority,
        label_ids,
        ..NewIssue::default()
    };
    let filing = Filing {
        key,
        team_id: &req.team_id,
        run_id: req.run_id,
        artifact_id: req.artifact_id,
        created_by,
    };
    let filed = create_and_link(store, linear, &new, filing).await?;
    if let Some(run_id) = filed.link.run_id {
        let (identifier, url) = (&filed.issue.identifier, &filed.issue.url);
        let noted = store
            .append_run_log(
                run_id,
                LogLevel::Info,
                &format!("Linear issue {identifier} created: {url}"),
                serde_json::json!({ "linear_issue": identifier, "url": url }),
            )
            .await;
        if let Err(e) = noted {
            tracing::warn!(error = %e, run_id, "noting a Linear issue in the run's log");
        }
    }
    Ok(filed)
}

/// Where an issue comes from.
#[derive(Debug, Clone, Copy)]
pub struct Filing<'a> {
    /// Creates idempotently by this key when given.
    pub key: Option<&'a str>,
    pub team_id: &'a str,
    pub run_id: Option<i64>,
    pub artifact_id: Option<i64>,
    pub created_by: Option<i64>,
}

/// Creates `new` in Linear (idempotently when the filing has a key) and records the link.
pub async fn create_and_link(
    store: &Store,
    linear: &LinearClient,
    new: &NewIssue,
    filing: Filing<'_>,
) -> Result<Filed, FileError> {
    let (issue, replayed) = match filing.key {
        Some(k) => {
            let created = linear.create_issue_idempotent(k, new).await?;
            (created.issue, created.replayed)
        }
        None => (linear.create_issue(new).await?, false),
    };
    let link = store
        .link_linear_issue(NewLinearLink {
            idempotency_key: filing.key,
            linear_issue_id: &issue.id,
            identifier: &issue.identifier,
            title: &issue.title,
            url: &issue.url,
            team_id: filing.team_id,
            run_id: filing.run_id,
            artifact_id: filing.artifact_id,
            created_by: filing.created_by,
        })
        .await?;
    Ok(Filed {
        issue,
        replayed,
        link,
    })
}

/// Label names (case-insensitive) or ids of `team_id` (or the workspace) → ids.
async fn resolve_labels(
    linear: &LinearClient,
    team_id: &str,
    wanted: &[String],
) -> Result<Vec<String>, FileError> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let labels = linear.labels(Some(team_id)).await?;
    let mut ids = Vec::new();
    let mut problems = Vec::new();
    for (i, w) in wanted.iter().enumerate() {
        match labels
            .iter()
            .find(|l| l.id == *w || l.name.eq_ignore_ascii_case(w))
        {
            Some(l) => ids.push(l.id.clone()),
            None => problems.push(problem(
                format!("labels[{i}]"),
                format!("no label {w:?} in this team or workspace"),
            )),
        }
    }
    if problems.is_empty() {
        Ok(ids)
    } else {
        Err(FileError::Invalid(problems))
    }
}
