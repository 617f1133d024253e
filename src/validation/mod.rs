//! Field-level validation errors, shaped like Django REST Framework's: each field maps to a list
//! of messages, and errors about the object as a whole go under `non_field_errors`.

use std::collections::BTreeMap;

pub mod input;

pub const NON_FIELD_ERRORS: &str = "non_field_errors";

/// The deepest nesting a body may have, the body's own object being the first level. Stored
/// values are read back inside larger documents (an event embeds a subscription's metadata three
/// levels down) by readers that stop at 128 levels (serde_json's limit), so input stays far
/// inside that.
pub const MAX_JSON_DEPTH: usize = 32;

/// The most values (object members and array items, at any depth) one JSON or form body may
/// hold. A subscription's metadata is a handful; this bounds the work of checking and storing
/// a body of many tiny values, which the byte limit alone does not.
pub const MAX_BODY_VALUES: usize = 10_000;

/// DRF's message for a NUL character in text (its `ProhibitNullCharactersValidator`).
pub const NUL_MESSAGE: &str = "Null characters are not allowed.";

/// Refuses NUL characters in the names or values of query or form pairs: no engine stores them
/// (PostgreSQL refuses NUL in text), so both engines refuse them alike.
pub fn refuse_nul_pairs(pairs: &[(String, String)]) -> Result<(), FieldErrors> {
    let mut errors = FieldErrors::new();
    for (key, value) in pairs {
        if key.contains('\0') || value.contains('\0') {
            errors.add(key, NUL_MESSAGE);
        }
    }
    errors.into_result()
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct FieldErrors(BTreeMap<String, Vec<String>>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn single(field: &str, message: impl Into<String>) -> Self {
        let mut errors = Self::new();
        errors.add(field, message);
        errors
    }

    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_string())
            .or_default()
            .push(message.into());
    }

    pub fn has(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn merge(&mut self, other: FieldErrors) {
        for (field, messages) in other.0 {
            self.0.entry(field).or_default().extend(messages);
        }
    }

    /// `Ok(())` when there are no errors, so that callers can `?` the result.
    pub fn into_result(self) -> Result<(), FieldErrors> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }

    pub fn messages(&self, field: &str) -> &[String] {
        self.0.get(field).map(Vec::as_slice).unwrap_or_default()
    }
}

/// DRF's message for a reference to a row that does not exist.
pub fn missing_pk(id: i64) -> String {
    format!("Invalid pk \"{id}\" - object does not exist.")
}

/// Notes that a request reader looked at the field `name`. In tests, the OpenAPI schema checks
/// collect these to compare what a reader accepts with what its documented schema declares;
/// elsewhere it does nothing.
#[inline]
pub fn asked(name: &str) {
    #[cfg(test)]
    fields_asked::record(name);
    #[cfg(not(test))]
    let _ = name;
}

/// Test support for [`asked`]: the fields a reader looks at while it runs.
#[cfg(test)]
pub mod fields_asked {
    use std::cell::RefCell;
    use std::collections::BTreeSet;

    thread_local! {
        static ASKED: RefCell<Option<BTreeSet<String>>> = const { RefCell::new(None) };
    }

    pub(super) fn record(name: &str) {
        ASKED.with(|asked| {
            if let Some(set) = asked.borrow_mut().as_mut() {
                set.insert(name.to_string());
            }
        });
    }

    /// Runs `read` and returns what it returned with every field name it asked for.
    pub fn by<R>(read: impl FnOnce() -> R) -> (R, BTreeSet<String>) {
        ASKED.with(|asked| *asked.borrow_mut() = Some(BTreeSet::new()));
        let result = read();
        let names = ASKED.with(|asked| asked.borrow_mut().take().unwrap_or_default());
        (result, names)
    }
}
