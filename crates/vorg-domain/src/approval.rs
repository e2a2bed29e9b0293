//! Where an approval is in its life: decided once, never after.

use crate::names::names;

names! {
    /// An approval's status. `pending` is the only one that changes (to `approved`,
    /// `rejected` or `expired`); `auto_approved` requests never waited.
    pub enum ApprovalStatus / UnknownApprovalStatus ("approval status") {
        AutoApproved = "auto_approved",
        Pending = "pending",
        Approved = "approved",
        Rejected = "rejected",
        Expired = "expired",
    }
}

impl ApprovalStatus {
    /// Whether the request may go ahead (approved, by a person or by the policies).
    pub fn is_granted(self) -> bool {
        matches!(
            self,
            ApprovalStatus::Approved | ApprovalStatus::AutoApproved
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn every_status_round_trips_and_unknown_ones_are_errors() {
        for s in ApprovalStatus::ALL {
            assert_eq!(s.as_str().parse::<ApprovalStatus>().unwrap(), s);
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert!(ApprovalStatus::try_from("maybe".to_owned()).is_err());
        assert!(ApprovalStatus::AutoApproved.is_granted());
        assert!(!ApprovalStatus::Expired.is_granted());
    }
}
