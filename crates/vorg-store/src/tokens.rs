//! API tokens for agents and scripts: stored as a hash, never as the secret.

use chrono::{DateTime, Duration, Utc};
use vorg_domain::{Role, RoleList};

use crate::{DEFAULT_ORG, Result, Store, StoreError, with_pool};

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
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiToken {
    pub fn role_list(&self) -> Vec<Role> {
        self.roles.0.clone()
    }
}

/// What is needed to store a new token.
pub struct NewApiToken<'a> {
    pub user_id: i64,
    pub name: &'a str,
    pub token_hash: &'a str,
    pub prefix: &'a str,
    pub roles: &'a [Role],
    pub expires_at: Option<DateTime<Utc>>,
}

/// The owner of a presented token and the roles the token carries now: the token's roles
/// narrowed to those the owner still holds.
#[derive(Debug, Clone)]
pub struct TokenOwner {
    pub token_id: i64,
    pub user_id: i64,
    pub email: String,
    pub roles: Vec<Role>,
    /// When the token stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
}

macro_rules! token_columns {
    () => {
        "id, user_id, name, prefix, roles, created_at, expires_at, last_used_at, revoked_at"
    };
}

/// `last_used_at` is written at most this often per token, to keep reads read-only.
const LAST_USED_GRANULARITY: Duration = Duration::seconds(60);

#[derive(sqlx::FromRow, Clone)]
struct LiveToken {
    token_id: i64,
    user_id: i64,
    email: String,
    #[sqlx(try_from = "String")]
    token_roles: RoleList,
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
}

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

    fn forget(&self, token_id: i64) {
        if let Ok(mut map) = self.map.write() {
            map.retain(|_, (_, t)| t.token_id != token_id);
        }
        if let Ok(mut live) = self.live.write() {
            live.remove(&token_id);
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
             expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ",
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
            .fetch_one(p)
            .await)?;
        Ok(token)
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
                 t.last_used_at AS last_used, t.expires_at FROM api_tokens t \
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

    /// The owner of a live token, with the token's roles narrowed to those held now.
    async fn token_owner(&self, t: LiveToken) -> Result<TokenOwner> {
        let held = self.current_roles(t.user_id).await?;
        let roles = t
            .token_roles
            .0
            .into_iter()
            .filter(|r| held.contains(r))
            .collect();
        Ok(TokenOwner {
            token_id: t.token_id,
            user_id: t.user_id,
            email: t.email,
            roles,
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
