//! Failed deliveries: retries, their schedule, Retry-After, redirects, 410 and disabling.

use super::*;
use crate::on_both_backends;

on_both_backends!(
    a_failing_delivery_is_retried_until_it_succeeds_and_every_attempt_is_logged,
    a_delivery_that_fails_every_attempt_is_failed_and_can_be_retried_by_hand,
    retries_wait_as_the_schedule_says,
    a_redirect_is_a_failure_and_is_not_followed,
    a_410_ends_the_subscription_without_retries,
    retry_after_on_429_delays_the_next_attempt,
    retry_after_as_an_http_date_on_503_delays_the_next_attempt,
    retry_after_is_clamped_to_the_configured_maximum,
    a_callback_that_only_fails_for_the_disable_period_is_disabled_with_an_event,
);

async fn a_failing_delivery_is_retried_until_it_succeeds_and_every_attempt_is_logged(
    backend: Backend,
) {
    let Some(app) = spawn_hub_app(backend, |c| c.events.retry_schedule_secs = vec![0, 0, 0]).await
    else {
        return;
    };
    let receiver = Receiver::start().await;
    receiver.script([
        Answer::status(500).body("first failure"),
        Answer::status(500).body("second failure"),
    ]);
    let id = hook_schedules(&app, &receiver).await;
    app.create_schedule().await;
    let delivery = only_delivery_in_state(&app, &id, "succeeded").await;
    let log = attempt_log(&delivery);
    let statuses: Vec<_> = log.iter().map(|a| a["status_code"].as_i64()).collect();
    assert_eq!(statuses, [Some(500), Some(500), Some(200)], "{delivery}");
    assert!(
        log[0]["response_body"]
            .as_str()
            .unwrap_or_default()
            .contains("first failure"),
        "the response body is logged: {}",
        log[0]
    );
    for attempt in &log {
        assert!(attempt["duration_ms"].is_number(), "{attempt}");
        time(&attempt["attempted_at"]);
    }
    assert!(
        log[2]["next_attempt_at"].is_null(),
        "nothing more is due: {}",
        log[2]
    );

    let posts = receiver.deliveries();
    assert_eq!(posts.len(), 3);
    let ids: Vec<_> = posts.iter().map(|p| p.header("webhook-id")).collect();
    assert!(
        ids.iter().all(|i| *i == ids[0]),
        "the same event id on every attempt"
    );
    assert!(posts.iter().all(|p| p.json == posts[0].json));
}

async fn a_delivery_that_fails_every_attempt_is_failed_and_can_be_retried_by_hand(
    backend: Backend,
) {
    let Some(app) = spawn_hub_app(backend, |c| c.events.retry_schedule_secs = vec![0, 0]).await
    else {
        return;
    };
    let receiver = Receiver::start().await;
    receiver.always(500);
    let id = hook_schedules(&app, &receiver).await;
    app.create_schedule().await;
    let failed = only_delivery_in_state(&app, &id, "failed").await;
    let log = attempt_log(&failed);
    assert_eq!(log.len(), 3, "first attempt and two retries: {failed}");
    assert!(log.iter().all(|a| a["status_code"] == 500));
    quiet(&app).await;
    assert_eq!(
        receiver.deliveries().len(),
        3,
        "nothing after the last retry"
    );
    assert_eq!(deliveries_of(&app, &id, "state=failed").await.len(), 1);
    assert_eq!(deliveries_of(&app, &id, "state=succeeded").await.len(), 0);

    // The event's own deliveries list it too.
    let event_id = receiver.deliveries()[0].json["id"]
        .as_str()
        .unwrap()
        .to_string();
    let of_event = app
        .get(&format!("/api/v1/events/{event_id}/deliveries/"))
        .await
        .expect(200)
        .json();
    assert_eq!(of_event["count"], 1);
    assert_eq!(of_event["results"][0]["id"], failed["id"]);

    receiver.always(200);
    let path = format!("/api/v1/deliveries/{}/retry/", plain(&failed["id"]));
    let reply = app.call(Method::POST, &path, None).await;
    assert!(
        reply.status.is_success(),
        "{}: {}",
        reply.status,
        reply.text()
    );
    only_delivery_in_state(&app, &id, "succeeded").await;
    assert_eq!(receiver.deliveries().len(), 4);

    // A success can be replayed.
    let reply = app.call(Method::POST, &path, None).await;
    assert!(
        reply.status.is_success(),
        "{}: {}",
        reply.status,
        reply.text()
    );
    eventually("the success is replayed", || async {
        receiver.deliveries().len() == 5
    })
    .await;
    only_delivery_in_state(&app, &id, "succeeded").await;
    app.call(Method::POST, "/api/v1/deliveries/999999999/retry/", None)
        .await
        .expect(404);
}

async fn retries_wait_as_the_schedule_says(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |c| c.events.retry_schedule_secs = vec![1, 2]).await
    else {
        return;
    };
    let receiver = Receiver::start().await;
    receiver.always(500);
    let id = hook_schedules(&app, &receiver).await;
    app.create_schedule().await;
    let failed = only_delivery_in_state(&app, &id, "failed").await;
    let log = attempt_log(&failed);
    assert_eq!(log.len(), 3, "{failed}");
    for (n, wanted) in [(0, 1.0), (1, 2.0)] {
        let planned = seconds_between(
            time(&log[n]["attempted_at"]),
            time(&log[n]["next_attempt_at"]),
        );
        assert!(
            (planned - wanted).abs() < 0.5,
            "attempt {n} planned the next after {planned} s, not {wanted} s: {failed}"
        );
        let waited = seconds_between(
            time(&log[n]["attempted_at"]),
            time(&log[n + 1]["attempted_at"]),
        );
        assert!(waited >= wanted - 0.1, "attempt {n}: waited {waited} s");
    }
    assert!(log[2]["next_attempt_at"].is_null(), "{failed}");
    let posts = receiver.deliveries();
    assert!(seconds_between(posts[0].at, posts[1].at) >= 0.9);
    assert!(seconds_between(posts[1].at, posts[2].at) >= 1.9);
}

async fn a_redirect_is_a_failure_and_is_not_followed(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |c| c.events.retry_schedule_secs = vec![0]).await else {
        return;
    };
    let receiver = Receiver::start().await;
    let elsewhere = receiver.url("/elsewhere");
    receiver.answer_by_default(Answer::status(307).header("location", &elsewhere));
    let id = hook_schedules(&app, &receiver).await;
    app.create_schedule().await;
    let failed = only_delivery_in_state(&app, &id, "failed").await;
    assert!(
        attempt_log(&failed).iter().all(|a| a["status_code"] == 307),
        "{failed}"
    );
    assert!(receiver.deliveries_to("/elsewhere").is_empty());
    assert!(receiver.requests().iter().all(|r| r.path != "/elsewhere"));
}

async fn a_410_ends_the_subscription_without_retries(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |c| c.events.retry_schedule_secs = vec![0, 0, 0]).await
    else {
        return;
    };
    let receiver = Receiver::start().await;
    receiver.script_statuses(&[410]);
    let id = hook_schedules(&app, &receiver).await;
    app.create_schedule().await;
    eventually("the callback is gone", || async {
        callback_state(&app, &id).await == "gone"
    })
    .await;
    quiet(&app).await;
    assert_eq!(receiver.deliveries().len(), 1, "no retry after 410");
    let list = deliveries_of(&app, &id, "").await;
    let logged = delivery(&app, &list[0]["id"]).await;
    let log = attempt_log(&logged);
    assert_eq!(log.len(), 1, "{logged}");
    assert_eq!(log[0]["status_code"], 410);

    app.create_schedule().await;
    quiet(&app).await;
    assert_eq!(receiver.deliveries().len(), 1, "nothing more is sent to it");
}

/// Subscribes a receiver that first answers `first`, then 200; returns the seconds between the
/// two attempts, from the attempt log and from what the receiver saw.
async fn gap_after(app: &TestApp, first: Answer) -> (f64, f64) {
    let receiver = Receiver::start().await;
    receiver.script([first]);
    let id = hook_schedules(app, &receiver).await;
    app.create_schedule().await;
    let done = only_delivery_in_state(app, &id, "succeeded").await;
    let log = attempt_log(&done);
    assert_eq!(log.len(), 2, "{done}");
    let logged = seconds_between(time(&log[0]["attempted_at"]), time(&log[1]["attempted_at"]));
    let posts = receiver.deliveries();
    assert_eq!(posts.len(), 2);
    (logged, seconds_between(posts[0].at, posts[1].at))
}

async fn retry_after_on_429_delays_the_next_attempt(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |c| c.events.retry_schedule_secs = vec![0, 0]).await
    else {
        return;
    };
    let (logged, seen) = gap_after(&app, Answer::status(429).header("retry-after", "1")).await;
    assert!(logged >= 0.95, "the log shows {logged} s between attempts");
    assert!(seen >= 0.9, "the receiver saw {seen} s between attempts");
}

async fn retry_after_as_an_http_date_on_503_delays_the_next_attempt(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |c| c.events.retry_schedule_secs = vec![0, 0]).await
    else {
        return;
    };
    let when = (Utc::now() + chrono::Duration::seconds(3))
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let (logged, seen) = gap_after(&app, Answer::status(503).header("retry-after", &when)).await;
    assert!(logged >= 0.95, "the log shows {logged} s between attempts");
    assert!(seen >= 0.9, "the receiver saw {seen} s between attempts");
}

async fn retry_after_is_clamped_to_the_configured_maximum(backend: Backend) {
    let Some(app) = spawn_hub_app(backend, |c| {
        c.events.retry_schedule_secs = vec![0, 0];
        c.events.retry_after_max_secs = 1;
    })
    .await
    else {
        return;
    };
    let (logged, seen) = gap_after(&app, Answer::status(429).header("retry-after", "3600")).await;
    assert!(
        (0.95..5.0).contains(&logged),
        "3600 s clamped to 1 s; the log shows {logged} s"
    );
    assert!(seen < 5.0, "the receiver saw {seen} s between attempts");
}

async fn a_callback_that_only_fails_for_the_disable_period_is_disabled_with_an_event(
    backend: Backend,
) {
    let Some(app) = spawn_hub_app(backend, |c| {
        c.events.disable_after_secs = 1;
        c.events.retry_schedule_secs = vec![1, 1, 1, 1];
    })
    .await
    else {
        return;
    };
    let failing = Receiver::start().await;
    failing.always(500);
    let watcher = Receiver::start().await;
    let hook = failing.url("/hook");
    let callback = subscribe_active(
        &app,
        "schedule.*",
        &hook,
        &[("hub.secret", "hidden-secret")],
    )
    .await;
    let id = plain(&callback["id"]);
    subscribe_active(&app, "callback.*", &watcher.url("/watch"), &[]).await;

    let schedule = app.create_schedule().await;
    eventually("the callback is disabled", || async {
        callback_state(&app, &id).await == "disabled"
    })
    .await;
    let events = app
        .get("/api/v1/events/?type=callback.disabled")
        .await
        .expect(200)
        .json();
    assert_eq!(events["count"], 1, "{events}");
    let event = &events["results"][0];
    assert_eq!(event["object"], json!({"type": "callback", "id": id}));
    // data: the callback as the API shows it (so without its secret) and the reason.
    let disabled = &event["data"]["callback"];
    assert_eq!(disabled["id"], callback["id"], "{event}");
    assert_eq!(disabled["state"], "disabled", "{event}");
    assert_eq!(disabled["has_secret"], true, "{event}");
    assert!(disabled.get("secret").is_none(), "{event}");
    assert!(event["data"]["reason"].is_string(), "{event}");
    assert!(!event.to_string().contains("hidden-secret"), "{event}");

    eventually("the watcher hears of it", || async {
        watcher.delivered_events().iter().any(|e| {
            e["type"] == "callback.disabled" && e["data"]["callback"]["id"] == callback["id"]
        })
    })
    .await;

    // Its delivery waits, and nothing more is attempted while it is disabled: once the waiting
    // delivery is due, an event to another callback is delivered and the loop is idle, so the
    // delivery loop has passed the waiting delivery by then.
    let attempts = failing.deliveries().len();
    for waiting in deliveries_of(&app, &id, "state=pending").await {
        if let Some(due) = waiting["next_attempt_at"].as_str() {
            let due = time(&json!(due));
            eventually("the waiting delivery is due", || async { Utc::now() > due }).await;
        }
    }
    let marker = Receiver::start().await;
    subscribe_active(&app, "messageset.*", &marker.url("/marker"), &[]).await;
    app.post(
        "/api/v1/messageset/",
        json!({"short_name": "marker", "content_type": "text", "default_schedule": schedule}),
    )
    .await
    .expect(201);
    eventually("a later event is delivered", || async {
        !marker.deliveries().is_empty()
    })
    .await;
    quiet(&app).await;
    assert_eq!(
        failing.deliveries().len(),
        attempts,
        "a disabled callback is not called"
    );
    assert!(deliveries_of(&app, &id, "state=succeeded").await.is_empty());

    // Subscribing again re-activates it, and the waiting delivery goes out.
    failing.always(200);
    subscribe(&app, "schedule.*", &hook, &[]).await.expect(202);
    callback_in_state(&app, "schedule.*", &hook, "active").await;
    only_delivery_in_state(&app, &id, "succeeded").await;
}
