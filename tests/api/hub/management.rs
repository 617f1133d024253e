//! Managing callbacks: recover, list, read and delete by their owner.

use super::*;
use crate::on_both_backends;

on_both_backends!(
    recover_requeues_the_failed_deliveries_of_a_time_range,
    callbacks_are_listed_read_and_deleted_by_their_owner_only,
);

/// The body of a successful (any 2xx) recover answer.
fn recovered(reply: Reply) -> Value {
    assert!(
        reply.status.is_success(),
        "{}: {}",
        reply.status,
        reply.text()
    );
    reply.json()
}

async fn recover_requeues_the_failed_deliveries_of_a_time_range(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |c| c.events.retry_schedule_secs = vec![0]).await else {
        return;
    };
    let receiver = Receiver::start().await;
    receiver.always(500);
    let id = hook_schedules(&app, &receiver).await;
    let before = Utc::now() - chrono::Duration::seconds(1);
    for _ in 0..3 {
        app.create_schedule().await;
    }
    eventually("three deliveries failed", || async {
        deliveries_of(&app, &id, "state=failed").await.len() == 3
    })
    .await;
    receiver.always(200);
    let recover = format!("/api/v1/callbacks/{id}/recover/");

    let earlier =
        json!({"since": rfc3339(before - chrono::Duration::hours(1)), "until": rfc3339(before)});
    assert_eq!(
        recovered(app.post(&recover, earlier).await),
        json!({"recovered": 0}),
        "no failed delivery of an event in that range"
    );
    quiet(&app).await;
    assert_eq!(deliveries_of(&app, &id, "state=failed").await.len(), 3);
    app.post(&recover, json!({"since": "yesterday"}))
        .await
        .expect(400);

    assert_eq!(
        recovered(app.post(&recover, json!({"since": rfc3339(before)})).await),
        json!({"recovered": 3})
    );
    eventually("every recovered delivery succeeds", || async {
        deliveries_of(&app, &id, "state=succeeded").await.len() == 3
    })
    .await;
    assert!(deliveries_of(&app, &id, "state=failed").await.is_empty());
    assert_eq!(receiver.deliveries().len(), 3 * 2 + 3);
}

async fn callbacks_are_listed_read_and_deleted_by_their_owner_only(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |_| {}).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let mine = subscribe_active(&app, "schedule.*", &receiver.url("/admin"), &[]).await;
    let mine_id = plain(&mine["id"]);
    let user = issue_token(&app.db, "partner@example.org", false).await;
    let theirs_url = receiver.url("/partner");
    hub_as(
        &app,
        &user,
        &[
            ("hub.mode", "subscribe"),
            ("hub.topic", "send.*"),
            ("hub.callback", theirs_url.as_str()),
        ],
    )
    .await
    .expect(202);
    let theirs = callback_in_state(&app, "send.*", &theirs_url, "active").await;
    let theirs_id = plain(&theirs["id"]);

    let as_user = |method: Method, path: &str| {
        app.client
            .request(method, app.url(path))
            .header("Authorization", format!("Token {user}"))
    };
    let listed = app
        .send(as_user(Method::GET, "/api/v1/callbacks/"))
        .await
        .expect(200)
        .json();
    assert_eq!(
        listed["count"], 1,
        "a user sees only their callbacks: {listed}"
    );
    assert_eq!(listed["results"][0]["id"], theirs["id"]);
    assert_eq!(
        app.count("/api/v1/callbacks/").await,
        2,
        "an admin sees all"
    );
    assert_eq!(app.count("/api/v1/callbacks/?state=active").await, 2);
    assert_eq!(app.count("/api/v1/callbacks/?state=denied").await, 0);
    assert_eq!(app.count("/api/v1/callbacks/?topic=send.*").await, 1);

    let hidden = app
        .send(as_user(
            Method::GET,
            &format!("/api/v1/callbacks/{mine_id}/"),
        ))
        .await;
    assert!(
        [403, 404].contains(&hidden.status.as_u16()),
        "another's callback is not shown: {}",
        hidden.status
    );
    let refused = app
        .send(as_user(
            Method::DELETE,
            &format!("/api/v1/callbacks/{mine_id}/"),
        ))
        .await;
    assert!(
        [403, 404].contains(&refused.status.as_u16()),
        "{}",
        refused.status
    );
    app.get(&format!("/api/v1/callbacks/{mine_id}/"))
        .await
        .expect(200);
    app.send(as_user(
        Method::GET,
        &format!("/api/v1/callbacks/{theirs_id}/"),
    ))
    .await
    .expect(200);

    // Deleting removes the callback and its delivery log.
    app.create_schedule().await;
    let delivered = only_delivery_in_state(&app, &mine_id, "succeeded").await;
    app.delete(&format!("/api/v1/callbacks/{mine_id}/"))
        .await
        .expect(204);
    app.get(&format!("/api/v1/callbacks/{mine_id}/"))
        .await
        .expect(404);
    app.delete(&format!("/api/v1/callbacks/{mine_id}/"))
        .await
        .expect(404);
    app.get(&format!("/api/v1/deliveries/{}/", plain(&delivered["id"])))
        .await
        .expect(404);
    app.send(as_user(
        Method::DELETE,
        &format!("/api/v1/callbacks/{theirs_id}/"),
    ))
    .await
    .expect(204);
    assert_eq!(app.count("/api/v1/callbacks/").await, 0);

    app.get("/api/v1/callbacks/not-a-uuid/").await.expect(404);
    app.get("/api/v1/callbacks/00000000-0000-4000-8000-000000000000/")
        .await
        .expect(404);
    app.get("/api/v1/deliveries/999999999/").await.expect(404);
    app.send(app.client.get(app.url("/api/v1/callbacks/")))
        .await
        .expect(401);

    // Deleted: the next event goes nowhere.
    app.create_schedule().await;
    quiet(&app).await;
    assert_eq!(receiver.deliveries().len(), 1);
}
