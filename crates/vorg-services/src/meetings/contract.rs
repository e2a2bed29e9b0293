//! The meeting contract: the bodies `POST /meetings/{type}` and `vorg meeting` accept, the
//! job they become, and the minutes it answers. The API, the CLI and the worker use these
//! types and nothing else; the OpenAPI document derives from them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use vorg_org::Problem;

use crate::starter::Requester;

/// Which meeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MeetingType {
    Standup,
    Brainstorm,
    Allhands,
}

impl MeetingType {
    pub const ALL: [MeetingType; 3] = [
        MeetingType::Standup,
        MeetingType::Brainstorm,
        MeetingType::Allhands,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MeetingType::Standup => "standup",
            MeetingType::Brainstorm => "brainstorm",
            MeetingType::Allhands => "allhands",
        }
    }
}

impl std::fmt::Display for MeetingType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Most participants of one meeting, and the longest persona id accepted.
pub const MAX_PARTICIPANTS: usize = 20;
pub const MAX_PERSONA_ID: usize = 200;
/// The longest brainstorm topic accepted.
pub const MAX_TOPIC: usize = 2000;

/// How a meeting is held: what vorg adds to every meeting body beside its content.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct MeetingExtras {
    /// Persona ids who hold the meeting (default: the leadership).
    #[serde(default)]
    pub participants: Vec<String>,
    /// A model, alias or `provider/model` for every speaker (default: each persona's).
    pub model: Option<String>,
    /// Brainstorm rounds (1–5, default 2).
    pub rounds: Option<u64>,
    /// File the action items as issues in this Linear team (when Linear is configured).
    pub linear_team_id: Option<String>,
}

/// A stand-up: with content, rendered as given; without, held by the personas.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StandupBody {
    pub date: Option<String>,
    #[serde(default)]
    pub attendees: Vec<String>,
    #[serde(default)]
    pub yesterday: Vec<String>,
    #[serde(default)]
    pub today: Vec<String>,
    #[serde(default)]
    pub blockers: Vec<String>,
    #[serde(default)]
    pub decisions: Vec<String>,
    #[serde(flatten)]
    pub extras: MeetingExtras,
}

/// A brainstorm's decision.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    #[serde(default)]
    pub problem: String,
    #[serde(default)]
    pub option: String,
    #[serde(default)]
    pub why: String,
}

/// A brainstorm: with ideas, rendered as given; without, held by the personas.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BrainstormBody {
    pub topic: Option<String>,
    pub owner: Option<String>,
    pub date: Option<String>,
    #[serde(default)]
    pub ideas: Vec<String>,
    #[serde(default)]
    pub top3: Vec<String>,
    pub decision: Option<Decision>,
    #[serde(flatten)]
    pub extras: MeetingExtras,
}

/// An all-hands: with updates, rendered as given; without, held by the personas.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllhandsBody {
    /// The week (any JSON the template renders; default: the ISO week).
    pub week: Option<Value>,
    pub date: Option<String>,
    #[serde(default)]
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    pub metrics: Map<String, Value>,
    #[serde(default)]
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    pub updates: Map<String, Value>,
    #[serde(default)]
    pub risks: Vec<String>,
    #[serde(default)]
    pub lessons: Vec<String>,
    #[serde(flatten)]
    pub extras: MeetingExtras,
}

/// One meeting body, of its type.
#[derive(Debug, Clone)]
pub enum MeetingBody {
    Standup(StandupBody),
    Brainstorm(BrainstormBody),
    Allhands(AllhandsBody),
}

impl MeetingBody {
    /// Reads the body of a meeting of type `kind` (as the API and the CLI receive it).
    pub fn from_value(kind: MeetingType, body: Value) -> Result<MeetingBody, serde_json::Error> {
        Ok(match kind {
            MeetingType::Standup => MeetingBody::Standup(serde_json::from_value(body)?),
            MeetingType::Brainstorm => MeetingBody::Brainstorm(serde_json::from_value(body)?),
            MeetingType::Allhands => MeetingBody::Allhands(serde_json::from_value(body)?),
        })
    }

    pub fn kind(&self) -> MeetingType {
        match self {
            MeetingBody::Standup(_) => MeetingType::Standup,
            MeetingBody::Brainstorm(_) => MeetingType::Brainstorm,
            MeetingBody::Allhands(_) => MeetingType::Allhands,
        }
    }

    pub fn extras(&self) -> &MeetingExtras {
        match self {
            MeetingBody::Standup(b) => &b.extras,
            MeetingBody::Brainstorm(b) => &b.extras,
            MeetingBody::Allhands(b) => &b.extras,
        }
    }

    /// What is wrong with the body on its own (sizes and ranges; whether the participants
    /// exist needs the store: [`unknown_participants`]).
    pub fn problems(&self) -> Vec<Problem> {
        let extras = self.extras();
        let mut problems = Vec::new();
        if extras.participants.len() > MAX_PARTICIPANTS {
            // Only this: a huge list costs nothing more.
            return vec![problem(
                "participants",
                format!(
                    "at most {MAX_PARTICIPANTS} (got {})",
                    extras.participants.len()
                ),
            )];
        }
        for (i, id) in extras.participants.iter().enumerate() {
            if id.len() > MAX_PERSONA_ID {
                problems.push(problem(
                    format!("participants[{i}]"),
                    format!("at most {MAX_PERSONA_ID} bytes"),
                ));
            }
        }
        if extras.rounds.is_some_and(|r| !(1..=5).contains(&r)) {
            problems.push(problem("rounds", "must be between 1 and 5"));
        }
        if let MeetingBody::Brainstorm(b) = self
            && b.topic.as_deref().is_some_and(|t| t.len() > MAX_TOPIC)
        {
            problems.push(problem(
                "topic",
                format!("must be at most {MAX_TOPIC} bytes"),
            ));
        }
        problems
    }

    /// The job that holds this meeting for `requester`.
    pub fn into_job(self, requester: Requester) -> Meeting {
        let kind = self.kind();
        let (content, extras) = match self {
            MeetingBody::Standup(b) => (
                serde_json::json!({ "date": b.date, "attendees": b.attendees,
                    "yesterday": b.yesterday, "today": b.today, "blockers": b.blockers,
                    "decisions": b.decisions }),
                b.extras,
            ),
            MeetingBody::Brainstorm(b) => (
                serde_json::json!({ "topic": b.topic, "owner": b.owner, "date": b.date,
                    "ideas": b.ideas, "top3": b.top3,
                    "decision": b.decision.unwrap_or_default() }),
                b.extras,
            ),
            MeetingBody::Allhands(b) => (
                serde_json::json!({ "week": b.week, "date": b.date, "metrics": b.metrics,
                    "updates": b.updates, "risks": b.risks, "lessons": b.lessons }),
                b.extras,
            ),
        };
        let body = match content {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        Meeting {
            kind,
            body,
            extras,
            requester,
        }
    }
}

/// Which of `ids` name no persona in `known`, as problems at their index.
pub fn unknown_participants<'a>(ids: &[String], known: impl Fn(&str) -> bool + 'a) -> Vec<Problem> {
    ids.iter()
        .enumerate()
        .filter(|(_, id)| !known(id))
        .map(|(i, id)| problem(format!("participants[{i}]"), format!("no persona {id:?}")))
        .collect()
}

fn problem(path: impl Into<String>, reason: impl Into<String>) -> Problem {
    Problem {
        path: path.into(),
        reason: reason.into(),
    }
}

/// The `meeting` job: a meeting to hold, as queued.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Meeting {
    #[serde(rename = "type")]
    pub kind: MeetingType,
    /// The content sent (rendered as given when it has any).
    #[serde(default)]
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    pub body: Map<String, Value>,
    #[serde(flatten)]
    pub extras: MeetingExtras,
    #[serde(flatten)]
    pub requester: Requester,
}

/// An action item of the minutes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ActionItem {
    pub title: String,
    #[serde(default)]
    pub owner: Option<String>,
}

/// An issue filed in Linear for a run.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FiledIssue {
    /// Linear's identifier, e.g. `ENG-42`.
    pub identifier: String,
    pub url: String,
    pub title: String,
}

/// What a meeting answers: its minutes, stored as two artifacts.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Minutes {
    /// The markdown artifact's storage path.
    pub markdown_path: Option<String>,
    /// The JSON artifact's storage path.
    pub json_path: Option<String>,
    /// The minutes: YAML front matter and the rendered template.
    pub markdown: String,
    /// The meeting's content as rendered (its fields depend on the meeting's type).
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    pub minutes: Map<String, Value>,
    pub artifact_id: i64,
    pub json_artifact_id: i64,
    /// Where to download the markdown.
    pub download: String,
    /// The names of who took part.
    pub participants: Vec<String>,
    pub action_items: Vec<ActionItem>,
    /// The action items filed in Linear (when the run asked for it).
    pub linear_issues: Vec<FiledIssue>,
    /// What the meeting's model calls cost.
    pub cost_usd: f64,
    pub llm_calls: u64,
    /// The run that held the meeting (in answers; not stored with the output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<i64>,
}
