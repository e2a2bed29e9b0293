//! `vorg workflow run FILE`: runs a workflow document now, against the configured database,
//! with no HTTP server. The run is created as `POST /workflows/run` creates it, a worker in
//! this process executes it, its log streams to stderr and its results (JSON) go to stdout.

use std::{io::Write, path::PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};
use vorg_domain::RunStatus;
use vorg_store::Store;

use crate::Settings;

#[derive(Subcommand, Debug)]
pub enum WorkflowCommand {
    /// Run a workflow document (YAML or JSON); exits non-zero with the run's error when it
    /// fails or waits for an approval.
    Run(RunArgs),
    /// Check a workflow document and list every problem with its path.
    Check {
        /// The workflow document.
        file: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The workflow document (e.g. examples/workflows/meeting_cycle.dag.yaml).
    pub file: PathBuf,
    /// An input as NAME=VALUE (repeatable); VALUE is JSON when it parses as JSON, else text.
    #[arg(long = "input", short = 'i', value_name = "NAME=VALUE")]
    pub inputs: Vec<String>,
    /// A model, alias or provider/model for every turn (default: each persona's).
    #[arg(long, value_name = "M")]
    pub model: Option<String>,
}

pub async fn workflow(
    settings: &Settings,
    store: Option<&Store>,
    cmd: WorkflowCommand,
) -> anyhow::Result<()> {
    match cmd {
        WorkflowCommand::Check { file } => {
            let wf = load(&file)?;
            println!(
                "{}: a valid {} workflow named {:?}",
                file.display(),
                wf.1.engine(),
                wf.1.name()
            );
            Ok(())
        }
        WorkflowCommand::Run(args) => {
            let store = store.context("no database")?;
            run(settings, store, args).await
        }
    }
}

/// The document's text and the workflow, or every problem.
fn load(file: &std::path::Path) -> anyhow::Result<(String, vorg_workflow::Workflow)> {
    let source =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    match vorg_workflow::validate(&source) {
        Ok(wf) => Ok((source, wf)),
        Err(problems) => {
            let list: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
            bail!(
                "{} is not a valid workflow:\n{}",
                file.display(),
                list.join("\n")
            )
        }
    }
}

fn parse_inputs(pairs: &[String]) -> anyhow::Result<Value> {
    let mut inputs = Map::new();
    for pair in pairs {
        let Some((name, value)) = pair.split_once('=') else {
            bail!("--input {pair:?}: expected NAME=VALUE");
        };
        let value = serde_json::from_str(value).unwrap_or_else(|_| json!(value));
        inputs.insert(name.trim().to_owned(), value);
    }
    Ok(Value::Object(inputs))
}

async fn run(settings: &Settings, store: &Store, args: RunArgs) -> anyhow::Result<()> {
    let (source, wf) = load(&args.file)?;
    let inputs = parse_inputs(&args.inputs)?;
    // Loads the organization (its default personas on a fresh database) before checking.
    crate::startup::load_org(settings, store).await?;
    let personas = store.list_personas().await.context("reading personas")?;
    let mut problems = vorg_services::workflows::agent_problems(&wf, &personas);
    problems.extend(vorg_services::workflows::input_problems(&wf, &inputs));
    if !problems.is_empty() {
        let list: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
        bail!("cannot run {}:\n{}", args.file.display(), list.join("\n"));
    }
    let summary = format!("workflow {} ({})", wf.name(), wf.engine());
    let job = vorg_services::workflows::WorkflowRun {
        source,
        name: wf.name().to_owned(),
        version: None,
        inputs,
        model: args.model,
        linear_team_id: None,
        requester: vorg_services::Requester::default(),
    };
    let run = super::meeting::run_here(settings, store, job, &summary).await?;
    match run.status() {
        RunStatus::Succeeded => {
            let output = run.output.map(|o| o.0).unwrap_or(Value::Null);
            let text = serde_json::to_string_pretty(&json!({
                "run_id": run.id,
                "results": output.get("results"),
                "cost_usd": output.get("cost_usd"),
                "llm_calls": output.get("llm_calls"),
            }))?;
            let mut out = std::io::stdout().lock();
            writeln!(out, "{text}").context("writing the results to stdout")
        }
        RunStatus::WaitingApproval => bail!(
            "run {} waits for an approval: decide it in the console or the API, and a worker \
             (vorg serve or vorg worker) continues the workflow from its checkpoint",
            run.id
        ),
        status => {
            let error = run.error.unwrap_or_else(|| status.to_string());
            bail!("run {} ended {status}: {error}", run.id)
        }
    }
}
