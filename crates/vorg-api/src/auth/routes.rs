//! `/auth/*`: register, login, assign-role, me, permissions. Paths and answers of the
//! original API, plus vorg's additions.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use vorg_domain::{Email, Password, Permission, Role};
use vorg_store::{StoreError, UserWithRoles};

use super::{Credential, CurrentUser};
use crate::{
    AppState,
    access::{Access, ROUTES},
    audit::audit,
    error::{ApiError, ApiResult, FieldError},
    extract::ApiJson,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(status))
        .routes(routes!(assign_role))
        .routes(routes!(me))
        .routes(routes!(permissions))
        .routes(routes!(stream_token))
}

#[derive(Serialize, ToSchema)]
pub struct StreamToken {
    /// Pass as `?access_token=` to `/streams/*` (for `EventSource`, which cannot send headers).
    token: String,
    expires_in: i64,
}

/// A 60-second token that authenticates `/streams/*` from the query string, and nothing else.
#[utoipa::path(post, path = "/auth/stream-token", tag = "auth",
    responses((status = 200, description = "A stream token", body = StreamToken)))]
pub async fn stream_token(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<Json<StreamToken>> {
    let parent = super::StreamParent {
        token_id: user.token_id(),
        expires_at: user.expires_at.map(|t| t.timestamp()),
    };
    Ok(Json(StreamToken {
        token: state.jwt.issue_stream(user.id, &user.email, parent)?,
        expires_in: super::jwt::STREAM_TOKEN_SECS,
    }))
}

pub use crate::client_ip::ClientIp;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    email: String,
    /// At least 8 characters.
    password: String,
    /// Equal to `ADMIN_SIGNUP_SECRET`, makes the new user an admin even when signup is closed.
    #[serde(default)]
    admin_secret: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: String,
    password: String,
    /// `true`: start a browser session instead: an HttpOnly, SameSite=Strict cookie
    /// (`Secure` behind HTTPS) that the API accepts like a bearer token; `access_token` is
    /// then empty and `token_type` is `cookie`. Requests that change state with the cookie
    /// must carry the `X-Vorg-CSRF` header. `POST /auth/logout` ends it.
    #[serde(default)]
    cookie: bool,
}

/// A session token, as the original answered (`access_token`), plus its type and lifetime.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    access_token: String,
    /// `bearer`, or `cookie` for a browser session.
    token_type: &'static str,
    /// Seconds until the token expires.
    expires_in: i64,
    user_id: i64,
    roles: Vec<Role>,
}

/// Parses e-mail and password together, so one answer names every bad field.
fn parse_credentials(email: &str, password: &str) -> ApiResult<(Email, Password)> {
    let email = Email::parse(email).map_err(|e| FieldError::new("email", e.0));
    let password = Password::parse(password).map_err(|e| FieldError::new("password", e.0));
    match (email, password) {
        (Ok(e), Ok(p)) => Ok((e, p)),
        (e, p) => Err(ApiError::Invalid(
            [e.err(), p.err()].into_iter().flatten().collect(),
        )),
    }
}

fn session(state: &AppState, user: &UserWithRoles) -> ApiResult<TokenResponse> {
    let token = state.jwt.issue(
        user.user.id,
        &user.user.email,
        user.roles.contains(&Role::Admin),
    )?;
    Ok(TokenResponse {
        access_token: token,
        token_type: "bearer",
        expires_in: state.jwt.ttl_secs(),
        user_id: user.user.id,
        roles: user.roles.clone(),
    })
}

/// Register an account. The first account becomes admin; later ones get `viewer` when
/// `ALLOW_SIGNUP=true`, or `admin` with the right `admin_secret`; otherwise 403.
#[utoipa::path(post, path = "/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 200, description = "Registered; a session token", body = TokenResponse)))]
pub async fn register(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> ApiResult<Json<TokenResponse>> {
    let _ = state.limiter.check(ip, None)?;
    let (email, password) = parse_credentials(&body.email, &body.password)?;
    let secret_ok = match (&body.admin_secret, &state.config.admin_signup_secret) {
        (Some(given), Some(expected)) => {
            constant_time_eq(given.as_bytes(), expected.expose().as_bytes())
        }
        _ => false,
    };
    if body.admin_secret.is_some() && !secret_ok {
        return Err(ApiError::Refused(
            "admin_secret: does not match ADMIN_SIGNUP_SECRET".into(),
        ));
    }
    let hash = state.hasher.hash(password.expose()).await?;

    let first = if state.config.first_user_needs_secret && !secret_ok {
        None
    } else {
        match state
            .store
            .create_user(email.as_str(), &hash, &[Role::Admin], true)
            .await
        {
            Ok(user) => Some(user),
            Err(StoreError::Rule(_)) => None,
            Err(e) => return Err(conflict_on_email(e)),
        }
    };
    let user = match first {
        Some(user) => user,
        None => {
            let roles: &[Role] = if secret_ok {
                &[Role::Admin]
            } else if state.config.allow_signup {
                &[Role::Viewer]
            } else {
                return Err(ApiError::Refused("signups disabled".into()));
            };
            state
                .store
                .create_user(email.as_str(), &hash, roles, false)
                .await
                .map_err(conflict_on_email)?
        }
    };
    audit(
        &state,
        None,
        (user.user.id, email.as_str()),
        "user.register",
        Some(format!("user:{}", user.user.id)),
        serde_json::json!({ "roles": user.roles }),
    )
    .await;
    Ok(Json(session(&state, &user)?))
}

fn conflict_on_email(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(_) => {
            ApiError::Conflict("email: an account with this e-mail already exists".into())
        }
        other => other.into(),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Log in with e-mail and password. Wrong credentials: 401. Rate limited per IP and per
/// account (429 with `Retry-After`).
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, description = "A session token", body = TokenResponse)))]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    let account = body.email.trim().to_lowercase();
    let slowdown = state.limiter.check(ip, Some(&account))?;
    if !slowdown.is_zero() {
        tokio::time::sleep(slowdown).await;
    }
    let email = Email::parse(&body.email).map_err(|e| ApiError::invalid("email", e.0))?;
    if body.password.is_empty() {
        return Err(ApiError::invalid("password", "must not be empty"));
    }
    let found = state.store.find_login(email.as_str()).await?;
    let hash = found.as_ref().map(|(_, hash)| hash.as_str());
    if !state.hasher.verify(&body.password, hash).await? {
        return Err(ApiError::Unauthenticated("invalid email or password"));
    }
    let Some((user, _)) = found else {
        return Err(ApiError::Unauthenticated("invalid email or password"));
    };
    state.store.record_login(user.user.id).await?;
    if !body.cookie {
        return Ok(Json(session(&state, &user)?).into_response());
    }
    let (secret, prefix) = super::generate_api_token();
    let ttl = state.jwt.ttl_secs();
    let token = state
        .store
        .create_token(vorg_store::NewApiToken {
            user_id: user.user.id,
            name: super::SESSION_TOKEN_NAME,
            token_hash: &super::hash_api_token(&secret),
            prefix: &prefix,
            roles: &user.roles,
            permissions: vorg_domain::Permissions::of_roles(&user.roles),
            limits: &vorg_domain::TokenLimits::default(),
            expires_at: Some(chrono::Utc::now() + chrono::Duration::seconds(ttl)),
        })
        .await?;
    let secure = if https(&headers) { "; Secure" } else { "" };
    let cookie = format!(
        "{}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={ttl}{secure}",
        super::SESSION_COOKIE
    );
    crate::audit::audit_as(
        &state,
        &CurrentUser {
            id: user.user.id,
            email: user.user.email.clone(),
            roles: user.roles.clone(),
            permissions: vorg_domain::Permissions::of_roles(&user.roles),
            limits: None,
            credential: Credential::Session { token_id: token.id },
            request_id: None,
            expires_at: token.expires_at,
        },
        "auth.session.start",
        Some(format!("token:{}", token.id)),
        serde_json::json!({}),
    )
    .await;
    let answer = TokenResponse {
        access_token: String::new(),
        token_type: "cookie",
        expires_in: ttl,
        user_id: user.user.id,
        roles: user.roles.clone(),
    };
    Ok(([(header::SET_COOKIE, cookie)], Json(answer)).into_response())
}

/// Whether the request reached vorg over HTTPS (directly or through a proxy that says so).
fn https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

#[derive(Serialize, ToSchema)]
pub struct LogoutAnswer {
    /// Whether a session was ended (a bearer JWT cannot be revoked; it expires).
    ended_session: bool,
}

/// Ends the browser session: its token is revoked and the cookie cleared.
#[utoipa::path(post, path = "/auth/logout", tag = "auth",
    responses((status = 200, body = LogoutAnswer)))]
pub async fn logout(State(state): State<AppState>, user: CurrentUser) -> ApiResult<Response> {
    let ended = match user.credential {
        Credential::Session { token_id } => {
            state.store.revoke_token(token_id, Some(user.id)).await?;
            crate::audit::audit_as(
                &state,
                &user,
                "auth.session.end",
                Some(format!("token:{token_id}")),
                serde_json::json!({}),
            )
            .await;
            true
        }
        _ => false,
    };
    let clear = format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
        super::SESSION_COOKIE
    );
    Ok((
        [(header::SET_COOKIE, clear)],
        Json(LogoutAnswer {
            ended_session: ended,
        }),
    )
        .into_response())
}

#[derive(Serialize, ToSchema)]
pub struct AuthStatus {
    /// No account exists yet: the first `POST /auth/register` creates the admin.
    setup_required: bool,
    /// Anyone may register (as a viewer).
    signup_open: bool,
}

/// What the login page needs before anyone is logged in.
#[utoipa::path(get, path = "/auth/status", tag = "auth",
    responses((status = 200, body = AuthStatus)))]
pub async fn status(State(state): State<AppState>) -> ApiResult<Json<AuthStatus>> {
    Ok(Json(AuthStatus {
        setup_required: state.store.count_users().await? == 0,
        signup_open: state.config.allow_signup,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignRoleRequest {
    user_id: i64,
    /// One of admin, approver, engineer, growth, viewer.
    role: String,
}

#[derive(Serialize, ToSchema)]
pub struct OkResponse {
    ok: bool,
}

/// Grant a role to a user (the original's route; `POST /users/{id}/roles` does the same).
#[utoipa::path(post, path = "/auth/assign-role", tag = "auth", request_body = AssignRoleRequest,
    responses((status = 200, description = "Granted", body = OkResponse)))]
pub async fn assign_role(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<AssignRoleRequest>,
) -> ApiResult<Json<OkResponse>> {
    let role: Role = body
        .role
        .parse()
        .map_err(|e: vorg_domain::UnknownRole| ApiError::invalid("role", e.to_string()))?;
    crate::users::grant(&state, &user, body.user_id, role).await?;
    Ok(Json(OkResponse { ok: true }))
}

/// The caller as vorg sees them on this request.
#[derive(Serialize, ToSchema)]
pub struct Me {
    id: i64,
    email: String,
    roles: Vec<Role>,
    is_admin: bool,
    /// `jwt`, `api_token`, `session` (the console's cookie) or `stream_token`.
    credential: &'static str,
    /// The API token's id, when the caller used one.
    #[serde(skip_serializing_if = "Option::is_none")]
    token_id: Option<i64>,
    /// Every permission in force for this credential (a token's may be fewer than its
    /// roles').
    permissions: Vec<Permission>,
}

/// Who am I: id, e-mail, roles and permissions in force for this credential.
#[utoipa::path(get, path = "/auth/me", tag = "auth",
    responses((status = 200, description = "The caller", body = Me)))]
pub async fn me(user: CurrentUser) -> Json<Me> {
    let (credential, token_id) = match user.credential {
        Credential::Jwt => ("jwt", None),
        Credential::ApiToken { token_id } => ("api_token", Some(token_id)),
        Credential::StreamToken { .. } => ("stream_token", None),
        Credential::Session { token_id } => ("session", Some(token_id)),
    };
    Json(Me {
        id: user.id,
        is_admin: user.is_admin(),
        permissions: user.permissions.iter().collect(),
        email: user.email,
        roles: user.roles,
        credential,
        token_id,
    })
}

#[derive(Serialize, ToSchema)]
pub struct PermissionRow {
    name: Permission,
    roles: Vec<Role>,
}

#[derive(Serialize, ToSchema)]
pub struct RouteRow {
    method: &'static str,
    path: &'static str,
    /// The permission needed, or null for a public route.
    permission: Option<Permission>,
    /// The roles allowed; empty for a public route (anyone).
    roles: Vec<Role>,
}

/// The permission table: which roles hold which permission, and what each route needs.
#[derive(Serialize, ToSchema)]
pub struct PermissionTable {
    roles: Vec<Role>,
    permissions: Vec<PermissionRow>,
    routes: Vec<RouteRow>,
}

/// The permission table that decides every route.
#[utoipa::path(get, path = "/auth/permissions", tag = "auth",
    responses((status = 200, description = "The table", body = PermissionTable)))]
pub async fn permissions() -> Json<PermissionTable> {
    Json(PermissionTable {
        roles: Role::ALL.to_vec(),
        permissions: Permission::ALL
            .into_iter()
            .map(|p| PermissionRow {
                name: p,
                roles: p.roles().to_vec(),
            })
            .collect(),
        routes: ROUTES
            .iter()
            .map(|r| {
                let permission = match r.access {
                    Access::Public => None,
                    Access::Requires(p) => Some(p),
                };
                RouteRow {
                    method: r.method,
                    path: r.path,
                    permission,
                    roles: permission.map(|p| p.roles().to_vec()).unwrap_or_default(),
                }
            })
            .collect(),
    })
}
