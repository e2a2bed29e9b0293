//! `/auth/tokens`: API tokens for agents and scripts. The secret is shown once, stored as a
//! SHA-256 hash, and carries a subset of its owner's roles.

use axum::{Json, extract::State, http::StatusCode};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use vorg_domain::{Permission, Role};
use vorg_store::{ApiToken, NewApiToken, StoreError};

use super::{API_TOKEN_PREFIX, CurrentUser, hash_api_token};
use crate::{
    AppState,
    audit::audit_as,
    error::{ApiError, ApiResult, FieldError},
    extract::{ApiJson, ApiPath},
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_token, list_tokens))
        .routes(routes!(revoke_token))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// A label for the token, 1 to 100 characters.
    name: String,
    /// Roles the token carries; each must be one the caller holds. Default: all of them.
    #[serde(default)]
    roles: Option<Vec<String>>,
    /// Lifetime in days (1 to 3650). Default: no expiry. A token minted with an expiring
    /// credential (a session, an expiring token) expires with it at the latest, unless the
    /// caller holds `manage_users`.
    #[serde(default)]
    expires_in_days: Option<i64>,
}

/// A token as listed (never with its secret).
#[derive(Serialize, ToSchema)]
pub struct TokenView {
    id: i64,
    name: String,
    /// The first characters of the secret, to recognise it.
    prefix: String,
    roles: Vec<Role>,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiToken> for TokenView {
    fn from(t: ApiToken) -> Self {
        TokenView {
            roles: t.role_list(),
            id: t.id,
            name: t.name,
            prefix: t.prefix,
            created_at: t.created_at,
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
            revoked_at: t.revoked_at,
        }
    }
}

/// A new token: `token` is the secret, shown this once.
#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    token: String,
    #[serde(flatten)]
    view: TokenView,
}

#[derive(Serialize, ToSchema)]
pub struct TokenList {
    items: Vec<TokenView>,
}

/// A new API token: the secret (shown once) and its displayable prefix.
pub fn generate_api_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("{API_TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let prefix = secret.chars().take(API_TOKEN_PREFIX.len() + 6).collect();
    (secret, prefix)
}

/// A new token's expiry: what was asked for, but never after the credential minting it
/// expires (a two-hour session must not mint a token that never expires), unless the caller
/// may manage users (an admin can issue long-lived tokens for agents).
fn capped_expiry(user: &CurrentUser, requested: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match user.expires_at {
        Some(parent) if !Permission::ManageUsers.granted_to(&user.roles) => {
            Some(requested.map_or(parent, |r| r.min(parent)))
        }
        _ => requested,
    }
}

/// Create an API token for the caller. The secret is in the answer and nowhere else.
#[utoipa::path(post, path = "/auth/tokens", tag = "auth", request_body = CreateTokenRequest,
    responses((status = 201, description = "Created; `token` is shown once", body = CreatedToken)))]
pub async fn create_token(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<CreateTokenRequest>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    let mut errors = Vec::new();
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        errors.push(FieldError::new("name", "must be 1 to 100 characters"));
    }
    let mut roles = Vec::new();
    for (i, raw) in body.roles.clone().unwrap_or_default().iter().enumerate() {
        match raw.parse::<Role>() {
            Ok(role) if user.roles.contains(&role) => roles.push(role),
            Ok(role) => errors.push(FieldError::new(
                format!("roles[{i}]"),
                format!("you do not hold the role {role}, so a token of yours cannot"),
            )),
            Err(e) => errors.push(FieldError::new(format!("roles[{i}]"), e.to_string())),
        }
    }
    if body.roles.is_none() {
        roles = user.roles.clone();
    }
    roles.sort();
    roles.dedup();
    if roles.is_empty() && errors.is_empty() {
        errors.push(FieldError::new("roles", "a token needs at least one role"));
    }
    let requested = match body.expires_in_days {
        None => None,
        Some(days @ 1..=3650) => Some(Utc::now() + Duration::days(days)),
        Some(_) => {
            errors.push(FieldError::new(
                "expires_in_days",
                "must be between 1 and 3650",
            ));
            None
        }
    };
    let expires_at = capped_expiry(&user, requested);
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let (secret, prefix) = generate_api_token();
    let token = state
        .store
        .create_token(NewApiToken {
            user_id: user.id,
            name,
            token_hash: &hash_api_token(&secret),
            prefix: &prefix,
            roles: &roles,
            expires_at,
        })
        .await?;
    audit_as(
        &state,
        &user,
        "token.create",
        Some(format!("token:{}", token.id)),
        serde_json::json!({ "name": token.name, "roles": roles }),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token: secret,
            view: token.into(),
        }),
    ))
}

/// The caller's API tokens, newest first, including revoked ones (never their secrets).
#[utoipa::path(get, path = "/auth/tokens", tag = "auth",
    responses((status = 200, description = "The caller's tokens", body = TokenList)))]
pub async fn list_tokens(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<Json<TokenList>> {
    let tokens = state.store.list_tokens(user.id).await?;
    Ok(Json(TokenList {
        items: tokens.into_iter().map(TokenView::from).collect(),
    }))
}

/// Revoke one of the caller's tokens; it stops working at once.
#[utoipa::path(delete, path = "/auth/tokens/{id}", tag = "auth",
    params(("id" = i64, Path, description = "Token id")),
    responses((status = 204, description = "Revoked")))]
pub async fn revoke_token(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    match state.store.revoke_token(id, Some(user.id)).await {
        Ok(token) => {
            audit_as(
                &state,
                &user,
                "token.revoke",
                Some(format!("token:{}", token.id)),
                serde_json::json!({ "name": token.name }),
            )
            .await;
            Ok(StatusCode::NO_CONTENT)
        }
        Err(StoreError::NotFound) => Err(ApiError::NotFound("token")),
        Err(e) => Err(e.into()),
    }
}
