//! Who a call is for and what it reserved: the context the gateway, the budgets and the
//! usage writer share. A leaf module: it imports none of them.

/// Who a call is for, for usage and budgets.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    /// A readable label: an e-mail, a persona id, `system`.
    pub actor: String,
    pub user_id: Option<i64>,
    pub token_id: Option<i64>,
    pub run_id: Option<i64>,
    /// The persona the call speaks for (its `risk_limits.max_spend` is a budget).
    pub persona: Option<String>,
    /// The caller's roles, for the model allow-list (empty: not checked).
    pub roles: Vec<vorg_domain::Role>,
    /// The user a run's call is made for (their e-mail), when the actor is a persona: their
    /// `actor` budget applies too.
    pub on_behalf_of: Option<String>,
}

/// What a call holds on its budgets until it ends.
#[derive(Debug, Clone)]
pub struct Charge {
    pub hold: crate::ledger::Hold,
    pub warn_permille: i64,
}
