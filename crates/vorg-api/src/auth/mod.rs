//! Authentication: who is calling. JWTs from `/auth/login`, API tokens from `/auth/tokens`,
//! both as `Authorization: Bearer …`. Authorization (what they may do) is in `access`.

mod jwt;
mod password;
mod ratelimit;
pub(crate) mod routes;
pub(crate) mod tokens;

use axum::{
    extract::FromRequestParts,
    http::{HeaderMap, header, request::Parts},
};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::sync::Arc;

use vorg_domain::{Permission, Permissions, Role, TokenLimits};
use vorg_store::StoreError;

pub use jwt::{Claims, JwtKeys, StreamParent};
pub use password::PasswordHasher;
pub use ratelimit::AuthLimiter;
pub use tokens::generate_api_token;

use crate::{AppState, error::ApiError};

/// The prefix of every API token, so a token is recognisable (and scannable) as vorg's.
pub const API_TOKEN_PREFIX: &str = "vorg_";

/// How the caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    Jwt,
    /// A short-lived `/streams/*` token from the query string; `parent` is the API token or
    /// session it was minted with (it dies with it).
    StreamToken {
        parent: Option<i64>,
    },
    ApiToken {
        token_id: i64,
    },
    /// The console's session cookie (an API token kept in an HttpOnly cookie); requests that
    /// change state must carry [`CSRF_HEADER`].
    Session {
        token_id: i64,
    },
}

/// The HttpOnly, SameSite=Strict cookie holding a browser session.
pub const SESSION_COOKIE: &str = "vorg_session";

/// The header every cookie-authenticated request that changes state must carry (any value):
/// a page on another origin cannot add it to a request the browser sends with the cookie.
pub const CSRF_HEADER: &str = "x-vorg-csrf";

/// The name of a session's API token (listed with the user's tokens, revocable there).
pub const SESSION_TOKEN_NAME: &str = "console session";

/// The value of the session cookie in `headers`, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == SESSION_COOKIE && !v.is_empty()).then_some(v)
        })
}

/// The authenticated caller, put in the request by the `authorize` middleware.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub id: i64,
    pub email: String,
    /// The roles in force for this request (a token's roles the owner still covers).
    pub roles: Vec<Role>,
    /// What this request may do: the roles' permissions, or a token's own permissions
    /// narrowed to its owner's.
    pub permissions: Permissions,
    /// An API token's own limits (model allow-list, budgets, rates, addresses).
    pub limits: Option<Arc<TokenLimits>>,
    pub credential: Credential,
    pub request_id: Option<String>,
    /// When the credential stops working (a JWT's `exp`, an API token's or session's
    /// expiry); `None`: it does not expire.
    pub expires_at: Option<DateTime<Utc>>,
}

impl CurrentUser {
    pub fn is_admin(&self) -> bool {
        self.roles.contains(&Role::Admin)
    }

    /// Whether this request holds `permission`.
    pub fn may(&self, permission: Permission) -> bool {
        self.permissions.contains(permission)
    }

    /// The API token (or session) this request came with.
    pub fn token_id(&self) -> Option<i64> {
        match self.credential {
            Credential::ApiToken { token_id } | Credential::Session { token_id } => Some(token_id),
            Credential::StreamToken { parent } => parent,
            Credential::Jwt => None,
        }
    }

    /// The caller as the starter of a run: the run acts within the roles in force for this
    /// request (`vorg_services::Starter` reads them back).
    pub fn requester(&self) -> vorg_services::Requester {
        vorg_services::Requester {
            requested_by: Some(self.id),
            requested_roles: Some(self.roles.clone()),
            requested_permissions: Some(self.permissions),
            requested_token_id: self.token_id(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<CurrentUser>()
            .cloned()
            .ok_or(ApiError::Unauthenticated("authentication required"))
    }
}

/// The hex SHA-256 of an API token secret: what the store keeps and looks up.
pub fn hash_api_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `access_token` query parameter, if any.
pub fn query_token(query: Option<&str>) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == "access_token" && !v.is_empty()).then(|| v.to_owned())
    })
}

/// Resolves the caller: the bearer credential in `headers`, or else, where the route allows
/// it (`/streams/*`), a stream token from the query string.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    stream_token: Option<String>,
) -> Result<CurrentUser, ApiError> {
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        if let Some(token) = stream_token {
            let claims = state.jwt.verify_stream(&token)?;
            let parent = claims.tid;
            if let Some(token_id) = parent
                && !state.store.token_is_live(token_id).await?
            {
                return Err(ApiError::Unauthenticated(
                    "the stream token's API token or session was revoked or has expired",
                ));
            }
            let credential = Credential::StreamToken { parent };
            return user_from_claims(state, claims, credential, request_id).await;
        }
        if let Some(token) = session_cookie(headers).filter(|t| t.starts_with(API_TOKEN_PREFIX)) {
            let owner = state
                .store
                .authenticate_token(&hash_api_token(token))
                .await?
                .ok_or(ApiError::Unauthenticated(
                    "the session has expired or was logged out; log in again",
                ))?;
            let token_id = owner.token_id;
            return Ok(from_token(
                owner,
                Credential::Session { token_id },
                request_id,
            ));
        }
        return Err(ApiError::Unauthenticated(
            "missing Authorization header (expected: Bearer <token>) or session cookie",
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthenticated(
            "malformed Authorization header (expected: Bearer <token>)",
        ))?;

    if token.starts_with(API_TOKEN_PREFIX) {
        let owner = state
            .store
            .authenticate_token(&hash_api_token(token))
            .await?
            .ok_or(ApiError::Unauthenticated(
                "invalid, expired or revoked API token",
            ))?;
        let token_id = owner.token_id;
        return Ok(from_token(
            owner,
            Credential::ApiToken { token_id },
            request_id,
        ));
    }

    let claims = state.jwt.verify(token)?;
    user_from_claims(state, claims, Credential::Jwt, request_id).await
}

fn from_token(
    owner: vorg_store::TokenOwner,
    credential: Credential,
    request_id: Option<String>,
) -> CurrentUser {
    CurrentUser {
        id: owner.user_id,
        email: owner.email,
        roles: owner.roles,
        permissions: owner.permissions,
        limits: (!owner.limits.is_empty()).then_some(owner.limits),
        credential,
        request_id,
        expires_at: owner.expires_at,
    }
}

async fn user_from_claims(
    state: &AppState,
    claims: Claims,
    credential: Credential,
    request_id: Option<String>,
) -> Result<CurrentUser, ApiError> {
    let id: i64 = claims
        .sub
        .parse()
        .map_err(|_| ApiError::Unauthenticated("invalid token subject"))?;
    let roles = match state.store.current_roles(id).await {
        Ok(roles) => roles,
        Err(StoreError::NotFound) => {
            return Err(ApiError::Unauthenticated(
                "the token's user no longer exists",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    // A stream token lives as long as what it was minted with (`pexp`), not its own minute:
    // an open stream is closed when that ends.
    let expires_at = match credential {
        Credential::StreamToken { .. } => claims.pexp,
        _ => Some(claims.exp),
    }
    .and_then(|t| DateTime::from_timestamp(t, 0));
    Ok(CurrentUser {
        id,
        email: claims.email.unwrap_or_default(),
        permissions: Permissions::of_roles(&roles),
        limits: None,
        roles,
        credential,
        request_id,
        expires_at,
    })
}
