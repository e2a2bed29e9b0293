//! What a running job sees.

use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;
use vorg_domain::LogLevel;
use vorg_store::{Job, Store};

/// How a job can end other than with an output.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The run was cancelled by a user; it ends `cancelled`.
    #[error("cancelled")]
    Cancelled,
    /// The worker stopped (shutdown or lost lease): the job is released, not failed.
    #[error("interrupted")]
    Interrupted,
    /// The run waits for an approval: it is parked (`waiting_approval`) and runs again from
    /// the start (or its checkpoint) once the approval is decided or expires.
    #[error("waiting for approval {0}")]
    WaitingApproval(i64),
    /// A failure worth another attempt (a timeout, a 5xx upstream).
    #[error("{0}")]
    Retryable(String),
    /// A failure no retry can fix (bad input).
    #[error("{0}")]
    Fatal(String),
}

/// A claimed job being executed.
pub struct JobContext {
    pub store: Store,
    pub job: Job,
    /// The worker executing this attempt.
    pub worker_id: String,
    /// Cancelled when the worker must stop this job (shutdown after the grace period, or the
    /// lease was lost to another worker).
    pub(crate) stop: CancellationToken,
    /// When the run's cancellation flag was last read (see [`JobContext::checkpoint`]).
    pub(crate) cancel_checked: std::sync::Mutex<Option<std::time::Instant>>,
}

/// How often step boundaries read the run's cancellation flag: a cancel takes effect at the
/// first boundary after it, at most this much later, and tight loops of short steps do not
/// pay a query each.
pub const CANCEL_CHECK_INTERVAL: Duration = Duration::from_millis(200);

impl JobContext {
    pub fn input(&self) -> &Value {
        &self.job.payload.0
    }

    pub fn run_id(&self) -> Option<i64> {
        self.job.run_id
    }

    /// Appends a line to the run's log (a no-op for jobs without a run). A failure to write
    /// is retryable: the log is part of the run's record.
    pub async fn log(&self, level: LogLevel, message: &str, fields: Value) -> Result<(), JobError> {
        if let Some(run_id) = self.job.run_id {
            self.store
                .append_run_log(run_id, level, message, fields)
                .await
                .map_err(|e| JobError::Retryable(format!("writing the run log: {e}")))?;
        }
        Ok(())
    }

    /// A step boundary: stops here when the run was cancelled or the worker must stop.
    pub async fn checkpoint(&self) -> Result<(), JobError> {
        if self.stop.is_cancelled() {
            return Err(JobError::Interrupted);
        }
        let due = {
            let mut last = self
                .cancel_checked
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let now = std::time::Instant::now();
            let due = last.is_none_or(|t| now.duration_since(t) >= CANCEL_CHECK_INTERVAL);
            if due {
                *last = Some(now);
            }
            due
        };
        if let Some(run_id) = self.job.run_id.filter(|_| due) {
            let cancelled = self
                .store
                .cancel_requested(run_id)
                .await
                .map_err(|e| JobError::Retryable(format!("checking for cancellation: {e}")))?;
            if cancelled {
                return Err(JobError::Cancelled);
            }
        }
        Ok(())
    }

    /// The decision on `approval_id`: `approved`, `rejected`, `expired` or `auto_approved`;
    /// while it is pending, parks the run (`Err(WaitingApproval)`), which the decision
    /// resumes.
    pub async fn wait_for_approval(
        &self,
        approval_id: i64,
    ) -> Result<vorg_domain::ApprovalStatus, JobError> {
        let approval = self
            .store
            .get_approval(approval_id)
            .await
            .map_err(|e| JobError::Retryable(format!("reading approval {approval_id}: {e}")))?;
        if approval.status == vorg_domain::ApprovalStatus::Pending {
            return Err(JobError::WaitingApproval(approval_id));
        }
        Ok(approval.status)
    }

    /// Sleeps, ending early (with `Interrupted`) when the worker must stop.
    pub async fn sleep(&self, duration: Duration) -> Result<(), JobError> {
        tokio::select! {
            _ = tokio::time::sleep(duration) => Ok(()),
            _ = self.stop.cancelled() => Err(JobError::Interrupted),
        }
    }
}
