//! `/api/v1/binarycontent/`: uploaded files (audio for voice message sets). Uploads are
//! multipart with the file in the field `content`, as the original's FileField took them.

use axum::extract::multipart::{Multipart, MultipartError, MultipartRejection};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::ToSchema;

use super::auth::User;
use super::links::BaseUrl;
use super::query::{ListRequest, Paginated};
use super::schemas::PageParams;
use super::{ApiError, ApiResult, AppState, Id};
use crate::content::{self};
use crate::model::content::StoredFile;
use crate::store::content as sql;
use crate::validation::FieldErrors;
pub use crate::wire::content::BinaryContentOut;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/binarycontent", get(list).post(create))
        .route(
            "/api/v1/binarycontent/{id}",
            get(retrieve).put(replace).patch(update).delete(destroy),
        )
}

/// A stored file (the `content` URL of a binary content), served without a token.
#[utoipa::path(get, path = "/media/{path}", tag = "content", params(("path" = String, Path)),
    responses((status = 200, content((super::schemas::Bytes = "*/*")), description = "The file"),
        (status = 404, description = "No such file")))]
#[allow(dead_code)]
pub fn media_file() {}

/// The form field uploads carry their file in.
pub(super) const UPLOAD_FIELD: &str = "content";

/// Multipart form with the file in `content` (PATCH: optional); no other fields.
#[derive(serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct BinaryContentUpload {
    /// Not empty.
    #[schema(value_type = String, format = Binary, min_length = 1)]
    content: Vec<u8>,
}

fn no_file() -> ApiError {
    ApiError::Invalid(FieldErrors::single("content", "No file was submitted."))
}

fn too_many_parts() -> ApiError {
    ApiError::BadRequest(format!(
        "Multipart form parse error - more than {} parts.",
        super::limits::MAX_MULTIPART_PARTS
    ))
}

fn multipart_error(err: MultipartError, limit: usize) -> ApiError {
    if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge(limit)
    } else if super::limits::missed_deadline(&err) {
        ApiError::BodyTimeout
    } else {
        ApiError::BadRequest(format!("Multipart form parse error - {}", err.body_text()))
    }
}

/// Reads the `content` file out of the form and stores it. `None` when the form has no file.
async fn store_upload(
    state: &AppState,
    form: Result<Multipart, MultipartRejection>,
) -> ApiResult<Option<StoredFile>> {
    let mut form = form.map_err(|_| {
        ApiError::Invalid(FieldErrors::single(
            "content",
            "The submitted data was not a file. Send multipart/form-data with the file in the field \"content\".",
        ))
    })?;
    let limit = state.settings.max_upload_bytes;
    let mut parts = 0;
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| multipart_error(e, limit))?
    {
        parts += 1;
        if parts > super::limits::MAX_MULTIPART_PARTS {
            return Err(too_many_parts());
        }
        if field.name() != Some(UPLOAD_FIELD) {
            continue;
        }
        let file_name = field.file_name().map(str::to_string);
        let kind = crate::content::media::accept_upload(file_name.as_deref(), field.content_type())
            .map_err(|message| ApiError::Invalid(FieldErrors::single("content", message)))?;
        let bytes = field.bytes().await.map_err(|e| multipart_error(e, limit))?;
        if bytes.is_empty() {
            return Err(ApiError::Invalid(FieldErrors::single(
                "content",
                "The submitted file is empty.",
            )));
        }
        let stored = state.media.save(&kind, &bytes).await.map_err(|e| {
            ApiError::internal(anyhow::Error::new(e).context("writing uploaded file"))
        })?;
        return Ok(Some(stored));
    }
    Ok(None)
}

#[utoipa::path(get, path = "/api/v1/binarycontent/", tag = "content",
    params(PageParams),
    responses((status = 200, body = Paginated<BinaryContentOut>)))]
#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    _: User,
    base: BaseUrl,
    req: ListRequest,
) -> ApiResult<Json<Paginated<BinaryContentOut>>> {
    let mut conn = state.db.acquire().await?;
    let page = sql::list_binary_content(conn.conn(), req.slice).await?;
    Ok(Json(req.respond(page, |b| BinaryContentOut::new(&base, b))))
}

#[utoipa::path(post, path = "/api/v1/binarycontent/", tag = "content",
    request_body(content = BinaryContentUpload, content_type = "multipart/form-data"),
    responses((status = 201, body = BinaryContentOut)))]
#[tracing::instrument(skip_all)]
pub async fn create(
    State(state): State<AppState>,
    _: User,
    base: BaseUrl,
    form: Result<Multipart, MultipartRejection>,
) -> ApiResult<(StatusCode, Json<BinaryContentOut>)> {
    let file = store_upload(&state, form).await?.ok_or_else(no_file)?;
    let result = async {
        let mut tx = state.db.begin().await?;
        let record = content::create_binary_content(&mut tx, &state.effects, &file).await?;
        state.commit(tx).await?;
        Ok::<_, ApiError>(record)
    }
    .await;
    match result {
        Ok(record) => Ok((
            StatusCode::CREATED,
            Json(BinaryContentOut::new(&base, record)),
        )),
        Err(err) => {
            state.media.remove(&file.path).await;
            Err(err)
        }
    }
}

#[utoipa::path(get, path = "/api/v1/binarycontent/{id}/", tag = "content", params(("id" = i64, Path, minimum = 1)),
    responses((status = 200, body = BinaryContentOut), (status = 404)))]
#[tracing::instrument(skip_all, fields(id = id))]
pub async fn retrieve(
    State(state): State<AppState>,
    _: User,
    base: BaseUrl,
    Id(id): Id,
) -> ApiResult<Json<BinaryContentOut>> {
    let mut conn = state.db.acquire().await?;
    let record = sql::get_binary_content(conn.conn(), id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(BinaryContentOut::new(&base, record)))
}

/// Replaces the file when the form carries one; `required` says whether it must.
async fn write(
    state: AppState,
    base: BaseUrl,
    id: i64,
    form: Result<Multipart, MultipartRejection>,
    required: bool,
) -> ApiResult<Json<BinaryContentOut>> {
    let Some(file) = store_upload(&state, form).await? else {
        if required {
            return Err(no_file());
        }
        let mut conn = state.db.acquire().await?;
        let record = sql::get_binary_content(conn.conn(), id)
            .await?
            .ok_or(ApiError::NotFound)?;
        return Ok(Json(BinaryContentOut::new(&base, record)));
    };
    let result = async {
        let mut tx = state.db.begin().await?;
        let replaced = content::replace_binary_content(&mut tx, &state.effects, id, &file).await?;
        state.commit(tx).await?;
        Ok::<_, ApiError>(replaced)
    }
    .await;
    match result {
        Ok((record, old_path)) => {
            state.media.remove(&old_path).await;
            Ok(Json(BinaryContentOut::new(&base, record)))
        }
        Err(err) => {
            state.media.remove(&file.path).await;
            Err(err)
        }
    }
}

#[utoipa::path(put, path = "/api/v1/binarycontent/{id}/", tag = "content", params(("id" = i64, Path, minimum = 1)),
    request_body(content = BinaryContentUpload, content_type = "multipart/form-data"),
    responses((status = 200, body = BinaryContentOut)))]
#[tracing::instrument(skip_all, fields(id = id))]
pub async fn replace(
    State(state): State<AppState>,
    _: User,
    base: BaseUrl,
    Id(id): Id,
    form: Result<Multipart, MultipartRejection>,
) -> ApiResult<Json<BinaryContentOut>> {
    write(state, base, id, form, true).await
}

#[utoipa::path(patch, path = "/api/v1/binarycontent/{id}/", tag = "content", params(("id" = i64, Path, minimum = 1)),
    request_body(content = BinaryContentUpload, content_type = "multipart/form-data"),
    responses((status = 200, body = BinaryContentOut)))]
#[tracing::instrument(skip_all, fields(id = id))]
pub async fn update(
    State(state): State<AppState>,
    _: User,
    base: BaseUrl,
    Id(id): Id,
    form: Result<Multipart, MultipartRejection>,
) -> ApiResult<Json<BinaryContentOut>> {
    write(state, base, id, form, false).await
}

#[utoipa::path(delete, path = "/api/v1/binarycontent/{id}/", tag = "content", params(("id" = i64, Path, minimum = 1)),
    responses((status = 204), (status = 404), (status = 409, body = super::schemas::Detail, description = "Still used by messages")))]
#[tracing::instrument(skip_all, fields(id = id))]
pub async fn destroy(State(state): State<AppState>, _: User, Id(id): Id) -> ApiResult<StatusCode> {
    let mut tx = state.db.begin().await?;
    let path = content::delete_binary_content(&mut tx, &state.effects, id).await?;
    state.commit(tx).await?;
    state.media.remove(&path).await;
    Ok(StatusCode::NO_CONTENT)
}
