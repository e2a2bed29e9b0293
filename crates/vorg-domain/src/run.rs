//! Run statuses and their rules.

use crate::names::names;

names! {
    /// Where a run is in its life. Terminal statuses never change again.
    pub enum RunStatus / UnknownStatus ("status") {
        Queued = "queued",
        Running = "running",
        WaitingApproval = "waiting_approval",
        Succeeded = "succeeded",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

impl RunStatus {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled
        )
    }
}
