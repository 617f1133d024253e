//! The admin UI over plain HTTP: sessions, CSRF, rate limiting, headers, escaping. The browser
//! scenario is in `admin_browser.rs`.

use reqwest::redirect::Policy;
use serde_json::json;

use crate::helpers::{spawn_app, Backend, Reply, TestApp};
use crate::on_both_backends;

pub const ADMIN_EMAIL: &str = "admin@example.org";
pub const PASSWORD: &str = "a long staff password";

/// Gives the test app's admin user a password.
pub async fn set_password(app: &TestApp, email: &str, password: &str) {
    let mut tx = app.db.begin().await.unwrap();
    sbm::auth::password::set_password(&mut tx, email, password)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// A browser-like client without a cookie jar: it carries its one session cookie by hand and
/// does not follow redirects, so that they can be asserted.
struct Staff<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    cookie: Option<String>,
}

impl<'a> Staff<'a> {
    fn new(app: &'a TestApp) -> Self {
        Staff {
            app,
            client: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let request = match &self.cookie {
            Some(cookie) => request.header("Cookie", cookie),
            None => request,
        };
        self.app.send(request).await
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(self.client.get(self.app.url(path))).await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Reply {
        self.send(self.client.post(self.app.url(path)).form(form))
            .await
    }

    /// Signs in with the form's fields; keeps the session cookie when one is set.
    async fn sign_in(&mut self, form: &[(&str, &str)]) -> Reply {
        let reply = self.post("/admin/login", form).await;
        if let Some(set) = reply.headers.get("set-cookie") {
            let set = set.to_str().unwrap().to_string();
            self.cookie = Some(set.split(';').next().unwrap().to_string());
        }
        reply
    }

    async fn sign_in_with_password(&mut self, password: &str) -> Reply {
        self.sign_in(&[("email", ADMIN_EMAIL), ("password", password)])
            .await
    }

    /// The CSRF token in the forms of a page.
    async fn csrf(&self, path: &str) -> String {
        let page = self.get(path).await.expect(200).text();
        let start = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
        page[start..start + 64].to_string()
    }
}

fn location(reply: &Reply) -> &str {
    reply.headers["location"].to_str().unwrap()
}

async fn pages_need_a_session_and_forms_the_sessions_csrf_token(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    set_password(&app, ADMIN_EMAIL, PASSWORD).await;
    let mut staff = Staff::new(&app);
    let reply = staff.get("/admin").await.expect(303);
    assert_eq!(location(&reply), "/admin/login");

    let reply = staff.sign_in_with_password(PASSWORD).await.expect(303);
    assert_eq!(location(&reply), "/admin");
    let cookie = reply.headers["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");

    let page = staff.get("/admin").await.expect(200);
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(page.headers["x-frame-options"], "DENY");

    let schedule = [
        ("minute", "0"),
        ("hour", "8"),
        ("day_of_week", "1"),
        ("day_of_month", "*"),
        ("month_of_year", "*"),
    ];
    staff.post("/admin/schedules", &schedule).await.expect(403);
    let mut wrong = schedule.to_vec();
    wrong.push((
        "csrf",
        "0000000000000000000000000000000000000000000000000000000000000000",
    ));
    staff.post("/admin/schedules", &wrong).await.expect(403);
    assert_eq!(
        app.count("/api/v1/schedule/").await,
        0,
        "refused forms write nothing"
    );

    let token = staff.csrf("/admin/schedules/new").await;
    let mut right = schedule.to_vec();
    right.push(("csrf", &token));
    let reply = staff.post("/admin/schedules", &right).await.expect(303);
    assert!(location(&reply).starts_with("/admin/schedules/"));
    assert_eq!(app.count("/api/v1/schedule/").await, 1);

    // Bad fields come back as the API's field errors, and write nothing.
    let mut bad = right.clone();
    bad[0] = ("minute", "61");
    let page = staff
        .post("/admin/schedules", &bad)
        .await
        .expect(400)
        .text();
    assert!(page.contains("numbers from 0 to 59"), "{page}");
    assert_eq!(app.count("/api/v1/schedule/").await, 1);

    // Signing out ends the session on the server, not only in this browser.
    let old = staff.cookie.clone();
    staff
        .post("/admin/logout", &[("csrf", &token)])
        .await
        .expect(303);
    staff.cookie = old;
    staff.get("/admin").await.expect(303);
}

async fn sign_in_is_for_active_admins_and_rate_limited(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    set_password(&app, ADMIN_EMAIL, PASSWORD).await;
    crate::helpers::issue_token(&app.db, "editor@example.org", false).await;
    set_password(&app, "editor@example.org", PASSWORD).await;
    let mut staff = Staff::new(&app);
    let page = staff
        .sign_in(&[("email", "editor@example.org"), ("password", PASSWORD)])
        .await
        .expect(401)
        .text();
    assert!(page.contains("active admin"), "{page}");
    assert!(staff.cookie.is_none());

    for _ in 0..5 {
        staff
            .sign_in_with_password("wrong password")
            .await
            .expect(401);
    }
    let page = staff
        .sign_in_with_password(PASSWORD)
        .await
        .expect(429)
        .text();
    assert!(page.contains("Too many failed sign-in attempts"), "{page}");
    assert!(staff.cookie.is_none());

    // The limit is per account: another admin signs in from the same address.
    let token = app.token.clone();
    staff.sign_in(&[("token", &token)]).await.expect(303);
    staff.get("/admin").await.expect(200);
}

async fn revoking_or_deactivating_ends_sessions(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    set_password(&app, ADMIN_EMAIL, PASSWORD).await;
    let second = crate::helpers::issue_token(&app.db, ADMIN_EMAIL, true).await;
    let mut by_token = Staff::new(&app);
    by_token.sign_in(&[("token", &second)]).await.expect(303);
    by_token.get("/admin").await.expect(200);
    let mut by_password = Staff::new(&app);
    by_password
        .sign_in_with_password(PASSWORD)
        .await
        .expect(303);
    by_password.get("/admin").await.expect(200);

    let mut tx = app.db.begin().await.unwrap();
    sbm::auth::revoke(&mut tx, &second).await.unwrap();
    tx.commit().await.unwrap();
    by_token.get("/admin").await.expect(303);
    by_password.get("/admin").await.expect(200);

    let deactivate = "update app_user set is_active = false where email = $1";
    match &app.db {
        sbm::store::Db::Postgres(pool) => {
            sqlx::query(deactivate)
                .bind(ADMIN_EMAIL)
                .execute(pool)
                .await
                .unwrap();
        }
        sbm::store::Db::Sqlite(pool) => {
            sqlx::query(deactivate)
                .bind(ADMIN_EMAIL)
                .execute(pool)
                .await
                .unwrap();
        }
    }
    by_password.get("/admin").await.expect(303);
}

async fn user_content_is_escaped_and_in_use_sets_are_kept(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    set_password(&app, ADMIN_EMAIL, PASSWORD).await;
    let schedule = app.create_schedule().await;
    let set = app
        .post(
            "/api/v1/messageset/",
            json!({"short_name": "<b>bold</b>", "label": "<script>alert(1)</script>",
                   "default_schedule": schedule}),
        )
        .await
        .expect(201)
        .json()["id"]
        .as_i64()
        .unwrap();
    app.create_message(set, 1, "eng", "<img src=x onerror=alert(1)>")
        .await;
    let mut staff = Staff::new(&app);
    staff.sign_in_with_password(PASSWORD).await.expect(303);
    let list = staff.get("/admin/message-sets").await.expect(200).text();
    assert!(
        list.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{list}"
    );
    assert!(!list.contains("<script>"), "{list}");
    let grid = staff
        .get(&format!("/admin/message-sets/{set}"))
        .await
        .expect(200)
        .text();
    assert!(
        grid.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{grid}"
    );
    assert!(!grid.contains("<img"), "{grid}");

    let token = staff.csrf("/admin/message-sets").await;
    let page = staff
        .post(
            &format!("/admin/message-sets/{set}/delete"),
            &[("csrf", &token)],
        )
        .await
        .expect(409)
        .text();
    assert!(page.contains("still used by 1 message(s)"), "{page}");
    app.get(&format!("/api/v1/messageset/{set}/"))
        .await
        .expect(200);
}

async fn callbacks_and_integration_groups_are_managed_from_the_ui(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    set_password(&app, ADMIN_EMAIL, PASSWORD).await;
    let group = json!({"name": "haplo", "method": "poll", "title": "Haplo poll"});
    app.post("/api/v1/integration-groups/", group)
        .await
        .expect(201);
    let now = sbm::store::now();
    let mut tx = app.db.begin().await.unwrap();
    sbm::store::integrations::insert_error(
        tx.conn(),
        "haplo",
        "poll",
        "the poller sent a bad token",
        json!({}),
        now,
    )
    .await
    .unwrap();
    let callback = sbm::store::events::pending_callback(
        tx.conn(),
        "send.*",
        "send",
        "https://example.org/hook",
        3600,
        None,
        now,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let mut staff = Staff::new(&app);
    staff.sign_in_with_password(PASSWORD).await.expect(303);
    let list = staff.get("/admin/integrations").await.expect(200).text();
    assert!(list.contains("Haplo poll"), "{list}");
    let page = staff
        .get("/admin/integrations/haplo")
        .await
        .expect(200)
        .text();
    assert!(page.contains("the poller sent a bad token"), "{page}");
    let csrf = staff.csrf("/admin/integrations/haplo").await;
    let refused = staff
        .post("/admin/integrations/haplo/send", &[("csrf", &csrf)])
        .await
        .expect(400)
        .text();
    assert!(refused.contains("it does not push"), "{refused}");
    let errors = app
        .get("/api/v1/integration-errors/")
        .await
        .expect(200)
        .json();
    let error_id = errors["results"][0]["id"].as_i64().unwrap();
    staff
        .post(
            &format!("/admin/integration-errors/{error_id}/acknowledge"),
            &[("csrf", &csrf)],
        )
        .await
        .expect(303);
    let errors = app
        .get("/api/v1/integration-errors/")
        .await
        .expect(200)
        .json();
    assert_eq!(errors["results"][0]["acknowledged_by"], ADMIN_EMAIL);

    let id = callback.id;
    let list = staff.get("/admin/callbacks").await.expect(200).text();
    assert!(list.contains("https://example.org/hook"), "{list}");
    let page = staff
        .get(&format!("/admin/callbacks/{id}"))
        .await
        .expect(200)
        .text();
    assert!(page.contains("Recover failed deliveries"), "{page}");
    let recover = [
        ("csrf", csrf.as_str()),
        ("since", "2026-01-01T00:00"),
        ("until", ""),
    ];
    staff
        .post(&format!("/admin/callbacks/{id}/recover"), &recover)
        .await
        .expect(303);
    staff
        .post(
            &format!("/admin/callbacks/{id}/disable"),
            &[("csrf", &csrf)],
        )
        .await
        .expect(303);
    let after = app
        .get(&format!("/api/v1/callbacks/{id}/"))
        .await
        .expect(200)
        .json();
    assert_eq!(after["state"], "disabled");
    assert_eq!(app.count("/api/v1/events/?type=callback.disabled").await, 1);
    staff
        .post(&format!("/admin/callbacks/{id}/delete"), &[])
        .await
        .expect(403);
    staff
        .post(&format!("/admin/callbacks/{id}/delete"), &[("csrf", &csrf)])
        .await
        .expect(303);
    app.get(&format!("/api/v1/callbacks/{id}/"))
        .await
        .expect(404);
}

on_both_backends!(
    pages_need_a_session_and_forms_the_sessions_csrf_token,
    sign_in_is_for_active_admins_and_rate_limited,
    revoking_or_deactivating_ends_sessions,
    user_content_is_escaped_and_in_use_sets_are_kept,
    callbacks_and_integration_groups_are_managed_from_the_ui,
);
