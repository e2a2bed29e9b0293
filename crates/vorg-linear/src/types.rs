//! What the client returns and accepts. Returned types read Linear's camelCase JSON and
//! write snake_case JSON (the shape vorg's HTTP API answers with); inputs are snake_case
//! both ways and are turned into Linear's input objects by the client.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize};

/// A Linear user (the viewer, or an assignee).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all(deserialize = "camelCase"))]
pub struct User {
    pub id: String,
    pub name: String,
    pub display_name: String,
    pub email: String,
    pub active: bool,
    pub admin: bool,
}

/// A team.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all(deserialize = "camelCase"))]
pub struct Team {
    pub id: String,
    pub key: String,
    pub name: String,
    pub description: Option<String>,
    pub color: Option<String>,
}

/// A reference to another entity by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Ref {
    pub id: String,
}

/// A workflow state of a team (`type` is one of `triage`, `backlog`, `unstarted`,
/// `started`, `completed`, `canceled`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all(deserialize = "camelCase"))]
pub struct WorkflowState {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub color: String,
    pub position: f64,
    pub team: Ref,
}

/// A cycle of a team.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all(deserialize = "camelCase"))]
pub struct Cycle {
    pub id: String,
    #[serde(deserialize_with = "whole_number")]
    pub number: u32,
    pub name: Option<String>,
    pub description: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub is_active: bool,
    pub is_future: bool,
    pub is_next: bool,
    pub is_past: bool,
    pub progress: f64,
    pub team: Ref,
}

/// An issue label; `team` is `None` for a workspace label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all(deserialize = "camelCase"))]
pub struct Label {
    pub id: String,
    pub name: String,
    pub color: String,
    pub description: Option<String>,
    pub is_group: bool,
    pub team: Option<Ref>,
    pub parent: Option<Ref>,
}

/// A project's status (`type`: `backlog`, `planned`, `started`, `paused`, `completed`,
/// `canceled`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProjectStatus {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// A project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all(deserialize = "camelCase"))]
pub struct Project {
    pub id: String,
    pub name: String,
    pub description: String,
    pub progress: f64,
    pub start_date: Option<NaiveDate>,
    pub target_date: Option<NaiveDate>,
    pub url: String,
    pub status: ProjectStatus,
}

/// An issue with the state, team, people, cycle, project and labels it refers to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all(deserialize = "camelCase"))]
pub struct Issue {
    pub id: String,
    /// `ENG-123`.
    pub identifier: String,
    #[serde(deserialize_with = "whole_number")]
    pub number: u32,
    pub title: String,
    pub description: Option<String>,
    /// 0 none, 1 urgent, 2 high, 3 medium, 4 low.
    #[serde(deserialize_with = "whole_number")]
    pub priority: u32,
    pub priority_label: String,
    pub estimate: Option<f64>,
    pub url: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub due_date: Option<NaiveDate>,
    pub state: IssueState,
    pub team: IssueTeam,
    pub assignee: Option<Person>,
    pub cycle: Option<IssueCycle>,
    pub project: Option<Named>,
    #[serde(deserialize_with = "connection_nodes")]
    pub labels: Vec<IssueLabel>,
}

/// The state an issue is in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IssueState {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub color: String,
}

/// The team an issue belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IssueTeam {
    pub id: String,
    pub key: String,
    pub name: String,
}

/// A user as an issue or comment shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all(deserialize = "camelCase"))]
pub struct Person {
    pub id: String,
    pub name: String,
    pub display_name: String,
}

/// The cycle an issue is in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IssueCycle {
    pub id: String,
    #[serde(deserialize_with = "whole_number")]
    pub number: u32,
    pub name: Option<String>,
}

/// An entity shown by id and name (an issue's project).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Named {
    pub id: String,
    pub name: String,
}

/// A label as an issue shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IssueLabel {
    pub id: String,
    pub name: String,
    pub color: String,
}

/// A comment on an issue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all(deserialize = "camelCase"))]
pub struct Comment {
    pub id: String,
    pub body: String,
    pub url: String,
    pub created_at: DateTime<Utc>,
    pub user: Option<Person>,
    pub issue: Option<CommentIssue>,
}

/// The issue a comment is on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CommentIssue {
    pub id: String,
    pub identifier: String,
}

/// Where a page ends and whether another follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all(deserialize = "camelCase"))]
pub struct PageInfo {
    pub has_next_page: bool,
    /// Pass as `after` to get the next page.
    pub end_cursor: Option<String>,
}

/// One page of a connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all(deserialize = "camelCase"))]
pub struct Page<T> {
    pub nodes: Vec<T>,
    pub page_info: PageInfo,
}

/// Which issues to list; every field set narrows the list (all must match).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct IssueFilter {
    pub team_id: Option<String>,
    pub cycle_id: Option<String>,
    /// The state's name, e.g. `In Progress` (case-insensitive).
    pub state_name: Option<String>,
    pub state_id: Option<String>,
    pub assignee_id: Option<String>,
    /// Issues carrying a label with this name (case-insensitive).
    pub label_name: Option<String>,
}

/// A new issue. Only `team_id` and `title` are required.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct NewIssue {
    pub team_id: String,
    pub title: String,
    pub description: Option<String>,
    /// 0 none, 1 urgent, 2 high, 3 medium, 4 low.
    pub priority: Option<u8>,
    pub label_ids: Vec<String>,
    pub assignee_id: Option<String>,
    pub state_id: Option<String>,
    pub cycle_id: Option<String>,
    pub project_id: Option<String>,
}

/// Changes to an issue; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IssueUpdate {
    pub state_id: Option<String>,
    /// `Some(None)` unassigns.
    pub assignee_id: Option<Option<String>>,
}

/// The outcome of an idempotent create.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedIssue {
    pub issue: Issue,
    /// `true` when the issue already existed from an earlier call with the same key.
    pub replayed: bool,
}

/// Linear sends counts and numbers as GraphQL `Float`s (`12` or `12.0`).
fn whole_number<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = f64::deserialize(d)?;
    if n.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&n) {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // checked above
        Ok(n as u32)
    } else {
        Err(serde::de::Error::custom(format!(
            "{n} is not a whole number"
        )))
    }
}

/// Accepts Linear's `{ "nodes": [...] }` as well as a plain list (our own JSON).
fn connection_nodes<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Nodes<T> {
        Connection { nodes: Vec<T> },
        List(Vec<T>),
    }
    Ok(match Nodes::deserialize(d)? {
        Nodes::Connection { nodes } => nodes,
        Nodes::List(list) => list,
    })
}
