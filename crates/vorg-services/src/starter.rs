//! Who started a run, and so what the run may do. A run acts with the intersection of its
//! starter's permissions, model allow-list and budgets and its personas': a persona never
//! lends a caller a model, a tool or a budget the caller does not have.

use serde::{Deserialize, Serialize};
use vorg_domain::{Permission, Permissions, Role};
use vorg_jobs::JobError;
use vorg_llm::CallContext;
use vorg_store::{Store, StoreError};

/// Who asked for a run, as recorded in its job's payload when it was queued: the API
/// records the user, the roles in force for the request (a token's narrowed roles) and the
/// token; a run started on the command line has none of them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Requester {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_roles: Option<Vec<Role>>,
    /// The permissions in force for the request (a token's may be fewer than its roles').
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Permission>>)]
    pub requested_permissions: Option<Permissions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_token_id: Option<i64>,
}

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
    /// The permissions in force: those recorded (or the recorded roles') that the user's
    /// roles still grant. `None` for a command-line run.
    pub permissions: Option<Permissions>,
}

impl Starter {
    /// Reads the starter a run's job recorded: the roles recorded that the user still holds
    /// (a deleted user's run may do nothing on their behalf).
    pub async fn load(store: &Store, requester: &Requester) -> Result<Starter, JobError> {
        let Some(user_id) = requester.requested_by else {
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
        // The recorded roles the user still covers, and the recorded permissions (or the
        // recorded roles') the user's roles still grant.
        let (roles, permissions) = match &requester.requested_roles {
            Some(recorded) => {
                vorg_store::narrow_token(recorded, requester.requested_permissions, &held)
            }
            None => (held.clone(), Permissions::of_roles(&held)),
        };
        Ok(Starter {
            user_id: Some(user_id),
            email,
            token_id: requester.requested_token_id,
            permissions: Some(permissions),
            roles: Some(roles),
        })
    }

    /// Whether the starter holds `permission` (always, for a command-line run).
    pub fn may(&self, permission: Permission) -> bool {
        self.permissions.is_none_or(|p| p.contains(permission))
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
