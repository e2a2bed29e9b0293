//! API tokens for agents and scripts: stored as a hash, never as the secret.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use sqlx::types::Json;
use vorg_domain::{Permissions, Role, RoleList, TokenLimits, UnknownPermission};

use crate::{DEFAULT_ORG, Result, Store, StoreError, with_pool};

/// A token's permissions column: `None` (NULL) for a token minted before permissions were
/// stored, which holds its roles' permissions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PermissionColumn(pub Option<Permissions>);

impl TryFrom<Option<String>> for PermissionColumn {
    type Error = UnknownPermission;

    fn try_from(s: Option<String>) -> Result<Self, Self::Error> {
        s.map(Permissions::try_from)
            .transpose()
            .map(PermissionColumn)
    }
}

/// A token as listed to its owner (the secret itself is never stored).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiToken {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub prefix: String,
    /// A subset of the owner's roles when created (one comma-separated column).
    #[sqlx(try_from = "String")]
    pub roles: RoleList,
    #[sqlx(try_from = "Option<String>")]
    pub permissions: PermissionColumn,
    pub limits: Json<TokenLimits>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiToken {
    pub fn role_list(&self) -> Vec<Role> {
        self.roles.0.clone()
    }

    /// The permissions the token was minted with.
    pub fn minted_permissions(&self) -> Permissions {
        self.permissions
            .0
            .unwrap_or_else(|| Permissions::of_roles(&self.roles.0))
    }
}

/// What is needed to store a new token.
pub struct NewApiToken<'a> {
    pub user_id: i64,
    pub name: &'a str,
    pub token_hash: &'a str,
    pub prefix: &'a str,
    pub roles: &'a [Role],
    pub permissions: Permissions,
    pub limits: &'a TokenLimits,
    pub expires_at: Option<DateTime<Utc>>,
}

/// The owner of a presented token and what the token may do now: its permissions narrowed
/// to those the owner still holds.
#[derive(Debug, Clone)]
pub struct TokenOwner {
    pub token_id: i64,
    pub user_id: i64,
    pub email: String,
    /// The token's roles the owner still covers (every permission of the role is still the
    /// owner's); a token minted with permissions only acts with its owner's roles (for the
    /// policies' per-role rules: model allow-lists, approval tiers).
    pub roles: Vec<Role>,
    pub permissions: Permissions,
    pub limits: Arc<TokenLimits>,
    /// When the token stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
}

macro_rules! token_columns {
    () => {
        "id, user_id, name, prefix, roles, permissions, limits, created_at, expires_at, \
         last_used_at, revoked_at"
    };
}
pub(crate) use token_columns;

/// `last_used_at` is written at most this often per token, to keep reads read-only.
const LAST_USED_GRANULARITY: Duration = Duration::seconds(60);

#[derive(sqlx::FromRow, Clone)]
struct LiveToken {
    token_id: i64,
    user_id: i64,
    email: String,
    #[sqlx(try_from = "String")]
    token_roles: RoleList,
    #[sqlx(try_from = "Option<String>")]
    permissions: PermissionColumn,
    limits: Json<TokenLimits>,
    last_used: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
}

/// Tokens authenticated in the last [`crate::ROLES_TTL`], by hash, so an agent's burst of
/// calls reads the token row once a second at most. Revocations through this process drop
/// the entry at once; elsewhere they take effect within the TTL (as role changes do).
#[derive(Default)]
pub(crate) struct TokenCache {
    map: std::sync::RwLock<std::collections::HashMap<String, (std::time::Instant, LiveToken)>>,
    /// Whether a token id is live, as [`Store::token_is_live`] last read it.
    live: std::sync::RwLock<std::collections::HashMap<i64, (std::time::Instant, bool)>>,
    /// A token's limits, as [`Store::token_limits`] last read them.
    limits: std::sync::RwLock<LimitsMap>,
}

type LimitsMap = std::collections::HashMap<i64, (std::time::Instant, Arc<TokenLimits>)>;

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenCache")
    }
}

impl TokenCache {
    fn get(&self, hash: &str) -> Option<LiveToken> {
        let map = self.map.read().ok()?;
        let (at, token) = map.get(hash)?;
        (at.elapsed() < crate::ROLES_TTL).then(|| token.clone())
    }

    fn put(&self, hash: &str, token: &LiveToken) {
        if let Ok(mut map) = self.map.write() {
            if map.len() >= 100_000 {
                map.clear();
            }
            map.insert(hash.to_owned(), (std::time::Instant::now(), token.clone()));
        }
    }

    pub(crate) fn clear(&self) {
        if let Ok(mut map) = self.map.write() {
            map.clear();
        }
        if let Ok(mut live) = self.live.write() {
            live.clear();
        }
        if let Ok(mut limits) = self.limits.write() {
            limits.clear();
        }
    }

    fn forget(&self, token_id: i64) {
        if let Ok(mut map) = self.map.write() {
            map.retain(|_, (_, t)| t.token_id != token_id);
        }
        if let Ok(mut live) = self.live.write() {
            live.remove(&token_id);
        }
        if let Ok(mut limits) = self.limits.write() {
            limits.remove(&token_id);
        }
    }

    fn limits(&self, token_id: i64) -> Option<Arc<TokenLimits>> {
        let limits = self.limits.read().ok()?;
        let (at, l) = limits.get(&token_id)?;
        (at.elapsed() < crate::ROLES_TTL).then(|| l.clone())
    }

    fn note_limits(&self, token_id: i64, l: &Arc<TokenLimits>) {
        if let Ok(mut limits) = self.limits.write() {
            if limits.len() >= 100_000 {
                limits.clear();
            }
            limits.insert(token_id, (std::time::Instant::now(), l.clone()));
        }
    }

    fn liveness(&self, token_id: i64) -> Option<bool> {
        let live = self.live.read().ok()?;
        let (at, is_live) = live.get(&token_id)?;
        (at.elapsed() < crate::ROLES_TTL).then_some(*is_live)
    }

    fn note_liveness(&self, token_id: i64, is_live: bool) {
        if let Ok(mut live) = self.live.write() {
            if live.len() >= 100_000 {
                live.clear();
            }
            live.insert(token_id, (std::time::Instant::now(), is_live));
        }
    }
}

impl Store {
    pub async fn create_token(&self, new: NewApiToken<'_>) -> Result<ApiToken> {
        let roles = RoleList::to_column(new.roles);
        let sql = concat!(
            "INSERT INTO api_tokens (org_id, user_id, name, token_hash, prefix, roles, created_at, \
             expires_at, permissions, limits) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             RETURNING ",
            token_columns!()
        );
        let token = with_pool!(self, |p| sqlx::query_as(sql)
            .bind(DEFAULT_ORG)
            .bind(new.user_id)
            .bind(new.name)
            .bind(new.token_hash)
            .bind(new.prefix)
            .bind(roles)
            .bind(Utc::now())
            .bind(new.expires_at)
            .bind(new.permissions.to_column())
            .bind(Json(new.limits))
            .fetch_one(p)
            .await)?;
        Ok(token)
    }

    /// One token of `user_id` (of anyone's when `None`).
    pub async fn get_token(&self, token_id: i64, user_id: Option<i64>) -> Result<ApiToken> {
        let sql = concat!(
            "SELECT ",
            token_columns!(),
            " FROM api_tokens WHERE id = $1 AND ($2 = 0 OR user_id = $2)"
        );
        let token: Option<ApiToken> = with_pool!(self, |p| sqlx::query_as(sql)
            .bind(token_id)
            .bind(user_id.unwrap_or(0))
            .fetch_optional(p)
            .await)?;
        token.ok_or(StoreError::NotFound)
    }

    /// Replaces the limits of a token of `user_id` (of anyone's when `None`); they apply at
    /// once in this process and within [`crate::ROLES_TTL`] elsewhere.
    pub async fn set_token_limits(
        &self,
        token_id: i64,
        user_id: Option<i64>,
        limits: &TokenLimits,
    ) -> Result<ApiToken> {
        let sql = concat!(
            "UPDATE api_tokens SET limits = $1 WHERE id = $2 AND ($3 = 0 OR user_id = $3) \
             RETURNING ",
            token_columns!()
        );
        let token: Option<ApiToken> = with_pool!(self, |p| sqlx::query_as(sql)
            .bind(Json(limits))
            .bind(token_id)
            .bind(user_id.unwrap_or(0))
            .fetch_optional(p)
            .await)?;
        self.tokens.forget(token_id);
        self.tell_credentials_changed().await;
        token.ok_or(StoreError::NotFound)
    }

    /// The limits of token `token_id` (none for a token that no longer exists), read at most
    /// once per [`crate::ROLES_TTL`]: the gateway asks this on every call a token causes.
    pub async fn token_limits(&self, token_id: i64) -> Result<Arc<TokenLimits>> {
        if let Some(limits) = self.tokens.limits(token_id) {
            return Ok(limits);
        }
        let row: Option<(Json<TokenLimits>,)> = with_pool!(self, |p| sqlx::query_as(
            "SELECT limits FROM api_tokens WHERE id = $1"
        )
        .bind(token_id)
        .fetch_optional(p)
        .await)?;
        let limits = Arc::new(row.map(|(l,)| l.0).unwrap_or_default());
        self.tokens.note_limits(token_id, &limits);
        Ok(limits)
    }

    pub async fn list_tokens(&self, user_id: i64) -> Result<Vec<ApiToken>> {
        let sql = concat!(
            "SELECT ",
            token_columns!(),
            " FROM api_tokens WHERE user_id = $1 ORDER BY id DESC"
        );
        let tokens = with_pool!(self, |p| sqlx::query_as(sql)
            .bind(user_id)
            .fetch_all(p)
            .await)?;
        Ok(tokens)
    }

    /// Revokes a token of `user_id` (or of anyone when `user_id` is `None`).
    /// `NotFound` when no such live token exists.
    pub async fn revoke_token(&self, token_id: i64, user_id: Option<i64>) -> Result<ApiToken> {
        let sql = concat!(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND ($3 = 0 OR user_id = $3) \
             AND revoked_at IS NULL RETURNING ",
            token_columns!()
        );
        let token: Option<ApiToken> = with_pool!(self, |p| sqlx::query_as(sql)
            .bind(Utc::now())
            .bind(token_id)
            .bind(user_id.unwrap_or(0))
            .fetch_optional(p)
            .await)?;
        self.tokens.forget(token_id);
        self.tell_credentials_changed().await;
        token.ok_or(StoreError::NotFound)
    }

    /// Looks up a live (not revoked, not expired) token by the hash of its secret and
    /// notes its use. `None` when there is no such token.
    pub async fn authenticate_token(&self, token_hash: &str) -> Result<Option<TokenOwner>> {
        let now = Utc::now();
        if let Some(t) = self.tokens.get(token_hash)
            && t.expires_at.is_none_or(|e| e > now)
        {
            return self.token_owner(t).await.map(Some);
        }
        let row: Option<LiveToken> = with_pool!(self, |p| sqlx::query_as(
            "SELECT t.id AS token_id, t.user_id, u.email, t.roles AS token_roles, \
                 t.permissions, t.limits, t.last_used_at AS last_used, t.expires_at \
                 FROM api_tokens t \
                 JOIN users u ON u.id = t.user_id \
                 WHERE t.token_hash = $1 AND t.revoked_at IS NULL \
                 AND (t.expires_at IS NULL OR t.expires_at > $2)"
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(p)
        .await)?;
        let Some(token) = row else {
            return Ok(None);
        };
        let token_id = token.token_id;
        if token
            .last_used
            .is_none_or(|t| now - t > LAST_USED_GRANULARITY)
        {
            with_pool!(self, |p| sqlx::query(
                "UPDATE api_tokens SET last_used_at = $1 WHERE id = $2"
            )
            .bind(now)
            .bind(token_id)
            .execute(p)
            .await
            .map(|_| ()))?;
        }
        self.tokens.put(token_hash, &token);
        self.token_owner(token).await.map(Some)
    }

    /// The owner of a live token, with the token's permissions narrowed to those held now.
    async fn token_owner(&self, t: LiveToken) -> Result<TokenOwner> {
        let held = self.current_roles(t.user_id).await?;
        let (roles, permissions) = narrow(&t.token_roles.0, t.permissions.0, &held);
        Ok(TokenOwner {
            token_id: t.token_id,
            user_id: t.user_id,
            email: t.email,
            roles,
            permissions,
            limits: Arc::new(t.limits.0),
            expires_at: t.expires_at,
        })
    }

    /// Whether the token `token_id` still works (not revoked, not expired). Open streams ask
    /// this every few seconds to close on revocation: the answer is kept for
    /// [`crate::ROLES_TTL`] (a revocation through this process is seen at once), so ten
    /// thousand streams of one token cost one query a second.
    pub async fn token_is_live(&self, token_id: i64) -> Result<bool> {
        if let Some(known) = self.tokens.liveness(token_id) {
            return Ok(known);
        }
        let row: Option<(i64,)> = with_pool!(self, |p| sqlx::query_as(
            "SELECT id FROM api_tokens WHERE id = $1 AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $2)"
        )
        .bind(token_id)
        .bind(Utc::now())
        .fetch_optional(p)
        .await)?;
        self.tokens.note_liveness(token_id, row.is_some());
        Ok(row.is_some())
    }
}

/// What a token minted with `roles` and `minted` permissions may do for an owner holding
/// `held` now: the permissions both have (and `view_self`, which every credential holds),
/// and the token's roles still in force (or, for a token minted with permissions only, the
/// owner's roles).
pub fn narrow(
    roles: &[Role],
    minted: Option<Permissions>,
    held: &[Role],
) -> (Vec<Role>, Permissions) {
    let held_permissions = Permissions::of_roles(held);
    let minted = minted.unwrap_or_else(|| Permissions::of_roles(roles));
    // A role is in force while the owner holds it, or is an admin (who may mint a key equal
    // to any role): the policies' per-role rules (model allow-lists, approval tiers) never
    // apply a role the owner lost.
    let is_admin = held.contains(&Role::Admin);
    let roles = if roles.is_empty() {
        held.to_vec()
    } else {
        roles
            .iter()
            .filter(|r| is_admin || held.contains(r))
            .copied()
            .collect()
    };
    let mut permissions = minted.intersect(held_permissions);
    // Every credential may read its own account (`GET /auth/me`), as every role may.
    if held_permissions.contains(vorg_domain::Permission::ViewSelf) {
        permissions.insert(vorg_domain::Permission::ViewSelf);
    }
    (roles, permissions)
}

/// The minute a rate window counts in (minutes since the Unix epoch).
pub fn rate_minute(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(60)
}

impl Store {
    /// Counts one request of `token_id` in `minute` unless `limit` requests are counted
    /// already: the count with this one, or `None` when refused. One atomic statement, so
    /// processes sharing the database share the count (no N-fold overshoot).
    pub async fn count_token_request(
        &self,
        token_id: i64,
        minute: i64,
        limit: u32,
    ) -> Result<Option<u32>> {
        let count: Option<i64> = with_pool!(self, |p| sqlx::query_scalar(
            "INSERT INTO token_rate (token_id, minute, requests) VALUES ($1, $2, 1) \
             ON CONFLICT (token_id, minute) DO UPDATE SET requests = token_rate.requests + 1 \
             WHERE token_rate.requests < $3 RETURNING requests"
        )
        .bind(token_id)
        .bind(minute)
        .bind(i64::from(limit))
        .fetch_optional(p)
        .await)?;
        if count == Some(1) {
            // The minute's first request: drop the windows that no longer count.
            with_pool!(self, |p| sqlx::query(
                "DELETE FROM token_rate WHERE token_id = $1 AND minute < $2"
            )
            .bind(token_id)
            .bind(minute - 1)
            .execute(p)
            .await
            .map(|_| ()))?;
        }
        Ok(count
            .filter(|c| *c <= i64::from(limit))
            .and_then(|c| u32::try_from(c).ok()))
    }

    /// Adds model tokens a call of `token_id` used to `minute`'s count.
    pub async fn add_token_tokens(&self, token_id: i64, minute: i64, tokens: i64) -> Result<()> {
        with_pool!(self, |p| sqlx::query(
            "INSERT INTO token_rate (token_id, minute, tokens) VALUES ($1, $2, $3) \
             ON CONFLICT (token_id, minute) DO UPDATE SET tokens = token_rate.tokens + $3"
        )
        .bind(token_id)
        .bind(minute)
        .bind(tokens)
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Requests and model tokens counted for `token_id` in `minute`.
    pub async fn token_rate(&self, token_id: i64, minute: i64) -> Result<(i64, i64)> {
        let row: Option<(i64, i64)> = with_pool!(self, |p| sqlx::query_as(
            "SELECT requests, tokens FROM token_rate WHERE token_id = $1 AND minute = $2"
        )
        .bind(token_id)
        .bind(minute)
        .fetch_optional(p)
        .await)?;
        Ok(row.unwrap_or_default())
    }

    /// What `token_id` spent since each of `since` (e.g. the day's and the month's start),
    /// and in all, in micro-dollars, from the usage rows.
    pub async fn token_spend(&self, token_id: i64, since: [DateTime<Utc>; 2]) -> Result<[i64; 3]> {
        let row: (Option<i64>, Option<i64>, Option<i64>) = with_pool!(self, |p| {
            sqlx::query_as(
            "SELECT CAST(SUM(CASE WHEN created_at >= $2 THEN cost_micro_usd ELSE 0 END) AS BIGINT), \
                    CAST(SUM(CASE WHEN created_at >= $3 THEN cost_micro_usd ELSE 0 END) AS BIGINT), \
                    CAST(SUM(cost_micro_usd) AS BIGINT) \
             FROM usage_events WHERE token_id = $1"
        )
        .bind(token_id)
        .bind(since[0])
        .bind(since[1])
        .fetch_one(p)
        .await
        })?;
        Ok([row.0.unwrap_or(0), row.1.unwrap_or(0), row.2.unwrap_or(0)])
    }
}
