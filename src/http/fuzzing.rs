//! Entry points for the fuzz targets in `fuzz/` (docs/reliability.md, "Fuzzing"): request
//! readers that are private to their handlers, run the way the handlers run them. Not an API.

use serde_json::Value;

use crate::model::content::{MessageFields, MessageSetFields, ScheduleFields};
use crate::model::subscriptions::SubscriptionFields;
use crate::validation::input::Mode;

/// A request body as the JSON and form routes read it (the `Body` extractor): parsed by its
/// Content-Type, then checked storable. `None` when the request would be refused with a 4xx.
pub fn request_body(content_type: &str, bytes: &[u8]) -> Option<Value> {
    let value = super::body::parse(content_type, bytes).ok()?;
    super::body::check_storable(&value).ok()?;
    Some(value)
}

/// Reads `body` with every resource's field reader, in every mode the routes use. Field errors
/// are an expected outcome; a panic is the finding, and so is a JSON value a reader accepted
/// that the body check would have refused (the database could not store it: a 500, not a 400).
pub fn read_with_every_reader(body: &Value) {
    for mode in [Mode::Create, Mode::Replace, Mode::Partial] {
        let _ = super::schedules::read_fields(body, mode, &mut ScheduleFields::default());
        let _ = super::message_sets::read_fields(body, mode, &mut MessageSetFields::default());
        let mut message = MessageFields::default();
        if super::messages::read_fields(body, mode, &mut message).is_ok() {
            assert_storable("metadata", message.metadata.as_ref());
        }
        let mut subscription = SubscriptionFields::default();
        if super::subscriptions::read_fields(body, mode, &mut subscription).is_ok() {
            assert_storable("metadata", subscription.metadata.as_ref());
        }
    }
    let _ = super::users::read_email(body);
    if let Ok(data) = super::integrations::read_message_data(body) {
        assert_storable("data", Some(&data));
    }
    let now = chrono::DateTime::UNIX_EPOCH;
    for mode in [Mode::Create, Mode::Partial] {
        let mut group = crate::integrations::input::new_group("fuzz", now);
        let _ = crate::integrations::input::read_group(body, mode, &mut group, &[]);
    }
}

/// Panics unless `value`, as the field `name` of a body, passes the body check.
fn assert_storable(name: &str, value: Option<&Value>) {
    if let Some(value) = value {
        let body = Value::Object([(name.to_string(), value.clone())].into_iter().collect());
        if let Err(errors) = super::body::check_storable(&body) {
            panic!("{name} was accepted but is not storable: {errors:?}");
        }
    }
}
