//! What the organization's runs share: the services a worker needs, personas speaking
//! through the gateway, artifacts written to blob storage.

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};
use vorg_domain::LogLevel;

use serde_json::{Value, json};
use vorg_artifacts::Blobs;
use vorg_jobs::{JobContext, JobError};
use vorg_llm::{ChatRequest, Gateway, GatewayError};
use vorg_store::{Artifact, NewArtifact, Store};

use crate::Starter;
use vorg_org::{Org, Persona};

/// Everything the organization's job handlers use.
#[derive(Clone)]
pub struct Services {
    pub store: Store,
    pub org: Arc<Org>,
    pub llm: Arc<Gateway>,
    pub blobs: Blobs,
    pub linear: Option<vorg_linear::LinearClient>,
}

/// One run's conversation with the gateway: every call attributed to the run and the
/// speaking persona, its cost added up.
pub struct Speaker<'a> {
    pub services: &'a Services,
    pub job: &'a JobContext,
    /// `provider/model` or an alias; `None`: each persona's preference, else the default.
    pub model: Option<String>,
    pub user_id: Option<i64>,
    /// Who asked for the run, as its job recorded it.
    requester: crate::starter::Requester,
    /// Who started the run (read on first use): the run speaks within their rights.
    starter: tokio::sync::OnceCell<Starter>,
    cost: AtomicI64,
    calls: AtomicI64,
}

impl<'a> Speaker<'a> {
    pub fn new(
        services: &'a Services,
        job: &'a JobContext,
        requester: &crate::starter::Requester,
        model: Option<String>,
    ) -> Self {
        Speaker {
            services,
            job,
            model,
            user_id: requester.requested_by,
            requester: requester.clone(),
            starter: tokio::sync::OnceCell::new(),
            cost: AtomicI64::new(0),
            calls: AtomicI64::new(0),
        }
    }

    /// The run's starter and what they may do.
    pub async fn starter(&self) -> Result<&Starter, JobError> {
        self.starter
            .get_or_try_init(|| Starter::load(&self.services.store, &self.requester))
            .await
    }

    /// Refuses a model call past the policies' `run_limits.max_llm_calls`, and counts it.
    async fn count_call(&self) -> Result<(), JobError> {
        let limits = self
            .services
            .org
            .policies()
            .await
            .map_err(|e| JobError::Retryable(format!("reading the policies: {e}")))?
            .run_limits
            .clone();
        let made = self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(max) = limits.max_llm_calls
            && u64::try_from(made).unwrap_or(0) >= max
        {
            self.calls.fetch_sub(1, Ordering::SeqCst);
            return Err(JobError::Fatal(format!(
                "run limit reached: {max} LLM calls (run_limits.max_llm_calls in the governance policies)"
            )));
        }
        Ok(())
    }

    pub fn cost_micro_usd(&self) -> i64 {
        self.cost.load(Ordering::Relaxed)
    }

    pub fn calls(&self) -> u64 {
        u64::try_from(self.calls.load(Ordering::Relaxed)).unwrap_or(0)
    }

    /// The persona's system prompt: who they are, how they speak, what they care about.
    pub fn system_prompt(persona: &Persona) -> String {
        let doc = persona.doc();
        let mut s = format!("You are {}", persona.name());
        if let Some(title) = persona.title() {
            s.push_str(&format!(", {title}"));
        }
        s.push_str(" in an AI-staffed organization.");
        if let Some(style) = doc.get("style").and_then(Value::as_object) {
            for (k, v) in style {
                if let Some(v) = v.as_str() {
                    s.push_str(&format!(" Your {k}: {v}."));
                }
            }
        }
        let skills = persona.skills();
        if !skills.is_empty() {
            s.push_str(&format!(" Your skills: {}.", skills.join(", ")));
        }
        if let Some(goals) = doc.get("goals").and_then(Value::as_array) {
            let goals: Vec<&str> = goals.iter().filter_map(Value::as_str).collect();
            if !goals.is_empty() {
                s.push_str(&format!(" Your goals: {}.", goals.join("; ")));
            }
        }
        s.push_str(" Answer briefly and concretely.");
        s
    }

    /// The documents the persona's `context_pack` names, for its system prompt:
    /// `constitution` (or `charter`), `policies` (the version in force), or
    /// `context/<name>.md` from the config folder. Unknown names are skipped.
    pub async fn context_pack(&self, persona: &Persona) -> String {
        let names = only_strings(persona.doc().get("context_pack"));
        let mut out = String::new();
        for name in names.iter().take(8) {
            let text = match name.as_str() {
                "constitution" | "charter" => Some(self.services.org.constitution().to_owned()),
                "policies" => self
                    .services
                    .org
                    .policies()
                    .await
                    .ok()
                    .and_then(|p| serde_yaml::to_string(&p.document).ok()),
                other
                    if other
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
                {
                    self.services
                        .org
                        .files()
                        .read(&format!("context/{other}.md"))
                        .ok()
                        .map(|s| s.text.into_owned())
                }
                _ => None,
            };
            if let Some(text) = text {
                let text: String = text.chars().take(4000).collect();
                out.push_str(&format!("\n\n## {name}\n{text}"));
            }
        }
        out
    }

    /// Asks `persona` for JSON matching `schema`; answers that are not JSON of that shape
    /// are kept as text under `"text"`.
    pub async fn ask_json(
        &self,
        persona: &Persona,
        prompt: &str,
        schema: Value,
    ) -> Result<Value, JobError> {
        self.job.checkpoint().await?;
        let text = self
            .say(persona, "", prompt, Some(schema), None, &[])
            .await?;
        Ok(parse_json_answer(&text).unwrap_or_else(|| json!({ "text": text })))
    }

    /// One turn of `persona`: its system prompt (who it is, its context pack, then
    /// `extra_system`), the prompt, and, with `schema`, structured output. The call is
    /// attributed to the run and the persona, its cost added up and logged (with `step`).
    /// `tools` (OpenAI format) are offered natively; a native tool call comes back as the
    /// text protocol's `TOOL <name> <json arguments>` line.
    pub async fn say(
        &self,
        persona: &Persona,
        extra_system: &str,
        prompt: &str,
        schema: Option<Value>,
        step: Option<&str>,
        tools: &[Value],
    ) -> Result<String, JobError> {
        let model = self
            .model
            .clone()
            .or_else(|| persona.model().map(str::to_owned))
            .unwrap_or_else(|| "default".to_owned());
        let mut system = Self::system_prompt(persona);
        system.push_str(&self.context_pack(persona).await);
        if !extra_system.trim().is_empty() {
            system.push_str("\n\n");
            system.push_str(extra_system.trim());
        }
        let mut req = ChatRequest::user(&model, prompt);
        req.body.insert(
            "messages".into(),
            json!([
                { "role": "system", "content": system },
                { "role": "user", "content": prompt },
            ]),
        );
        req.body.insert("max_tokens".into(), json!(800));
        if !tools.is_empty() {
            req.body
                .insert("tools".into(), Value::Array(tools.to_vec()));
        }
        if let Some(schema) = schema {
            req.body.insert(
                "response_format".into(),
                json!({ "type": "json_schema", "json_schema": { "name": "answer", "schema": schema } }),
            );
        }
        let starter = self.starter().await?;
        if starter.permissions.is_some_and(|p| p.is_empty()) {
            return Err(JobError::Fatal(
                "the run's starter holds no permission any more; the run may not call models"
                    .into(),
            ));
        }
        let ctx = starter.call_context(persona.id(), self.job.run_id(), Some(persona.id()));
        self.count_call().await?;
        let answered = self.services.llm.complete(&ctx, &req).await;
        let (resp, provider, model) = match answered {
            Ok(a) => a,
            Err(e) => {
                // A refused call is not a call made.
                self.calls.fetch_sub(1, Ordering::SeqCst);
                return Err(gateway_job_error(e));
            }
        };
        let cost = resp.cost_micro_usd;
        self.cost.fetch_add(cost, Ordering::Relaxed);
        let tokens = resp.usage.prompt_tokens + resp.usage.completion_tokens;
        let mut fields = json!({ "persona": persona.id(), "provider": provider, "model": model,
                "tokens": tokens, "cost_micro_usd": cost });
        if let Some(step) = step {
            fields["step"] = json!(step);
        }
        let message = match step {
            Some(step) => format!("[{step}] {} spoke ({provider}/{model})", persona.name()),
            None => format!("{} spoke ({provider}/{model})", persona.name()),
        };
        self.job.log(LogLevel::Info, &message, fields).await?;
        let call = &resp.body["choices"][0]["message"]["tool_calls"][0]["function"];
        if let Some(name) = call["name"].as_str() {
            let args = match &call["arguments"] {
                Value::String(s) => s.clone(),
                Value::Null => "{}".to_owned(),
                other => other.to_string(),
            };
            return Ok(format!("TOOL {name} {}", args.replace('\n', " ")));
        }
        Ok(resp.text())
    }
}

/// A gateway failure inside a run: budgets and bad requests are final, upstream trouble is
/// worth another attempt.
pub fn gateway_job_error(e: GatewayError) -> JobError {
    match e {
        GatewayError::Provider(ref p) if p.retryable() => JobError::Retryable(e.to_string()),
        other => JobError::Fatal(other.to_string()),
    }
}

/// The JSON in a model's answer: the whole text, or inside a ``` fence.
pub fn parse_json_answer(text: &str) -> Option<Value> {
    let t = text.trim();
    if let Ok(v) = serde_json::from_str::<Value>(t) {
        return Some(v);
    }
    let start = t.find('{')?;
    let end = t.rfind('}')?;
    serde_json::from_str(t.get(start..=end)?).ok()
}

/// Strings of a JSON array field (`[]` when absent).
pub fn strings(v: &Value, key: &str) -> Vec<String> {
    string_list(v.get(key))
}

/// The strings of a JSON list (other items skipped); empty when absent.
pub fn only_strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// A JSON list as strings (non-strings as their JSON, nulls dropped); empty when absent.
pub fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| match x {
                    Value::String(s) => Some(s.clone()),
                    Value::Null => None,
                    other => Some(other.to_string()),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Writes `bytes` to blob storage under `key` and records the artifact.
pub struct NewBlob<'a> {
    pub kind: &'a str,
    pub name: &'a str,
    pub key: String,
    pub content_type: &'a str,
    pub bytes: Vec<u8>,
    pub meta: Value,
    pub run_id: Option<i64>,
    pub created_by: Option<i64>,
}

pub async fn save_artifact(services: &Services, a: NewBlob<'_>) -> Result<Artifact, JobError> {
    let text = if a.content_type.starts_with("text/") || a.content_type.contains("json") {
        String::from_utf8_lossy(&a.bytes).into_owned()
    } else {
        String::new()
    };
    let size = a.bytes.len() as i64;
    let stored = services
        .blobs
        .put(&a.key, a.bytes.into())
        .await
        .map_err(|e| JobError::Retryable(format!("storing {}: {e}", a.key)))?;
    services
        .store
        .create_artifact(NewArtifact {
            kind: a.kind,
            name: a.name,
            key: &stored.key,
            storage: stored.backend,
            s3_bucket: stored.bucket.as_deref(),
            meta: a.meta,
            run_id: a.run_id,
            content_type: a.content_type,
            size,
            body_text: &text,
            created_by: a.created_by,
        })
        .await
        .map_err(|e| JobError::Retryable(format!("recording artifact {}: {e}", a.name)))
}

/// The personas named by `ids`, or the org's leadership when none are named: personas with
/// no manager and their direct reports, up to `max`, in reporting-line order.
pub async fn participants(
    services: &Services,
    ids: &[String],
    max: usize,
) -> Result<Vec<Persona>, JobError> {
    let rows = services
        .store
        .list_personas()
        .await
        .map_err(|e| JobError::Retryable(format!("reading personas: {e}")))?;
    if !ids.is_empty() {
        let mut out = Vec::new();
        for id in ids {
            match rows.iter().find(|r| &r.id == id) {
                Some(r) => out.push(Persona::trusted(r.doc.0.clone())),
                None => return Err(JobError::Fatal(format!("unknown persona {id:?}"))),
            }
        }
        return Ok(out);
    }
    Ok(reporting_order(&rows)
        .into_iter()
        .take(max)
        .map(|r| Persona::trusted(r.doc.0.clone()))
        .collect())
}

/// Personas in reporting-line order: roots first, then their reports, breadth first.
pub fn reporting_order(rows: &[vorg_store::PersonaRow]) -> Vec<&vorg_store::PersonaRow> {
    let mut out: Vec<&vorg_store::PersonaRow> =
        rows.iter().filter(|r| r.reports_to.is_none()).collect();
    let mut i = 0;
    while i < out.len() {
        let id = out[i].id.clone();
        out.extend(
            rows.iter()
                .filter(|r| r.reports_to.as_deref() == Some(id.as_str())),
        );
        i += 1;
    }
    out
}

/// A Linear issue to file for a run, once per `key` (a retry returns the first issue).
pub struct LinearFiling<'a> {
    pub key: &'a str,
    pub team_id: &'a str,
    pub title: &'a str,
    pub description: Option<String>,
    pub run_id: Option<i64>,
    pub artifact_id: Option<i64>,
    pub created_by: Option<i64>,
}

/// Creates the issue in Linear (idempotently, by `key`) and records the link to the run or
/// artifact.
pub async fn file_linear_issue(
    services: &Services,
    linear: &vorg_linear::LinearClient,
    f: LinearFiling<'_>,
) -> Result<vorg_store::LinearLink, crate::linear::FileError> {
    let issue = vorg_linear::NewIssue {
        team_id: f.team_id.to_owned(),
        title: f.title.chars().take(250).collect(),
        description: f.description,
        ..vorg_linear::NewIssue::default()
    };
    let filing = crate::linear::Filing {
        key: Some(f.key),
        team_id: f.team_id,
        run_id: f.run_id,
        artifact_id: f.artifact_id,
        created_by: f.created_by,
    };
    let filed = crate::linear::create_and_link(&services.store, linear, &issue, filing).await?;
    Ok(filed.link)
}
