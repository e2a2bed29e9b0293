//! The minutes as markdown: YAML front matter and the meeting's template.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use vorg_jobs::JobError;

use super::{ActionItem, MeetingType};
use crate::work::{Services, string_list};

/// Whether the caller sent the meeting's content (then it is rendered as given).
pub fn has_content(kind: MeetingType, body: &Map<String, Value>) -> bool {
    let non_empty = |k: &str| match body.get(k) {
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::String(s)) => !s.trim().is_empty(),
        _ => false,
    };
    match kind {
        MeetingType::Standup => ["attendees", "yesterday", "today", "blockers", "decisions"]
            .iter()
            .any(|k| non_empty(k)),
        MeetingType::Brainstorm => ["ideas", "top3"].iter().any(|k| non_empty(k)),
        _ => ["updates", "metrics", "risks", "lessons"]
            .iter()
            .any(|k| non_empty(k)),
    }
}

pub(super) fn front_matter(
    kind: MeetingType,
    date: &str,
    participants: &[String],
    run_id: Option<i64>,
    cost: i64,
    action_items: &[ActionItem],
    generated_by: &str,
) -> String {
    let mut m = BTreeMap::new();
    m.insert("meeting", json!(kind));
    m.insert("date", json!(date));
    m.insert("participants", json!(participants));
    m.insert("run_id", json!(run_id));
    m.insert("cost_usd", json!(vorg_domain::money::micro_to_usd(cost)));
    m.insert("action_items", json!(action_items));
    m.insert("generated_by", json!(generated_by));
    let yaml = serde_yaml::to_string(&m).unwrap_or_default();
    format!("---\n{yaml}---\n\n")
}

/// Renders the meeting's template (the config folder's, else the shipped one) with the
/// content; `attendees` is a joined string (so the original's templates render it as
/// text), the list is `attendee_list`.
pub(super) fn render(
    services: &Services,
    kind: MeetingType,
    content: &Map<String, Value>,
    participants: &[String],
    front: &str,
) -> Result<String, JobError> {
    let src = services
        .org
        .files()
        .read(&format!("meetings/templates/{kind}.md"))
        .map_err(|e| JobError::Fatal(format!("template: {e}")))?;
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
    env.add_template("minutes", &src.text)
        .map_err(|e| JobError::Fatal(format!("{}: {e}", src.origin)))?;
    let mut ctx = content.clone();
    let list = if participants.is_empty() {
        string_list(content.get("attendees"))
    } else {
        participants.to_vec()
    };
    ctx.insert("attendees".into(), json!(list.join(", ")));
    ctx.insert("attendee_list".into(), json!(list));
    let body = env
        .get_template("minutes")
        .and_then(|t| t.render(minijinja::value::Serde(Value::Object(ctx))))
        .map_err(|e| JobError::Fatal(format!("{}: {e}", src.origin)))?;
    Ok(format!("{front}{body}"))
}
