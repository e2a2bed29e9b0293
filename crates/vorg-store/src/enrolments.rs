//! Enrolments: single-use, expiring invitations an admin gives an agent so it can register
//! itself, with the roles, permissions and limits fixed by the admin.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use vorg_domain::{Permissions, Role, RoleList, TokenLimits};

use crate::tokens::PermissionColumn;
use crate::{
    ApiToken, BeginWrite, DEFAULT_ORG, Result, Store, StoreError, UserWithRoles, with_pool,
};

/// An enrolment as listed (never with its secret).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Enrolment {
    pub id: i64,
    pub prefix: String,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub roles: RoleList,
    #[sqlx(try_from = "Option<String>")]
    pub permissions: PermissionColumn,
    pub limits: Json<TokenLimits>,
    pub created_by: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub used_by: Option<i64>,
}

/// What is needed to store a new enrolment.
pub struct NewEnrolment<'a> {
    pub token_hash: &'a str,
    pub prefix: &'a str,
    pub name: &'a str,
    pub roles: &'a [Role],
    pub permissions: Permissions,
    pub limits: &'a TokenLimits,
    pub created_by: i64,
    pub expires_at: DateTime<Utc>,
}

/// The account and key an enrolment makes.
pub struct Enrolled<'a> {
    pub email: &'a str,
    /// A hash of a random password nobody knows: an enrolled agent signs in with its key.
    pub password_hash: &'a str,
    pub token_hash: &'a str,
    pub token_prefix: &'a str,
}

macro_rules! enrolment_columns {
    () => {
        "id, prefix, name, roles, permissions, limits, created_by, created_at, expires_at, \
         used_at, used_by"
    };
}

impl Store {
    pub async fn create_enrolment(&self, new: NewEnrolment<'_>) -> Result<Enrolment> {
        let sql = concat!(
            "INSERT INTO enrolments (org_id, token_hash, prefix, name, roles, permissions, limits, \
             created_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             RETURNING ",
            enrolment_columns!()
        );
        let row = with_pool!(self, |p| sqlx::query_as(sql)
            .bind(DEFAULT_ORG)
            .bind(new.token_hash)
            .bind(new.prefix)
            .bind(new.name)
            .bind(RoleList::to_column(new.roles))
            .bind(new.permissions.to_column())
            .bind(Json(new.limits))
            .bind(new.created_by)
            .bind(Utc::now())
            .bind(new.expires_at)
            .fetch_one(p)
            .await)?;
        Ok(row)
    }

    pub async fn list_enrolments(&self) -> Result<Vec<Enrolment>> {
        let sql = concat!(
            "SELECT ",
            enrolment_columns!(),
            " FROM enrolments WHERE org_id = $1 ORDER BY id DESC LIMIT 200"
        );
        let rows = with_pool!(self, |p| sqlx::query_as(sql)
            .bind(DEFAULT_ORG)
            .fetch_all(p)
            .await)?;
        Ok(rows)
    }

    /// Uses the enrolment whose secret hashes to `enrolment_hash`, once: in one transaction
    /// it is marked used, the account is created with its roles and the key with its
    /// permissions and limits. `Refused` when it is unknown, used or expired; `Conflict`
    /// when the e-mail is taken (the enrolment stays usable).
    pub async fn enrol(
        &self,
        enrolment_hash: &str,
        who: Enrolled<'_>,
    ) -> Result<(UserWithRoles, ApiToken)> {
        let now = Utc::now();
        let take = concat!(
            "UPDATE enrolments SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL \
             AND expires_at > $1 RETURNING ",
            enrolment_columns!()
        );
        with_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            let enrolment: Option<Enrolment> = sqlx::query_as(take)
                .bind(now)
                .bind(enrolment_hash)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(e) = enrolment else {
                return Err(StoreError::Refused(
                    "the enrolment token is unknown, used or expired".into(),
                ));
            };
            let user: crate::User = sqlx::query_as(
                "INSERT INTO users (org_id, email, password_hash, is_admin, created_at) \
                 VALUES ($1, $2, $3, $4, $5) \
                 RETURNING id, org_id, email, is_admin, created_at, last_login_at",
            )
            .bind(DEFAULT_ORG)
            .bind(who.email)
            .bind(who.password_hash)
            .bind(e.roles.0.contains(&Role::Admin))
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            crate::users::grant_in_tx!(tx, user.id, &e.roles.0);
            sqlx::query("UPDATE enrolments SET used_by = $1 WHERE id = $2")
                .bind(user.id)
                .bind(e.id)
                .execute(&mut *tx)
                .await?;
            let token: ApiToken = sqlx::query_as(concat!(
                "INSERT INTO api_tokens (org_id, user_id, name, token_hash, prefix, roles, \
                 created_at, permissions, limits) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 RETURNING ",
                crate::tokens::token_columns!()
            ))
            .bind(DEFAULT_ORG)
            .bind(user.id)
            .bind(&e.name)
            .bind(who.token_hash)
            .bind(who.token_prefix)
            .bind(RoleList::to_column(&e.roles.0))
            .bind(now)
            .bind(e.permissions.0.unwrap_or_default().to_column())
            .bind(Json(&e.limits.0))
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            let mut roles = e.roles.0.clone();
            roles.sort();
            Ok((UserWithRoles { user, roles }, token))
        })
    }
}
