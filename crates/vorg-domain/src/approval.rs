//! Where an approval is in its life: decided once, never after.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// An approval's status. `pending` is the only one that changes (to `approved`, `rejected`
/// or `expired`); `auto_approved` requests never waited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    AutoApproved,
    Pending,
    Approved,
    Rejected,
    Expired,
}

impl ApprovalStatus {
    pub const ALL: [ApprovalStatus; 5] = [
        ApprovalStatus::AutoApproved,
        ApprovalStatus::Pending,
        ApprovalStatus::Approved,
        ApprovalStatus::Rejected,
        ApprovalStatus::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::AutoApproved => "auto_approved",
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Rejected => "rejected",
            ApprovalStatus::Expired => "expired",
        }
    }

    /// Whether the request may go ahead (approved, by a person or by the policies).
    pub fn is_granted(self) -> bool {
        matches!(
            self,
            ApprovalStatus::Approved | ApprovalStatus::AutoApproved
        )
    }
}

impl fmt::Display for ApprovalStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a name that is not one of [`ApprovalStatus::ALL`].
#[derive(Debug, thiserror::Error)]
#[error(
    "unknown approval status {0:?}: expected one of auto_approved, pending, approved, rejected, expired"
)]
pub struct UnknownApprovalStatus(pub String);

impl FromStr for ApprovalStatus {
    type Err = UnknownApprovalStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ApprovalStatus::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| UnknownApprovalStatus(s.to_owned()))
    }
}

/// The database boundary: a row with a status this version does not know is an error, not
/// a silently wrong value.
impl TryFrom<String> for ApprovalStatus {
    type Error = UnknownApprovalStatus;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
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
