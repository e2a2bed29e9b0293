//! The store's own small error. The API layer translates it into problems.

/// What went wrong in the store, in terms the layers above can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row asked for does not exist.
    #[error("not found")]
    NotFound,
    /// A unique or foreign-key constraint refused the write; the constraint is named.
    #[error("conflict on {0}")]
    Conflict(String),
    /// A domain rule refused the write (e.g. demoting the last admin).
    #[error("{0}")]
    Rule(&'static str),
    /// The write conflicts with the state of other rows; the message says how.
    #[error("{0}")]
    Refused(String),
    /// A field of the write is invalid given other rows (e.g. an unknown manager).
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// The store is misconfigured (e.g. an unknown URL scheme).
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Other(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db)
                if db.is_unique_violation() || db.is_foreign_key_violation() =>
            {
                StoreError::Conflict(db.constraint().unwrap_or("unique").to_owned())
            }
            other => StoreError::Other(other),
        }
    }
}
