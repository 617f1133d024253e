//! `GET /api/openapi.json`: the OpenAPI document, generated from the handlers' annotations.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::openapi_rules::{CommonResponses, HaploAliases, OperationIds, PartialBodies};
use super::{
    binary_content, callbacks, events, failed_tasks, health, integration_poll, integrations,
    message_sets, messages, observability, schedules, schemas, subscriptions, users, AppState,
};

struct TokenAuth;

impl Modify for TokenAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some("HTTP Basic with the token as the password"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "`Token <key>`, as issued by `sbm token create` or POST /api/v1/user/token/",
            ))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "sbm: Seed Stage-Based Messaging Store", description = "Wire-compatible with the Django original.

Every route but `/healthz`, `/metrics`, `/media/…` and this document needs `Authorization: Token <key>` (or HTTP Basic with the token as the password). Paths work with and without their trailing slash. Request bodies are JSON (HTML-form encoding is accepted too); errors are DRF-shaped: `{\"field\": [\"message\"]}` or `{\"detail\": \"…\"}`.

`GET /api/v1/message/{id}/content/` answers the message's JSON view (its `binary_content` nested) by default, whatever `Accept` a plain HTTP client sends (`*/*`, none); the raw bytes (the audio with its media type, or the text as `text/plain`) only with `?format=raw` or an `Accept` that names an audio or text type and not JSON."),
    modifiers(&TokenAuth, &HaploAliases, &OperationIds, &PartialBodies, &CommonResponses),
    security(("token" = []), ("basic" = [])),
    components(schemas(schemas::Detail, schemas::FieldErrorsOut, schemas::BadRequest, schemas::ContentType,
        schemas::CallbackState, schemas::DeliveryState, schemas::TopicText, messages::RawFormat)),
    paths(
        schedules::list, schedules::create, schedules::retrieve, schedules::replace, schedules::update, schedules::destroy, schedules::send,
        message_sets::list, message_sets::create, message_sets::retrieve, message_sets::replace, message_sets::update,
        message_sets::destroy, message_sets::with_messages, message_sets::languages,
        messages::list, messages::create, messages::retrieve, messages::replace, messages::update, messages::destroy,
        messages::message_content,
        binary_content::list, binary_content::create, binary_content::retrieve, binary_content::replace,
        binary_content::update, binary_content::destroy,
        subscriptions::list, subscriptions::create, subscriptions::hub_request, subscriptions::retrieve,
        subscriptions::replace, subscriptions::update, subscriptions::destroy, subscriptions::send, subscriptions::resend,
        super::local_time::subscription_forecast,
        failed_tasks::list, failed_tasks::requeue,
        events::list, events::retrieve, events::deliveries,
        callbacks::subscribe, callbacks::list, callbacks::retrieve, callbacks::update, callbacks::destroy,
        callbacks::deliveries, callbacks::recover, callbacks::delivery, callbacks::retry,
        integrations::list, integrations::create, integrations::retrieve, integrations::update,
        integrations::destroy, integrations::messages, integrations::add_message, integrations::message,
        integrations::unsend, integrations::send_now, integrations::issue_token, integration_poll::fetch,
        integration_poll::mark, integrations::errors, integrations::group_errors, integrations::acknowledge,
        users::create_token,
        super::security::rotate_secret, super::security::audit_log,
        health::health, health::liveness, observability::available, observability::fire_scheduled,
        observability::prometheus, binary_content::media_file, document,
    )
)]
pub struct ApiDoc;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/openapi.json", get(document))
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "helpers",
    responses((status = 200, body = Object, description = "The OpenAPI document")))]
#[tracing::instrument(skip_all)]
async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
