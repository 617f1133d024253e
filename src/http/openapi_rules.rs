//! Rules applied to the whole OpenAPI document after the handlers' annotations are collected:
//! the answers every operation of a kind gives (401 without a token, 400 for bad input, 404 for
//! an unknown id, 413/415 for bodies, 503 when the database is busy), the routes open without a
//! token, unique operation ids, and Haplo's alias paths of the poll API.

use std::collections::BTreeMap;

use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::{
    ContentBuilder, OpenApi, Ref, RefOr, Required, Response, ResponseBuilder, Schema,
};
use utoipa::Modify;

/// Routes answered without a token.
pub const OPEN_PATHS: &[&str] = &["/healthz", "/metrics", "/media/{path}", "/api/openapi.json"];

/// Haplo's own paths of the poll API, served by the same handlers (see `integrations::router`).
const ALIASES: &[(&str, &str)] = &[
    (
        "/api/v1/integration-groups/{name}/poll/fetch",
        "/api/haplo-integration-messages/poll/{name}/fetch",
    ),
    (
        "/api/v1/integration-groups/{name}/poll/mark",
        "/api/haplo-integration-messages/poll/{name}/mark",
    ),
];

/// The operations of a path item with their methods.
pub fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("get", &mut item.get),
        ("put", &mut item.put),
        ("post", &mut item.post),
        ("delete", &mut item.delete),
        ("patch", &mut item.patch),
        ("head", &mut item.head),
        ("options", &mut item.options),
        ("trace", &mut item.trace),
    ]
    .into_iter()
    .filter_map(|(method, op)| op.as_mut().map(|op| (method, op)))
}

fn error_response(description: &str, schema: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(schema)))
                .build(),
        )
        .build()
        .into()
}

/// What each status means when an annotation does not say.
fn standard(status: &str) -> Option<(&'static str, &'static str)> {
    Some(match status {
        "400" => ("Bad input: DRF field errors, or a `detail`", "BadRequest"),
        "401" => ("No token, or an invalid or inactive one", "Detail"),
        "403" => (
            "Not allowed: not an admin where the route needs one, or a token scoped to another part of the API",
            "Detail",
        ),
        "404" => ("Not found", "Detail"),
        "409" => ("Conflict with the stored data", "Detail"),
        "408" => ("The request body did not arrive in time", "Detail"),
        "413" => ("Request body too large (or nested too deeply)", "Detail"),
        "414" => ("The query string is longer than 8 KiB", "Detail"),
        "415" => ("Unsupported media type of the request body", "Detail"),
        "503" => ("The database is busy; retry after `Retry-After`", "Detail"),
        _ => return None,
    })
}

fn add(op: &mut Operation, status: &str) {
    let responses = &mut op.responses.responses;
    if !responses.contains_key(status) {
        let (description, schema) = standard(status).expect("a standard status");
        responses.insert(status.to_string(), error_response(description, schema));
    }
}

/// Gives the standard error body to declared error statuses that have none.
fn fill_error_bodies(op: &mut Operation) {
    for (status, response) in op.responses.responses.iter_mut() {
        let Some((description, schema)) = standard(status) else {
            continue;
        };
        if let RefOr::T(response) = response {
            if response.content.is_empty() {
                let filled = error_response(&response.description, schema);
                *response = match filled {
                    RefOr::T(mut r) => {
                        if r.description.is_empty() {
                            r.description = description.to_string();
                        }
                        r
                    }
                    RefOr::Ref(_) => unreachable!("built inline"),
                };
            }
        }
    }
}

/// A description for successes the annotations leave without one.
fn describe_successes(op: &mut Operation) {
    for (status, response) in op.responses.responses.iter_mut() {
        if let RefOr::T(response) = response {
            if response.description.is_empty() {
                response.description = match status.as_str() {
                    "200" => "OK",
                    "201" => "Created",
                    "202" => "Accepted",
                    "204" => "No content",
                    _ => "See the operation's description",
                }
                .to_string();
            }
        }
    }
}

pub struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let open = OPEN_PATHS.contains(&path.as_str());
            for (_, op) in operations_mut(item) {
                if open {
                    op.security = Some(Vec::new());
                } else {
                    for status in ["401", "403", "503"] {
                        add(op, status);
                    }
                }
                let params = op.parameters.as_deref().unwrap_or_default();
                let in_path = params
                    .iter()
                    .any(|p| matches!(p.parameter_in, ParameterIn::Path));
                let in_query = params
                    .iter()
                    .any(|p| matches!(p.parameter_in, ParameterIn::Query));
                if !params.is_empty() || op.request_body.is_some() {
                    add(op, "400");
                }
                if in_path {
                    add(op, "404");
                }
                if in_query {
                    add(op, "414");
                }
                if let Some(body) = &op.request_body {
                    let parsed = body.content.keys().any(|t| {
                        t == "application/json" || t == "application/x-www-form-urlencoded"
                    });
                    add(op, "408");
                    add(op, "413");
                    if parsed {
                        add(op, "415");
                    }
                }
                if !open {
                    fill_error_bodies(op);
                }
                describe_successes(op);
            }
        }
    }
}

pub struct HaploAliases;

impl Modify for HaploAliases {
    fn modify(&self, openapi: &mut OpenApi) {
        for (path, alias) in ALIASES {
            if let Some(item) = openapi.paths.paths.get(*path).cloned() {
                openapi.paths.paths.insert(alias.to_string(), item);
            }
        }
    }
}

/// Operation ids unique across the document: `<resource>_<handler>`, with the method appended
/// where one handler serves two methods of a path.
pub struct OperationIds;

fn resource(path: &str) -> String {
    let rest = path
        .strip_prefix("/api/v1/")
        .or_else(|| path.strip_prefix("/api/"))
        .unwrap_or(path.trim_start_matches('/'));
    let first = rest.split('/').next().unwrap_or(rest);
    first
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

impl Modify for OperationIds {
    fn modify(&self, openapi: &mut OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let mut per_handler: BTreeMap<String, usize> = BTreeMap::new();
            for (_, op) in operations_mut(item) {
                let handler = op.operation_id.clone().unwrap_or_default();
                *per_handler.entry(handler).or_default() += 1;
            }
            let prefix = resource(path);
            let alias = ALIASES.iter().any(|(_, a)| a == path);
            for (method, op) in operations_mut(item) {
                let handler = op.operation_id.clone().unwrap_or_default();
                let mut id = format!("{prefix}_{handler}");
                if alias {
                    id = format!("haplo_{handler}");
                }
                if per_handler[&handler] > 1 {
                    id = format!("{id}_{method}");
                }
                op.operation_id = Some(id);
            }
        }
    }
}

/// Request bodies as the readers take them: an empty body reads as `{}`, so a body is optional
/// where its schema requires nothing; and a PATCH changes only the fields it sends, so its body
/// is the write schema without required fields (`<Name>Patch`).
pub struct PartialBodies;

fn schema_name(schema: &Option<RefOr<Schema>>) -> Option<String> {
    match schema {
        Some(RefOr::Ref(r)) => r
            .ref_location
            .strip_prefix("#/components/schemas/")
            .map(str::to_string),
        _ => None,
    }
}

fn requires_nothing(schemas: &BTreeMap<String, RefOr<Schema>>, name: &str) -> bool {
    matches!(schemas.get(name), Some(RefOr::T(Schema::Object(o))) if o.required.is_empty())
}

impl Modify for PartialBodies {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for item in openapi.paths.paths.values_mut() {
            for (method, op) in operations_mut(item) {
                let Some(body) = op.request_body.as_mut() else {
                    continue;
                };
                let mut optional = true;
                for (media, content) in body.content.iter_mut() {
                    // A multipart reader needs a multipart body, even an empty one.
                    if media != "application/json" {
                        optional = false;
                    }
                    let Some(name) = schema_name(&content.schema) else {
                        optional = false;
                        continue;
                    };
                    if method == "patch" {
                        let patch = format!("{name}Patch");
                        if let Some(RefOr::T(Schema::Object(write))) = components.schemas.get(&name)
                        {
                            let mut partial = write.clone();
                            partial.required.clear();
                            components
                                .schemas
                                .insert(patch.clone(), RefOr::T(Schema::Object(partial)));
                            content.schema = Some(Ref::from_schema_name(patch).into());
                        }
                    } else if !requires_nothing(&components.schemas, &name) {
                        optional = false;
                    }
                }
                if optional {
                    body.required = Some(Required::False);
                }
            }
        }
    }
}
