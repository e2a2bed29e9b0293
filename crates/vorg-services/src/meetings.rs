//! Meetings as runs: stand-ups, brainstorms and all-hands. Content the caller sends is
//! rendered as given; without it, the personas hold the meeting through the gateway. The
//! minutes are markdown with YAML front matter, rendered from `meetings/templates/*.md`,
//! stored as an artifact; action items can become Linear issues.

use std::collections::BTreeMap;

use chrono::Utc;
use futures_util::future::join_all;
use serde_json::{Map, Value, json};
use vorg_jobs::{BoxFuture, JobContext, JobError, JobHandler};

use vorg_org::Persona;

use crate::{
    work::{
        LinearFiling, NewBlob, Services, Speaker, file_linear_issue, participants, save_artifact,
        strings,
    },
};

/// The job kind of every meeting.
pub const JOB_KIND: &str = "meeting";

/// The meeting types and their templates.
pub const TYPES: [&str; 3] = ["standup", "brainstorm", "allhands"];

/// Runs the meeting in a run's input: `{type, body, participants?, model?, rounds?,
/// linear_team_id?, requested_by?}`.
pub struct MeetingHandler {
    pub services: Services,
}

impl JobHandler for MeetingHandler {
    fn run<'a>(&'a self, job: &'a JobContext) -> BoxFuture<'a, Result<Value, JobError>> {
        Box::pin(async move { hold(&self.services, job).await })
    }
}

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

/// Whether the caller sent the meeting's content (then it is rendered as given).
pub fn has_content(kind: &str, body: &Value) -> bool {
    let non_empty = |k: &str| match body.get(k) {
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::String(s)) => !s.trim().is_empty(),
        _ => false,
    };
    match kind {
        "standup" => ["attendees", "yesterday", "today", "blockers", "decisions"]
            .iter()
            .any(|k| non_empty(k)),
        "brainstorm" => ["ideas", "top3"].iter().any(|k| non_empty(k)),
        _ => ["updates", "metrics", "risks", "lessons"]
            .iter()
            .any(|k| non_empty(k)),
    }
}

async fn hold(services: &Services, job: &JobContext) -> Result<Value, JobError> {
    let input = job.input().clone();
    let kind = input
        .get("type")
        .and_then(Value::as_str)
        .filter(|k| TYPES.contains(k))
        .ok_or_else(|| JobError::Fatal("type: must be standup, brainstorm or allhands".into()))?
        .to_owned();
    let body = input.get("body").cloned().unwrap_or_else(|| json!({}));
    let ids = strings(&input, "participants");
    let model = input
        .get("model")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let speaker = Speaker::new(services, job, model);
    let date = body
        .get("date")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| Utc::now().format("%Y-%m-%d").to_string());
    let (mut content, people, generated_by) = if has_content(&kind, &body) {
        job.log(
            "info",
            &format!("{kind}: rendering the content sent"),
            json!({}),
        )
        .await?;
        (body.clone(), Vec::new(), "caller")
    } else {
        let people = participants(services, &ids, 5).await?;
        if people.is_empty() {
            return Err(JobError::Fatal(
                "no personas to hold the meeting: add personas or name participants".into(),
            ));
        }
        let names: Vec<&str> = people.iter().map(Persona::name).collect();
        job.log(
            "info",
            &format!("{kind} with {}", names.join(", ")),
            json!({ "participants": people.iter().map(Persona::id).collect::<Vec<_>>() }),
        )
        .await?;
        let content = match kind.as_str() {
            "standup" => standup(&speaker, &people).await?,
            "brainstorm" => brainstorm(&speaker, &people, &body, &input).await?,
            _ => allhands(&speaker, &people, &body).await?,
        };
        (content, people, "personas")
    };
    if let Some(obj) = content.as_object_mut() {
        obj.insert("date".into(), json!(date));
    }
    let participant_names: Vec<String> = if people.is_empty() {
        strings(&content, "attendees")
    } else {
        people.iter().map(|p| p.name().to_owned()).collect()
    };
    let run_id = job.run_id();
    let cost = speaker.cost_micro_usd();
    let action_items: Vec<Value> = content
        .get("action_items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let front = front_matter(
        &kind,
        &date,
        &participant_names,
        run_id,
        cost,
        &action_items,
        generated_by,
    );
    let markdown = render(services, &kind, &content, &participant_names, &front)?;
    let stamp = Utc::now().format("%Y/%m/%d");
    let run_part = run_id
        .map(|r| format!("run-{r}"))
        .unwrap_or_else(|| "adhoc".into());
    let requested_by = input.get("requested_by").and_then(Value::as_i64);
    let meta = json!({ "meeting": kind, "date": date, "participants": participant_names,
                       "cost_micro_usd": cost, "generated_by": generated_by });
    let md = save_artifact(
        services,
        NewBlob {
            kind: "minutes",
            name: &format!("{kind}-{date}-{run_part}.md"),
            key: format!("minutes/{stamp}/{run_part}-{kind}.md"),
            content_type: "text/markdown; charset=utf-8",
            bytes: markdown.clone().into_bytes(),
            meta: meta.clone(),
            run_id,
            created_by: requested_by,
        },
    )
    .await?;
    let minutes_json = serde_json::to_vec_pretty(&content)
        .map_err(|e| JobError::Fatal(format!("minutes: {e}")))?;
    let js = save_artifact(
        services,
        NewBlob {
            kind: "minutes_json",
            name: &format!("{kind}-{date}-{run_part}.json"),
            key: format!("minutes/{stamp}/{run_part}-{kind}.json"),
            content_type: "application/json",
            bytes: minutes_json,
            meta,
            run_id,
            created_by: requested_by,
        },
    )
    .await?;
    job.log(
        "info",
        &format!("minutes stored as artifact {}", md.id),
        json!({ "artifact_id": md.id, "cost_micro_usd": cost }),
    )
    .await?;
    let starter = speaker.starter().await?;
    let linear_issues =
        file_action_items(services, job, starter, &input, &action_items, md.id).await?;
    Ok(json!({
        "markdown_path": md.path,
        "json_path": js.path,
        "markdown": markdown,
        "minutes": content,
        "artifact_id": md.id,
        "json_artifact_id": js.id,
        "download": format!("/artifacts/{}/content", md.id),
        "participants": participant_names,
        "action_items": action_items,
        "linear_issues": linear_issues,
        "cost_usd": vorg_domain::money::micro_to_usd(cost),
        "llm_calls": speaker.calls(),
    }))
}

async fn standup(speaker: &Speaker<'_>, people: &[Persona]) -> Result<Value, JobError> {
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

async fn brainstorm(
    speaker: &Speaker<'_>,
    people: &[Persona],
    body: &Value,
    input: &Value,
) -> Result<Value, JobError> {
    let topic = body
        .get("topic")
        .and_then(Value::as_str)
        .filter(|t| !t.trim().is_empty())
        .unwrap_or("How do we grow the organization next quarter?")
        .to_owned();
    let rounds = input
        .get("rounds")
        .and_then(Value::as_u64)
        .unwrap_or(2)
        .clamp(1, 5);
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

async fn allhands(
    speaker: &Speaker<'_>,
    people: &[Persona],
    body: &Value,
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
    // Questions from the rest of the room (or the leaders when the room is small).
    let askers: Vec<&Persona> = if people.len() > leaders.len() {
        people[leaders.len()..].iter().collect()
    } else {
        people.iter().skip(1).collect()
    };
    let mut questions = Vec::new();
    let ceo = &people[0];
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

/// `action_items` as `[{title, owner}]` whatever shape the model used.
fn normalise_items(v: &Value) -> Value {
    let items = v
        .get("action_items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    Value::Array(
        items
            .into_iter()
            .filter_map(|i| match i {
                Value::String(s) if !s.trim().is_empty() => Some(json!({ "title": s })),
                Value::Object(o) => {
                    let title = o.get("title").and_then(Value::as_str)?.to_owned();
                    Some(json!({ "title": title, "owner": o.get("owner").cloned().unwrap_or(Value::Null) }))
                }
                _ => None,
            })
            .collect(),
    )
}

fn front_matter(
    kind: &str,
    date: &str,
    participants: &[String],
    run_id: Option<i64>,
    cost: i64,
    action_items: &[Value],
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
fn render(
    services: &Services,
    kind: &str,
    content: &Value,
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
    let mut ctx = content.as_object().cloned().unwrap_or_default();
    let list = if participants.is_empty() {
        strings(content, "attendees")
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

/// Files each action item as a Linear issue when the run asked for it (`linear_team_id`)
/// and Linear is configured; idempotent per run and item, linked to the run and minutes.
async fn file_action_items(
    services: &Services,
    job: &JobContext,
    starter: &crate::Starter,
    input: &Value,
    items: &[Value],
    artifact_id: i64,
) -> Result<Vec<Value>, JobError> {
    let Some(team) = input.get("linear_team_id").and_then(Value::as_str) else {
        return Ok(Vec::new());
    };
    let Some(linear) = &services.linear else {
        job.log(
            "warn",
            "action items not filed: Linear is not configured (LINEAR_API_KEY)",
            json!({}),
        )
        .await?;
        return Ok(Vec::new());
    };
    if !starter.may(vorg_domain::Permission::CreateLinearIssues) {
        job.log(
            "warn",
            "action items not filed: the run's starter may not create Linear issues (create_linear_issues)",
            json!({ "refused": "create_linear_issues" }),
        )
        .await?;
        return Ok(Vec::new());
    }
    let mut filed = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let title = item
            .get("title")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim();
        if title.is_empty() {
            continue;
        }
        let key = format!("run-{}-action-{i}", job.run_id().unwrap_or(0));
        let owner = item.get("owner").and_then(Value::as_str).unwrap_or("");
        let description = format!(
            "Action item from the minutes (artifact {artifact_id}){}.",
            if owner.is_empty() {
                String::new()
            } else {
                format!(", owner: {owner}")
            }
        );
        let link = file_linear_issue(
            services,
            linear,
            LinearFiling {
                key: &key,
                team_id: team,
                title,
                description: Some(description),
                run_id: job.run_id(),
                artifact_id: Some(artifact_id),
                created_by: input.get("requested_by").and_then(Value::as_i64),
            },
        )
        .await
        .map_err(JobError::Retryable)?;
        job.log(
            "info",
            &format!("action item filed as {}", link.identifier),
            json!({ "linear_issue": link.identifier, "url": link.url }),
        )
        .await?;
        filed.push(json!({ "identifier": link.identifier, "url": link.url, "title": link.title }));
    }
    Ok(filed)
}
