//! Checks of the OpenAPI document against the code: every route of the routers is documented
//! (and nothing else is), every request body's schema declares exactly the fields its reader
//! accepts, with the same required ones, and the structs that replaced `json!` answers write the
//! same bytes.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{json, Value};
use utoipa::{OpenApi, PartialSchema};

use super::error::ApiError;
use super::openapi::ApiDoc;
use super::openapi_rules::operations_mut;
use crate::validation::fields_asked;
use crate::validation::input::Mode;

/// The sources of every module with a `router()`, as `router` in `mod.rs` merges them.
const ROUTER_SOURCES: &[(&str, &str)] = &[
    ("mod.rs", include_str!("mod.rs")),
    ("schedules.rs", include_str!("schedules.rs")),
    ("message_sets.rs", include_str!("message_sets.rs")),
    ("messages.rs", include_str!("messages.rs")),
    ("binary_content.rs", include_str!("binary_content.rs")),
    ("subscriptions.rs", include_str!("subscriptions.rs")),
    ("failed_tasks.rs", include_str!("failed_tasks.rs")),
    ("events.rs", include_str!("events.rs")),
    ("callbacks.rs", include_str!("callbacks.rs")),
    ("integrations.rs", include_str!("integrations.rs")),
    ("users.rs", include_str!("users.rs")),
    ("health.rs", include_str!("health.rs")),
    ("observability.rs", include_str!("observability.rs")),
    ("openapi.rs", include_str!("openapi.rs")),
    ("local_time.rs", include_str!("local_time.rs")),
    ("security.rs", include_str!("security.rs")),
];

/// The text of the call's parenthesised arguments starting at `open` (the index of `(`).
fn arguments(text: &str, open: usize) -> &str {
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &text[open + 1..open + i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced parentheses")
}

/// The first string literal of `text`.
fn literal(text: &str) -> &str {
    let start = text.find('"').expect("a string literal") + 1;
    let end = start + text[start..].find('"').expect("a closed literal");
    &text[start..end]
}

/// The path of a `.route(...)`'s first argument: a literal, a `const` of the file, or a
/// `format!` over one.
fn route_path(source: &str, first_argument: &str) -> String {
    let constant = |name: &str| {
        let at = source
            .find(&format!("const {name}: &str = "))
            .unwrap_or_else(|| panic!("const {name} not found"));
        literal(&source[at..]).to_string()
    };
    let arg = first_argument.trim();
    if arg.starts_with('"') {
        literal(arg).to_string()
    } else if let Some(rest) = arg.strip_prefix("&format!(") {
        let template = literal(rest);
        let name = &template[1..template.find('}').expect("a {CONST}")];
        template
            .replacen(&format!("{{{name}}}"), &constant(name), 1)
            .replace("{{", "{")
            .replace("}}", "}")
    } else {
        constant(arg)
    }
}

/// Every (path, method) the routers declare, paths without their trailing slash.
fn routed() -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (file, source) in ROUTER_SOURCES {
        for (at, _) in source.match_indices(".route(") {
            let args = arguments(source, at + ".route".len());
            let comma = args.find(',').unwrap_or_else(|| panic!("{file}: {args}"));
            let path = route_path(source, &args[..comma]);
            let handlers = &args[comma + 1..];
            let mut found = false;
            for method in ["get", "post", "put", "patch", "delete"] {
                let calls = handlers
                    .match_indices(&format!("{method}("))
                    .any(|(i, _)| i == 0 || !handlers.as_bytes()[i - 1].is_ascii_alphanumeric());
                if calls {
                    routes.insert((path.trim_end_matches('/').to_string(), method.to_string()));
                    found = true;
                }
            }
            assert!(found, "{file}: no method in .route({args})");
        }
        for (at, _) in source.match_indices(".nest_service(") {
            let args = arguments(source, at + ".nest_service".len());
            routes.insert((format!("{}/{{path}}", literal(args)), "get".to_string()));
        }
    }
    routes
}

fn documented() -> BTreeSet<(String, String)> {
    let mut doc = ApiDoc::openapi();
    let mut ops = BTreeSet::new();
    for (path, item) in doc.paths.paths.iter_mut() {
        for (method, _) in operations_mut(item) {
            ops.insert((path.trim_end_matches('/').to_string(), method.to_string()));
        }
    }
    ops
}

#[test]
fn every_route_is_documented_and_every_documented_operation_is_routed() {
    let routed = routed();
    let documented = documented();
    assert!(routed.len() > 60, "the source scan found too few routes");
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty(),
        "routes without documentation: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "documented but not routed: {unrouted:?}"
    );
}

/// The fields a body reader asks for, and those an empty body is refused for as missing.
fn reader_fields(
    read: impl FnOnce(&Value) -> Result<(), ApiError>,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let empty = json!({});
    let (result, asked) = fields_asked::by(|| read(&empty));
    let required = match result {
        Ok(()) => BTreeSet::new(),
        Err(ApiError::Invalid(errors)) => {
            let errors = serde_json::to_value(errors).unwrap();
            errors
                .as_object()
                .unwrap()
                .iter()
                .filter(|(_, messages)| messages.to_string().contains("This field is required."))
                .map(|(field, _)| field.clone())
                .collect()
        }
        Err(other) => panic!("reading an empty body: {other:?}"),
    };
    (asked, required)
}

fn schema_fields<S: PartialSchema>() -> (BTreeSet<String>, BTreeSet<String>) {
    let schema = serde_json::to_value(S::schema()).unwrap();
    let properties = schema["properties"]
        .as_object()
        .expect("an object schema")
        .keys()
        .cloned()
        .collect();
    let required = schema["required"]
        .as_array()
        .map(|r| r.iter().map(|f| f.as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    (properties, required)
}

/// Fails unless the schema `S` has exactly the reader's fields, and requires exactly those the
/// reader refuses an empty body for.
fn assert_schema_matches_reader<S: PartialSchema>(
    name: &str,
    read: impl FnOnce(&Value) -> Result<(), ApiError>,
) {
    let (asked, required_by_reader) = reader_fields(read);
    let (properties, required_by_schema) = schema_fields::<S>();
    assert_eq!(
        properties, asked,
        "{name}: schema properties vs the fields the reader asks for"
    );
    assert_eq!(
        required_by_schema, required_by_reader,
        "{name}: required fields"
    );
}

#[test]
fn content_bodies_declare_the_fields_their_readers_accept() {
    assert_schema_matches_reader::<super::schedules::ScheduleIn>("ScheduleIn", |body| {
        super::schedules::read_fields(body, Mode::Create, &mut Default::default())
    });
    assert_schema_matches_reader::<super::message_sets::MessageSetIn>("MessageSetIn", |body| {
        super::message_sets::read_fields(body, Mode::Create, &mut Default::default())
    });
    assert_schema_matches_reader::<super::messages::MessageIn>("MessageIn", |body| {
        super::messages::read_fields(body, Mode::Create, &mut Default::default())
    });
}

#[test]
fn subscription_bodies_declare_the_fields_their_readers_accept() {
    assert_schema_matches_reader::<super::subscriptions::SubscriptionIn>(
        "SubscriptionIn",
        |body| super::subscriptions::read_fields(body, Mode::Create, &mut Default::default()),
    );
    // The registration's own reader takes `data`; what is inside is a SubscriptionIn (above).
    assert_schema_matches_reader::<super::subscriptions::HubRegistrationIn>(
        "HubRegistrationIn",
        |body| super::subscriptions::registration_data(body).map(|_| ()),
    );
}

#[test]
fn event_and_callback_bodies_declare_the_fields_their_readers_accept() {
    assert_schema_matches_reader::<super::callbacks::CallbackPatch>("CallbackPatch", |body| {
        super::callbacks::read_batch_size(body).map(|_| ())
    });
    assert_schema_matches_reader::<super::callbacks::RecoverIn>("RecoverIn", |body| {
        super::callbacks::read_window(body).map(|_| ())
    });
    assert_schema_matches_reader::<super::callbacks::HubForm>("HubForm", |_| {
        crate::callbacks::hub::parse(&[], &Default::default())
            .map(|_| ())
            .map_err(ApiError::Invalid)
    });
}

#[test]
fn integration_and_user_bodies_declare_the_fields_their_readers_accept() {
    assert_schema_matches_reader::<super::integration_wire::GroupIn>("GroupIn", |body| {
        let mut group = crate::integrations::input::new_group("sbm", crate::store::now());
        crate::integrations::input::read_group(body, Mode::Create, &mut group, &[])
            .map(|_| ())
            .map_err(ApiError::Invalid)
    });
    assert_schema_matches_reader::<super::integration_wire::GroupMessageIn>(
        "GroupMessageIn",
        |body| super::integrations::read_message_data(body).map(|_| ()),
    );
    // `integrations::mark` refuses a mark without a token as a missing field.
    assert_schema_matches_reader::<super::integration_wire::MarkIn>("MarkIn", |body| {
        match super::integration_poll::mark_token(&Default::default(), body) {
            Some(_) => Ok(()),
            None => Err(ApiError::Invalid(crate::validation::FieldErrors::single(
                "token",
                "This field is required.",
            ))),
        }
    });
    assert_schema_matches_reader::<super::users::TokenRequest>("TokenRequest", |body| {
        super::users::read_email(body).map(|_| ())
    });
}

#[test]
fn the_upload_schema_names_the_field_uploads_are_read_from() {
    let (properties, required) = schema_fields::<super::binary_content::BinaryContentUpload>();
    let upload = BTreeSet::from([super::binary_content::UPLOAD_FIELD.to_string()]);
    assert_eq!(properties, upload);
    assert_eq!(required, upload);
}

/// The bytes a struct writes are those of the `json!` object it replaced (whose keys
/// serde_json sorts).
fn assert_sorted_like_json_objects(out: impl Serialize) {
    let written = serde_json::to_string(&out).unwrap();
    let as_object = serde_json::to_string(&serde_json::to_value(&out).unwrap()).unwrap();
    assert_eq!(written, as_object);
}

#[test]
fn answers_that_replaced_json_objects_write_the_same_bytes() {
    use super::integration_wire::*;
    let now = || "2026-01-01T00:00:00.000000Z".to_string();
    let message = || GroupMessageOut {
        created_at: now(),
        data: json!({"b": 1, "a": 2}),
        event_id: None,
        group: "g".into(),
        id: 1,
        leased_until: None,
        manual_created_by: Some("a@example.org".into()),
        sent_at: Some(now()),
    };
    assert_sorted_like_json_objects(super::schemas::Empty {});
    assert_sorted_like_json_objects(super::schemas::Accepted { accepted: true });
    assert_sorted_like_json_objects(super::failed_tasks::RequeueOut {
        count: 2,
        requeued_failed_tasks: true,
    });
    assert_sorted_like_json_objects(super::callbacks::RecoveredOut { recovered: 3 });
    assert_sorted_like_json_objects(super::health::HealthOut {
        result: super::health::HealthResult {
            database: "Accessible",
        },
        up: true,
    });
    assert_sorted_like_json_objects(super::observability::MetricsAvailableOut {
        metrics_available: vec!["a.sum".into()],
    });
    assert_sorted_like_json_objects(super::observability::ScheduledMetricsOut {
        scheduled_metrics_initiated: true,
    });
    assert_sorted_like_json_objects(message());
    assert_sorted_like_json_objects(GroupMessageDetailOut {
        audit: vec![AuditOut {
            action: "created".into(),
            at: now(),
            by: None,
        }],
        message: message(),
    });
    assert_sorted_like_json_objects(QueuedOut { queued: true });
    assert_sorted_like_json_objects(PollTokenOut {
        group: "g".into(),
        mark_url: "m".into(),
        poll_url: "p".into(),
        scope: "s".into(),
        token: "t".into(),
    });
    assert_sorted_like_json_objects(MarkOut {
        marked_count: 1,
        unread_count: 2,
    });
    assert_sorted_like_json_objects(IntegrationErrorOut {
        acknowledged_at: None,
        acknowledged_by: None,
        details: json!({"status": 500}),
        group: "g".into(),
        id: 1,
        message: "m".into(),
        occurred_at: now(),
        source: "push".into(),
    });
    assert_sorted_like_json_objects(GroupOut {
        auth_header_set: false,
        created_at: now(),
        day_of_month: "*".into(),
        day_of_week: "*".into(),
        description: String::new(),
        event_types: vec!["send.*".into()],
        format: "json".into(),
        hour: "2".into(),
        instance: "sbm".into(),
        last_push_at: None,
        lease_seconds: 300,
        mark_url: None,
        max_batch_size: 100,
        method: "send".into(),
        minute: "0".into(),
        month_of_year: "*".into(),
        name: "g".into(),
        next_push_at: Some(now()),
        poll_url: None,
        skip_empty: true,
        target_url: Some("https://example.org/".into()),
        title: "G".into(),
        unacknowledged_errors: 0,
        unsent_count: 0,
        updated_at: now(),
    });
}
