//! The admin UI's pages over plain HTTP: escaping, in-use protection, subscription changes,
//! callbacks and integration groups.

use serde_json::json;

use crate::admin::{set_password, Staff, ADMIN_EMAIL, PASSWORD};
use crate::helpers::{spawn_app, Backend};
use crate::on_both_backends;

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

async fn integration_errors_are_acknowledged_and_poll_groups_not_pushed(backend: Backend) {
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
}

async fn callbacks_are_recovered_disabled_and_deleted(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    set_password(&app, ADMIN_EMAIL, PASSWORD).await;
    let now = sbm::store::now();
    let mut tx = app.db.begin().await.unwrap();
    let (owner, _) = sbm::auth::create_user(&mut tx, "callback-owner@example.org", false)
        .await
        .unwrap();
    let owner = owner.id;
    let callback = sbm::store::events::pending_callback(
        tx.conn(),
        "send.*",
        "send",
        "https://example.org/hook",
        3600,
        owner,
        now,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let mut staff = Staff::new(&app);
    staff.sign_in_with_password(PASSWORD).await.expect(303);
    let csrf = staff.csrf("/admin/callbacks").await;
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

async fn subscription_changes_are_confirmed_and_validated(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    set_password(&app, ADMIN_EMAIL, PASSWORD).await;
    let set = app.create_message_set("prebirth", "text").await;
    let body = json!({"identity": "5e1f7c4e-2c1a-4a7e-9d35-1b2c3d4e5f60", "messageset": set, "lang": "eng"});
    let created = app
        .post("/api/v1/subscriptions/", body)
        .await
        .expect(201)
        .json();
    let id = created["id"].as_str().unwrap().to_string();
    let mut staff = Staff::new(&app);
    staff.sign_in_with_password(PASSWORD).await.expect(303);
    let csrf = staff.csrf(&format!("/admin/subscriptions/{id}")).await;

    let confirm = staff
        .post(
            &format!("/admin/subscriptions/{id}/confirm"),
            &[
                ("csrf", &csrf),
                ("action", "next_sequence_number"),
                ("next_sequence_number", "3"),
            ],
        )
        .await
        .expect(200)
        .text();
    assert!(confirm.contains("from 1 to 3"), "{confirm}");
    let unchanged = app
        .get(&format!("/api/v1/subscriptions/{id}/"))
        .await
        .expect(200)
        .json();
    assert_eq!(
        unchanged["next_sequence_number"], 1,
        "confirming writes nothing"
    );
    let apply = [
        ("csrf", csrf.as_str()),
        ("action", "next_sequence_number"),
        ("next_sequence_number", "3"),
    ];
    staff
        .post(&format!("/admin/subscriptions/{id}/apply"), &apply)
        .await
        .expect(303);
    let changed = app
        .get(&format!("/api/v1/subscriptions/{id}/"))
        .await
        .expect(200)
        .json();
    assert_eq!(changed["next_sequence_number"], 3);
    let bad = [
        ("csrf", csrf.as_str()),
        ("action", "lang"),
        ("lang", "english"),
    ];
    let page = staff
        .post(&format!("/admin/subscriptions/{id}/apply"), &bad)
        .await
        .expect(400)
        .text();
    assert!(
        page.contains("lang: Enter an ISO 639-3 language code"),
        "{page}"
    );
    let found = staff
        .get("/admin/subscriptions?q=5e1f7c4e-2c1a-4a7e-9d35-1b2c3d4e5f60")
        .await
        .expect(200)
        .text();
    assert!(found.contains(&id), "found by identity: {found}");
}

on_both_backends!(
    user_content_is_escaped_and_in_use_sets_are_kept,
    integration_errors_are_acknowledged_and_poll_groups_not_pushed,
    callbacks_are_recovered_disabled_and_deleted,
    subscription_changes_are_confirmed_and_validated,
);
