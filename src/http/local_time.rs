//! Local time on the wire: `GET /api/v1/subscriptions/{id}/forecast/` and the due times a
//! schedule shows (`next_due`).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::User;
use super::links::BaseUrl;
use super::wire::format_time;
use super::{ApiError, ApiResult, AppState, UuidId};
use crate::scheduling::forecast::{self, Forecast, ForecastSend, ProgrammeEnd, MAX_SENDS};
use crate::store::jobs::JobRow;
use crate::validation::FieldErrors;
pub use crate::wire::content::DueTimeOut;

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/v1/subscriptions/{id}/forecast",
        get(subscription_forecast),
    )
}

/// The send job already waiting for this subscription.
#[derive(Debug, Serialize, ToSchema)]
pub struct PendingSendOut {
    pub task_id: Uuid,
    /// `pending` or `running`.
    pub state: String,
    /// When it runs next (UTC).
    pub run_at: String,
    pub attempts: i32,
    pub resend: bool,
    /// Why its last attempt failed, if one did.
    pub last_error: Option<String>,
    /// Why it waits past the time it was due (quiet hours), if it does.
    pub deferred_reason: Option<String>,
}

impl From<&JobRow> for PendingSendOut {
    fn from(job: &JobRow) -> Self {
        PendingSendOut {
            task_id: job.task_id,
            state: job.state.clone(),
            run_at: format_time(&job.run_at),
            attempts: job.attempts,
            resend: job.payload.0["resend"] == true,
            last_error: job.last_error.clone(),
            deferred_reason: job.deferred_reason.clone(),
        }
    }
}

/// One send ahead.
#[derive(Debug, Serialize, ToSchema)]
pub struct ForecastSendOut {
    /// When the schedule is due (for a waiting job: its run time).
    pub due: DueTimeOut,
    /// When it leaves: `due`, or the next opening of the set's send window.
    pub sends_at: DueTimeOut,
    /// The zone the local times are in.
    pub timezone: String,
    pub messageset: i64,
    pub messageset_short_name: String,
    pub sequence_number: i32,
    /// A resend of the current message, already waiting.
    pub resend: bool,
    /// Null when the set has no such message in the subscriber's language (the send would fail).
    pub message: Option<i64>,
    pub lang: String,
    pub text_content: Option<String>,
    /// The message's binary content (audio), if it has one.
    pub audio_url: Option<String>,
}

/// Where the programme ends.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProgrammeEndOut {
    /// `last_message` (the fields below say which and when), `next_set_loops` (never ends),
    /// `no_messages` (none in the subscriber's language), `never_due`, `not_active`,
    /// `completed`, `not_ready` (process_status is an error) or `beyond_horizon`.
    pub reason: String,
    pub messageset: Option<i64>,
    pub sequence_number: Option<i32>,
    pub sends_at: Option<DueTimeOut>,
    pub timezone: Option<String>,
    /// Sends from now to the end, that one included.
    pub sends_remaining: Option<usize>,
}

impl From<ProgrammeEnd> for ProgrammeEndOut {
    fn from(end: ProgrammeEnd) -> Self {
        let last = end.last;
        ProgrammeEndOut {
            reason: end.reason.to_string(),
            messageset: last.as_ref().map(|l| l.0.id),
            sequence_number: last.as_ref().map(|l| l.1),
            sends_at: last.as_ref().map(|l| DueTimeOut::new(l.3, l.2)),
            timezone: last.as_ref().map(|l| l.3.name().to_string()),
            sends_remaining: last.as_ref().map(|l| l.4),
        }
    }
}

/// What a subscription will receive next if nothing changes.
#[derive(Debug, Serialize, ToSchema)]
pub struct ForecastOut {
    pub subscription: Uuid,
    /// The subscriber's zone: their own, else their schedule's.
    pub timezone: String,
    pub generated_at: String,
    pub pending_send: Option<PendingSendOut>,
    pub sends: Vec<ForecastSendOut>,
    pub programme_end: ProgrammeEndOut,
}

fn send_out(base: &BaseUrl, s: ForecastSend, lang: &str) -> ForecastSendOut {
    ForecastSendOut {
        due: DueTimeOut::new(s.zone, s.due),
        sends_at: DueTimeOut::new(s.zone, s.sends_at),
        timezone: s.zone.name().to_string(),
        messageset: s.set.id,
        messageset_short_name: s.set.short_name,
        sequence_number: s.sequence_number,
        resend: s.resend,
        message: s.message.as_ref().map(|m| m.id),
        lang: lang.to_string(),
        text_content: s.message.and_then(|m| m.text_content),
        audio_url: s.binary_path.map(|p| base.url(&format!("/media/{p}"))),
    }
}

fn forecast_out(base: &BaseUrl, f: Forecast, now: DateTime<Utc>) -> ForecastOut {
    let lang = f.subscription.lang.clone();
    ForecastOut {
        subscription: f.subscription.id,
        timezone: f.zone.name().to_string(),
        generated_at: format_time(&now),
        pending_send: f.pending.as_ref().map(PendingSendOut::from),
        sends: f
            .sends
            .into_iter()
            .map(|s| send_out(base, s, &lang))
            .collect(),
        programme_end: f.end.into(),
    }
}

/// `n`: 1 to 100, default 5.
fn read_n(params: &HashMap<String, String>) -> ApiResult<usize> {
    let Some(raw) = params.get("n") else {
        return Ok(5);
    };
    let invalid = |m: &str| ApiError::Invalid(FieldErrors::single("n", m));
    let n: i64 = raw
        .trim()
        .parse()
        .map_err(|_| invalid("A valid integer is required."))?;
    if !(1..=MAX_SENDS as i64).contains(&n) {
        return Err(invalid("Ensure this value is between 1 and 100."));
    }
    Ok(n as usize)
}

/// The next sends this subscription will get if nothing changes, computed (never stored):
/// following the `next_set` chain, in the subscriber's zone, with quiet hours applied.
#[utoipa::path(get, path = "/api/v1/subscriptions/{id}/forecast/", tag = "subscriptions",
    params(("id" = Uuid, Path), ("n" = Option<i64>, Query, description = "How many sends, 1 to 100 (default 5)")),
    responses((status = 200, body = ForecastOut), (status = 400, description = "`n` out of range"), (status = 404)))]
#[tracing::instrument(skip_all, fields(id = %id))]
pub async fn subscription_forecast(
    State(state): State<AppState>,
    _: User,
    base: BaseUrl,
    UuidId(id): UuidId,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<ForecastOut>> {
    let n = read_n(&params)?;
    let now = crate::store::now();
    let f = forecast::forecast(&state.db, id, n, state.send_window, now).await?;
    Ok(Json(forecast_out(&base, f, now)))
}
