//! What an API token may spend and how fast: the limits an admin (or the token's owner)
//! sets on a key given to an agent. All optional; every one that is set applies, beside the
//! organization's own budgets and model rules (the tightest wins).

use serde::{Deserialize, Serialize};

/// A token's own limits, stored with the token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenLimits {
    /// Model patterns the token may call (`model`, `provider/model`, `provider/*`, `*`).
    /// Absent: any model its owner may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    /// Spend per UTC day, in micro-dollars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_budget_micro_usd: Option<i64>,
    /// Spend per calendar month (UTC), in micro-dollars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_budget_micro_usd: Option<i64>,
    /// Requests per minute, over every route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
    /// Model tokens (prompt + completion) per minute through the gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<u64>,
    /// Client addresses the token works from (addresses or CIDR ranges). Absent: anywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_ips: Option<Vec<String>>,
}

impl TokenLimits {
    /// Whether no limit is set.
    pub fn is_empty(&self) -> bool {
        *self == TokenLimits::default()
    }
}
