//! The fake's data, kept in memory (seeded in `seeded.rs`), each entity expanded to the JSON
//! Linear would serve (camelCase, nested objects), and the mutations vorg uses.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use super::seed;

/// A GraphQL error the fake answers with, in Linear's shape.
#[derive(Debug, Clone)]
pub(crate) struct FieldError {
    pub message: String,
    pub code: &'static str,
    pub kind: &'static str,
    pub user_message: String,
}

impl FieldError {
    /// Linear's answer for a referenced entity that does not exist.
    pub fn not_found(entity: &str) -> Self {
        FieldError {
            message: format!("Entity not found: {entity}"),
            code: "INPUT_ERROR",
            kind: "invalid input",
            user_message: format!("Could not find referenced {entity}."),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        let message = message.into();
        FieldError {
            user_message: message.clone(),
            message,
            code: "INVALID_INPUT",
            kind: "invalid input",
        }
    }

    pub fn to_json(&self, path: &str) -> Value {
        json!({
            "message": self.message,
            "path": [path],
            "extensions": {
                "type": self.kind,
                "code": self.code,
                "statusCode": 400,
                "userError": true,
                "userPresentableMessage": self.user_message,
            }
        })
    }
}

pub(super) struct Issue {
    pub(super) id: String,
    pub(super) team: String,
    pub(super) number: u32,
    pub(super) title: String,
    pub(super) description: Option<String>,
    pub(super) priority: u8,
    pub(super) state: String,
    pub(super) assignee: Option<String>,
    pub(super) cycle: Option<String>,
    pub(super) project: Option<String>,
    pub(super) labels: Vec<String>,
    pub(super) created_at: DateTime<Utc>,
    pub(super) updated_at: DateTime<Utc>,
}

pub(super) struct Comment {
    id: String,
    issue: String,
    body: String,
    user: String,
    created_at: DateTime<Utc>,
}

/// Everything the fake knows. Plain JSON for the read-only seed, rows for what changes.
pub(crate) struct Store {
    pub(super) users: Vec<Value>,
    pub(super) teams: Vec<Value>,
    pub(super) states: Vec<Value>,
    pub(super) cycles: Vec<Value>,
    pub(super) labels: Vec<Value>,
    pub(super) projects: Vec<Value>,
    pub(super) issues: Vec<Issue>,
    pub(super) comments: Vec<Comment>,
    pub(super) next_id: u64,
}

pub(super) fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn find<'a>(list: &'a [Value], id: &str) -> Option<&'a Value> {
    list.iter().find(|v| v["id"] == id)
}

impl Store {
    pub(super) fn next_number(&self, team: &str) -> u32 {
        self.issues
            .iter()
            .filter(|i| i.team == team)
            .map(|i| i.number)
            .max()
            .unwrap_or(0)
            + 1
    }

    /// A new id in UUID v4 format, as Linear's are.
    fn fresh_id(&mut self) -> String {
        let n = self.next_id;
        self.next_id += 1;
        format!("f0000000-0000-4000-8000-{n:012x}")
    }

    pub fn viewer(&self) -> Value {
        find(&self.users, seed::VIEWER)
            .cloned()
            .unwrap_or(Value::Null)
    }
    pub fn teams(&self) -> Vec<Value> {
        self.teams.clone()
    }
    pub fn states(&self) -> Vec<Value> {
        self.states.clone()
    }
    pub fn cycles(&self) -> Vec<Value> {
        self.cycles.clone()
    }
    pub fn labels(&self) -> Vec<Value> {
        self.labels.clone()
    }
    pub fn projects(&self) -> Vec<Value> {
        self.projects.clone()
    }
    pub fn issues(&self) -> Vec<Value> {
        self.issues.iter().map(|i| self.issue_json(i)).collect()
    }

    /// An issue by id or identifier (`ENG-1`), as Linear's `issue(id:)` accepts both.
    pub fn issue(&self, id: &str) -> Option<Value> {
        self.find_issue(id)
            .map(|i| self.issue_json(&self.issues[i]))
    }

    fn find_issue(&self, id: &str) -> Option<usize> {
        self.issues.iter().position(|i| {
            i.id == id
                || self
                    .team_key(&i.team)
                    .is_some_and(|k| format!("{k}-{}", i.number) == id)
        })
    }

    fn team_key(&self, team: &str) -> Option<&str> {
        find(&self.teams, team)?["key"].as_str()
    }

    fn issue_json(&self, i: &Issue) -> Value {
        let key = self.team_key(&i.team).unwrap_or("?");
        let identifier = format!("{key}-{}", i.number);
        let opt = |list: &[Value], id: &Option<String>| {
            id.as_deref()
                .and_then(|id| find(list, id))
                .cloned()
                .unwrap_or(Value::Null)
        };
        let labels: Vec<Value> = i
            .labels
            .iter()
            .filter_map(|l| find(&self.labels, l))
            .cloned()
            .collect();
        json!({
            "id": i.id, "identifier": identifier, "number": f64::from(i.number),
            "title": i.title, "description": i.description,
            "priority": f64::from(i.priority), "priorityLabel": priority_label(i.priority),
            "estimate": null, "dueDate": null,
            "url": format!("https://linear.app/vorg-fake/issue/{identifier}"),
            "createdAt": time(i.created_at), "updatedAt": time(i.updated_at),
            "state": find(&self.states, &i.state).cloned().unwrap_or(Value::Null),
            "team": find(&self.teams, &i.team).cloned().unwrap_or(Value::Null),
            "assignee": opt(&self.users, &i.assignee),
            "cycle": opt(&self.cycles, &i.cycle),
            "project": opt(&self.projects, &i.project),
            "labels": { "nodes": labels },
        })
    }

    /// Checks that `id` names an entity of `list`, and of `team` when the entity has one.
    fn check_ref(list: &[Value], id: &str, team: &str, entity: &str) -> Result<(), FieldError> {
        let v = find(list, id).ok_or_else(|| FieldError::not_found(entity))?;
        match v["team"]["id"].as_str() {
            Some(t) if t != team => Err(FieldError::invalid(format!(
                "{entity} {id} does not belong to the issue's team"
            ))),
            _ => Ok(()),
        }
    }

    /// `issueCreate`: checks every reference as Linear does, then stores the issue.
    pub fn create_issue(&mut self, input: &Map<String, Value>) -> Result<Value, FieldError> {
        let s = |k: &str| input.get(k).and_then(Value::as_str).map(str::to_owned);
        let team = s("teamId").unwrap_or_default();
        find(&self.teams, &team).ok_or_else(|| FieldError::not_found("Team"))?;
        let id = match s("id") {
            Some(id) if self.find_issue(&id).is_some() => {
                return Err(FieldError::invalid(format!(
                    "An issue with id {id} already exists"
                )));
            }
            Some(id) => id,
            None => self.fresh_id(),
        };
        let state = match s("stateId") {
            Some(state) => state,
            None => format!(
                "state-{}-backlog",
                self.team_key(&team).unwrap_or("").to_lowercase()
            ),
        };
        Self::check_ref(&self.states, &state, &team, "WorkflowState")?;
        if let Some(cycle) = s("cycleId") {
            Self::check_ref(&self.cycles, &cycle, &team, "Cycle")?;
        }
        if let Some(project) = s("projectId") {
            find(&self.projects, &project).ok_or_else(|| FieldError::not_found("Project"))?;
        }
        if let Some(user) = s("assigneeId") {
            find(&self.users, &user).ok_or_else(|| FieldError::not_found("User"))?;
        }
        let labels: Vec<String> = input
            .get("labelIds")
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        for label in &labels {
            Self::check_ref(&self.labels, label, &team, "IssueLabel")?;
        }
        let priority = input.get("priority").and_then(Value::as_u64).unwrap_or(0);
        if priority > 4 {
            return Err(FieldError::invalid("priority must be between 0 and 4"));
        }
        let now = Utc::now();
        let issue = Issue {
            number: self.next_number(&team),
            id,
            title: s("title").unwrap_or_default(),
            description: s("description"),
            priority: priority as u8,
            state,
            assignee: s("assigneeId"),
            cycle: s("cycleId"),
            project: s("projectId"),
            labels,
            team,
            created_at: now,
            updated_at: now,
        };
        let json = self.issue_json(&issue);
        self.issues.push(issue);
        Ok(json)
    }

    /// `issueUpdate` of the state and/or assignee.
    pub fn update_issue(
        &mut self,
        id: &str,
        input: &Map<String, Value>,
    ) -> Result<Value, FieldError> {
        let at = self
            .find_issue(id)
            .ok_or_else(|| FieldError::not_found("Issue"))?;
        let team = self.issues[at].team.clone();
        if let Some(state) = input.get("stateId").and_then(Value::as_str) {
            Self::check_ref(&self.states, state, &team, "WorkflowState")?;
            self.issues[at].state = state.to_owned();
        }
        match input.get("assigneeId") {
            Some(Value::Null) => self.issues[at].assignee = None,
            Some(Value::String(user)) => {
                find(&self.users, user).ok_or_else(|| FieldError::not_found("User"))?;
                self.issues[at].assignee = Some(user.clone());
            }
            _ => {}
        }
        self.issues[at].updated_at = Utc::now();
        Ok(self.issue_json(&self.issues[at]))
    }

    /// `commentCreate` on an issue, by the viewer.
    pub fn create_comment(&mut self, input: &Map<String, Value>) -> Result<Value, FieldError> {
        let issue_id = input
            .get("issueId")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let at = self
            .find_issue(issue_id)
            .ok_or_else(|| FieldError::not_found("Issue"))?;
        let body = input
            .get("body")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if body.trim().is_empty() {
            return Err(FieldError::invalid("body must not be empty"));
        }
        let comment = Comment {
            id: self.fresh_id(),
            issue: self.issues[at].id.clone(),
            body: body.to_owned(),
            user: seed::VIEWER.to_owned(),
            created_at: Utc::now(),
        };
        let issue = self.issue_json(&self.issues[at]);
        let json = json!({
            "id": comment.id, "body": comment.body,
            "url": format!("{}#comment-{}", issue["url"].as_str().unwrap_or_default(), comment.id),
            "createdAt": time(comment.created_at), "updatedAt": time(comment.created_at),
            "user": find(&self.users, &comment.user).cloned().unwrap_or(Value::Null),
            "issue": issue,
        });
        self.comments.push(comment);
        Ok(json)
    }

    /// How many comments an issue has (for tests).
    pub fn comment_count(&self, issue_id: &str) -> usize {
        self.comments.iter().filter(|c| c.issue == issue_id).count()
    }
}

fn priority_label(p: u8) -> &'static str {
    match p {
        1 => "Urgent",
        2 => "High",
        3 => "Medium",
        4 => "Low",
        _ => "No priority",
    }
}
