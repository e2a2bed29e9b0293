//! `/users`: the admin's view of accounts and their roles. The last admin cannot be demoted.

use axum::{Json, extract::State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use vorg_domain::{Role, UnknownRole};
use vorg_store::{StoreError, UserWithRoles};

use crate::{
    AppState,
    audit::audit_as,
    auth::CurrentUser,
    error::{ApiError, ApiResult},
    extract::{ApiJson, ApiPath, ApiQuery},
    pagination::{PageQuery, Paged},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users))
        .routes(routes!(grant_role))
        .routes(routes!(revoke_role))
}

#[derive(Serialize, ToSchema)]
pub struct UserView {
    id: i64,
    email: String,
    roles: Vec<Role>,
    is_admin: bool,
    created_at: DateTime<Utc>,
    last_login_at: Option<DateTime<Utc>>,
}

impl From<UserWithRoles> for UserView {
    fn from(u: UserWithRoles) -> Self {
        UserView {
            id: u.user.id,
            email: u.user.email,
            is_admin: u.roles.contains(&Role::Admin),
            roles: u.roles,
            created_at: u.user.created_at,
            last_login_at: u.user.last_login_at,
        }
    }
}

fn parse_role(field: &str, raw: &str) -> ApiResult<Role> {
    raw.parse()
        .map_err(|e: UnknownRole| ApiError::invalid(field, e.to_string()))
}

fn user_not_found(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::NotFound("user"),
        other => other.into(),
    }
}

/// Grants `role` to user `id` and audits it; shared by both grant routes.
pub(crate) async fn grant(
    state: &AppState,
    actor: &CurrentUser,
    id: i64,
    role: Role,
) -> ApiResult<UserWithRoles> {
    let added = state
        .store
        .grant_role(id, role)
        .await
        .map_err(user_not_found)?;
    if added {
        audit_as(
            state,
            actor,
            "user.role.grant",
            Some(format!("user:{id}")),
            serde_json::json!({ "role": role }),
        )
        .await;
    }
    state.store.get_user(id).await.map_err(user_not_found)
}

/// Users, newest first, with their roles.
#[utoipa::path(get, path = "/users", tag = "admin", params(PageQuery),
    responses((status = 200, description = "A page of users", body = Paged<UserView>)))]
pub async fn list_users(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> ApiResult<Json<Paged<UserView>>> {
    let page = query.page()?;
    let users = state.store.list_users(page).await?;
    Ok(Json(Paged::new(users, page, |u| u.user.id, UserView::from)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRoleRequest {
    /// One of admin, approver, engineer, growth, viewer.
    role: String,
}

/// Grant a role (no change when the user holds it already).
#[utoipa::path(post, path = "/users/{id}/roles", tag = "admin", request_body = GrantRoleRequest,
    params(("id" = i64, Path, description = "User id")),
    responses((status = 200, description = "The user with their roles", body = UserView)))]
pub async fn grant_role(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<GrantRoleRequest>,
) -> ApiResult<Json<UserView>> {
    let role = parse_role("role", &body.role)?;
    Ok(Json(grant(&state, &user, id, role).await?.into()))
}

/// Revoke a role. Revoking `admin` from the last admin is refused with 409.
#[utoipa::path(delete, path = "/users/{id}/roles/{role}", tag = "admin",
    params(("id" = i64, Path, description = "User id"), ("role" = String, Path, description = "Role name")),
    responses((status = 200, description = "The user with their remaining roles", body = UserView)))]
pub async fn revoke_role(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath((id, role)): ApiPath<(i64, String)>,
) -> ApiResult<Json<UserView>> {
    let role = parse_role("role", &role)?;
    let removed = state
        .store
        .revoke_role(id, role)
        .await
        .map_err(user_not_found)?;
    if removed {
        audit_as(
            &state,
            &user,
            "user.role.revoke",
            Some(format!("user:{id}")),
            serde_json::json!({ "role": role }),
        )
        .await;
    }
    Ok(Json(
        state
            .store
            .get_user(id)
            .await
            .map_err(user_not_found)?
            .into(),
    ))
}
