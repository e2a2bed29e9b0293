//! `/auth/tokens`: API tokens for agents and scripts. The secret is shown once and stored as
//! a SHA-256 hash. A token carries permissions (any subset of what its minter may do), roles
//! (for the policies' per-role rules) and optional limits of its own: a model allow-list,
//! daily and monthly budgets, request and model-token rates, expiry and client addresses.
//! `/auth/enrolments` lets an admin invite an agent to register itself with a key whose
//! permissions and limits the admin fixed.

use axum::{Json, extract::State, http::StatusCode};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use vorg_domain::{
    Email, Permission, Permissions, Role, TokenLimits,
    money::{micro_to_usd, usd_to_micro},
};
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
        .routes(routes!(get_token, update_token, revoke_token))
        .routes(routes!(create_enrolment, list_enrolments))
        .routes(routes!(enrol))
}

/// The prefix of an enrolment secret (it is not an API token and authenticates nothing).
pub const ENROLMENT_PREFIX: &str = "vorgenrol_";

/// A token's own limits, in dollars. Every field is optional; what is set applies beside the
/// organization's budgets and model rules (the tightest wins).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsBody {
    /// Model patterns the token may call: `gpt-4o-mini`, `openai/gpt-4o`, `anthropic/*`,
    /// `*` (1 to 100 patterns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    models: Option<Vec<String>>,
    /// USD the token may spend per UTC day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    daily_budget_usd: Option<f64>,
    /// USD the token may spend per calendar month (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    monthly_budget_usd: Option<f64>,
    /// Requests per minute over every route (1 to 100000); more get 429 with `Retry-After`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 100000)]
    requests_per_minute: Option<u32>,
    /// Model tokens (prompt + completion) per minute through the gateway (1 to 10^9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 1000000000)]
    tokens_per_minute: Option<u64>,
    /// Addresses or CIDR ranges the token works from (1 to 100), e.g. `10.0.0.0/8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    allowed_ips: Option<Vec<String>>,
}

impl LimitsBody {
    /// The stored limits, or every problem with the fields (under `at`).
    fn parse(&self, at: &str, errors: &mut Vec<FieldError>) -> TokenLimits {
        let mut limits = TokenLimits::default();
        let mut problem = |field: &str, m: &str| {
            errors.push(FieldError::new(format!("{at}{field}"), m));
        };
        if let Some(models) = &self.models {
            if models.is_empty() || models.len() > 100 {
                problem("models", "must hold 1 to 100 model patterns");
            } else if models
                .iter()
                .any(|m| m.trim().is_empty() || m.len() > 200 || m.chars().any(char::is_whitespace))
            {
                problem(
                    "models",
                    "each pattern is 1 to 200 characters without spaces",
                );
            } else {
                limits.models = Some(models.clone());
            }
        }
        let mut usd = |field: &str, v: Option<f64>| match v.map(usd_to_micro) {
            None => None,
            Some(Some(micro)) if micro > 0 => Some(micro),
            Some(_) => {
                problem(field, "must be a positive amount of dollars");
                None
            }
        };
        limits.daily_budget_micro_usd = usd("daily_budget_usd", self.daily_budget_usd);
        limits.monthly_budget_micro_usd = usd("monthly_budget_usd", self.monthly_budget_usd);
        match self.requests_per_minute {
            Some(n @ 1..=100_000) => limits.requests_per_minute = Some(n),
            Some(_) => errors.push(FieldError::new(
                format!("{at}requests_per_minute"),
                "must be between 1 and 100000",
            )),
            None => {}
        }
        match self.tokens_per_minute {
            Some(n @ 1..=1_000_000_000) => limits.tokens_per_minute = Some(n),
            Some(_) => errors.push(FieldError::new(
                format!("{at}tokens_per_minute"),
                "must be between 1 and 1000000000",
            )),
            None => {}
        }
        if let Some(ips) = &self.allowed_ips {
            let bad = ips.iter().find(|ip| {
                crate::client_ip::parse_trusted_proxies(ip).map_or(true, |n| n.len() != 1)
            });
            if ips.is_empty() || ips.len() > 100 {
                errors.push(FieldError::new(
                    format!("{at}allowed_ips"),
                    "must hold 1 to 100 addresses or CIDR ranges",
                ));
            } else if let Some(bad) = bad {
                errors.push(FieldError::new(
                    format!("{at}allowed_ips"),
                    format!("{bad:?} is not an IP address or CIDR range"),
                ));
            } else {
                limits.allowed_ips = Some(ips.iter().map(|ip| ip.trim().to_owned()).collect());
            }
        }
        limits
    }

    fn view(l: &TokenLimits) -> LimitsBody {
        LimitsBody {
            models: l.models.clone(),
            daily_budget_usd: l.daily_budget_micro_usd.map(micro_to_usd),
            monthly_budget_usd: l.monthly_budget_micro_usd.map(micro_to_usd),
            requests_per_minute: l.requests_per_minute,
            tokens_per_minute: l.tokens_per_minute,
            allowed_ips: l.allowed_ips.clone(),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// A label for the token, 1 to 100 characters.
    name: String,
    /// Roles the token carries (for the policies' per-role rules, e.g. model allow-lists and
    /// approval tiers); every permission of each must be one the caller holds. Default: the
    /// caller's roles, unless `permissions` is given.
    #[serde(default)]
    roles: Option<Vec<String>>,
    /// Exactly what the token may do: any subset of the caller's permissions (see
    /// `GET /auth/permissions`). Default: the permissions of `roles`.
    #[serde(default)]
    permissions: Option<Vec<String>>,
    /// Lifetime in days (1 to 3650). Default: no expiry. A token minted with an expiring
    /// credential (a session, an expiring token) expires with it at the latest, unless the
    /// caller holds `manage_users`.
    #[serde(default)]
    expires_in_days: Option<i64>,
    /// The token's own limits.
    #[serde(default)]
    limits: Option<LimitsBody>,
}

/// A token as listed (never with its secret).
#[derive(Serialize, ToSchema)]
pub struct TokenView {
    id: i64,
    /// The user the token acts for.
    user_id: i64,
    name: String,
    /// The first characters of the secret, to recognise it.
    prefix: String,
    roles: Vec<Role>,
    /// What the token was minted to do (it can do no more than its owner holds now).
    permissions: Permissions,
    limits: LimitsBody,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiToken> for TokenView {
    fn from(t: ApiToken) -> Self {
        TokenView {
            roles: t.role_list(),
            permissions: t.minted_permissions(),
            limits: LimitsBody::view(&t.limits.0),
            id: t.id,
            user_id: t.user_id,
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

/// What a token spent (from the usage rows) and how much of its own budgets is left.
#[derive(Serialize, ToSchema)]
pub struct TokenSpend {
    today_usd: f64,
    month_usd: f64,
    total_usd: f64,
    /// What is left of the daily budget, when the token has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    daily_headroom_usd: Option<f64>,
    /// What is left of the monthly budget, when the token has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    monthly_headroom_usd: Option<f64>,
    /// Requests and model tokens counted in the current minute.
    requests_this_minute: i64,
    tokens_this_minute: i64,
}

/// One token with its spend.
#[derive(Serialize, ToSchema)]
pub struct TokenDetail {
    #[serde(flatten)]
    view: TokenView,
    spend: TokenSpend,
}

/// A new API token: the secret (shown once) and its displayable prefix.
pub fn generate_api_token() -> (String, String) {
    secret_with(API_TOKEN_PREFIX)
}

fn secret_with(prefix: &str) -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes));
    let shown = secret.chars().take(prefix.len() + 6).collect();
    (secret, shown)
}

/// A new token's expiry: what was asked for, but never after the credential minting it
/// expires (a two-hour session must not mint a token that never expires), unless the caller
/// may manage users (an admin can issue long-lived tokens for agents).
fn capped_expiry(user: &CurrentUser, requested: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match user.expires_at {
        Some(parent) if !user.may(Permission::ManageUsers) => {
            Some(requested.map_or(parent, |r| r.min(parent)))
        }
        _ => requested,
    }
}

/// Roles named in a request: each held by the caller (an admin may name any), and each of
/// whose permissions this request holds.
fn parse_roles(
    raw: &[String],
    user: &CurrentUser,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Vec<Role> {
    let mut roles = Vec::new();
    for (i, name) in raw.iter().enumerate() {
        match name.parse::<Role>() {
            Ok(role) if !user.is_admin() && !user.roles.contains(&role) => {
                errors.push(FieldError::new(
                    format!("{field}[{i}]"),
                    format!("you do not hold the role {role} (only an admin may mint any role)"),
                ));
            }
            Ok(role) => match Permissions::of_roles(&[role]).first_missing_from(user.permissions) {
                None => roles.push(role),
                Some(missing) => errors.push(FieldError::new(
                    format!("{field}[{i}]"),
                    format!(
                        "the role {role} holds the permission {missing}, which this credential does not hold"
                    ),
                )),
            },
            Err(e) => errors.push(FieldError::new(format!("{field}[{i}]"), e.to_string())),
        }
    }
    roles.sort();
    roles.dedup();
    roles
}

/// Permissions named in a request, each held by the caller.
fn parse_permissions(
    raw: &[String],
    caller: Permissions,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Permissions {
    let mut set = Permissions::NONE;
    for (i, name) in raw.iter().enumerate() {
        match name.parse::<Permission>() {
            Ok(p) if caller.contains(p) => set.insert(p),
            Ok(p) => errors.push(FieldError::new(
                format!("{field}[{i}]"),
                format!("you do not hold the permission {p}, so a token of yours cannot"),
            )),
            Err(e) => errors.push(FieldError::new(format!("{field}[{i}]"), e.to_string())),
        }
    }
    set
}

/// A token's label, checked.
fn parse_name(name: &str, errors: &mut Vec<FieldError>) -> String {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        errors.push(FieldError::new("name", "must be 1 to 100 characters"));
    }
    name.to_owned()
}

/// A key with limits may not mint or edit keys: a limited agent cannot give itself an
/// unlimited sibling.
fn refuse_limited(user: &CurrentUser) -> ApiResult<()> {
    if user.limits.is_some() {
        return Err(ApiError::Refused(
            "this API token has limits of its own, so it may not mint or change tokens".into(),
        ));
    }
    Ok(())
}

/// Create an API token for the caller. The secret is in the answer and nowhere else.
#[utoipa::path(post, path = "/auth/tokens", tag = "auth", request_body = CreateTokenRequest,
    responses((status = 201, description = "Created; `token` is shown once", body = CreatedToken),
              (status = 403, description = "The caller's own token has limits"),
              (status = 422, description = "A field is invalid, or asks for more than the caller holds")))]
pub async fn create_token(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<CreateTokenRequest>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    refuse_limited(&user)?;
    let mut errors = Vec::new();
    let name = parse_name(&body.name, &mut errors);
    let (roles, permissions) = match (&body.roles, &body.permissions) {
        (None, None) => (user.roles.clone(), user.permissions),
        (roles, permissions) => {
            let roles = parse_roles(
                roles.as_deref().unwrap_or_default(),
                &user,
                "roles",
                &mut errors,
            );
            let permissions = match permissions {
                Some(raw) => parse_permissions(raw, user.permissions, "permissions", &mut errors),
                None => Permissions::of_roles(&roles),
            };
            (roles, permissions)
        }
    };
    if permissions.is_empty() && errors.is_empty() {
        errors.push(FieldError::new(
            "permissions",
            "a token needs at least one permission (or a role)",
        ));
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
    let limits = body
        .limits
        .as_ref()
        .map(|l| l.parse("limits.", &mut errors))
        .unwrap_or_default();
    let expires_at = capped_expiry(&user, requested);
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let (secret, prefix) = generate_api_token();
    let token = state
        .store
        .create_token(NewApiToken {
            user_id: user.id,
            name: &name,
            token_hash: &hash_api_token(&secret),
            prefix: &prefix,
            roles: &roles,
            permissions,
            limits: &limits,
            expires_at,
        })
        .await?;
    audit_as(
        &state,
        &user,
        "token.create",
        Some(format!("token:{}", token.id)),
        serde_json::json!({ "name": token.name, "roles": roles, "permissions": permissions, "limits": limits }),
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

/// Whose tokens the caller may read and edit: their own, or anyone's with `manage_users`.
fn owner_scope(user: &CurrentUser) -> Option<i64> {
    (!user.may(Permission::ManageUsers)).then_some(user.id)
}

/// One token with its limits, last use and spend (today, this month, in all). The caller's
/// own, or anyone's for a holder of `manage_users`.
#[utoipa::path(get, path = "/auth/tokens/{id}", tag = "auth",
    params(("id" = i64, Path, description = "Token id")),
    responses((status = 200, description = "The token", body = TokenDetail),
              (status = 404, description = "No such token of the caller's")))]
pub async fn get_token(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<TokenDetail>> {
    let token = match state.store.get_token(id, owner_scope(&user)).await {
        Err(StoreError::NotFound) => return Err(ApiError::NotFound("token")),
        other => other?,
    };
    let now = Utc::now();
    let day = Utc
        .with_ymd_and_hms(now.year(), now.month(), now.day(), 0, 0, 0)
        .single()
        .unwrap_or(now);
    let month = Utc
        .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .single()
        .unwrap_or(now);
    let [today, this_month, total] = state.store.token_spend(id, [day, month]).await?;
    let (requests, tokens) = state
        .store
        .token_rate(id, vorg_store::rate_minute(now))
        .await?;
    let limits = &token.limits.0;
    let headroom = |limit: Option<i64>, spent: i64| limit.map(|l| micro_to_usd((l - spent).max(0)));
    let spend = TokenSpend {
        today_usd: micro_to_usd(today),
        month_usd: micro_to_usd(this_month),
        total_usd: micro_to_usd(total),
        daily_headroom_usd: headroom(limits.daily_budget_micro_usd, today),
        monthly_headroom_usd: headroom(limits.monthly_budget_micro_usd, this_month),
        requests_this_minute: requests,
        tokens_this_minute: tokens,
    };
    Ok(Json(TokenDetail {
        view: token.into(),
        spend,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTokenRequest {
    /// The token's new limits; they replace the old ones whole (`{}` removes every limit).
    limits: LimitsBody,
}

/// Replace a token's limits. Admins (`manage_users`) may edit anyone's; others their own,
/// and never with a token that has limits itself.
#[utoipa::path(patch, path = "/auth/tokens/{id}", tag = "auth", request_body = UpdateTokenRequest,
    params(("id" = i64, Path, description = "Token id")),
    responses((status = 200, description = "The token with its new limits", body = TokenView),
              (status = 403, description = "The caller's own token has limits"),
              (status = 404, description = "No such token of the caller's"),
              (status = 422, description = "A limit is invalid")))]
pub async fn update_token(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<UpdateTokenRequest>,
) -> ApiResult<Json<TokenView>> {
    refuse_limited(&user)?;
    let mut errors = Vec::new();
    let limits = body.limits.parse("limits.", &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let token = match state
        .store
        .set_token_limits(id, owner_scope(&user), &limits)
        .await
    {
        Err(StoreError::NotFound) => return Err(ApiError::NotFound("token")),
        other => other?,
    };
    audit_as(
        &state,
        &user,
        "token.limits",
        Some(format!("token:{}", token.id)),
        serde_json::json!({ "limits": limits }),
    )
    .await;
    Ok(Json(token.into()))
}

/// Revoke one of the caller's tokens (anyone's with `manage_users`); it stops working at
/// once.
#[utoipa::path(delete, path = "/auth/tokens/{id}", tag = "auth",
    params(("id" = i64, Path, description = "Token id")),
    responses((status = 204, description = "Revoked"),
              (status = 404, description = "No such live token of the caller's")))]
pub async fn revoke_token(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    match state.store.revoke_token(id, owner_scope(&user)).await {
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEnrolmentRequest {
    /// The name the agent's key will carry, 1 to 100 characters.
    name: String,
    /// Roles the agent's account gets (each within the caller's permissions).
    roles: Vec<String>,
    /// What the agent's key may do; default: the roles' permissions.
    #[serde(default)]
    permissions: Option<Vec<String>>,
    /// The key's own limits.
    #[serde(default)]
    limits: Option<LimitsBody>,
    /// How long the invitation stays usable, in hours (1 to 720). Default: 24.
    #[serde(default)]
    expires_in_hours: Option<i64>,
}

/// An enrolment as listed (never with its secret).
#[derive(Serialize, ToSchema)]
pub struct EnrolmentView {
    id: i64,
    prefix: String,
    name: String,
    roles: Vec<Role>,
    permissions: Permissions,
    limits: LimitsBody,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
    /// The account the agent registered as.
    used_by: Option<i64>,
}

impl From<vorg_store::Enrolment> for EnrolmentView {
    fn from(e: vorg_store::Enrolment) -> Self {
        EnrolmentView {
            id: e.id,
            prefix: e.prefix,
            name: e.name,
            roles: e.roles.0,
            permissions: e.permissions.0.unwrap_or_default(),
            limits: LimitsBody::view(&e.limits.0),
            created_at: e.created_at,
            expires_at: e.expires_at,
            used_at: e.used_at,
            used_by: e.used_by,
        }
    }
}

/// A new enrolment: `enrolment_token` is the secret to hand to the agent, shown this once.
#[derive(Serialize, ToSchema)]
pub struct CreatedEnrolment {
    enrolment_token: String,
    #[serde(flatten)]
    view: EnrolmentView,
}

#[derive(Serialize, ToSchema)]
pub struct EnrolmentList {
    items: Vec<EnrolmentView>,
}

/// Invite an agent: a single-use, expiring enrolment token fixing the roles, permissions and
/// limits the agent gets when it registers itself with `POST /auth/enrol`.
#[utoipa::path(post, path = "/auth/enrolments", tag = "auth", request_body = CreateEnrolmentRequest,
    responses((status = 201, description = "Created; `enrolment_token` is shown once", body = CreatedEnrolment),
              (status = 422, description = "A field is invalid, or asks for more than the caller holds")))]
pub async fn create_enrolment(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<CreateEnrolmentRequest>,
) -> ApiResult<(StatusCode, Json<CreatedEnrolment>)> {
    refuse_limited(&user)?;
    let mut errors = Vec::new();
    let name = parse_name(&body.name, &mut errors);
    let roles = parse_roles(&body.roles, &user, "roles", &mut errors);
    let role_permissions = Permissions::of_roles(&roles);
    let permissions = match &body.permissions {
        Some(raw) => parse_permissions(raw, role_permissions, "permissions", &mut errors),
        None => role_permissions,
    };
    if roles.is_empty() && errors.is_empty() {
        errors.push(FieldError::new("roles", "an agent needs at least one role"));
    }
    let hours = match body.expires_in_hours.unwrap_or(24) {
        h @ 1..=720 => h,
        _ => {
            errors.push(FieldError::new(
                "expires_in_hours",
                "must be between 1 and 720",
            ));
            24
        }
    };
    let limits = body
        .limits
        .as_ref()
        .map(|l| l.parse("limits.", &mut errors))
        .unwrap_or_default();
    if !errors.is_empty() {
        return Err(ApiError::Invalid(errors));
    }
    let (secret, prefix) = secret_with(ENROLMENT_PREFIX);
    let enrolment = state
        .store
        .create_enrolment(vorg_store::NewEnrolment {
            token_hash: &hash_api_token(&secret),
            prefix: &prefix,
            name: &name,
            roles: &roles,
            permissions,
            limits: &limits,
            created_by: user.id,
            expires_at: Utc::now() + Duration::hours(hours),
        })
        .await?;
    audit_as(
        &state,
        &user,
        "enrolment.create",
        Some(format!("enrolment:{}", enrolment.id)),
        serde_json::json!({ "name": name, "roles": roles, "permissions": permissions }),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(CreatedEnrolment {
            enrolment_token: secret,
            view: enrolment.into(),
        }),
    ))
}

/// The latest 200 enrolments, used or not (never their secrets).
#[utoipa::path(get, path = "/auth/enrolments", tag = "auth",
    responses((status = 200, description = "Enrolments, newest first", body = EnrolmentList)))]
pub async fn list_enrolments(
    State(state): State<AppState>,
    _user: CurrentUser,
) -> ApiResult<Json<EnrolmentList>> {
    let items = state.store.list_enrolments().await?;
    Ok(Json(EnrolmentList {
        items: items.into_iter().map(EnrolmentView::from).collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrolRequest {
    /// The enrolment token an admin gave the agent.
    enrolment_token: String,
    /// The agent's account e-mail (its identity in audit logs and budgets).
    email: String,
}

/// Register an agent with an enrolment token: creates its account (with the enrolment's
/// roles, and no password: it signs in with its key) and its API key, shown once. The
/// enrolment token works once.
#[utoipa::path(post, path = "/auth/enrol", tag = "auth", request_body = EnrolRequest,
    responses((status = 201, description = "Registered; `token` is the agent's key, shown once", body = CreatedToken),
              (status = 401, description = "The enrolment token is unknown, used or expired"),
              (status = 409, description = "The e-mail is taken (the enrolment token stays usable)"),
              (status = 422, description = "A field is invalid")))]
pub async fn enrol(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<EnrolRequest>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    let email = Email::parse(&body.email).map_err(|e| ApiError::invalid("email", e.0))?;
    if !body.enrolment_token.starts_with(ENROLMENT_PREFIX) || body.enrolment_token.len() > 200 {
        return Err(ApiError::Unauthenticated(
            "the enrolment token is unknown, used or expired",
        ));
    }
    let (unknown_password, _) = secret_with("");
    let password_hash = state.hasher.hash(&unknown_password).await?;
    let (secret, prefix) = generate_api_token();
    let enrolled = state
        .store
        .enrol(
            &hash_api_token(&body.enrolment_token),
            vorg_store::Enrolled {
                email: email.as_str(),
                password_hash: &password_hash,
                token_hash: &hash_api_token(&secret),
                token_prefix: &prefix,
            },
        )
        .await;
    let (user, token) = match enrolled {
        Ok(done) => done,
        Err(StoreError::Refused(_)) => {
            return Err(ApiError::Unauthenticated(
                "the enrolment token is unknown, used or expired",
            ));
        }
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::Conflict(format!(
                "an account with the e-mail {} exists already; enrol under another",
                email.as_str()
            )));
        }
        Err(e) => return Err(e.into()),
    };
    crate::audit::audit(
        &state,
        None,
        (user.user.id, &user.user.email),
        "auth.enrol",
        Some(format!("token:{}", token.id)),
        serde_json::json!({ "roles": user.roles }),
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
