//! Who started a run, and so what the run may do. A run acts with the intersection of its
//! starter's permissions, model allow-list and budgets and its personas': a persona never
//! lends a caller a model, a tool or a budget the caller does not have.

use serde_json::Value;
use vorg_domain::{Permission, Role};
use vorg_jobs::JobError;
use vorg_llm::CallContext;
use vorg_store::{Store, StoreError};

/// The starter of a run, as far as the run needs to know.
#[derive(Debug, Clone, Default)]
pub struct Starter {
    pub user_id: Option<i64>,
    /// The starter's e-mail (their `actor` budget), when the run was started by a user.
    pub email: Option<String>,
    /// The API token the run was started with (its token budget applies).
    pub token_id: Option<i64>,
    /// The roles in force: those recorded when the run started (a token's narrowed roles)
    /// that the user still holds. `None`: a run started by the operator on the command line,
    /// which is not narrowed.
    pub roles: Option<Vec<Role>>,
}

impl Starter {
    /// Reads the starter from a run's input (`requested_by`, `requested_roles`,
    /// `requested_token_id`, written by the API when it enqueued the run).
    pub async fn load(store: &Store, input: &Value) -> Result<Starter, JobError> {
        let Some(user_id) = input.get("requested_by").and_then(Value::as_i64) else {
            return Ok(Starter::default());
        };
        let (email, held) = match store.get_user(user_id).await {
            Ok(u) => (Some(u.user.email), u.roles),
            // A deleted user's runs may do nothing on their behalf.
            Err(StoreError::NotFound) => (None, Vec::new()),
            Err(e) => {
                return Err(JobError::Retryable(format!(
                    "reading the run's starter: {e}"
                )));
            }
        };
        let roles = match input.get("requested_roles").and_then(Value::as_array) {
            Some(recorded) => recorded
                .iter()
                .filter_map(Value::as_str)
                .filter_map(|r| r.parse::<Role>().ok())
                .filter(|r| held.contains(r))
                .collect(),
            None => held,
        };
        Ok(Starter {
            user_id: Some(user_id),
            email,
            token_id: input.get("requested_token_id").and_then(Value::as_i64),
            roles: Some(roles),
        })
    }

    /// Whether the starter holds `permission` (always, for a command-line run).
    pub fn may(&self, permission: Permission) -> bool {
        self.roles
            .as_ref()
            .is_none_or(|roles| permission.granted_to(roles))
    }

    /// The gateway context of a call `actor` makes in run `run_id` for this starter: the
    /// starter's model allow-list (their roles), token budget and actor budget apply beside
    /// the persona's.
    pub fn call_context(
        &self,
        actor: &str,
        run_id: Option<i64>,
        persona: Option<&str>,
    ) -> CallContext {
        CallContext {
            actor: actor.to_owned(),
            user_id: self.user_id,
            token_id: self.token_id,
            run_id,
            persona: persona.map(str::to_owned),
            roles: self.roles.clone().unwrap_or_default(),
            on_behalf_of: self.email.clone(),
        }
    }
}
