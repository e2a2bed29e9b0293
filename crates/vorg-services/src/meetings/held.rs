//! Meetings the personas hold: each speaker through the gateway, as the run's starter.

use chrono::Utc;
use futures_util::future::join_all;
use serde_json::{Map, Value, json};
use vorg_jobs::JobError;
use vorg_org::Persona;

use super::ActionItem;
use crate::work::{Speaker, strings};

fn action_items_schema() -> Value {
    json!({ "type": "array", "items": { "type": "object",
        "properties": { "title": { "type": "string" }, "owner": { "type": "string" } },
        "required": ["title"] } })
}

fn list_schema(keys: &[&str]) -> Value {
    let props: Map<String, Value> = keys
        .iter()
        .map(|k| {
            (
                (*k).to_owned(),
                json!({ "type": "array", "items": { "type": "string" } }),
            )
        })
        .collect();
    json!({ "type": "object", "properties": props, "required": keys })
}

pub(super) async fn standup(speaker: &Speaker<'_>, people: &[Persona]) -> Result<Value, JobError> {
    let schema = list_schema(&["yesterday", "today", "blockers"]);
    let prompt = "Give your standup update for today: what you did yesterday, what you will do \
                  today, and any blockers. Answer as JSON with the arrays yesterday, today, \
                  blockers.";
    let answers = join_all(
        people
            .iter()
            .map(|p| speaker.ask_json(p, prompt, schema.clone())),
    )
    .await;
    let mut content = json!({ "attendees": people.iter().map(Persona::name).collect::<Vec<_>>(),
                              "yesterday": [], "today": [], "blockers": [], "updates": [] });
    let mut transcript = String::new();
    for (p, answer) in people.iter().zip(answers) {
        let answer = answer?;
        for key in ["yesterday", "today", "blockers"] {
            let items = strings(&answer, key);
            transcript.push_str(&format!("{} {key}: {}\n", p.name(), items.join("; ")));
            if let Some(list) = content[key].as_array_mut() {
                list.extend(
                    items
                        .into_iter()
                        .map(|i| json!(format!("{}: {i}", p.name()))),
                );
            }
        }
        if let Some(list) = content["updates"].as_array_mut() {
            list.push(json!({ "persona": p.id(), "name": p.name(), "update": answer }));
        }
    }
    let facilitator = &people[0];
    let summary = speaker
        .ask_json(
            facilitator,
            &format!(
                "You facilitate this standup. Updates:\n{transcript}\nSummarize the standup and \
                 list action items with owners. Answer as JSON: summary (string), decisions \
                 (array of strings), action_items (array of {{title, owner}})."
            ),
            json!({ "type": "object", "properties": {
                "summary": { "type": "string" },
                "decisions": { "type": "array", "items": { "type": "string" } },
                "action_items": action_items_schema() },
                "required": ["summary", "action_items"] }),
        )
        .await?;
    content["summary"] = summary
        .get("summary")
        .or_else(|| summary.get("text"))
        .cloned()
        .unwrap_or_default();
    content["decisions"] = json!(strings(&summary, "decisions"));
    content["action_items"] = normalise_items(&summary);
    Ok(content)
}

pub(super) async fn brainstorm(
    speaker: &Speaker<'_>,
    people: &[Persona],
    body: &Map<String, Value>,
    rounds: Option<u64>,
) -> Result<Value, JobError> {
    let topic = body
        .get("topic")
        .and_then(Value::as_str)
        .filter(|t| !t.trim().is_empty())
        .unwrap_or("How do we grow the organization next quarter?")
        .to_owned();
    let rounds = rounds.unwrap_or(2).clamp(1, 5);
    let mut ideas: Vec<String> = Vec::new();
    let mut by: Vec<String> = Vec::new();
    for round in 1..=rounds {
        // A group chat: each speaker sees every idea so far.
        for p in people {
            let so_far = if ideas.is_empty() {
                "none yet".to_owned()
            } else {
                ideas.join("; ")
            };
            let answer = speaker
                .ask_json(
                    p,
                    &format!(
                        "Brainstorm, round {round} of {rounds}. Topic: {topic}. Ideas so far: \
                         {so_far}. Give up to 3 new ideas as a list of ideas in JSON (ideas: \
                         array of strings)."
                    ),
                    list_schema(&["ideas"]),
                )
                .await?;
            for idea in strings(&answer, "ideas").into_iter().take(3) {
                if !ideas.contains(&idea) {
                    ideas.push(idea);
                    by.push(p.name().to_owned());
                }
            }
        }
    }
    // The vote: everyone picks up to three; most votes win, earlier ideas break ties.
    let tally = vote(speaker, people, &topic, &ideas).await?;
    let mut order: Vec<usize> = (0..ideas.len()).collect();
    order.sort_by(|a, b| tally[*b].cmp(&tally[*a]).then(a.cmp(b)));
    let top3: Vec<String> = order.iter().take(3).map(|&i| ideas[i].clone()).collect();
    let facilitator = &people[0];
    let decision = speaker
        .ask_json(
            facilitator,
            &format!(
                "You own this brainstorm on {topic}. The vote chose:\n{}\nGroup all ideas into \
                 themes, then decide: the problem, the option chosen and why, and action items. \
                 Answer as JSON: clusters (array of {{theme, ideas}}), problem, option, why, \
                 action_items (array of {{title, owner}}).",
                top3.join("\n")
            ),
            json!({ "type": "object", "properties": {
                "clusters": { "type": "array", "items": { "type": "object", "properties": {
                    "theme": { "type": "string" },
                    "ideas": { "type": "array", "items": { "type": "string" } } } } },
                "problem": { "type": "string" }, "option": { "type": "string" },
                "why": { "type": "string" }, "action_items": action_items_schema() },
                "required": ["problem", "option", "why", "action_items"] }),
        )
        .await?;
    let text = |k: &str| {
        decision
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    Ok(json!({
        "topic": topic,
        "owner": body.get("owner").and_then(Value::as_str).unwrap_or(facilitator.name()),
        "ideas": ideas,
        "idea_authors": by,
        "votes": tally,
        "top3": top3,
        "clusters": decision.get("clusters").cloned().unwrap_or_else(|| json!([])),
        "decision": { "problem": text("problem"), "option": text("option"), "why": text("why") },
        "action_items": normalise_items(&decision),
    }))
}

pub(super) async fn allhands(
    speaker: &Speaker<'_>,
    people: &[Persona],
    body: &Map<String, Value>,
) -> Result<Value, JobError> {
    let week = body
        .get("week")
        .cloned()
        .unwrap_or_else(|| json!(Utc::now().format("%G-W%V").to_string()));
    // Leadership speaks in reporting-line order (the order `participants` returned).
    let leaders = &people[..people.len().min(3)];
    let mut updates = Map::new();
    let mut metrics = Map::new();
    let mut risks = Vec::new();
    let mut said = String::new();
    for p in leaders {
        let answer = speaker
            .ask_json(
                p,
                "All-hands: give your area's update for the week, one or two key metrics, and \
                 the risks you see. Answer as JSON: update (string), metrics (object of name to \
                 value), risks (array of strings).",
                json!({ "type": "object", "properties": {
                    "update": { "type": "string" }, "metrics": { "type": "object" },
                    "risks": { "type": "array", "items": { "type": "string" } } },
                    "required": ["update"] }),
            )
            .await?;
        let update = answer
            .get("update")
            .or_else(|| answer.get("text"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        said.push_str(&format!("{}: {update}\n", p.name()));
        updates.insert(p.name().to_owned(), json!(update));
        if let Some(m) = answer.get("metrics").and_then(Value::as_object) {
            for (k, v) in m {
                metrics.insert(k.clone(), v.clone());
            }
        }
        risks.extend(strings(&answer, "risks"));
    }
    let ceo = &people[0];
    let questions = questions(speaker, people, leaders.len(), &said).await?;
    let wrap = speaker
        .ask_json(
            ceo,
            &format!("Close the all-hands. Updates:\n{said}List the lessons of the week and the action items. Answer as JSON: lessons (array of strings), action_items (array of {{title, owner}})."),
            json!({ "type": "object", "properties": {
                "lessons": { "type": "array", "items": { "type": "string" } },
                "action_items": action_items_schema() }, "required": ["lessons", "action_items"] }),
        )
        .await?;
    Ok(json!({
        "week": week,
        "metrics": metrics,
        "updates": updates,
        "risks": risks,
        "lessons": strings(&wrap, "lessons"),
        "questions": questions,
        "action_items": normalise_items(&wrap),
    }))
}

/// Every speaker's ballot for up to three of `ideas` (numbered from 1); the votes per idea.
async fn vote(
    speaker: &Speaker<'_>,
    people: &[Persona],
    topic: &str,
    ideas: &[String],
) -> Result<Vec<u32>, JobError> {
    let numbered: String = ideas
        .iter()
        .enumerate()
        .map(|(i, idea)| format!("{}. {idea}\n", i + 1))
        .collect();
    let ballot_prompt = format!(
        "Vote for the three best ideas on {topic}:\n{numbered}Answer as JSON: votes (array of \
         the chosen ideas' numbers)."
    );
    let ballots = join_all(people.iter().map(|p| {
        speaker.ask_json(
            p,
            &ballot_prompt,
            json!({ "type": "object", "properties": { "votes": { "type": "array",
                "items": { "type": "integer" } } }, "required": ["votes"] }),
        )
    }))
    .await;
    let mut tally = vec![0u32; ideas.len()];
    for ballot in ballots {
        let ballot = ballot?;
        let mut seen = Vec::new();
        for v in ballot
            .get("votes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_u64)
            .take(3)
        {
            let i = v as usize;
            if (1..=ideas.len()).contains(&i) && !seen.contains(&i) {
                tally[i - 1] += 1;
                seen.push(i);
            }
        }
    }
    Ok(tally)
}

/// Questions from the rest of the room (or the leaders when the room is small), each
/// answered by the first of `people`.
async fn questions(
    speaker: &Speaker<'_>,
    people: &[Persona],
    leaders: usize,
    said: &str,
) -> Result<Vec<Value>, JobError> {
    let ceo = &people[0];
    let askers: Vec<&Persona> = if people.len() > leaders {
        people[leaders..].iter().collect()
    } else {
        people.iter().skip(1).collect()
    };
    let mut questions = Vec::new();
    for asker in askers.into_iter().take(3) {
        let q = speaker
            .ask_json(
                asker,
                &format!("All-hands updates:\n{said}Ask leadership one question. Answer as JSON: question."),
                json!({ "type": "object", "properties": { "question": { "type": "string" } },
                    "required": ["question"] }),
            )
            .await?;
        let question = q
            .get("question")
            .or_else(|| q.get("text"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let a = speaker
            .ask_json(
                ceo,
                &format!(
                    "At the all-hands {} asks: {question}\nAnswer as JSON: answer.",
                    asker.name()
                ),
                json!({ "type": "object", "properties": { "answer": { "type": "string" } },
                    "required": ["answer"] }),
            )
            .await?;
        let answer = a
            .get("answer")
            .or_else(|| a.get("text"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        questions.push(json!({ "asked_by": asker.name(), "question": question,
                               "answered_by": ceo.name(), "answer": answer }));
    }
    Ok(questions)
}

/// `action_items` as `[{title, owner}]` whatever shape the model used.
pub(super) fn action_items(v: Option<&Value>) -> Vec<ActionItem> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|item| match item {
            Value::String(s) if !s.trim().is_empty() => Some(ActionItem {
                title: s.clone(),
                owner: None,
            }),
            Value::Object(o) => {
                let title = o.get("title").and_then(Value::as_str)?.to_owned();
                let owner = match o.get("owner") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(other) => Some(other.to_string()),
                };
                Some(ActionItem { title, owner })
            }
            _ => None,
        })
        .collect()
}

fn normalise_items(v: &Value) -> Value {
    json!(action_items(v.get("action_items")))
}
