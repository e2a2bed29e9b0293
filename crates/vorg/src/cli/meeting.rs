//! `vorg meeting standup|brainstorm|allhands`: holds a meeting now, against the configured
//! database, with no HTTP server. The run is created exactly as `POST /meetings/{type}`
//! creates it, a worker in this process executes it, its log streams to stderr and the
//! minutes (markdown) go to stdout.
//!
//! Any worker on the same database may execute the run (a `vorg serve` or `vorg worker`
//! running beside it); this command follows the run, not the worker, so that is fine. The
//! in-process worker is an ordinary one: on a shared database it also takes other due jobs
//! while it waits, and releases the unfinished ones when the meeting ends.

use std::{io::Write, path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde_json::{Map, Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use vorg_domain::RunStatus;
use vorg_jobs::{BackgroundJob, RunMeta};
use vorg_services::{
    Requester,
    meetings::{MeetingBody, MeetingType, Minutes},
};
use vorg_store::{Run, Store, StoreError};

use crate::{Settings, config::LogFormat, startup::build_services};

#[derive(Args, Debug)]
pub struct MeetingArgs {
    /// Which meeting to hold.
    pub kind: MeetingKind,
    /// The brainstorm's topic.
    #[arg(long, value_name = "T")]
    pub topic: Option<String>,
    /// A persona id who takes part (repeatable). Default: the leadership.
    #[arg(long = "participant", value_name = "ID")]
    pub participants: Vec<String>,
    /// The meeting as JSON: the body `POST /meetings/{type}` takes. With content (updates,
    /// ideas, …) it is rendered as given; without, the personas hold the meeting.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// A model, alias or provider/model for every speaker (default: each persona's).
    #[arg(long, value_name = "M")]
    pub model: Option<String>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MeetingKind {
    Standup,
    Brainstorm,
    Allhands,
}

impl MeetingKind {
    fn meeting_type(self) -> MeetingType {
        match self {
            MeetingKind::Standup => MeetingType::Standup,
            MeetingKind::Brainstorm => MeetingType::Brainstorm,
            MeetingKind::Allhands => MeetingType::Allhands,
        }
    }
}

/// How often the run is re-read when no notice arrives.
const POLL: Duration = Duration::from_millis(500);

/// Logs at `warn` unless RUST_LOG says otherwise: here stderr is for the run's own log.
pub(super) fn init_logs(format: LogFormat) {
    use tracing_subscriber::{EnvFilter, fmt};
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Holds the meeting and prints its minutes; the run's error when it does not succeed.
pub async fn meeting(settings: &Settings, store: &Store, args: MeetingArgs) -> anyhow::Result<()> {
    let body = meeting_body(&args)?;
    check_participants(store, &body.extras().participants).await?;
    let kind = body.kind();
    let job = body.into_job(Requester::default());
    let run = run_here(settings, store, job, kind.as_str()).await?;
    print_minutes(run)
}

/// Starts `job`, executes it with a worker in this process while its log streams to
/// stderr, and returns the run once it ended (or waits for an approval).
pub(super) async fn run_here<J: BackgroundJob>(
    settings: &Settings,
    store: &Store,
    job: J,
    summary: &str,
) -> anyhow::Result<Run> {
    let tracker = TaskTracker::new();
    let stop = CancellationToken::new();
    store
        .start_listener(&tracker, stop.clone())
        .await
        .context("listening for events on PostgreSQL")?;
    let services = build_services(settings, store).await?;
    let llm = services.llm.clone();
    let meta = RunMeta {
        summary: Some(summary),
        ..RunMeta::default()
    };
    let run = job
        .start(store, meta)
        .await
        .with_context(|| format!("creating the {}'s run", J::KIND))?;
    let run_type = run.run_type.clone();
    super::cli_audit(
        store,
        "run.start",
        format!("run:{}", run.id),
        json!({ "run_type": run_type }),
    )
    .await;
    eprintln!("run {}: {summary} queued", run.id);
    vorg_jobs::Worker::new(
        store.clone(),
        vorg_services::registry(services),
        settings.worker_config(settings.workers.max(1)),
    )
    .spawn(&tracker, stop.clone());

    let ended = follow(store, run.id).await;
    stop.cancel();
    tracker.close();
    tracker.wait().await;
    llm.flush_usage().await;
    ended
}

/// The meeting's body, as the API reads it: the `--json` file's object with the flags
/// (which win over the same fields in the file), checked by the same rules.
fn meeting_body(args: &MeetingArgs) -> anyhow::Result<MeetingBody> {
    let kind = args.kind.meeting_type();
    let mut body = match &args.json {
        None => Map::new(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--json: reading {}", path.display()))?;
            match serde_json::from_str(&text)
                .with_context(|| format!("--json: {} is not valid JSON", path.display()))?
            {
                Value::Object(map) => map,
                _ => bail!(
                    "--json: {} must hold a JSON object (the body of POST /meetings/{kind})",
                    path.display(),
                ),
            }
        }
    };
    if let Some(topic) = &args.topic {
        if kind != MeetingType::Brainstorm {
            bail!("--topic: only a brainstorm has a topic");
        }
        body.insert("topic".into(), json!(topic));
    }
    if !args.participants.is_empty() {
        body.insert("participants".into(), json!(args.participants));
    }
    if let Some(model) = &args.model {
        body.insert("model".into(), json!(model));
    }
    let body = MeetingBody::from_value(kind, Value::Object(body))
        .map_err(|e| anyhow::anyhow!("--json: not the body of POST /meetings/{kind}: {e}"))?;
    let problems = body.problems();
    if !problems.is_empty() {
        let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
        bail!("{}", list.join("; "));
    }
    Ok(body)
}

/// Names an unknown participant before any run exists, as the API does.
async fn check_participants(store: &Store, ids: &[String]) -> anyhow::Result<()> {
    for id in ids {
        match store.get_persona(id).await {
            Ok(_) => {}
            Err(StoreError::NotFound) => bail!("--participant {id}: no such persona"),
            Err(e) => return Err(e).context("reading personas"),
        }
    }
    Ok(())
}

/// Streams the run's log to stderr until it ends (or waits for an approval, which this
/// process cannot give). Ctrl-C asks for the run to be cancelled and keeps following it.
async fn follow(store: &Store, run_id: i64) -> anyhow::Result<Run> {
    let mut notices = store.subscribe();
    let mut after = 0;
    let mut cancel_asked = false;
    let signal = super::wait_for_signal();
    tokio::pin!(signal);
    loop {
        // Status first: once it reads as ended, every log row of the run is committed.
        let run = store.get_run(run_id).await.context("reading the run")?;
        after = print_logs(store, run_id, after).await?;
        if run.status().is_terminal() || run.status() == RunStatus::WaitingApproval {
            return Ok(run);
        }
        tokio::select! {
            notice = notices.recv() => {
                if matches!(notice, Err(RecvError::Closed)) {
                    tokio::time::sleep(POLL).await;
                }
            }
            _ = tokio::time::sleep(POLL) => {}
            _ = &mut signal, if !cancel_asked => {
                cancel_asked = true;
                eprintln!("interrupted: cancelling run {run_id}");
                match store.request_cancel(run_id).await {
                    Ok(_) | Err(StoreError::Rule(_)) => {}
                    Err(e) => return Err(e).context("cancelling the run"),
                }
            }
        }
    }
}

/// Prints the run's log rows after `after`; returns the last id printed.
async fn print_logs(store: &Store, run_id: i64, mut after: i64) -> anyhow::Result<i64> {
    loop {
        let rows = store
            .run_logs(run_id, after, 200)
            .await
            .context("reading the run's log")?;
        for row in &rows {
            eprintln!(
                "{} {:<5} {}",
                row.timestamp.format("%H:%M:%S"),
                row.level,
                row.message
            );
            after = row.id;
        }
        if rows.len() < 200 {
            return Ok(after);
        }
    }
}

fn print_minutes(run: Run) -> anyhow::Result<()> {
    match run.status() {
        RunStatus::Succeeded => {
            let output = run.output.map(|o| o.0).unwrap_or_default();
            let minutes: Minutes = serde_json::from_value(output)
                .with_context(|| format!("run {} succeeded without minutes", run.id))?;
            let markdown = minutes.markdown.as_str();
            let newline: &[u8] = if markdown.ends_with('\n') { b"" } else { b"\n" };
            let mut out = std::io::stdout().lock();
            out.write_all(markdown.as_bytes())
                .and_then(|()| out.write_all(newline))
                .and_then(|()| out.flush())
                .context("writing the minutes to stdout")
        }
        RunStatus::WaitingApproval => bail!(
            "run {} waits for an approval: decide it in the console or the API, and a worker \
             (vorg serve or vorg worker) finishes the meeting",
            run.id
        ),
        status => {
            let error = run.error.unwrap_or_else(|| status.to_string());
            bail!("run {} ended {status}: {error}", run.id)
        }
    }
}
