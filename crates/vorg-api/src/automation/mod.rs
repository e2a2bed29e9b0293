//! The organization acting on its own, over HTTP: `/schedules`, `/triggers` (and the
//! public `/hooks/{hook_id}` they listen on) and `/webhooks` with their delivery logs.

mod schedules;
mod triggers;
mod webhooks;

use utoipa_axum::router::OpenApiRouter;
use vorg_automation::target::{StartError, Target};
use vorg_store::StoreError;

use crate::{
    AppState,
    auth::CurrentUser,
    error::{ApiError, FieldError},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(schedules::router())
        .merge(triggers::router())
        .merge(webhooks::router())
}

pub(crate) fn start_error(e: StartError) -> ApiError {
    match e {
        StartError::Invalid(list) => ApiError::Invalid(
            list.into_iter()
                .map(|p| FieldError::new(p.path, p.reason))
                .collect(),
        ),
        StartError::Store(e) => e.into(),
    }
}

/// Who a schedule or trigger acts for: the caller, or (for an admin) the user `owner`
/// names. Checks that the owner may start `target` and that the caller may too.
pub(crate) async fn owner_for(
    state: &AppState,
    user: &CurrentUser,
    owner: Option<&str>,
    target: &Target,
) -> Result<i64, ApiError> {
    if !user.may(target.permission()) {
        return Err(ApiError::Forbidden(target.permission()));
    }
    let Some(email) = owner.filter(|e| !e.eq_ignore_ascii_case(&user.email)) else {
        return Ok(user.id);
    };
    if !user.is_admin() {
        return Err(ApiError::invalid(
            "owner",
            "only an admin may make a schedule or trigger act for someone else",
        ));
    }
    let found = state
        .store
        .find_user_by_email(&email.to_lowercase())
        .await?
        .ok_or_else(|| ApiError::invalid("owner", format!("no user {email:?}")))?;
    let held = vorg_domain::Permissions::of_roles(&found.roles);
    if !held.contains(target.permission()) {
        return Err(ApiError::invalid(
            "owner",
            format!(
                "{email} does not hold {}, which starting this target needs",
                target.permission().as_str()
            ),
        ));
    }
    Ok(found.user.id)
}

/// A non-admin may change only what they own.
pub(crate) fn may_change(user: &CurrentUser, owner_id: Option<i64>) -> Result<(), ApiError> {
    if user.is_admin() || owner_id == Some(user.id) {
        Ok(())
    } else {
        Err(ApiError::Refused(
            "only its owner or an admin may change it".into(),
        ))
    }
}

pub(crate) fn not_found(what: &'static str) -> impl Fn(StoreError) -> ApiError {
    move |e| match e {
        StoreError::NotFound => ApiError::NotFound(what),
        other => other.into(),
    }
}

/// The e-mail of a user id, for views (`None` when the user is gone).
pub(crate) async fn email_of(state: &AppState, id: Option<i64>) -> Option<String> {
    match id {
        Some(id) => state.store.get_user(id).await.ok().map(|u| u.user.email),
        None => None,
    }
}

/// Checks a name: 1 to 100 characters, no control characters.
pub(crate) fn check_name(field: &'static str, name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            "must be 1 to 100 characters, without control characters",
        ));
    }
    Ok(())
}
