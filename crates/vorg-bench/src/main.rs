//! `vorg-bench`: the load generators `make bench` drives (bench/run.py).
//!
//! - `queue`: enqueues no-op jobs into a fresh database and measures how fast W workers
//!   claim and complete them (the job queue alone, no HTTP).
//! - `sse`: opens N concurrent SSE connections to one run's stream and measures, for each
//!   event received live, the delay from the row's timestamp to its arrival.
//! - `engine`: the workflow engines' own cost per step: a `--steps`-step DAG chain and a
//!   graph looping `--steps` times, with model turns that answer at once and every graph
//!   checkpoint written to the database (no gateway, no run log).
//! - `rate`: a fixed-rate HTTP load (`rate.rs`), for latency at a given rate.
#![allow(clippy::disallowed_methods)] // a load generator spawns freely

mod rate;

use std::{sync::Arc, time::Duration};
use vorg_domain::LogLevel;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
    sync::Mutex,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Job throughput: `--jobs` no-op jobs, `--workers` claim loops.
    Queue {
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value_t = 5000)]
        jobs: usize,
        #[arg(long, default_value_t = 4)]
        workers: usize,
    },
    /// Fills a database for the console's bench: `--runs` runs (today), `--usage` usage
    /// events spread over them, and one run with `--log-lines` log lines (its id printed).
    Seed {
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value_t = 10_000)]
        runs: usize,
        #[arg(long, default_value_t = 100_000)]
        usage: usize,
        #[arg(long, default_value_t = 10_000)]
        log_lines: usize,
    },
    /// Engine overhead per step, checkpoint writes included.
    Engine {
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value_t = 1000)]
        steps: usize,
    },
    /// Fixed-rate load: the raw HTTP/1.1 request in `--request-file`, `--rate` a second for
    /// `--seconds`, over at most `--connections` keep-alive connections.
    Rate {
        /// host:port.
        #[arg(long)]
        addr: String,
        #[arg(long)]
        request_file: std::path::PathBuf,
        #[arg(long, default_value_t = 1000)]
        rate: u64,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 64)]
        connections: usize,
    },
    /// SSE fan-out: `--clients` connections on `/streams/runs/{run}`.
    Sse {
        /// host:port of vorg.
        #[arg(long)]
        addr: String,
        #[arg(long)]
        token: String,
        #[arg(long)]
        run: i64,
        #[arg(long, default_value_t = 1000)]
        clients: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::Rate {
            addr,
            request_file,
            rate,
            seconds,
            connections,
        } => {
            let request = std::fs::read(&request_file)
                .with_context(|| format!("reading {}", request_file.display()))?;
            rate::run(&addr, request, rate, seconds, connections).await
        }
        Cmd::Queue {
            database_url,
            jobs,
            workers,
        } => queue(&database_url, jobs, workers).await,
        Cmd::Engine {
            database_url,
            steps,
        } => engine(&database_url, steps).await,
        Cmd::Seed {
            database_url,
            runs,
            usage,
            log_lines,
        } => seed(&database_url, runs, usage, log_lines).await,
        Cmd::Sse {
            addr,
            token,
            run,
            clients,
        } => sse(&addr, &token, run, clients).await,
    }
}

async fn queue(url: &str, jobs: usize, workers: usize) -> anyhow::Result<()> {
    let store = vorg_store::Store::connect_and_migrate(url).await?;
    for _ in 0..jobs {
        store
            .enqueue_job("noop", serde_json::Value::Null, 1)
            .await?;
    }
    let tracker = TaskTracker::new();
    let stop = CancellationToken::new();
    store.start_listener(&tracker, stop.clone()).await?;
    let started = std::time::Instant::now();
    for _ in 0..workers {
        let mut cfg = vorg_jobs::WorkerConfig::new(1);
        cfg.poll = Duration::from_millis(20);
        vorg_jobs::Worker::new(store.clone(), vorg_jobs::builtin::registry(), cfg)
            .spawn(&tracker, stop.clone());
    }
    loop {
        if store.job_counts().await?.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    stop.cancel();
    tracker.close();
    tracker.wait().await;
    println!(
        "{}",
        serde_json::json!({ "jobs": jobs, "workers": workers, "seconds": secs,
                            "jobs_per_s": (jobs as f64 / secs).round() })
    );
    Ok(())
}

async fn seed(url: &str, runs: usize, usage: usize, log_lines: usize) -> anyhow::Result<()> {
    let store = vorg_store::Store::connect_and_migrate(url).await?;
    let mut ids = Vec::with_capacity(runs);
    for i in 0..runs {
        let run = vorg_jobs::BackgroundJob::start(
            &vorg_jobs::builtin::Noop,
            &store,
            vorg_jobs::RunMeta {
                run_type: Some(if i % 3 == 0 { "meeting" } else { "workflow" }),
                summary: Some("seeded"),
                ..vorg_jobs::RunMeta::default()
            },
        )
        .await?;
        ids.push(run.id);
    }
    let actors = [
        "ceo.org.v1",
        "cto.org.v1",
        "eng.backend.v1",
        "growth.lead.v1",
    ];
    let models = ["gpt-4o-mini", "claude-haiku-4-5", "sim-1"];
    let mut done = 0;
    while done < usage {
        let n = (usage - done).min(1000);
        let rows: Vec<vorg_store::NewUsage> = (done..done + n)
            .map(|i| vorg_store::NewUsage {
                run_id: ids.get(i % ids.len().max(1)).copied(),
                actor: actors[i % actors.len()].to_owned(),
                user_id: None,
                token_id: None,
                provider: "openai".to_owned(),
                model: models[i % models.len()].to_owned(),
                prompt_tokens: 500,
                completion_tokens: 120,
                cache_read_tokens: 0,
                cache_write_tokens: 0,
                cost_micro_usd: 150 + (i % 50) as i64,
                priced: true,
                estimated: false,
                latency_ms: 300,
                streamed: false,
                status: "ok",
                error: None,
                charge: None,
            })
            .collect();
        store.record_usage_batch(&rows).await?;
        done += n;
    }
    let log_run = vorg_jobs::BackgroundJob::start(
        &vorg_jobs::builtin::Noop,
        &store,
        vorg_jobs::RunMeta {
            run_type: Some("demo"),
            summary: Some("a long log"),
            ..vorg_jobs::RunMeta::default()
        },
    )
    .await?;
    for i in 0..log_lines {
        store
            .append_run_log(
                log_run.id,
                LogLevel::Info,
                &format!("line {i}: a step of a long run, with some detail to render"),
                serde_json::json!({}),
            )
            .await?;
    }
    println!(
        "{}",
        serde_json::json!({ "log_run_id": log_run.id, "runs": runs, "usage": usage })
    );
    Ok(())
}

/// A host whose turns answer at once and whose checkpoints are rows of `run_id`.
struct InstantHost {
    store: vorg_store::Store,
    run_id: i64,
}

impl vorg_workflow::Runtime for InstantHost {
    fn ask<'a>(
        &'a self,
        _ask: vorg_workflow::Ask<'a>,
    ) -> vorg_workflow::BoxFuture<'a, Result<String, vorg_workflow::StepError>> {
        Box::pin(async { Ok("ok".to_owned()) })
    }

    fn checkpoint<'a>(
        &'a self,
        c: &'a vorg_workflow::Checkpoint,
    ) -> vorg_workflow::BoxFuture<'a, Result<(), vorg_workflow::StepError>> {
        Box::pin(async move {
            self.store
                .save_checkpoint(
                    self.run_id,
                    i64::from(c.steps),
                    &c.node,
                    c.next.as_deref(),
                    &c.state,
                )
                .await
                .map_err(|e| vorg_workflow::StepError::Failed(e.to_string()))
        })
    }
}

async fn engine(url: &str, steps: usize) -> anyhow::Result<()> {
    let store = vorg_store::Store::connect_and_migrate(url).await?;
    let run = vorg_jobs::BackgroundJob::start(
        &vorg_jobs::builtin::Noop,
        &store,
        vorg_jobs::RunMeta {
            run_type: Some("bench"),
            summary: None,
            ..vorg_jobs::RunMeta::default()
        },
    )
    .await?;
    let host = InstantHost {
        store: store.clone(),
        run_id: run.id,
    };
    let mut dag = String::from("engine: dag\nname: chain\nsteps:\n");
    for i in 0..steps {
        let dep = if i == 0 {
            String::new()
        } else {
            format!(", depends_on: [s{}]", i - 1)
        };
        dag.push_str(&format!(
            "  - {{ id: s{i}, agent: a, prompt: \"Step {i}\"{dep} }}\n"
        ));
    }
    let graph = format!(
        "engine: graph\nname: loop\nstate: {{ n: integer, last: string }}\nstart: w\nmax_steps: {}\n\
         nodes:\n  - {{ id: w, agent: a, prompt: \"{{{{ state.n }}}}\", output: last, increment: [n], \
         branches: [{{ when: \"state.n < {steps}\", to: w }}, {{ to: END }}] }}\n",
        steps + 1
    );
    let mut out = serde_json::json!({ "steps": steps });
    for (name, text) in [("dag", dag), ("graph", graph)] {
        let wf = vorg_workflow::validate(&text).map_err(|p| anyhow::anyhow!("{name}: {}", p[0]))?;
        let started = std::time::Instant::now();
        let outcome = vorg_workflow::run(&wf, &serde_json::json!({}), &host).await;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let ok = match &outcome {
            vorg_workflow::RunOutcome::Dag(d) => d.succeeded(),
            vorg_workflow::RunOutcome::Graph(g) => {
                g.status == vorg_workflow::GraphStatus::Completed && g.steps as usize == steps
            }
            _ => false,
        };
        anyhow::ensure!(ok, "{name} did not complete: {outcome:?}");
        out[name] = serde_json::json!({ "wall_ms": (ms * 10.0).round() / 10.0,
            "per_step_ms": (ms / steps as f64 * 1000.0).round() / 1000.0 });
    }
    anyhow::ensure!(
        store.list_checkpoints(run.id, 0, i64::MAX).await?.len() == steps,
        "one checkpoint per graph iteration"
    );
    println!("{out}");
    Ok(())
}

/// One client: a raw HTTP/1.1 request, then `data:` lines parsed for their `ts`.
async fn client(
    addr: String,
    request: Arc<String>,
    delays: Arc<Mutex<Vec<f64>>>,
    connected: Arc<std::sync::atomic::AtomicUsize>,
) -> anyhow::Result<()> {
    let mut stream = TcpStream::connect(&addr).await.context("connect")?;
    stream.write_all(request.as_bytes()).await?;
    let since = chrono::Utc::now();
    let mut lines = BufReader::new(stream).lines();
    let status = lines.next_line().await?.unwrap_or_default();
    anyhow::ensure!(status.contains(" 200 "), "status line {status:?}");
    connected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut mine = Vec::new();
    while let Some(line) = lines.next_line().await? {
        if line.starts_with("event: done") {
            break;
        }
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(data) else {
            continue;
        };
        let Some(ts) = v["ts"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        else {
            continue;
        };
        // Only events written after this client connected count as live deliveries.
        if ts > since {
            let delay = chrono::Utc::now().signed_duration_since(ts);
            mine.push(delay.num_microseconds().unwrap_or(0) as f64 / 1000.0);
        }
    }
    delays.lock().await.extend(mine);
    Ok(())
}

async fn sse(addr: &str, token: &str, run: i64, clients: usize) -> anyhow::Result<()> {
    let request = Arc::new(format!(
        "GET /streams/runs/{run}?format=json HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    ));
    let delays = Arc::new(Mutex::new(Vec::new()));
    let connected = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut handles = Vec::with_capacity(clients);
    let started = std::time::Instant::now();
    for i in 0..clients {
        handles.push(tokio::spawn(client(
            addr.to_owned(),
            request.clone(),
            delays.clone(),
            connected.clone(),
        )));
        if i % 200 == 199 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let ramp = started.elapsed().as_secs_f64();
    let mut failures = 0;
    let mut first_error = None;
    for h in handles {
        if let Err(e) = h.await? {
            failures += 1;
            first_error.get_or_insert_with(|| e.to_string());
        }
    }
    let mut d = delays.lock().await.clone();
    d.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        d.get(((d.len() as f64 * p) as usize).min(d.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "{}",
        serde_json::json!({
            "clients": clients, "connected": connected.load(std::sync::atomic::Ordering::Relaxed),
            "failures": failures, "first_error": first_error, "ramp_s": ramp,
            "deliveries": d.len(), "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": d.last(),
        })
    );
    Ok(())
}
