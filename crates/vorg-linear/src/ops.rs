//! The operations vorg needs from Linear, each a document in `src/documents/` with its
//! variables built here.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::{
    LinearClient, LinearError,
    documents::{self as docs},
    types::{
        Comment, CreatedIssue, Cycle, Issue, IssueFilter, IssueUpdate, Label, NewIssue, Page,
        Project, Team, User, WorkflowState,
    },
};

/// The most items a list helper (teams, states, cycles, labels, projects) collects.
const LIST_LIMIT: usize = 1000;

/// `{ success, issue }` of `issueCreate` and `issueUpdate`.
#[derive(Deserialize)]
struct IssuePayload {
    success: bool,
    issue: Option<Issue>,
}

#[derive(Deserialize)]
struct CommentPayload {
    success: bool,
    comment: Option<Comment>,
}

fn eq(id: &str) -> Value {
    json!({ "id": { "eq": id } })
}

impl LinearClient {
    /// The user the key belongs to; a cheap way to check the key.
    pub async fn viewer(&self) -> Result<User, LinearError> {
        self.call(&docs::VIEWER, json!({})).await
    }

    /// Every team the key can see.
    pub async fn teams(&self) -> Result<Vec<Team>, LinearError> {
        self.collect(&docs::TEAMS, None, LIST_LIMIT).await
    }

    /// The workflow states of a team, in Linear's order.
    pub async fn workflow_states(&self, team_id: &str) -> Result<Vec<WorkflowState>, LinearError> {
        let filter = json!({ "team": eq(team_id) });
        let mut states: Vec<WorkflowState> = self
            .collect(&docs::WORKFLOW_STATES, Some(filter), LIST_LIMIT)
            .await?;
        states.sort_by(|a, b| a.position.total_cmp(&b.position));
        Ok(states)
    }

    /// All cycles of a team, by number.
    pub async fn cycles(&self, team_id: &str) -> Result<Vec<Cycle>, LinearError> {
        self.cycles_where(json!({ "team": eq(team_id) })).await
    }

    /// The team's active cycle, if one is running.
    pub async fn current_cycle(&self, team_id: &str) -> Result<Option<Cycle>, LinearError> {
        let filter = json!({ "team": eq(team_id), "isActive": { "eq": true } });
        Ok(self.cycles_where(filter).await?.into_iter().next())
    }

    /// The team's cycles that have not started yet, soonest first.
    pub async fn upcoming_cycles(&self, team_id: &str) -> Result<Vec<Cycle>, LinearError> {
        self.cycles_where(json!({ "team": eq(team_id), "isFuture": { "eq": true } }))
            .await
    }

    async fn cycles_where(&self, filter: Value) -> Result<Vec<Cycle>, LinearError> {
        let mut cycles: Vec<Cycle> = self
            .collect(&docs::CYCLES, Some(filter), LIST_LIMIT)
            .await?;
        cycles.sort_by_key(|c| c.number);
        Ok(cycles)
    }

    /// Labels usable in a team (its own plus workspace labels), or every label.
    pub async fn labels(&self, team_id: Option<&str>) -> Result<Vec<Label>, LinearError> {
        let filter =
            team_id.map(|id| json!({ "or": [ { "team": eq(id) }, { "team": { "null": true } } ] }));
        self.collect(&docs::LABELS, filter, LIST_LIMIT).await
    }

    /// Projects a team takes part in, or every project.
    pub async fn projects(&self, team_id: Option<&str>) -> Result<Vec<Project>, LinearError> {
        let filter = team_id.map(|id| json!({ "accessibleTeams": { "some": eq(id) } }));
        self.collect(&docs::PROJECTS, filter, LIST_LIMIT).await
    }

    /// One page of issues (`first` is capped at 250); pass the previous page's
    /// `page_info.end_cursor` as `after` for the next.
    pub async fn issues(
        &self,
        filter: &IssueFilter,
        first: usize,
        after: Option<&str>,
    ) -> Result<Page<Issue>, LinearError> {
        self.page(&docs::ISSUES, issue_filter(filter), first, after)
            .await
    }

    /// Issues across pages, up to `limit`.
    pub async fn issues_up_to(
        &self,
        filter: &IssueFilter,
        limit: usize,
    ) -> Result<Vec<Issue>, LinearError> {
        self.collect(&docs::ISSUES, issue_filter(filter), limit)
            .await
    }

    /// An issue by id or identifier (`ENG-12`); [`LinearError::NotFound`] if there is none.
    pub async fn issue(&self, id: &str) -> Result<Issue, LinearError> {
        self.call(&docs::ISSUE, json!({ "id": id })).await
    }

    /// Creates an issue.
    pub async fn create_issue(&self, input: &NewIssue) -> Result<Issue, LinearError> {
        self.create_issue_with_id(input, None).await
    }

    /// Creates the issue once per `key`: the issue's id is derived from the key
    /// ([`issue_id_for_key`]), so a repeat (after a timeout, or a retried HTTP request)
    /// finds the issue the first call made instead of creating another. The caller keeps
    /// the keys; nothing is stored here.
    pub async fn create_issue_idempotent(
        &self,
        key: &str,
        input: &NewIssue,
    ) -> Result<CreatedIssue, LinearError> {
        let id = issue_id_for_key(key);
        match self.create_issue_with_id(input, Some(&id)).await {
            Ok(issue) => Ok(CreatedIssue {
                issue,
                replayed: false,
            }),
            // The id is taken (an earlier call succeeded) or the outcome is unknown.
            Err(
                e @ (LinearError::GraphQl { .. }
                | LinearError::Timeout
                | LinearError::Transport { .. }
                | LinearError::Http { .. }),
            ) => match self.issue(&id).await {
                Ok(issue) => Ok(CreatedIssue {
                    issue,
                    replayed: true,
                }),
                Err(_) => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    async fn create_issue_with_id(
        &self,
        input: &NewIssue,
        id: Option<&str>,
    ) -> Result<Issue, LinearError> {
        let mut wire = Map::new();
        let mut put = |k: &str, v: Value| {
            if !v.is_null() {
                wire.insert(k.to_owned(), v);
            }
        };
        put("id", json!(id));
        put("teamId", json!(input.team_id));
        put("title", json!(input.title));
        put("description", json!(input.description));
        put("priority", json!(input.priority));
        put("assigneeId", json!(input.assignee_id));
        put("stateId", json!(input.state_id));
        put("cycleId", json!(input.cycle_id));
        put("projectId", json!(input.project_id));
        if !input.label_ids.is_empty() {
            put("labelIds", json!(input.label_ids));
        }
        let payload: IssuePayload = self
            .call(&docs::ISSUE_CREATE, json!({ "input": wire }))
            .await?;
        issue_of(payload, "issueCreate")
    }

    /// Changes an issue's state and/or assignee.
    pub async fn update_issue(&self, id: &str, update: &IssueUpdate) -> Result<Issue, LinearError> {
        let mut input = Map::new();
        if let Some(state) = &update.state_id {
            input.insert("stateId".into(), json!(state));
        }
        if let Some(assignee) = &update.assignee_id {
            input.insert("assigneeId".into(), json!(assignee));
        }
        let payload: IssuePayload = self
            .call(&docs::ISSUE_UPDATE, json!({ "id": id, "input": input }))
            .await?;
        issue_of(payload, "issueUpdate")
    }

    /// Moves an issue to another workflow state.
    pub async fn set_issue_state(&self, id: &str, state_id: &str) -> Result<Issue, LinearError> {
        let update = IssueUpdate {
            state_id: Some(state_id.to_owned()),
            ..IssueUpdate::default()
        };
        self.update_issue(id, &update).await
    }

    /// Assigns an issue, or unassigns it with `None`.
    pub async fn set_issue_assignee(
        &self,
        id: &str,
        assignee_id: Option<&str>,
    ) -> Result<Issue, LinearError> {
        let update = IssueUpdate {
            assignee_id: Some(assignee_id.map(str::to_owned)),
            ..IssueUpdate::default()
        };
        self.update_issue(id, &update).await
    }

    /// Adds a markdown comment to an issue.
    pub async fn create_comment(&self, issue_id: &str, body: &str) -> Result<Comment, LinearError> {
        let input = json!({ "issueId": issue_id, "body": body });
        let payload: CommentPayload = self
            .call(&docs::COMMENT_CREATE, json!({ "input": input }))
            .await?;
        match payload {
            CommentPayload {
                success: true,
                comment: Some(comment),
            } => Ok(comment),
            _ => Err(LinearError::InvalidResponse(
                "commentCreate did not succeed".into(),
            )),
        }
    }
}

fn issue_of(payload: IssuePayload, operation: &str) -> Result<Issue, LinearError> {
    match payload {
        IssuePayload {
            success: true,
            issue: Some(issue),
        } => Ok(issue),
        _ => Err(LinearError::InvalidResponse(format!(
            "{operation} did not succeed"
        ))),
    }
}

/// The `IssueFilter` input for Linear, or `None` when nothing narrows the list.
fn issue_filter(f: &IssueFilter) -> Option<Value> {
    let mut filter = Map::new();
    if let Some(id) = &f.team_id {
        filter.insert("team".into(), eq(id));
    }
    if let Some(id) = &f.cycle_id {
        filter.insert("cycle".into(), eq(id));
    }
    let mut state = Map::new();
    if let Some(id) = &f.state_id {
        state.insert("id".into(), json!({ "eq": id }));
    }
    if let Some(name) = &f.state_name {
        state.insert("name".into(), json!({ "eqIgnoreCase": name }));
    }
    if !state.is_empty() {
        filter.insert("state".into(), Value::Object(state));
    }
    if let Some(id) = &f.assignee_id {
        filter.insert("assignee".into(), eq(id));
    }
    if let Some(name) = &f.label_name {
        filter.insert(
            "labels".into(),
            json!({ "some": { "name": { "eqIgnoreCase": name } } }),
        );
    }
    (!filter.is_empty()).then_some(Value::Object(filter))
}

/// The issue id (UUID v4 format, as Linear requires for a client-chosen id) that
/// [`LinearClient::create_issue_idempotent`] uses for `key`: the same key gives the same id.
pub fn issue_id_for_key(key: &str) -> String {
    let digest = Sha256::digest(format!("vorg-linear/issue/{key}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_key_gives_the_same_v4_shaped_id() {
        let a = issue_id_for_key("req-1");
        assert_eq!(a, issue_id_for_key("req-1"));
        assert_ne!(a, issue_id_for_key("req-2"));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4", "{a}");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
    }

    #[test]
    fn an_empty_filter_sends_no_filter() {
        assert_eq!(issue_filter(&IssueFilter::default()), None);
        let f = IssueFilter {
            state_name: Some("Todo".into()),
            label_name: Some("bug".into()),
            ..IssueFilter::default()
        };
        assert_eq!(
            issue_filter(&f),
            Some(json!({
                "state": { "name": { "eqIgnoreCase": "Todo" } },
                "labels": { "some": { "name": { "eqIgnoreCase": "bug" } } }
            }))
        );
    }
}
