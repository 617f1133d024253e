//! What can go wrong in storage, in terms the layers above can act on.

use super::dialect;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("row not found")]
    NotFound,
    /// A unique constraint refused the write; the name is one of `dialect::UNIQUE_CONSTRAINTS`.
    #[error("unique constraint {0} violated")]
    Unique(&'static str),
    /// A foreign key refused the write: a referenced row is missing, or a row still in use was
    /// about to be deleted.
    #[error("foreign key violated")]
    ForeignKey(#[source] sqlx::Error),
    /// The database is out of connections, locked or overloaded; the caller may retry.
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error")]
    Other(#[source] sqlx::Error),
}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::RowNotFound => Error::NotFound,
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                Error::Unavailable(err)
            }
            sqlx::Error::Database(db) => {
                if db.is_unique_violation() {
                    if let Some(name) = dialect::unique_constraint(db.as_ref()) {
                        return Error::Unique(name);
                    }
                }
                if db.is_foreign_key_violation() {
                    Error::ForeignKey(err)
                } else if dialect::is_busy(db.as_ref()) {
                    Error::Unavailable(err)
                } else {
                    Error::Other(err)
                }
            }
            _ => Error::Other(err),
        }
    }
}
