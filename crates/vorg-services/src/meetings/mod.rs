//! Meetings as runs: stand-ups, brainstorms and all-hands. Content the caller sends is
//! rendered as given; without it, the personas hold the meeting through the gateway. The
//! minutes are markdown with YAML front matter, rendered from `meetings/templates/*.md`,
//! stored as an artifact; action items can become Linear issues.

use chrono::Utc;
use serde_json::{Map, Value, json};
use vorg_domain::LogLevel;
use vorg_jobs::{BackgroundJob, JobContext, JobError};
use vorg_org::Persona;

use crate::work::{
    LinearFiling, NewBlob, Services, Speaker, file_linear_issue, participants, save_artifact,
    string_list,
};

mod contract;
mod held;
mod render;

pub use contract::{
    ActionItem, AllhandsBody, BrainstormBody, Decision, FiledIssue, MAX_PARTICIPANTS,
    MAX_PERSONA_ID, MAX_TOPIC, Meeting, MeetingBody, MeetingExtras, MeetingType, Minutes,
    StandupBody, unknown_participants,
};
pub use render::has_content;

impl BackgroundJob for Meeting {
    const KIND: &'static str = "meeting";
    const MAX_ATTEMPTS: i64 = 2;
    type Output = Minutes;
    type Context = Services;

    async fn run(self, services: &Services, job: &JobContext) -> Result<Minutes, JobError> {
        hold(services, job, self).await
    }
}

async fn hold(
    services: &Services,
    job: &JobContext,
    meeting: Meeting,
) -> Result<Minutes, JobError> {
    let kind = meeting.kind;
    let body = &meeting.body;
    let speaker = Speaker::new(
        services,
        job,
        &meeting.requester,
        meeting.extras.model.clone(),
    );
    let date = body
        .get("date")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| Utc::now().format("%Y-%m-%d").to_string());
    let (mut content, people, generated_by) = content_of(services, job, &speaker, &meeting).await?;
    content.insert("date".into(), json!(date));
    let participant_names: Vec<String> = if people.is_empty() {
        string_list(content.get("attendees"))
    } else {
        people.iter().map(|p| p.name().to_owned()).collect()
    };
    let run_id = job.run_id();
    let cost = speaker.cost_micro_usd();
    let action_items = held::action_items(content.get("action_items"));
    let front = render::front_matter(
        kind,
        &date,
        &participant_names,
        run_id,
        cost,
        &action_items,
        generated_by,
    );
    let markdown = render::render(services, kind, &content, &participant_names, &front)?;
    let stamp = Utc::now().format("%Y/%m/%d");
    let run_part = run_id
        .map(|r| format!("run-{r}"))
        .unwrap_or_else(|| "adhoc".into());
    let requested_by = meeting.requester.requested_by;
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
        LogLevel::Info,
        &format!("minutes stored as artifact {}", md.id),
        json!({ "artifact_id": md.id, "cost_micro_usd": cost }),
    )
    .await?;
    let starter = speaker.starter().await?;
    let linear_issues =
        file_action_items(services, job, starter, &meeting, &action_items, md.id).await?;
    Ok(Minutes {
        markdown_path: md.path,
        json_path: js.path,
        markdown,
        minutes: content,
        artifact_id: md.id,
        json_artifact_id: js.id,
        download: format!("/artifacts/{}/content", md.id),
        participants: participant_names,
        action_items,
        linear_issues,
        cost_usd: vorg_domain::money::micro_to_usd(cost),
        llm_calls: speaker.calls(),
        run_id: None,
    })
}

/// The meeting's content: as sent when it has any, else held by the personas (with who
/// took part and who generated it).
async fn content_of(
    services: &Services,
    job: &JobContext,
    speaker: &Speaker<'_>,
    meeting: &Meeting,
) -> Result<(Map<String, Value>, Vec<Persona>, &'static str), JobError> {
    let kind = meeting.kind;
    let body = &meeting.body;
    Ok(if has_content(kind, body) {
        job.log(
            LogLevel::Info,
            &format!("{kind}: rendering the content sent"),
            json!({}),
        )
        .await?;
        (body.clone(), Vec::new(), "caller")
    } else {
        let people = participants(services, &meeting.extras.participants, 5).await?;
        if people.is_empty() {
            return Err(JobError::Fatal(
                "no personas to hold the meeting: add personas or name participants".into(),
            ));
        }
        let names: Vec<&str> = people.iter().map(Persona::name).collect();
        job.log(
            LogLevel::Info,
            &format!("{kind} with {}", names.join(", ")),
            json!({ "participants": people.iter().map(Persona::id).collect::<Vec<_>>() }),
        )
        .await?;
        let content = match kind {
            MeetingType::Standup => held::standup(speaker, &people).await?,
            MeetingType::Brainstorm => {
                held::brainstorm(speaker, &people, body, meeting.extras.rounds).await?
            }
            MeetingType::Allhands => held::allhands(speaker, &people, body).await?,
        };
        let content = match content {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        (content, people, "personas")
    })
}

/// Files each action item as a Linear issue when the run asked for it (`linear_team_id`)
/// and Linear is configured; idempotent per run and item, linked to the run and minutes.
async fn file_action_items(
    services: &Services,
    job: &JobContext,
    starter: &crate::Starter,
    meeting: &Meeting,
    items: &[ActionItem],
    artifact_id: i64,
) -> Result<Vec<FiledIssue>, JobError> {
    let Some(team) = meeting.extras.linear_team_id.as_deref() else {
        return Ok(Vec::new());
    };
    let Some(linear) = &services.linear else {
        job.log(
            LogLevel::Warn,
            "action items not filed: Linear is not configured (LINEAR_API_KEY)",
            json!({}),
        )
        .await?;
        return Ok(Vec::new());
    };
    if !starter.may(vorg_domain::Permission::CreateLinearIssues) {
        job.log(
            LogLevel::Warn,
            "action items not filed: the run's starter may not create Linear issues (create_linear_issues)",
            json!({ "refused": "create_linear_issues" }),
        )
        .await?;
        return Ok(Vec::new());
    }
    let mut filed = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let title = item.title.trim();
        if title.is_empty() {
            continue;
        }
        let key = format!("run-{}-action-{i}", job.run_id().unwrap_or(0));
        let owner = item.owner.as_deref().unwrap_or("");
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
                created_by: meeting.requester.requested_by,
            },
        )
        .await
        .map_err(|e| JobError::Retryable(format!("filing an action item: {e}")))?;
        job.log(
            LogLevel::Info,
            &format!("action item filed as {}", link.identifier),
            json!({ "linear_issue": link.identifier, "url": link.url }),
        )
        .await?;
        filed.push(FiledIssue {
            identifier: link.identifier,
            url: link.url,
            title: link.title,
        });
    }
    Ok(filed)
}
