//! The admin UI over plain HTTP: sign-in, sessions, CSRF, rate limiting, headers. The pages'
//! own checks are in `admin_pages.rs`, the browser scenario in `admin_browser.rs`.

use reqwest::redirect::Policy;

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
pub struct Staff<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    pub cookie: Option<String>,
}

impl<'a> Staff<'a> {
    pub fn new(app: &'a TestApp) -> Self {
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

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.client.get(self.app.url(path))).await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Reply {
        self.send(self.client.post(self.app.url(path)).form(form))
            .await
    }

    /// Signs in with the form's fields; keeps the session cookie when one is set.
    pub async fn sign_in(&mut self, form: &[(&str, &str)]) -> Reply {
        let reply = self.post("/admin/login", form).await;
        if let Some(set) = reply.headers.get("set-cookie") {
            let set = set.to_str().unwrap().to_string();
            self.cookie = Some(set.split(';').next().unwrap().to_string());
        }
        reply
    }

    pub async fn sign_in_with_password(&mut self, password: &str) -> Reply {
        self.sign_in(&[("email", ADMIN_EMAIL), ("password", password)])
            .await
    }

    /// The CSRF token in the forms of a page.
    pub async fn csrf(&self, path: &str) -> String {
        let page = self.get(path).await.expect(200).text();
        let start = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
        page[start..start + 64].to_string()
    }
}

pub fn location(reply: &Reply) -> &str {
    reply.headers["location"].to_str().unwrap()
}

async fn pages_need_a_session_and_send_security_headers(backend: Backend) {
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
}

async fn forms_need_the_sessions_csrf_token(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    set_password(&app, ADMIN_EMAIL, PASSWORD).await;
    let mut staff = Staff::new(&app);
    staff.sign_in_with_password(PASSWORD).await.expect(303);
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

    run_sql(
        &app,
        "update app_user set is_active = false where email = 'admin@example.org'",
    )
    .await;
    by_password.get("/admin").await.expect(303);
}

pub async fn run_sql(app: &TestApp, statement: &str) {
    match &app.db {
        sbm::store::Db::Postgres(pool) => {
            sqlx::query(statement).execute(pool).await.unwrap();
        }
        sbm::store::Db::Sqlite(pool) => {
            sqlx::query(statement).execute(pool).await.unwrap();
        }
    }
}

async fn idle_sessions_end(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    set_password(&app, ADMIN_EMAIL, PASSWORD).await;
    let mut staff = Staff::new(&app);
    staff.sign_in_with_password(PASSWORD).await.expect(303);
    staff.get("/admin").await.expect(200);
    // A session unused for longer than the idle time has ended.
    let idle_secs = 3_600 + 60;
    let stale = match backend {
        Backend::Postgres => format!(
            "update admin_session set last_seen_at = now() - interval '{idle_secs} seconds'"
        ),
        Backend::Sqlite => format!(
            "update admin_session set last_seen_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-{idle_secs} seconds')"
        ),
    };
    run_sql(&app, &stale).await;
    staff.get("/admin").await.expect(303);
}

on_both_backends!(
    pages_need_a_session_and_send_security_headers,
    forms_need_the_sessions_csrf_token,
    sign_in_is_for_active_admins_and_rate_limited,
    revoking_or_deactivating_ends_sessions,
    idle_sessions_end,
);
