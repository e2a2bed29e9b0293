//! Users and their roles, including the last-admin rule.

use chrono::{DateTime, Utc};
use vorg_domain::Role;

use crate::BeginWrite;
use crate::{DEFAULT_ORG, Db, Page, Result, Store, StoreError, with_pool};

/// A user row, without its password hash (only [`Store::find_login`] reads that).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub org_id: i64,
    pub email: String,
    pub is_admin: bool,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct UserRoleRow {
    #[sqlx(flatten)]
    user: User,
    role: Option<String>,
}

/// A user with the roles it holds now.
#[derive(Debug, Clone)]
pub struct UserWithRoles {
    pub user: User,
    pub roles: Vec<Role>,
}

macro_rules! user_columns {
    () => {
        "id, org_id, email, is_admin, created_at, last_login_at"
    };
}

/// Grants `$roles` to user `$user_id` inside transaction `$tx` (either backend).
macro_rules! grant_in_tx {
    ($tx:ident, $user_id:expr, $roles:expr) => {
        for role in $roles {
            sqlx::query(
                "INSERT INTO user_roles (user_id, role_id) \
                 SELECT $1, id FROM roles WHERE name = $2",
            )
            .bind($user_id)
            .bind(role.as_str())
            .execute(&mut *$tx)
            .await?;
        }
    };
}
pub(crate) use grant_in_tx;

/// Role names as stored; unknown names (none exist today) are skipped, never trusted.
fn parse_roles(names: impl IntoIterator<Item = String>) -> Vec<Role> {
    let mut roles: Vec<Role> = names.into_iter().filter_map(|n| n.parse().ok()).collect();
    roles.sort();
    roles.dedup();
    roles
}

impl Store {
    /// Creates a user holding `roles`. With `only_if_no_users`, refuses (`Rule`) when any
    /// user exists, atomically, so two concurrent first registrations cannot both be admin.
    pub async fn create_user(
        &self,
        email: &str,
        password_hash: &str,
        roles: &[Role],
        only_if_no_users: bool,
    ) -> Result<UserWithRoles> {
        let now = Utc::now();
        let is_admin = roles.contains(&Role::Admin);
        let insert = concat!(
            "INSERT INTO users (org_id, email, password_hash, is_admin, created_at) \
             SELECT $1, $2, $3, $4, $5 WHERE $6 = FALSE OR NOT EXISTS (SELECT 1 FROM users) \
             RETURNING ",
            user_columns!()
        );
        let user = with_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            if matches!(self.db, Db::Postgres(_)) {
                // Serialise first-user creation across processes.
                sqlx::query("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
                    .execute(&mut *tx)
                    .await?;
            }
            let user: Option<User> = sqlx::query_as(insert)
                .bind(DEFAULT_ORG)
                .bind(email)
                .bind(password_hash)
                .bind(is_admin)
                .bind(now)
                .bind(only_if_no_users)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(user) = user else {
                return Err(StoreError::Rule("users already exist"));
            };
            grant_in_tx!(tx, user.id, roles);
            tx.commit().await?;
            user
        });
        let mut roles = roles.to_vec();
        roles.sort();
        roles.dedup();
        Ok(UserWithRoles { user, roles })
    }

    pub async fn count_users(&self) -> Result<i64> {
        let n: i64 = with_pool!(self, |p| sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(p)
            .await)?;
        Ok(n)
    }

    pub async fn find_user_by_email(&self, email: &str) -> Result<Option<UserWithRoles>> {
        let sql = concat!("SELECT ", user_columns!(), " FROM users WHERE email = $1");
        let user: Option<User> = with_pool!(self, |p| sqlx::query_as(sql)
            .bind(email)
            .fetch_optional(p)
            .await)?;
        match user {
            Some(user) => Ok(Some(self.attach_roles(user).await?)),
            None => Ok(None),
        }
    }

    /// The user with `email` and their password hash, for checking a login.
    pub async fn find_login(&self, email: &str) -> Result<Option<(UserWithRoles, String)>> {
        let hash: Option<(i64, String)> = with_pool!(self, |p| sqlx::query_as(
            "SELECT id, password_hash FROM users WHERE email = $1"
        )
        .bind(email)
        .fetch_optional(p)
        .await)?;
        match hash {
            Some((id, hash)) => Ok(Some((self.get_user(id).await?, hash))),
            None => Ok(None),
        }
    }

    pub async fn get_user(&self, id: i64) -> Result<UserWithRoles> {
        let sql = concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");
        let user: User = with_pool!(self, |p| sqlx::query_as(sql).bind(id).fetch_one(p).await)?;
        self.attach_roles(user).await
    }

    /// The roles `user_id` holds now; `NotFound` when the user does not exist. One query:
    /// this runs on every authenticated request.
    pub async fn user_roles(&self, user_id: i64) -> Result<Vec<Role>> {
        let rows: Vec<(i64, Option<String>)> = with_pool!(self, |p| sqlx::query_as(
            "SELECT u.id, r.name FROM users u \
             LEFT JOIN user_roles ur ON ur.user_id = u.id \
             LEFT JOIN roles r ON r.id = ur.role_id WHERE u.id = $1"
        )
        .bind(user_id)
        .fetch_all(p)
        .await)?;
        if rows.is_empty() {
            return Err(StoreError::NotFound);
        }
        Ok(parse_roles(rows.into_iter().filter_map(|(_, r)| r)))
    }

    /// [`Store::user_roles`] through the per-process cache (see `roles_cache`): what
    /// authentication uses on every request.
    pub async fn current_roles(&self, user_id: i64) -> Result<Vec<Role>> {
        if let Some(roles) = self.roles.get(user_id) {
            return Ok(roles);
        }
        let roles = self.user_roles(user_id).await?;
        self.roles.put(user_id, &roles);
        Ok(roles)
    }

    async fn attach_roles(&self, user: User) -> Result<UserWithRoles> {
        let roles = self.user_roles(user.id).await?;
        Ok(UserWithRoles { user, roles })
    }

    /// Users of the org, newest first, with their roles: one query for the page.
    pub async fn list_users(&self, page: Page) -> Result<Vec<UserWithRoles>> {
        let sql = concat!(
            "SELECT u.id, u.org_id, u.email, u.is_admin, u.created_at, \
             u.last_login_at, r.name AS role FROM (SELECT ",
            user_columns!(),
            " FROM users WHERE org_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3) u \
             LEFT JOIN user_roles ur ON ur.user_id = u.id \
             LEFT JOIN roles r ON r.id = ur.role_id ORDER BY u.id DESC"
        );
        let rows: Vec<UserRoleRow> = with_pool!(self, |p| sqlx::query_as(sql)
            .bind(DEFAULT_ORG)
            .bind(page.before_or_max())
            .bind(page.limit)
            .fetch_all(p)
            .await)?;
        let mut out: Vec<UserWithRoles> = Vec::new();
        for row in rows {
            let role = row.role.and_then(|r| r.parse::<Role>().ok());
            match out.last_mut() {
                Some(last) if last.user.id == row.user.id => last.roles.extend(role),
                _ => out.push(UserWithRoles {
                    user: row.user,
                    roles: role.into_iter().collect(),
                }),
            }
        }
        for u in &mut out {
            u.roles.sort();
        }
        Ok(out)
    }

    pub async fn record_login(&self, user_id: i64) -> Result<()> {
        with_pool!(self, |p| sqlx::query(
            "UPDATE users SET last_login_at = $1 WHERE id = $2"
        )
        .bind(Utc::now())
        .bind(user_id)
        .execute(p)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Grants `role`; returns whether the user did not already hold it.
    pub async fn grant_role(&self, user_id: i64, role: Role) -> Result<bool> {
        self.get_user(user_id).await?;
        let added = with_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            let added = sqlx::query(
                "INSERT INTO user_roles (user_id, role_id) \
                 SELECT $1, id FROM roles WHERE name = $2 \
                 AND NOT EXISTS (SELECT 1 FROM user_roles ur JOIN roles r ON r.id = ur.role_id \
                                 WHERE ur.user_id = $1 AND r.name = $2)",
            )
            .bind(user_id)
            .bind(role.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0;
            if role == Role::Admin {
                sqlx::query("UPDATE users SET is_admin = TRUE WHERE id = $1")
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            added
        });
        self.roles.forget(user_id);
        self.tell_credentials_changed().await;
        Ok(added)
    }

    /// Revokes `role`; returns whether the user held it. Refuses (`Rule`) to remove the
    /// admin role from the last admin, atomically on both backends.
    pub async fn revoke_role(&self, user_id: i64, role: Role) -> Result<bool> {
        self.get_user(user_id).await?;
        let removed = with_pool!(self, |p| {
            let mut tx = p.begin_write().await?;
            if matches!(self.db, Db::Postgres(_)) && role == Role::Admin {
                // Lock every admin grant so two concurrent demotions see each other.
                sqlx::query(
                    "SELECT ur.user_id FROM user_roles ur JOIN roles r ON r.id = ur.role_id \
                     WHERE r.name = 'admin' FOR UPDATE OF ur",
                )
                .execute(&mut *tx)
                .await?;
            }
            // The write comes first so SQLite takes its write lock before reading anything.
            let removed = sqlx::query(
                "DELETE FROM user_roles WHERE user_id = $1 \
                 AND role_id = (SELECT id FROM roles WHERE name = $2) \
                 AND ($2 <> 'admin' OR (SELECT COUNT(*) FROM user_roles ur \
                      JOIN roles r ON r.id = ur.role_id WHERE r.name = 'admin') > 1)",
            )
            .bind(user_id)
            .bind(role.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0;
            if !removed {
                let held: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM user_roles ur JOIN roles r ON r.id = ur.role_id \
                     WHERE ur.user_id = $1 AND r.name = $2",
                )
                .bind(user_id)
                .bind(role.as_str())
                .fetch_one(&mut *tx)
                .await?;
                if held > 0 {
                    return Err(StoreError::Rule("the last admin cannot be demoted"));
                }
            }
            if removed && role == Role::Admin {
                sqlx::query("UPDATE users SET is_admin = FALSE WHERE id = $1")
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            removed
        });
        self.roles.forget(user_id);
        self.tell_credentials_changed().await;
        Ok(removed)
    }
}
