//! Storage errors, classified so services can branch on them without reading messages.

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The row asked for does not exist.
    #[error("not found")]
    NotFound,
    /// A uniqueness constraint refused the write; `constraint` names it when the backend reports it.
    #[error("conflict on {constraint:?}")]
    Conflict {
        /// The constraint name (PostgreSQL) or `None` (SQLite does not name constraints).
        constraint: Option<String>,
    },
    /// The database could not be reached or refused the operation (disk full, connection lost, …).
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// A stored value could not be decoded; the database holds something shedu did not write.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The store was configured wrongly (bad URL).
    #[error("store configuration: {0}")]
    Config(String),
    /// A one-time secret presented with a change did not match the stored one, or was used already; nothing
    /// was changed.
    #[error("secret does not match or was already used")]
    Unauthorized,
    /// A user change was refused because it would leave no enabled user with the role the caller asked
    /// to keep (the last admin); nothing was changed.
    #[error("the change would leave no enabled user with the kept role")]
    LastOfRole,
}

/// `NotFound` when a write changed no row (what it targets does not exist).
pub(crate) fn found(rows_affected: u64) -> Result<(), Error> {
    if rows_affected == 0 {
        Err(Error::NotFound)
    } else {
        Ok(())
    }
}

impl Error {
    pub(crate) fn unavailable(e: sqlx::Error) -> Error {
        Error::Unavailable(e)
    }

    /// The same error for another caller of one failed batch: a database error keeps its message.
    pub(crate) fn again(&self) -> Error {
        match self {
            Error::NotFound => Error::NotFound,
            Error::Conflict { constraint } => Error::Conflict {
                constraint: constraint.clone(),
            },
            Error::Unavailable(e) => Error::Unavailable(sqlx::Error::Protocol(e.to_string())),
            Error::Corrupt(m) => Error::Corrupt(m.clone()),
            Error::Config(m) => Error::Config(m.clone()),
            Error::Unauthorized => Error::Unauthorized,
            Error::LastOfRole => Error::LastOfRole,
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Error {
        match &e {
            sqlx::Error::RowNotFound => Error::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => Error::Conflict {
                constraint: db.constraint().map(str::to_string),
            },
            _ => Error::Unavailable(e),
        }
    }
}
