//! The OpenAPI document is a valid OpenAPI 3.1 document, and real answers of every operation
//! match what it declares for their status and media type. Bodies are checked strictly: an
//! object may hold only the properties its schema declares.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{Backend, Reply, TestApp};
use crate::on_both_backends;

on_both_backends!(
    the_document_is_valid_openapi_with_resolvable_refs_and_unique_operation_ids,
    every_operation_without_a_token_answers_as_documented,
    real_answers_of_every_operation_match_their_declared_schemas,
);

pub const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

/// The document, and which operations answered with a success that was checked against it.
pub struct Contract {
    doc: Value,
    /// The document's components, each object schema closed to undeclared properties.
    strict: Value,
    succeeded: BTreeSet<(String, String)>,
}

fn media_essence(reply: &Reply) -> String {
    reply
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Whether a declared media range (`audio/*`, `*/*`) covers the answer's type.
fn covers(range: &str, actual: &str) -> bool {
    range == actual
        || range == "*/*"
        || range
            .strip_suffix("/*")
            .is_some_and(|kind| actual.starts_with(&format!("{kind}/")))
}

/// Closes every component object schema: what a real answer holds beyond the declared
/// properties fails validation. Schemas that are open on purpose (`additionalProperties`, or a
/// free-form object among their `allOf`) stay open.
fn strict_components(doc: &Value) -> Value {
    let mut components = doc["components"].clone();
    if let Some(schemas) = components["schemas"].as_object_mut() {
        for schema in schemas.values_mut() {
            let free_form_part = schema["allOf"].as_array().is_some_and(|parts| {
                parts
                    .iter()
                    .any(|p| p.get("properties").is_none() && p.get("$ref").is_none())
            });
            let open = schema.get("additionalProperties").is_some() || free_form_part;
            let shaped = schema.get("properties").is_some() || schema.get("allOf").is_some();
            if shaped && !open {
                schema["unevaluatedProperties"] = json!(false);
            }
        }
    }
    components
}

impl Contract {
    pub async fn of(app: &TestApp) -> Contract {
        let doc = app
            .send(app.client.get(app.url("/api/openapi.json")))
            .await
            .expect(200)
            .json();
        let strict = strict_components(&doc);
        Contract {
            doc,
            strict,
            succeeded: BTreeSet::new(),
        }
    }

    /// Checks the answer to `method template` against the document; returns it.
    #[track_caller]
    pub fn check(&mut self, method: &str, template: &str, reply: Reply) -> Reply {
        let operation = &self.doc["paths"][template][method];
        assert!(
            operation.is_object(),
            "{method} {template} is not documented"
        );
        let status = reply.status.as_u16();
        let response = &operation["responses"][status.to_string()];
        assert!(
            response.is_object(),
            "{method} {template}: status {status} is not documented; body: {}",
            reply.text()
        );
        let actual = media_essence(&reply);
        match response["content"].as_object() {
            None => assert!(
                reply.bytes.is_empty() || actual != "application/json",
                "{method} {template} {status}: a JSON body where none is documented: {}",
                reply.text()
            ),
            Some(content) => {
                let (range, media) = content
                    .iter()
                    .find(|(range, _)| covers(range, &actual))
                    .unwrap_or_else(|| {
                        panic!("{method} {template} {status}: media type {actual:?} not documented")
                    });
                if range == "application/json" {
                    self.validate(method, template, status, &media["schema"], &reply);
                }
            }
        }
        if (200..300).contains(&status) {
            self.succeeded
                .insert((template.to_string(), method.to_string()));
        }
        reply
    }

    fn validate(&self, method: &str, template: &str, status: u16, schema: &Value, reply: &Reply) {
        let body: Value = serde_json::from_slice(&reply.bytes).unwrap_or_else(|e| {
            panic!(
                "{method} {template} {status}: not JSON ({e}): {}",
                reply.text()
            )
        });
        let root = json!({"components": self.strict, "allOf": [schema]});
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("{method} {template} {status}: bad schema: {e}"));
        let errors: Vec<String> = validator
            .iter_errors(&body)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {template} {status}: the answer does not match its schema: {errors:?}\nbody: {body}"
        );
    }

    /// Every operation of the document.
    pub fn operations(&self) -> Vec<(String, String)> {
        let mut ops = Vec::new();
        for (path, item) in self.doc["paths"].as_object().unwrap() {
            for method in METHODS {
                if item.get(method).is_some() {
                    ops.push((path.clone(), method.to_string()));
                }
            }
        }
        ops
    }

    fn is_open(&self, path: &str, method: &str) -> bool {
        self.doc["paths"][path][method]["security"]
            .as_array()
            .is_some_and(|s| s.is_empty())
    }

    /// Fails unless every operation has answered with a checked success.
    pub fn assert_every_operation_succeeded(&self) {
        let missing: Vec<_> = self
            .operations()
            .into_iter()
            .filter(|op| !self.succeeded.contains(op))
            .collect();
        assert!(
            missing.is_empty(),
            "operations never answered with a checked success: {missing:?}"
        );
    }
}

/// Where each `$ref` points, as a JSON pointer into the document.
fn refs(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("$ref", Value::String(target)) => found.push(target.clone()),
                    _ => refs(inner, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| refs(i, found)),
        _ => {}
    }
}

async fn the_document_is_valid_openapi_with_resolvable_refs_and_unique_operation_ids(
    backend: Backend,
) {
    let Some(app) = crate::helpers::spawn_app(backend).await else {
        return;
    };
    let reply = app.send(app.client.get(app.url("/api/openapi.json"))).await;
    let text = reply.expect(200).text();
    let spec = oas3::from_json(&text).expect("the document reads as OpenAPI 3.1");
    assert!(spec.openapi.starts_with("3.1"), "{}", spec.openapi);
    let doc: Value = serde_json::from_str(&text).unwrap();

    let mut targets = Vec::new();
    refs(&doc, &mut targets);
    assert!(targets.len() > 100, "too few $refs: {}", targets.len());
    for target in &targets {
        let pointer = target
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("not a local $ref: {target}"));
        assert!(doc.pointer(pointer).is_some(), "{target} does not resolve");
    }

    let mut ids = BTreeSet::new();
    let contract = Contract::of(&app).await;
    for (path, method) in contract.operations() {
        let op = &doc["paths"][&path][&method];
        let id = op["operationId"].as_str().unwrap_or_default();
        assert!(!id.is_empty(), "{method} {path} has no operationId");
        assert!(ids.insert(id.to_string()), "operationId {id} is repeated");
        let responses = op["responses"].as_object();
        assert!(
            responses.is_some_and(|r| !r.is_empty()),
            "{method} {path}: no responses"
        );
        for (status, response) in responses.unwrap() {
            assert!(
                response["description"].is_string(),
                "{method} {path} {status}"
            );
        }
        let needs_token = !contract.is_open(&path, &method);
        assert_eq!(
            op["responses"]["401"].is_object(),
            needs_token,
            "{method} {path}: 401 documented exactly where a token is needed"
        );
        let paged = op["parameters"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["name"] == "limit"));
        if paged {
            assert!(op["responses"]["400"].is_object(), "{method} {path}: 400");
            let limit = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == "limit")
                .unwrap();
            assert!(
                limit["schema"]["minimum"].is_number(),
                "{method} {path}: limit bound"
            );
        }
        if op["requestBody"].is_object() {
            assert!(op["responses"]["413"].is_object(), "{method} {path}: 413");
        }
    }
    // The request bodies name their fields, rather than a bare object.
    for (path, method) in contract.operations() {
        let body = &doc["paths"][&path][&method]["requestBody"]["content"];
        if let Some(content) = body.as_object() {
            for (media, media_object) in content {
                let schema = &media_object["schema"];
                assert!(
                    schema["$ref"].is_string() || schema["properties"].is_object(),
                    "{method} {path} {media}: the request body has no named schema: {schema}"
                );
            }
        }
    }
}

/// A concrete path for a template, every parameter filled in.
fn filled(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').unwrap() + start;
        out.push('1');
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

async fn every_operation_without_a_token_answers_as_documented(backend: Backend) {
    let Some(app) = crate::helpers::spawn_app(backend).await else {
        return;
    };
    let mut contract = Contract::of(&app).await;
    for (path, method) in contract.operations() {
        let request = app.client.request(
            Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
            app.url(&filled(&path)),
        );
        let reply = app.send(request).await;
        if contract.is_open(&path, &method) {
            assert_ne!(reply.status.as_u16(), 401, "{method} {path} is open");
        } else {
            assert_eq!(reply.status.as_u16(), 401, "{method} {path} needs a token");
        }
        contract.check(&method, &path, reply);
    }
}

async fn real_answers_of_every_operation_match_their_declared_schemas(backend: Backend) {
    let Some(app) = crate::hub::spawn_hub_app(backend, |_| {}).await else {
        return;
    };
    let mut contract = Contract::of(&app).await;
    let content = crate::openapi_samples::content(&app, &mut contract).await;
    crate::openapi_samples::subscriptions(&app, &mut contract, &content).await;
    crate::openapi_samples_events::callbacks_and_events(&app, &mut contract, &content).await;
    crate::openapi_samples_events::integrations(&app, &mut contract).await;
    crate::openapi_samples_events::helpers_and_jobs(&app, &mut contract).await;
    crate::openapi_samples::deletions(&app, &mut contract, &content).await;
    contract.assert_every_operation_succeeded();
}
