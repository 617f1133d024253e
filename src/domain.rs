//! The error every domain module (content, subscriptions, integrations) returns, in terms the HTTP layer maps
//! to status codes once.

use crate::store;
use crate::validation::{FieldErrors, NON_FIELD_ERRORS};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid input")]
    Invalid(FieldErrors),
    #[error("not found")]
    NotFound,
    /// Deleting the record would orphan others; the text says which.
    #[error("{0}")]
    InUse(String),
    /// The request does not apply to this record (a poll call on a push group); 400.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(store::Error),
}

impl From<store::Error> for Error {
    fn from(err: store::Error) -> Self {
        match err {
            store::Error::NotFound => Error::NotFound,
            store::Error::Unique(constraint) => Error::Invalid(unique_error(constraint)),
            other => Error::Store(other),
        }
    }
}

impl From<FieldErrors> for Error {
    fn from(errors: FieldErrors) -> Self {
        Error::Invalid(errors)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The error a client sees when a unique constraint refuses a write (the original's wording).
fn unique_error(constraint: &str) -> FieldErrors {
    match constraint {
        "message_set_short_name_key" => FieldErrors::single(
            "short_name",
            "message set with this short name already exists.",
        ),
        "message_set_sequence_lang_key" => FieldErrors::single(
            NON_FIELD_ERRORS,
            "The fields messageset, sequence_number, lang must make a unique set.",
        ),
        other => FieldErrors::single(NON_FIELD_ERRORS, format!("Duplicate value ({other}).")),
    }
}
