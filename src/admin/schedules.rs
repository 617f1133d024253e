//! Schedules: list, create, edit, with the five fields validated by the domain (as in the API),
//! a plain-words reading and the next five due times.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use maud::{html, Markup};
use serde::Deserialize;

use super::error::{AdminError, AdminResult};
use super::form::{csrf_field, FormData, Posted};
use super::layout::{form_errors, input, notice, page, pager, slice, time};
use super::session::Staff;
use crate::content::cron::{parse, CronField, CronValues};
use crate::http::AppState;
use crate::model::content::{Schedule, ScheduleFields};
use crate::scheduling::Cron;
use crate::store::content as sql;
use crate::validation::FieldErrors;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/schedules", get(list).post(create))
        .route("/admin/schedules/new", get(new))
        .route("/admin/schedules/{id}", get(edit).post(update))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    page: Option<i64>,
    notice: Option<String>,
}

const DAYS: [&str; 7] = [
    "Mondays",
    "Tuesdays",
    "Wednesdays",
    "Thursdays",
    "Fridays",
    "Saturdays",
    "Sundays",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// "a, b and c".
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

fn numbers(values: &CronValues) -> Vec<u8> {
    match values {
        CronValues::Any => Vec::new(),
        CronValues::Only(set) => set.iter().copied().collect(),
    }
}

fn times(minute: &CronValues, hour: &CronValues) -> String {
    let (minutes, hours) = (numbers(minute), numbers(hour));
    match (minute, hour) {
        (CronValues::Any, CronValues::Any) => "every minute".into(),
        (CronValues::Any, _) => format!(
            "every minute of hour {}",
            and_list(&hours.iter().map(|h| format!("{h:02}")).collect::<Vec<_>>())
        ),
        (_, CronValues::Any) => format!(
            "every hour at minute {}",
            and_list(&minutes.iter().map(u8::to_string).collect::<Vec<_>>())
        ),
        _ => {
            let all: Vec<String> = hours
                .iter()
                .flat_map(|h| minutes.iter().map(move |m| format!("{h:02}:{m:02}")))
                .collect();
            format!("at {}", and_list(&all))
        }
    }
}

/// The schedule in plain words: "Mondays and Thursdays at 08:00 UTC". Day of week and day of
/// month must both match (this is not crontab's "either").
pub fn describe(f: &ScheduleFields) -> String {
    let parsed = |field, text: &str| parse(field, text).unwrap_or(CronValues::Any);
    let minute = parsed(CronField::Minute, &f.minute);
    let hour = parsed(CronField::Hour, &f.hour);
    let weekdays = numbers(&parsed(CronField::DayOfWeek, &f.day_of_week));
    let month_days = numbers(&parsed(CronField::DayOfMonth, &f.day_of_month));
    let months = numbers(&parsed(CronField::MonthOfYear, &f.month_of_year));
    let mut days = if weekdays.is_empty() {
        "Every day".to_string()
    } else {
        and_list(
            &weekdays
                .iter()
                .map(|d| DAYS[usize::from(*d - 1)].to_string())
                .collect::<Vec<_>>(),
        )
    };
    if !month_days.is_empty() {
        let list = and_list(&month_days.iter().map(u8::to_string).collect::<Vec<_>>());
        days = if weekdays.is_empty() {
            format!("On day {list} of the month")
        } else {
            format!("{days} that fall on day {list} of the month")
        };
    }
    let at = times(&minute, &hour);
    let sep = if at.starts_with("at ") { " " } else { ", " };
    let mut text = format!("{days}{sep}{at} UTC");
    if !months.is_empty() {
        let list: Vec<String> = months
            .iter()
            .map(|m| MONTHS[usize::from(*m - 1)].to_string())
            .collect();
        text.push_str(&format!(", in {}", and_list(&list)));
    }
    text
}

/// The next `n` due minutes after now.
pub fn next_due(f: &ScheduleFields, n: usize) -> Vec<chrono::DateTime<Utc>> {
    let Ok(cron) = Cron::from_fields([
        &f.minute,
        &f.hour,
        &f.day_of_week,
        &f.day_of_month,
        &f.month_of_year,
    ]) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(n);
    let mut t = Utc::now();
    while out.len() < n {
        match cron.next_after(t) {
            Some(next) => {
                out.push(next);
                t = next;
            }
            None => break,
        }
    }
    out
}

#[tracing::instrument(skip_all, fields(user_id = staff.user_id))]
async fn list(
    State(state): State<AppState>,
    staff: Staff,
    Query(q): Query<ListQuery>,
) -> AdminResult<Markup> {
    let mut conn = state.db.acquire().await?;
    let schedules = sql::list_schedules(conn.conn(), slice(q.page)).await?;
    let body = html! {
        p { a.button href="/admin/schedules/new" { "New schedule" } }
        table {
            thead { tr { th scope="col" { "Id" } th scope="col" { "Fields (m h dow dom moy)" } th scope="col" { "Reads" } th scope="col" { "Next due" } } }
            tbody {
                @for s in &schedules.rows {
                    @let fields = ScheduleFields::from(s);
                    tr {
                        td { a href={"/admin/schedules/" (s.id)} { (s.id) } }
                        td { code { (s.minute) " " (s.hour) " " (s.day_of_week) " " (s.day_of_month) " " (s.month_of_year) } }
                        td { (describe(&fields)) }
                        td { @for t in next_due(&fields, 1) { (time(&t)) } }
                    }
                }
            }
        }
        (pager("/admin/schedules", "", q.page, schedules.count))
    };
    Ok(page("Schedules", &staff, notice(q.notice.as_deref()), body))
}

fn form(
    staff: &Staff,
    action: &str,
    f: &ScheduleFields,
    errors: &FieldErrors,
    existing: Option<&Schedule>,
) -> Markup {
    html! {
        (form_errors(errors))
        form.card method="post" action=(action) {
            (csrf_field(staff))
            p.hint { "Each field is * or a comma-separated list. Day of week: 1 = Monday … 7 = Sunday." }
            div.row {
                (input("minute", "Minute (0–59)", &f.minute, errors))
                (input("hour", "Hour (0–23)", &f.hour, errors))
                (input("day_of_week", "Day of week (1–7)", &f.day_of_week, errors))
                (input("day_of_month", "Day of month (1–31)", &f.day_of_month, errors))
                (input("month_of_year", "Month (1–12)", &f.month_of_year, errors))
                (input("timezone", "Time zone (IANA name)", &f.timezone, errors))
            }
            button type="submit" { @if existing.is_some() { "Save" } @else { "Create" } }
        }
        @if errors.is_empty() {
            section {
                h2 { "Reads" }
                p.reading { (describe(f)) }
                h2 { "Next five due times" }
                ol { @for t in next_due(f, 5) { li { (time(&t)) } } }
            }
        }
    }
}

#[tracing::instrument(skip_all, fields(user_id = staff.user_id))]
async fn new(staff: Staff) -> Markup {
    let f = ScheduleFields::default();
    page(
        "New schedule",
        &staff,
        None,
        form(&staff, "/admin/schedules", &f, &FieldErrors::new(), None),
    )
}

fn read_form(form: &FormData) -> ScheduleFields {
    let field = |name| form.text(name).unwrap_or_else(|| "*".to_string());
    ScheduleFields {
        minute: field("minute"),
        hour: field("hour"),
        day_of_week: field("day_of_week"),
        day_of_month: field("day_of_month"),
        month_of_year: field("month_of_year"),
        timezone: form
            .text("timezone")
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(|| "UTC".to_string()),
    }
}

#[tracing::instrument(skip_all, fields(user_id = posted.staff.user_id))]
async fn create(State(state): State<AppState>, posted: Posted) -> AdminResult<Response> {
    let fields = read_form(&posted.form);
    let mut tx = state.db.begin().await?;
    match crate::content::create_schedule(&mut tx, &state.effects, &fields).await {
        Ok(schedule) => {
            tx.commit().await?;
            state.wake.notify_one();
            Ok(
                Redirect::to(&format!("/admin/schedules/{}?notice=created", schedule.id))
                    .into_response(),
            )
        }
        Err(crate::domain::Error::Invalid(errors)) => {
            let body = form(&posted.staff, "/admin/schedules", &fields, &errors, None);
            Ok(invalid(page("New schedule", &posted.staff, None, body)))
        }
        Err(other) => Err(other.into()),
    }
}

/// A form shown again with its errors.
pub fn invalid(markup: Markup) -> Response {
    (axum::http::StatusCode::BAD_REQUEST, markup).into_response()
}

#[tracing::instrument(skip_all, fields(id = %id, user_id = staff.user_id))]
async fn edit(
    State(state): State<AppState>,
    staff: Staff,
    Path(id): Path<i64>,
    Query(q): Query<ListQuery>,
) -> AdminResult<Markup> {
    let mut conn = state.db.acquire().await?;
    let schedule = sql::get_schedule(conn.conn(), id)
        .await?
        .ok_or(AdminError::NotFound)?;
    let f = ScheduleFields::from(&schedule);
    let action = format!("/admin/schedules/{id}");
    let body = form(&staff, &action, &f, &FieldErrors::new(), Some(&schedule));
    Ok(page(
        &format!("Schedule {id}"),
        &staff,
        notice(q.notice.as_deref()),
        body,
    ))
}

#[tracing::instrument(skip_all, fields(id = %id, user_id = posted.staff.user_id))]
async fn update(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    posted: Posted,
) -> AdminResult<Response> {
    let fields = read_form(&posted.form);
    let mut tx = state.db.begin().await?;
    let existing = sql::get_schedule(tx.conn(), id)
        .await?
        .ok_or(AdminError::NotFound)?;
    match crate::content::update_schedule(&mut tx, &state.effects, id, &fields).await {
        Ok(_) => {
            tx.commit().await?;
            state.wake.notify_one();
            Ok(Redirect::to(&format!("/admin/schedules/{id}?notice=saved")).into_response())
        }
        Err(crate::domain::Error::Invalid(errors)) => {
            let action = format!("/admin/schedules/{id}");
            let body = form(&posted.staff, &action, &fields, &errors, Some(&existing));
            Ok(invalid(page(
                &format!("Schedule {id}"),
                &posted.staff,
                None,
                body,
            )))
        }
        Err(other) => Err(other.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(m: &str, h: &str, dow: &str, dom: &str, moy: &str) -> ScheduleFields {
        ScheduleFields {
            minute: m.into(),
            hour: h.into(),
            day_of_week: dow.into(),
            day_of_month: dom.into(),
            month_of_year: moy.into(),
            timezone: "UTC".into(),
        }
    }

    #[test]
    fn schedules_read_in_plain_words() {
        assert_eq!(
            describe(&fields("0", "8", "1,4", "*", "*")),
            "Mondays and Thursdays at 08:00 UTC"
        );
        assert_eq!(
            describe(&fields("*", "*", "*", "*", "*")),
            "Every day, every minute UTC"
        );
        assert_eq!(
            describe(&fields("0,30", "*", "*", "1", "1,6")),
            "On day 1 of the month, every hour at minute 0 and 30 UTC, in January and June"
        );
        assert_eq!(
            describe(&fields("15", "9,17", "0", "*", "*")),
            "Sundays at 09:15 and 17:15 UTC"
        );
    }

    #[test]
    fn the_next_due_times_follow_the_fields() {
        let due = next_due(&fields("0", "8", "1", "*", "*"), 5);
        assert_eq!(due.len(), 5);
        for t in &due {
            assert_eq!(t.format("%a %H:%M").to_string(), "Mon 08:00");
        }
        assert!(due.windows(2).all(|w| w[0] < w[1]));
        assert!(next_due(&fields("0", "0", "*", "31", "2"), 5).is_empty());
    }
}
