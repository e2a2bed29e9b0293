//! The audit log: every mutation writes a row (`audit`), admins read them (`GET /audit`).

use axum::{Json, extract::State};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use vorg_store::{AuditEntry, NewAuditEntry};

use crate::{
    AppState,
    auth::CurrentUser,
    error::ApiResult,
    extract::ApiQuery,
    pagination::{PageQuery, Paged},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit))
}

/// Records a mutation by `actor` (user id, label). A failure to record is logged, never
/// turned into a failed request: the mutation has already happened.
pub async fn audit(
    state: &AppState,
    request_id: Option<String>,
    actor: (i64, &str),
    action: &'static str,
    target: Option<String>,
    detail: serde_json::Value,
) {
    let entry = NewAuditEntry {
        actor_user_id: Some(actor.0),
        actor: actor.1.to_owned(),
        action,
        target,
        detail,
        request_id,
    };
    if let Err(e) = state.store.record_audit(entry).await {
        tracing::error!(error = %e, action, "could not write the audit log");
    }
}

/// [`audit`] for an authenticated caller.
pub async fn audit_as(
    state: &AppState,
    user: &CurrentUser,
    action: &'static str,
    target: Option<String>,
    detail: serde_json::Value,
) {
    audit(
        state,
        user.request_id.clone(),
        (user.id, &user.email),
        action,
        target,
        detail,
    )
    .await
}

#[derive(Serialize, ToSchema)]
pub struct AuditView {
    id: i64,
    actor_user_id: Option<i64>,
    /// Who acted: an e-mail, or `cli` for the command line.
    actor: String,
    /// What was done, e.g. `user.role.grant`.
    action: String,
    /// What it was done to, e.g. `user:3`.
    target: Option<String>,
    detail: serde_json::Value,
    request_id: Option<String>,
    created_at: DateTime<Utc>,
}

impl From<AuditEntry> for AuditView {
    fn from(e: AuditEntry) -> Self {
        AuditView {
            id: e.id,
            actor_user_id: e.actor_user_id,
            actor: e.actor,
            action: e.action,
            target: e.target,
            detail: e.detail.0,
            request_id: e.request_id,
            created_at: e.created_at,
        }
    }
}

/// The audit log, newest first, paginated with `limit` and `cursor`.
#[utoipa::path(get, path = "/audit", tag = "admin", params(PageQuery),
    responses((status = 200, description = "A page of audit rows", body = Paged<AuditView>)))]
pub async fn list_audit(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> ApiResult<Json<Paged<AuditView>>> {
    let page = query.page()?;
    let rows = state.store.list_audit(page).await?;
    Ok(Json(Paged::new(rows, page, |r| r.id, AuditView::from)))
}
