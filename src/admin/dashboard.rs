//! The dashboard: active subscriptions per set, today's sends, the job queue, the last tick of
//! each schedule.

use axum::extract::State;
use chrono::{TimeZone, Utc};
use maud::{html, Markup};

use super::error::AdminResult;
use super::layout::{page, time_opt};
use super::session::Staff;
use crate::http::AppState;
use crate::store::{admin as sql, jobs};

#[tracing::instrument(skip_all, fields(user_id = staff.user_id))]
pub async fn show(State(state): State<AppState>, staff: Staff) -> AdminResult<Markup> {
    let now = Utc::now();
    let midnight = Utc.from_utc_datetime(
        &now.date_naive()
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists"),
    );
    let mut conn = state.db.acquire().await?;
    let per_set = sql::active_subscriptions_per_set(conn.conn()).await?;
    let sent = sql::count_events_since(conn.conn(), "send.succeeded", midnight).await?;
    let failed = sql::count_events_since(conn.conn(), "send.failed", midnight).await?;
    let queue = jobs::queue_depth(conn.conn()).await?;
    let oldest = jobs::oldest_pending(conn.conn()).await?;
    let ticks = sql::last_tick_per_schedule(conn.conn()).await?;
    let body = html! {
        section.cards {
            div.card { h2 { "Sends today (UTC)" } p.big { (sent) " ok" } p.big.bad { (failed) " failed" } }
            div.card {
                h2 { "Job queue" }
                @if queue.is_empty() { p { "Empty." } }
                ul { @for (state, n) in &queue { li { (state) ": " strong { (n) } } } }
                p { "Oldest pending job due: " (time_opt(&oldest)) }
                p { a href="/admin/failed-tasks" { "Failed tasks →" } }
            }
        }
        section {
            h2 { "Active subscriptions per message set" }
            table {
                thead { tr { th scope="col" { "Message set" } th scope="col" { "Active" } } }
                tbody {
                    @for (id, name, n) in &per_set {
                        tr { td { a href={"/admin/message-sets/" (id)} { (name) } } td.num { (n) } }
                    }
                }
            }
        }
        section {
            h2 { "Last tick per schedule" }
            table {
                thead { tr { th scope="col" { "Schedule" } th scope="col" { "Last fired minute" } } }
                tbody {
                    @for (id, tick) in &ticks {
                        tr { td { a href={"/admin/schedules/" (id)} { "Schedule " (id) } } td { (time_opt(tick)) } }
                    }
                }
            }
        }
    };
    Ok(page("Dashboard", &staff, None, body))
}
