//! The host of one workflow run: the [`Runtime`] the engines call for model turns, tools,
//! checkpoints and interrupts.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use vorg_domain::LogLevel;

use serde_json::{Value, json};
use vorg_domain::Permission;
use vorg_domain::money::{micro_to_usd, usd_to_micro};
use vorg_jobs::{JobContext, JobError};
use vorg_org::approvals::{ApprovalRequest, SubmitError, submit_approval};
use vorg_org::{Persona, Tier};
use vorg_store::NewApproval;
use vorg_workflow::{Ask, BoxFuture, Checkpoint, Runtime, StepError, tools};

use crate::Starter;
use crate::work::{LinearFiling, NewBlob, Services, Speaker, file_linear_issue, save_artifact};

/// One run's [`Runtime`].
pub(super) struct Host<'a> {
    pub(super) services: &'a Services,
    pub(super) job: &'a JobContext,
    pub(super) speaker: Speaker<'a>,
    /// The Linear team `create_linear_issue` files in (the run's choice, not the model's).
    pub(super) linear_team_id: Option<String>,
    /// Agent names of the workflow → their personas.
    pub(super) personas: HashMap<String, Persona>,
    pub(super) name: String,
    /// Why the run must stop (cancelled, parked, a final error); once set, every call of
    /// the engine returns `Halted` so it winds down.
    pub(super) halt: Mutex<Option<JobError>>,
    /// Nodes executed so far (`graph`), for the interrupt approvals' keys.
    pub(super) steps: AtomicU32,
    /// Model turns and tool calls so far, against `max_steps`.
    pub(super) work: AtomicU32,
    /// `run_limits.max_steps` of the policies in force when the run started.
    pub(super) max_steps: Option<u64>,
}

/// The largest `graph` state a checkpoint stores (JSON bytes); a run whose state grows past
/// it fails, so a loop cannot fill the database.
pub const MAX_STATE_BYTES: usize = 256 * 1024;

/// The permission a tool needs from the run's starter (`None`: any starter may).
fn tool_permission(tool: &str) -> Option<Permission> {
    match tool {
        "submit_approval" => Some(Permission::SubmitApprovals),
        "create_linear_issue" => Some(Permission::CreateLinearIssues),
        "search_artifacts" => Some(Permission::ViewOrg),
        _ => None,
    }
}

/// Who an approval filed by a run says asked for it: the run's agent, for its starter.
fn requester_label(agent: &str, starter: &Starter) -> String {
    match &starter.email {
        Some(email) => format!("{agent} for {email}"),
        None => agent.to_owned(),
    }
}

impl Host<'_> {
    fn halted(&self) -> Result<(), StepError> {
        match &*self.halt.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(e) => Err(StepError::Halted(e.to_string())),
            None => Ok(()),
        }
    }

    /// Records why the run stops (the first reason wins) and tells the engine.
    fn halt(&self, e: JobError) -> StepError {
        let why = e.to_string();
        let mut slot = self.halt.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(e);
        }
        StepError::Halted(why)
    }

    /// A job failure inside a step: retryable ones are the step's to retry, the rest stop
    /// the run.
    fn step_error(&self, e: JobError) -> StepError {
        match e {
            JobError::Retryable(m) => StepError::Failed(m),
            other => self.halt(other),
        }
    }

    /// Counts one unit of work (a model turn or a tool call) against the policies'
    /// `run_limits.max_steps`; past it the run stops.
    fn count_step(&self) -> Result<(), StepError> {
        let done = self.work.fetch_add(1, Ordering::SeqCst);
        match self.max_steps {
            Some(max) if u64::from(done) >= max => Err(self.halt(JobError::Fatal(format!(
                "run limit reached: {max} steps (run_limits.max_steps in the governance policies)"
            )))),
            _ => Ok(()),
        }
    }

    fn persona(&self, agent: &str) -> Result<&Persona, StepError> {
        self.personas
            .get(agent)
            .ok_or_else(|| StepError::Failed(format!("unknown persona \"{agent}\"")))
    }

    async fn turn(&self, ask: Ask<'_>) -> Result<String, StepError> {
        self.halted()?;
        self.count_step()?;
        self.job.checkpoint().await.map_err(|e| self.halt(e))?;
        let persona = self.persona(ask.agent)?;
        let mut extra = ask.system.to_owned();
        if !ask.tools.is_empty() {
            extra.push_str("\n\n(Native tool calls are accepted as well.)");
        }
        let specs: Vec<Value> = ask
            .tools
            .iter()
            .filter_map(|t| tools::tool(t))
            .map(tools::ToolSpec::openai)
            .collect();
        let answer = self
            .speaker
            .say(
                persona,
                &extra,
                ask.prompt,
                ask.schema.cloned(),
                Some(ask.step),
                &specs,
            )
            .await
            .map_err(|e| self.step_error(e))?;
        Ok(answer)
    }

    async fn tool(&self, agent: &str, tool: &str, args: &Value) -> Result<Value, StepError> {
        self.halted()?;
        self.count_step()?;
        let (label, starter) = self.allow_tool(agent, tool, args).await?;
        let str_arg = |k: &str| args.get(k).and_then(Value::as_str).unwrap_or("").trim();
        let result = match tool {
            "submit_approval" => self.submit_approval_tool(args, &label, starter).await?,
            "search_artifacts" => self.search_artifacts_tool(args).await?,
            "record_decision" => self.record_decision_tool(args, &label).await?,
            "create_linear_issue" => self.create_issue(args, str_arg("title")).await?,
            other => return Err(StepError::Forbidden(format!("no tool \"{other}\""))),
        };
        self.job
            .log(
                LogLevel::Info,
                &format!("{label} called {tool}"),
                json!({ "tool": tool, "persona": label, "args": args, "result": &result }),
            )
            .await
            .map_err(|e| self.step_error(e))?;
        Ok(result)
    }

    /// Whether `agent` may call `tool` with `args`: it is among the persona's tools, the run's
    /// starter holds its permission, and the policies do not forbid it. Answers who calls it
    /// and the starter; a refusal is logged.
    async fn allow_tool(
        &self,
        agent: &str,
        tool: &str,
        args: &Value,
    ) -> Result<(String, &Starter), StepError> {
        let persona = self.personas.get(agent);
        let label = persona.map_or_else(|| format!("workflow {}", self.name), |p| p.id().into());
        if let Some(p) = persona
            && !p.tools().contains(&tool)
        {
            self.log_refusal(&label, tool, "not in the persona's tools")
                .await;
            return Err(StepError::Forbidden(format!(
                "\"{tool}\" is not in the tools of persona {}",
                p.id()
            )));
        }
        // Every tool call, with or without a persona, acts within the starter's rights.
        let starter = self.speaker.starter().await.map_err(|e| self.halt(e))?;
        if let Some(needed) = tool_permission(tool)
            && !starter.may(needed)
        {
            self.log_refusal(&label, tool, "the run's starter lacks the permission")
                .await;
            return Err(StepError::Forbidden(format!(
                "\"{tool}\" needs the permission {needed}, which the run's starter does not hold"
            )));
        }
        let policies = self
            .services
            .org
            .policies()
            .await
            .map_err(|e| StepError::Failed(format!("reading the policies: {e}")))?;
        let named = [Some(tool), args.get("action").and_then(Value::as_str)];
        if let Some(action) = named.into_iter().flatten().find(|a| policies.forbids(a)) {
            self.log_refusal(&label, tool, "forbidden_actions").await;
            return Err(StepError::Forbidden(format!(
                "\"{action}\" is a forbidden action under the governance policies"
            )));
        }
        Ok((label, starter))
    }

    /// `submit_approval`: files an approval as the run's starter.
    async fn submit_approval_tool(
        &self,
        args: &Value,
        label: &str,
        starter: &Starter,
    ) -> Result<Value, StepError> {
        let run_id = self.job.run_id();
        let str_arg = |k: &str| args.get(k).and_then(Value::as_str).unwrap_or("").trim();
        let amount = args
            .get("amount_usd")
            .and_then(Value::as_f64)
            .and_then(usd_to_micro)
            .ok_or_else(|| StepError::Invalid("amount_usd must be a non-negative number".into()))?;
        if str_arg("description").is_empty() {
            return Err(StepError::Invalid("description is required".into()));
        }
        let strings = |k: &str| crate::work::only_strings(args.get(k));
        let submitted = submit_approval(
            &self.services.store,
            &self.services.org,
            ApprovalRequest {
                description: str_arg("description"),
                amount_micro_usd: amount,
                justification: str_arg("justification"),
                kind: args.get("kind").and_then(Value::as_str),
                action: args.get("action").and_then(Value::as_str),
                tags: strings("tags"),
                checks: strings("checks"),
                run_id,
                // The run's starter asks, so they cannot approve it themselves.
                requested_by: starter.user_id,
                requested_by_label: &requester_label(label, starter),
            },
        )
        .await
        .map_err(|e| match e {
            SubmitError::Forbidden(_) => StepError::Forbidden(e.to_string()),
            SubmitError::Store(e) => StepError::Failed(e.to_string()),
        })?;
        let a = submitted.approval;
        Ok(
            json!({ "id": a.id, "status": a.status, "tier": a.tier, "rule": a.rule,
                "amount_usd": micro_to_usd(a.amount_micro_usd) }),
        )
    }

    /// `search_artifacts`: full-text search over the organization's artifacts.
    async fn search_artifacts_tool(&self, args: &Value) -> Result<Value, StepError> {
        let str_arg = |k: &str| args.get(k).and_then(Value::as_str).unwrap_or("").trim();
        let q = str_arg("q");
        if q.is_empty() {
            return Err(StepError::Invalid("q is required".into()));
        }
        let limit = args.get("limit").and_then(Value::as_i64).unwrap_or(5);
        let hits = self
            .services
            .store
            .search_artifacts(q, limit.clamp(1, 20))
            .await
            .map_err(|e| StepError::Failed(e.to_string()))?;
        Ok(json!(
            hits.iter()
                .map(|h| json!({ "id": h.artifact.id, "kind": h.artifact.kind,
                    "name": h.artifact.name, "snippet": h.snippet }))
                .collect::<Vec<_>>()
        ))
    }

    /// `record_decision`: stores a decision as a markdown artifact of the run.
    async fn record_decision_tool(&self, args: &Value, label: &str) -> Result<Value, StepError> {
        let run_id = self.job.run_id();
        let str_arg = |k: &str| args.get(k).and_then(Value::as_str).unwrap_or("").trim();
        let (title, body) = (str_arg("title"), str_arg("body"));
        if title.is_empty() || body.is_empty() {
            return Err(StepError::Invalid("title and body are required".into()));
        }
        let markdown = format!(
            "---\nkind: decision\nworkflow: {}\nrun_id: {}\ndecided_by: {label}\n---\n\n# {title}\n\n{body}\n",
            self.name,
            run_id.map_or("null".into(), |r| r.to_string()),
        );
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3f");
        let artifact = save_artifact(
            self.services,
            NewBlob {
                kind: "decision",
                name: &format!("decision-{stamp}.md"),
                key: format!("decisions/decision-{}-{stamp}.md", run_id.unwrap_or(0)),
                content_type: "text/markdown; charset=utf-8",
                bytes: markdown.into_bytes(),
                meta: json!({ "title": title, "decided_by": label, "workflow": self.name }),
                run_id,
                created_by: self.speaker.user_id,
            },
        )
        .await
        .map_err(|e| self.step_error(e))?;
        Ok(json!({ "artifact_id": artifact.id, "name": artifact.name }))
    }

    async fn create_issue(&self, args: &Value, title: &str) -> Result<Value, StepError> {
        let Some(linear) = &self.services.linear else {
            return Err(StepError::Failed("Linear is not configured".into()));
        };
        if title.is_empty() {
            return Err(StepError::Invalid("title is required".into()));
        }
        // The run decides the team (`linear_team_id`), not the model.
        let team = match &self.linear_team_id {
            Some(t) => t.clone(),
            None => linear
                .teams()
                .await
                .map_err(|e| StepError::Failed(format!("listing Linear teams: {e}")))?
                .into_iter()
                .next()
                .map(|t| t.id)
                .ok_or_else(|| StepError::Failed("Linear has no team".into()))?,
        };
        let run_id = self.job.run_id();
        let key = format!(
            "run-{}-tool-{:016x}",
            run_id.unwrap_or(0),
            fnv(&format!("{team}\n{title}"))
        );
        let link = file_linear_issue(
            self.services,
            linear,
            LinearFiling {
                key: &key,
                team_id: &team,
                title,
                description: args
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                run_id,
                artifact_id: None,
                created_by: self.speaker.user_id,
            },
        )
        .await
        .map_err(|e| StepError::Failed(format!("creating a Linear issue: {e}")))?;
        Ok(json!({ "identifier": link.identifier, "url": link.url, "title": link.title }))
    }

    async fn log_refusal(&self, who: &str, tool: &str, why: &str) {
        let _ = self
            .job
            .log(
                LogLevel::Warn,
                &format!("{who} may not call {tool}: {why}"),
                json!({ "tool": tool, "persona": who, "refused": why }),
            )
            .await;
    }

    async fn interrupt(&self, node: &str, request: &Value) -> Result<bool, StepError> {
        self.halted()?;
        let Some(run_id) = self.job.run_id() else {
            return Err(StepError::Failed("interrupts need a run".into()));
        };
        let key = format!("{node}@{}", self.steps.load(Ordering::SeqCst));
        let store = &self.services.store;
        let existing = store
            .interrupt_approval(run_id, &key)
            .await
            .map_err(|e| StepError::Failed(e.to_string()))?;
        let id = match existing {
            Some(id) => id,
            None => {
                let message = request
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or(node);
                let description: String = message.chars().take(2000).collect();
                let policies = self
                    .services
                    .org
                    .policies()
                    .await
                    .map_err(|e| StepError::Failed(e.to_string()))?;
                let label = format!("workflow {} (run {run_id})", self.name);
                let starter = self.speaker.starter().await.map_err(|e| self.halt(e))?;
                let rule = format!("interrupt node \"{node}\" of workflow {}", self.name);
                let created = store
                    .create_approval(NewApproval {
                        description: &description,
                        amount_micro_usd: 0,
                        justification: &format!("state: {}", request["state"]),
                        status: vorg_domain::ApprovalStatus::Pending,
                        threshold_micro_usd: policies.auto_approve,
                        kind: Some("workflow_interrupt"),
                        tier: Some(Tier::Approver.as_str()),
                        rule: &rule,
                        tags: vec![],
                        checks: vec![],
                        escalated_to: vec![],
                        run_id: Some(run_id),
                        requested_by: starter.user_id,
                        requested_by_label: &requester_label(&label, starter),
                        expires_at: None,
                    })
                    .await
                    .map_err(|e| StepError::Failed(e.to_string()))?;
                let id = store
                    .link_interrupt(run_id, &key, created.id)
                    .await
                    .map_err(|e| StepError::Failed(e.to_string()))?;
                let _ = self
                    .job
                    .log(
                        LogLevel::Info,
                        &format!("[{node}] approval {id} requested"),
                        json!({ "step": node, "approval_id": id }),
                    )
                    .await;
                id
            }
        };
        match self.job.wait_for_approval(id).await {
            Ok(status) => Ok(status.is_granted()),
            Err(e) => Err(self.step_error(e)),
        }
    }
}

impl Runtime for Host<'_> {
    fn ask<'a>(&'a self, ask: Ask<'a>) -> BoxFuture<'a, Result<String, StepError>> {
        Box::pin(self.turn(ask))
    }

    fn log<'a>(&'a self, step: &'a str, message: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let line = format!("[{step}] {message}");
            if let Err(e) = self
                .job
                .log(LogLevel::Info, &line, json!({ "step": step }))
                .await
            {
                self.halt(e);
            }
        })
    }

    fn checkpoint<'a>(
        &'a self,
        checkpoint: &'a Checkpoint,
    ) -> BoxFuture<'a, Result<(), StepError>> {
        Box::pin(async move {
            self.halted()?;
            let size = serde_json::to_string(&checkpoint.state).map_or(0, |s| s.len());
            if size > MAX_STATE_BYTES {
                return Err(self.halt(JobError::Fatal(format!(
                    "the graph state after \"{}\" is {size} bytes, more than the {MAX_STATE_BYTES} a \
                     checkpoint may hold",
                    checkpoint.node
                ))));
            }
            if let Some(run_id) = self.job.run_id() {
                self.services
                    .store
                    .save_checkpoint(
                        run_id,
                        i64::from(checkpoint.steps),
                        &checkpoint.node,
                        checkpoint.next.as_deref(),
                        &checkpoint.state,
                    )
                    .await
                    .map_err(|e| self.halt(JobError::Retryable(format!("checkpoint: {e}"))))?;
            }
            self.steps.store(checkpoint.steps, Ordering::SeqCst);
            Ok(())
        })
    }

    fn wait_for_approval<'a>(
        &'a self,
        node: &'a str,
        request: &'a Value,
    ) -> BoxFuture<'a, Result<bool, StepError>> {
        Box::pin(self.interrupt(node, request))
    }

    fn call_tool<'a>(
        &'a self,
        agent: &'a str,
        tool: &'a str,
        args: &'a Value,
    ) -> BoxFuture<'a, Result<Value, StepError>> {
        Box::pin(self.tool(agent, tool, args))
    }
}

/// A stable 64-bit hash (FNV-1a) for idempotency keys.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
