//! The page frame, navigation and the small pieces every page uses: labelled fields with their
//! errors, pagination, times.

use chrono::{DateTime, Utc};
use maud::{html, Markup, DOCTYPE};

use super::staff::{csrf_field, Staff};
use crate::validation::{FieldErrors, NON_FIELD_ERRORS};

const NAV: &[(&str, &str)] = &[
    ("/admin", "Dashboard"),
    ("/admin/message-sets", "Message sets"),
    ("/admin/schedules", "Schedules"),
    ("/admin/subscriptions", "Subscriptions"),
    ("/admin/failed-tasks", "Failed tasks"),
    ("/admin/callbacks", "Callbacks"),
    ("/admin/integrations", "Integrations"),
];

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · sbm admin" }
            link rel="stylesheet" href="/admin/static/admin.css";
        }
    }
}

/// A page of a signed-in admin.
pub fn page(title: &str, staff: &Staff, notice: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top {
                    a.brand href="/admin" { "sbm admin" }
                    nav aria-label="Main" {
                        @for (href, label) in NAV { a href=(href) { (label) } }
                    }
                    form.signout method="post" action="/admin/logout" {
                        (csrf_field(staff))
                        span.who { (staff.email) }
                        button.link type="submit" { "Sign out" }
                    }
                }
                main {
                    h1 { (title) }
                    @if let Some(notice) = notice { p.notice role="status" { (notice) } }
                    (body)
                }
            }
        }
    }
}

/// A page without navigation: sign-in and errors.
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body { main.narrow { h1 { (title) } (body) } }
        }
    }
}

/// The text a `?notice=` code stands for (codes only, so a link cannot put words on a page).
pub fn notice(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "created" => "Created.",
        "saved" => "Saved.",
        "deleted" => "Deleted.",
        "requeued" => "Re-queued.",
        "done" => "Done.",
        "nothing" => "Nothing to re-queue (an equal job is already waiting).",
        _ => return None,
    })
}

/// The errors not tied to one field.
pub fn form_errors(errors: &FieldErrors) -> Markup {
    html! {
        @for message in errors.messages(NON_FIELD_ERRORS) { p.notice.error role="alert" { (message) } }
    }
}

fn field_errors(errors: &FieldErrors, name: &str) -> Markup {
    html! {
        @for message in errors.messages(name) { span.field-error id={(name) "-error"} { (message) } }
    }
}

/// A labelled one-line input.
pub fn input(name: &str, label: &str, value: &str, errors: &FieldErrors) -> Markup {
    html! {
        div.field {
            label for=(name) { (label) }
            input id=(name) name=(name) value=(value) aria-invalid=[errors.has(name).then_some("true")];
            (field_errors(errors, name))
        }
    }
}

/// A labelled text area.
pub fn textarea(name: &str, label: &str, value: &str, errors: &FieldErrors) -> Markup {
    html! {
        div.field {
            label for=(name) { (label) }
            textarea id=(name) name=(name) rows="4" { (value) }
            (field_errors(errors, name))
        }
    }
}

/// A labelled select of `(value, text)` options.
pub fn select(
    name: &str,
    label: &str,
    options: &[(String, String)],
    selected: &str,
    errors: &FieldErrors,
) -> Markup {
    html! {
        div.field {
            label for=(name) { (label) }
            select id=(name) name=(name) {
                @for (value, text) in options {
                    option value=(value) selected[value == selected] { (text) }
                }
            }
            (field_errors(errors, name))
        }
    }
}

pub fn time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

pub fn time_opt(t: &Option<DateTime<Utc>>) -> String {
    t.as_ref().map_or_else(|| "—".to_string(), time)
}

/// Rows per list page.
pub const PER_PAGE: i64 = 25;

/// Which page of a list, from `?page=` (1-based).
pub fn slice(page: Option<i64>) -> crate::store::Slice {
    let page = page.unwrap_or(1).max(1);
    crate::store::Slice {
        limit: PER_PAGE,
        offset: (page - 1) * PER_PAGE,
    }
}

/// "Previous / page n of m / Next" links; `query` is the rest of the list's query string.
pub fn pager(base: &str, query: &str, page: Option<i64>, count: i64) -> Markup {
    let page = page.unwrap_or(1).max(1);
    let pages = ((count + PER_PAGE - 1) / PER_PAGE).max(1);
    let link = |n: i64| format!("{base}?page={n}{query}");
    html! {
        nav.pager aria-label="Pages" {
            @if page > 1 { a href=(link(page - 1)) rel="prev" { "← Previous" } }
            span { "Page " (page) " of " (pages) " (" (count) " in all)" }
            @if page < pages { a href=(link(page + 1)) rel="next" { "Next →" } }
        }
    }
}

/// A small form with one button that posts to `action` (with the CSRF token).
pub fn post_button(staff: &Staff, action: &str, label: &str, class: &str) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf_field(staff))
            button class=(class) type="submit" { (label) }
        }
    }
}
