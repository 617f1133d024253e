//! Reading the fields of a request body the way a DRF serializer does: a missing required field,
//! a null, a blank, a wrong type or an over-long value each gets DRF's message under the field's
//! name, and all of a body's errors are reported together.

use serde_json::{Map, Value};

use super::{FieldErrors, MAX_BODY_VALUES, MAX_JSON_DEPTH, NON_FIELD_ERRORS, NUL_MESSAGE};

/// What kind of write the body is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// POST: required fields must be present; absent optional fields take their defaults.
    Create,
    /// PUT: required fields must be present; absent optional fields keep their values.
    Replace,
    /// PATCH: only the fields present change.
    Partial,
}

impl Mode {
    pub fn is_partial(self) -> bool {
        self == Mode::Partial
    }
}

/// Rules for a text field.
#[derive(Debug, Clone, Copy)]
pub struct Text {
    pub required: bool,
    pub allow_blank: bool,
    pub max_len: Option<usize>,
}

impl Text {
    pub const fn required() -> Self {
        Text {
            required: true,
            allow_blank: false,
            max_len: None,
        }
    }
    pub const fn optional() -> Self {
        Text {
            required: false,
            allow_blank: true,
            max_len: None,
        }
    }
    pub const fn not_blank(mut self) -> Self {
        self.allow_blank = false;
        self
    }
    pub const fn max(mut self, len: usize) -> Self {
        self.max_len = Some(len);
        self
    }
}

pub struct Input<'a> {
    fields: &'a Map<String, Value>,
    mode: Mode,
    errors: FieldErrors,
}

/// A field of a body read without an [`Input`] (as `body.get(name)`), noted as asked for.
pub fn field<'v>(body: &'v Value, name: &str) -> Option<&'v Value> {
    crate::validation::asked(name);
    body.get(name)
}

/// Sets `slot` when the field was present and valid.
pub fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

fn python_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// Why a JSON object given as text cannot be stored, if it cannot. The body check
/// (`http::body::check_storable`) saw only a string; what the string holds must keep the same
/// rules as the body's own values: no NUL (PostgreSQL's jsonb refuses `\u0000`: a 500, not a
/// 400), no nesting past [`MAX_JSON_DEPTH`] at a field's level, at most [`MAX_BODY_VALUES`]
/// values.
fn unstorable(value: &Value) -> Option<String> {
    // The object stands where a body field's value does: the second level.
    let mut stack = vec![(value, 2usize)];
    let mut values = 0;
    while let Some((value, depth)) = stack.pop() {
        values += 1;
        let too_deep = match value {
            Value::String(s) if s.contains('\0') => return Some(NUL_MESSAGE.into()),
            Value::Array(items) => {
                stack.extend(items.iter().map(|v| (v, depth + 1)));
                depth > MAX_JSON_DEPTH
            }
            Value::Object(fields) => {
                if fields.keys().any(|k| k.contains('\0')) {
                    return Some(NUL_MESSAGE.into());
                }
                stack.extend(fields.values().map(|v| (v, depth + 1)));
                depth > MAX_JSON_DEPTH
            }
            _ => false,
        };
        if too_deep {
            return Some(format!(
                "Nested too deeply: a body may have at most {MAX_JSON_DEPTH} levels."
            ));
        }
    }
    (values > MAX_BODY_VALUES)
        .then(|| format!("The request body holds more than {MAX_BODY_VALUES} values."))
}

/// An integer from a JSON number or a numeric string, as DRF's IntegerField accepts.
fn as_integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl<'a> Input<'a> {
    /// Fails with DRF's `non_field_errors` message when the body is not a JSON object.
    pub fn new(body: &'a Value, mode: Mode) -> Result<Self, FieldErrors> {
        match body {
            Value::Object(fields) => Ok(Input {
                fields,
                mode,
                errors: FieldErrors::new(),
            }),
            other => Err(FieldErrors::single(
                NON_FIELD_ERRORS,
                format!(
                    "Invalid data. Expected a dictionary, but got {}.",
                    python_type(other)
                ),
            )),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.add(field, message);
    }

    /// The raw value of a present field; records "required" for an absent required one.
    fn present(&mut self, name: &str, required: bool) -> Option<&'a Value> {
        crate::validation::asked(name);
        let value = self.fields.get(name);
        if value.is_none() && required && !self.mode.is_partial() {
            self.errors.add(name, "This field is required.");
        }
        value
    }

    fn text_value(&mut self, name: &str, value: &Value, rule: Text) -> Option<String> {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => {
                self.errors.add(name, "Not a valid string.");
                return None;
            }
        };
        if !rule.allow_blank && text.trim().is_empty() {
            self.errors.add(name, "This field may not be blank.");
            return None;
        }
        if let Some(max) = rule.max_len {
            if text.chars().count() > max {
                self.errors.add(
                    name,
                    format!("Ensure this field has no more than {max} characters."),
                );
                return None;
            }
        }
        Some(text)
    }

    /// A text field that may not be null.
    pub fn text(&mut self, name: &str, rule: Text) -> Option<String> {
        match self.present(name, rule.required)? {
            Value::Null => {
                self.errors.add(name, "This field may not be null.");
                None
            }
            value => self.text_value(name, value, rule),
        }
    }

    /// A text field that may be null.
    pub fn nullable_text(&mut self, name: &str, rule: Text) -> Option<Option<String>> {
        match self.present(name, rule.required)? {
            Value::Null => Some(None),
            value => self.text_value(name, value, rule).map(Some),
        }
    }

    /// A text field restricted to a set of choices.
    pub fn choice(&mut self, name: &str, required: bool, choices: &[&str]) -> Option<String> {
        let value = self.text(
            name,
            Text {
                required,
                allow_blank: true,
                max_len: None,
            },
        )?;
        if choices.contains(&value.as_str()) {
            Some(value)
        } else {
            self.errors
                .add(name, format!("\"{value}\" is not a valid choice."));
            None
        }
    }

    /// An integer field that may not be null, with an optional lower bound.
    pub fn integer(&mut self, name: &str, required: bool, min: Option<i64>) -> Option<i64> {
        let value = self.present(name, required)?;
        if value.is_null() {
            self.errors.add(name, "This field may not be null.");
            return None;
        }
        let Some(n) = as_integer(value) else {
            self.errors.add(name, "A valid integer is required.");
            return None;
        };
        match min {
            Some(min) if n < min => {
                self.errors.add(
                    name,
                    format!("Ensure this value is greater than or equal to {min}."),
                );
                None
            }
            _ => Some(n),
        }
    }

    fn pk_value(&mut self, name: &str, value: &Value) -> Option<i64> {
        match as_integer(value) {
            Some(id) => Some(id),
            None => {
                self.errors.add(
                    name,
                    format!(
                        "Incorrect type. Expected pk value, received {}.",
                        python_type(value)
                    ),
                );
                None
            }
        }
    }

    /// An integer field that may be null.
    pub fn nullable_integer(&mut self, name: &str, min: Option<i64>) -> Option<Option<i64>> {
        crate::validation::asked(name);
        match self.fields.get(name)? {
            Value::Null => Some(None),
            _ => self.integer(name, false, min).map(Some),
        }
    }

    /// A UUID, as text.
    pub fn uuid(&mut self, name: &str, required: bool) -> Option<uuid::Uuid> {
        let value = self.present(name, required)?;
        match value
            .as_str()
            .and_then(|s| uuid::Uuid::parse_str(s.trim()).ok())
        {
            Some(id) => Some(id),
            None if value.is_null() => {
                self.errors.add(name, "This field may not be null.");
                None
            }
            None => {
                self.errors.add(name, "Must be a valid UUID.");
                None
            }
        }
    }

    /// A reference to another record by id, not null. Existence is checked by the domain.
    pub fn pk(&mut self, name: &str, required: bool) -> Option<i64> {
        match self.present(name, required)? {
            Value::Null => {
                self.errors.add(name, "This field may not be null.");
                None
            }
            value => self.pk_value(name, value),
        }
    }

    /// A reference that may be null (an empty form value counts as null, as in DRF).
    pub fn nullable_pk(&mut self, name: &str) -> Option<Option<i64>> {
        match self.present(name, false)? {
            Value::Null => Some(None),
            Value::String(s) if s.is_empty() => Some(None),
            value => self.pk_value(name, value).map(Some),
        }
    }

    /// A boolean, in the spellings DRF accepts.
    pub fn boolean(&mut self, name: &str, required: bool) -> Option<bool> {
        let value = self.present(name, required)?;
        let parsed = match value {
            Value::Bool(b) => Some(*b),
            Value::Number(n) => match n.as_i64() {
                Some(1) => Some(true),
                Some(0) => Some(false),
                _ => None,
            },
            Value::String(s) => match s.as_str() {
                "true" | "True" | "TRUE" | "1" | "t" | "T" | "yes" | "on" => Some(true),
                "false" | "False" | "FALSE" | "0" | "f" | "F" | "no" | "off" => Some(false),
                _ => None,
            },
            _ => None,
        };
        if parsed.is_none() {
            self.errors.add(name, "Must be a valid boolean.");
        }
        parsed
    }

    /// A JSON object (or null). A string holding a JSON object is accepted too, as form
    /// clients send it that way.
    pub fn nullable_object(&mut self, name: &str) -> Option<Option<Value>> {
        match self.present(name, false)? {
            Value::Null => Some(None),
            value @ Value::Object(_) => Some(Some(value.clone())),
            Value::String(s) => match serde_json::from_str::<Value>(s) {
                Ok(value @ Value::Object(_)) => match unstorable(&value) {
                    None => Some(Some(value)),
                    Some(message) => {
                        self.errors.add(name, message);
                        None
                    }
                },
                _ => {
                    self.errors.add(name, "Value must be valid JSON.");
                    None
                }
            },
            _ => {
                self.errors.add(name, "Expected a JSON object.");
                None
            }
        }
    }

    /// The errors found, if any.
    pub fn finish(self) -> Result<(), FieldErrors> {
        self.errors.into_result()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors_of(body: Value, mode: Mode, read: impl FnOnce(&mut Input)) -> Value {
        let mut input = Input::new(&body, mode).unwrap();
        read(&mut input);
        match input.finish() {
            Ok(()) => json!({}),
            Err(e) => json!(e),
        }
    }

    #[test]
    fn required_null_blank_and_types_get_drf_messages() {
        let errors = errors_of(
            json!({"b": null, "c": " ", "d": [1], "e": "x", "f": "abc", "g": true}),
            Mode::Create,
            |i| {
                i.text("a", Text::required());
                i.text("b", Text::required());
                i.text("c", Text::required());
                i.text("d", Text::required());
                i.integer("e", true, None);
                i.pk("f", true);
                i.pk("g", true);
            },
        );
        assert_eq!(
            errors,
            json!({
                "a": ["This field is required."],
                "b": ["This field may not be null."],
                "c": ["This field may not be blank."],
                "d": ["Not a valid string."],
                "e": ["A valid integer is required."],
                "f": ["Incorrect type. Expected pk value, received str."],
                "g": ["Incorrect type. Expected pk value, received bool."],
            })
        );
    }

    #[test]
    fn partial_updates_do_not_require_fields() {
        assert_eq!(
            errors_of(json!({}), Mode::Partial, |i| {
                i.text("a", Text::required());
            }),
            json!({})
        );
    }

    #[test]
    fn numbers_are_read_from_strings_and_strings_from_numbers() {
        let body = json!({"n": "12", "s": 5, "m": 3.0});
        let mut input = Input::new(&body, Mode::Create).unwrap();
        assert_eq!(input.integer("n", true, None), Some(12));
        assert_eq!(input.integer("m", true, None), Some(3));
        assert_eq!(input.text("s", Text::required()).as_deref(), Some("5"));
    }

    #[test]
    fn bounds_and_lengths_are_checked() {
        let errors = errors_of(json!({"n": 0, "s": "abcdef"}), Mode::Create, |i| {
            i.integer("n", true, Some(1));
            i.text("s", Text::required().max(5));
        });
        assert_eq!(
            errors,
            json!({
                "n": ["Ensure this value is greater than or equal to 1."],
                "s": ["Ensure this field has no more than 5 characters."],
            })
        );
    }

    /// An object given as text was parsed without the body's checks, so
    /// `"metadata": "{\"k\": \"\\u0000\"}"` reached PostgreSQL's jsonb (which refuses `\u0000`:
    /// a 500), and text could nest deeper or hold more values than a body may.
    #[test]
    fn an_object_given_as_text_keeps_the_body_rules() {
        let nested = |levels: usize| format!("{}1{}", "{\"a\":".repeat(levels), "}".repeat(levels));
        let many = format!("{{\"a\": [{}0]}}", "0,".repeat(MAX_BODY_VALUES));
        let read = |text: &str| {
            let body = json!({ "metadata": text });
            let mut input = Input::new(&body, Mode::Create).unwrap();
            let value = input.nullable_object("metadata");
            (value, input.finish())
        };
        for (text, message) in [
            (r#"{"k": "\u0000"}"#.to_string(), NUL_MESSAGE.to_string()),
            (r#"{"\u0000": 1}"#.to_string(), NUL_MESSAGE.to_string()),
            (
                nested(MAX_JSON_DEPTH),
                "Nested too deeply: a body may have at most 32 levels.".into(),
            ),
            (
                many,
                "The request body holds more than 10000 values.".into(),
            ),
        ] {
            let (value, result) = read(&text);
            assert_eq!(value, None, "{text:.40}");
            assert_eq!(result.unwrap_err().messages("metadata"), [message]);
        }
        // One level less is as deep as a body's own metadata may be.
        let (value, result) = read(&nested(MAX_JSON_DEPTH - 1));
        assert!(value.is_some() && result.is_ok());
    }

    #[test]
    fn a_body_that_is_not_an_object_is_refused() {
        assert!(Input::new(&json!([1]), Mode::Create).is_err());
    }
}
