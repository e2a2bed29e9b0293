//! The `chat` engine (AutoGen's group chat): participants take turns chosen round-robin, by
//! a manual order or by a selector persona reading the transcript; the chat ends after
//! `max_rounds` messages, on a message containing the termination keyword, or when the
//! `terminate_when` condition holds.

use serde::Serialize;
use serde_json::{Value, json};

use crate::agent::turn;
use crate::definition::{ChatWorkflow, SpeakerSelection};
use crate::expr::Expr;
use crate::graph::pick;
use crate::runtime::Runtime;
use crate::template;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// A participant id, or `user` for the opening task.
    pub speaker: String,
    pub content: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Termination {
    Keyword,
    /// `terminate_when` held.
    Condition,
    MaxRounds,
    Error,
}

/// The result of a `chat` run; the transcript is its output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatRun {
    pub transcript: Vec<Message>,
    pub terminated_by: Termination,
    pub error: Option<String>,
}

/// Runs `workflow` (validated) with `inputs` for `{{ inputs.<name> }}`.
pub async fn run_chat(workflow: &ChatWorkflow, inputs: &Value, rt: &dyn Runtime) -> ChatRun {
    let mut transcript = Vec::new();
    let task = match template::render(&workflow.task, &json!({ "inputs": inputs })) {
        Ok(t) => t,
        Err(e) => {
            return ChatRun {
                transcript,
                terminated_by: Termination::Error,
                error: Some(format!("task: {e}")),
            };
        }
    };
    transcript.push(Message {
        speaker: "user".into(),
        content: task,
    });
    let ids: Vec<String> = workflow.participants.iter().map(|p| p.id.clone()).collect();
    for round in 0..workflow.max_rounds as usize {
        let step = format!("round {}", round + 1);
        let speaker = match workflow.speaker_selection {
            SpeakerSelection::RoundRobin => ids[round % ids.len()].clone(),
            SpeakerSelection::Manual => workflow.order[round % workflow.order.len()].clone(),
            SpeakerSelection::Selector => {
                let selector = workflow.selector.as_deref().unwrap_or(&ids[0]);
                let roster: Vec<String> = workflow
                    .participants
                    .iter()
                    .map(|p| format!("- {}: {}", p.id, p.description.as_deref().unwrap_or("")))
                    .collect();
                let prompt = format!(
                    "{}\n\nParticipants:\n{}\n\nWho should speak next? Answer with exactly one participant id.",
                    render(&transcript),
                    roster.join("\n")
                );
                let schema = json!({ "type": "object",
                    "properties": { "speaker": { "type": "string", "enum": &ids } },
                    "required": ["speaker"] });
                match turn(
                    rt,
                    &step,
                    selector,
                    "You choose the next speaker of a group chat.",
                    &prompt,
                    &[],
                    Some(&schema),
                )
                .await
                {
                    Ok(answer) => match pick(&answer, &ids) {
                        Some(id) => id,
                        None => {
                            let fallback = ids[round % ids.len()].clone();
                            rt.log(
                                &step,
                                &format!("selector named nobody ({answer:?}); {fallback} speaks"),
                            )
                            .await;
                            fallback
                        }
                    },
                    Err(e) => {
                        return ChatRun {
                            transcript,
                            terminated_by: Termination::Error,
                            error: Some(format!("{step}: selector: {e}")),
                        };
                    }
                }
            }
        };
        let description = workflow
            .participants
            .iter()
            .find(|p| p.id == speaker)
            .and_then(|p| p.description.clone());
        let system = format!(
            "You are {speaker} in a group chat. {}",
            description.unwrap_or_default()
        );
        let mut prompt = format!(
            "{}\n\nWrite your next message as {speaker}.",
            render(&transcript)
        );
        if let Some(k) = &workflow.termination_keyword {
            prompt.push_str(&format!(" Say {k} when the task is done."));
        }
        let content = match turn(rt, &step, &speaker, system.trim(), &prompt, &[], None).await {
            Ok(c) => c,
            Err(e) => {
                return ChatRun {
                    transcript,
                    terminated_by: Termination::Error,
                    error: Some(format!("{step}: {speaker}: {e}")),
                };
            }
        };
        rt.log(&step, &format!("{speaker}: {content}")).await;
        let done = workflow
            .termination_keyword
            .as_deref()
            .is_some_and(|k| content.contains(k));
        let condition = match &workflow.terminate_when {
            None => false,
            Some(src) => {
                let state = json!({ "rounds": round + 1,
                    "last": { "speaker": &speaker, "content": &content } });
                Expr::parse(src).is_ok_and(|e| e.eval(&state))
            }
        };
        transcript.push(Message { speaker, content });
        if done || condition {
            rt.log(
                "run",
                if done {
                    "termination keyword said"
                } else {
                    "terminate_when holds"
                },
            )
            .await;
            return ChatRun {
                transcript,
                terminated_by: if done {
                    Termination::Keyword
                } else {
                    Termination::Condition
                },
                error: None,
            };
        }
    }
    ChatRun {
        transcript,
        terminated_by: Termination::MaxRounds,
        error: None,
    }
}

fn render(transcript: &[Message]) -> String {
    transcript
        .iter()
        .map(|m| format!("{}: {}", m.speaker, m.content))
        .collect::<Vec<_>>()
        .join("\n\n")
}
