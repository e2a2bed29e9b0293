//! vorg's own job kinds: the demo run of the original API and a no-op for benchmarks.

use std::time::Duration;
use vorg_domain::LogLevel;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{BackgroundJob, JobContext, JobError, Registry};

/// `demo`: a few steps, each a log line and a pause, so a client can watch a run stream.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Demo {
    /// 1–1000, default 5.
    pub steps: Option<u64>,
    /// 0–60000, default 400.
    pub step_ms: Option<u64>,
    /// A step that fails with a retryable error on every attempt.
    pub fail_at: Option<u64>,
}

/// What a demo run answers.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DemoOutput {
    pub steps: u64,
}

fn bounded(name: &str, value: Option<u64>, default: u64, max: u64) -> Result<u64, JobError> {
    let n = value.unwrap_or(default);
    if n > max {
        return Err(JobError::Fatal(format!(
            "{name}: must be an integer from 0 to {max}"
        )));
    }
    Ok(n)
}

impl BackgroundJob for Demo {
    const KIND: &'static str = "demo";
    type Output = DemoOutput;
    type Context = ();

    async fn run(self, _: &(), ctx: &JobContext) -> Result<DemoOutput, JobError> {
        let steps = bounded("steps", self.steps, 5, 1000)?.max(1);
        let step_ms = bounded("step_ms", self.step_ms, 400, 60_000)?;
        ctx.log(
            LogLevel::Info,
            &format!("demo run started on worker {}", ctx.worker_id),
            json!({ "steps": steps, "worker": ctx.worker_id }),
        )
        .await?;
        for step in 1..=steps {
            ctx.checkpoint().await?;
            ctx.sleep(Duration::from_millis(step_ms)).await?;
            if self.fail_at == Some(step) {
                return Err(JobError::Retryable(format!(
                    "step {step} failed (as asked)"
                )));
            }
            ctx.log(
                LogLevel::Info,
                &format!("step {step} of {steps} done"),
                json!({ "step": step }),
            )
            .await?;
        }
        Ok(DemoOutput { steps })
    }
}

/// `noop`: does nothing; measures the queue itself.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Noop;

impl BackgroundJob for Noop {
    const KIND: &'static str = "noop";
    const MAX_ATTEMPTS: i64 = 1;
    type Output = ();
    type Context = ();

    async fn run(self, _: &(), _: &JobContext) -> Result<(), JobError> {
        Ok(())
    }
}

/// The registry with every built-in kind.
pub fn registry() -> Registry {
    Registry::new().job::<Demo>(()).job::<Noop>(())
}
