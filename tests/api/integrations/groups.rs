//! Integration groups and their messages: CRUD, validation, who may manage, events and hand-added messages, unsend.

use super::*;
use crate::on_both_backends;

on_both_backends!(
    groups_are_created_read_listed_patched_and_deleted,
    bad_group_fields_get_400_naming_the_field_and_write_nothing,
    an_unknown_group_or_message_gets_404_everywhere,
    only_admins_manage_groups,
    events_become_messages_of_the_groups_whose_event_types_match,
    an_admin_adds_a_message_by_hand,
    an_unsent_message_comes_back_and_its_audit_trail_says_who,
);

// ---- groups ----

async fn groups_are_created_read_listed_patched_and_deleted(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |config| {
        config.events.instance_name = "test-instance".into()
    })
    .await
    else {
        return;
    };
    let receiver = Receiver::start().await;
    let before = Utc::now();

    let body = merged(
        poll_group("records"),
        json!({"title": "Records system", "event_types": ["subscription.*", "send.succeeded"]}),
    );
    let poll = create_group(&app, body).await;
    assert_eq!(poll["name"], "records");
    assert_eq!(poll["method"], "poll");
    assert_eq!(poll["title"], "Records system");
    assert_eq!(poll["description"], "");
    // The doc does not say in which order the list comes back.
    let mut event_types: Vec<&str> = poll["event_types"]
        .as_array()
        .unwrap_or_else(|| panic!("event_types: {poll}"))
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    event_types.sort();
    assert_eq!(event_types, ["send.succeeded", "subscription.*"]);
    assert_eq!(poll["lease_seconds"], 300);
    assert_eq!(poll["format"], "json");
    for (field, default) in [
        ("minute", "0"),
        ("hour", "2"),
        ("day_of_week", "*"),
        ("day_of_month", "*"),
        ("month_of_year", "*"),
    ] {
        assert_eq!(poll[field], default, "{field}: {poll}");
    }
    assert_eq!(poll["max_batch_size"], 100);
    assert_eq!(poll["skip_empty"], true);
    assert_eq!(
        poll["instance"], "test-instance",
        "the instance that created it"
    );
    assert_eq!(poll["auth_header_set"], false);
    assert_eq!(poll["unsent_count"], 0);
    assert_eq!(poll["unacknowledged_errors"], 0);
    let poll_url = poll["poll_url"].as_str().expect("poll_url");
    assert!(
        poll_url.contains("records") && poll_url.ends_with("fetch"),
        "{poll_url}"
    );
    let mark_url = poll["mark_url"].as_str().expect("mark_url");
    assert!(
        mark_url.contains("records") && mark_url.ends_with("mark"),
        "{mark_url}"
    );
    assert!(time(&poll["created_at"]) >= before - chrono::Duration::seconds(1));
    time(&poll["updated_at"]);
    assert!(poll.get("auth_header").is_none(), "{poll}");

    let body = json!({
        "name": "warehouse", "method": "send", "title": "Data warehouse",
        "description": "Nightly load", "event_types": ["schedule.*"],
        "target_url": receiver.url("/dw"), "auth_header": "Bearer s3cret", "format": "ndjson",
        "lease_seconds": 60, "max_batch_size": 500, "skip_empty": false,
    });
    let send = create_group(&app, body).await;
    assert_eq!(send["method"], "send");
    assert_eq!(send["description"], "Nightly load");
    assert_eq!(send["target_url"], receiver.url("/dw"));
    assert_eq!(send["format"], "ndjson");
    assert_eq!(send["lease_seconds"], 60);
    assert_eq!(send["max_batch_size"], 500);
    assert_eq!(send["skip_empty"], false);
    assert_eq!(send["auth_header_set"], true);
    assert!(send.get("auth_header").is_none(), "{send}");
    assert!(send["last_push_at"].is_null(), "{send}");
    let next = time(&send["next_push_at"]);
    assert!(
        next > before && next <= before + chrono::Duration::hours(24),
        "{next}"
    );
    assert_eq!(
        (next.hour(), next.minute(), next.second()),
        (2, 0, 0),
        "02:00 UTC"
    );

    assert_eq!(get_group(&app, "records").await, poll);
    assert_eq!(get_group(&app, "warehouse").await, send);
    let listed = list_groups(&app).await;
    assert_eq!(names(&listed), ["records", "warehouse"]);
    for group in &listed {
        assert!(group.get("auth_header").is_none(), "{group}");
    }
    let text = app.get(GROUPS).await.expect(200).text();
    assert!(!text.contains("s3cret"), "the auth header is never shown");
    let text = app.get(&group_path("warehouse")).await.text();
    assert!(!text.contains("s3cret"), "the auth header is never shown");

    // PATCH changes the fields given; the push time follows the cron fields.
    let patched = app
        .patch(
            &group_path("warehouse"),
            json!({"title": "DW", "hour": "3", "auth_header": "Basic eDp5"}),
        )
        .await
        .expect(200);
    assert!(!patched.text().contains("eDp5"));
    let patched = patched.json();
    assert_eq!(patched["title"], "DW");
    assert_eq!(patched["hour"], "3");
    assert_eq!(patched["description"], "Nightly load", "other fields stay");
    assert_eq!(patched["auth_header_set"], true);
    assert!(patched.get("auth_header").is_none(), "{patched}");
    assert_eq!(time(&patched["next_push_at"]).hour(), 3);
    assert!(time(&patched["updated_at"]) >= time(&patched["created_at"]));
    assert_eq!(get_group(&app, "warehouse").await, patched);

    // The name cannot change.
    let reply = app
        .patch(&group_path("warehouse"), json!({"name": "renamed"}))
        .await;
    assert!(
        reply.status.as_u16() == 400 || reply.status.is_success(),
        "{reply:?}"
    );
    assert_eq!(get_group(&app, "warehouse").await["name"], "warehouse");
    app.get(&group_path("renamed")).await.expect(404);

    // Deleting a group takes its messages, batches and errors with it.
    add_messages(&app, "records", 2).await;
    assert_eq!(batch_ids(&fetch(&app, "records", Some(1)).await).len(), 1);
    app.patch(&group_path("warehouse"), json!({"instance": "elsewhere"}))
        .await
        .expect(200);
    add_message(&app, "warehouse", json!({"n": 1})).await;
    push_now(&app, "warehouse").await;
    wait_for_error(&app, "warehouse").await;
    assert!(all_errors(&app, "")
        .await
        .iter()
        .any(|e| e["group"] == "warehouse"));

    app.delete(&group_path("records")).await.expect(204);
    app.delete(&group_path("warehouse")).await.expect(204);
    app.get(&group_path("records")).await.expect(404);
    app.delete(&group_path("records")).await.expect(404);
    assert!(list_groups(&app).await.is_empty());
    assert!(
        all_errors(&app, "").await.is_empty(),
        "the group's errors went with it"
    );
    let again = create_group(&app, poll_group("records")).await;
    assert_eq!(again["unsent_count"], 0);
    assert!(messages(&app, "records", "").await.is_empty());
    let batch = fetch(&app, "records", None).await;
    assert_eq!(batch_ids(&batch), Vec::<i64>::new());
    assert_eq!(batch["unreadCount"], 0);
    assert!(receiver.deliveries().is_empty());
}

async fn bad_group_fields_get_400_naming_the_field_and_write_nothing(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let poll = poll_group("records");
    let send = send_group("warehouse", "https://dw.example.org/sbm");
    let cases = [
        (json!({"method": "poll", "title": "No name"}), "name"),
        (merged(poll.clone(), json!({"name": ""})), "name"),
        (merged(poll.clone(), json!({"name": "Records"})), "name"),
        (merged(poll.clone(), json!({"name": "two words"})), "name"),
        (
            merged(poll.clone(), json!({"name": "dots.are.out"})),
            "name",
        ),
        (
            merged(poll.clone(), json!({"name": "a".repeat(65)})),
            "name",
        ),
        (json!({"name": "records", "title": "No method"}), "method"),
        (merged(poll.clone(), json!({"method": "push"})), "method"),
        (json!({"name": "records", "method": "poll"}), "title"),
        (
            merged(poll.clone(), json!({"title": "t".repeat(201)})),
            "title",
        ),
        (without(&send, "target_url"), "target_url"),
        (
            merged(send.clone(), json!({"target_url": "ftp://dw.example.org/"})),
            "target_url",
        ),
        (
            merged(send.clone(), json!({"target_url": "not a url"})),
            "target_url",
        ),
        (merged(poll.clone(), json!({"minute": "60"})), "minute"),
        (merged(poll.clone(), json!({"minute": "*/5"})), "minute"),
        (merged(poll.clone(), json!({"hour": "24"})), "hour"),
        (
            merged(poll.clone(), json!({"day_of_week": "8"})),
            "day_of_week",
        ),
        (
            merged(poll.clone(), json!({"day_of_month": "0"})),
            "day_of_month",
        ),
        (
            merged(poll.clone(), json!({"month_of_year": "13"})),
            "month_of_year",
        ),
        (
            merged(poll.clone(), json!({"lease_seconds": 0})),
            "lease_seconds",
        ),
        (
            merged(poll.clone(), json!({"lease_seconds": 86_401})),
            "lease_seconds",
        ),
        (
            merged(poll.clone(), json!({"max_batch_size": 0})),
            "max_batch_size",
        ),
        (
            merged(poll.clone(), json!({"max_batch_size": 10_001})),
            "max_batch_size",
        ),
        (merged(send.clone(), json!({"format": "xml"})), "format"),
        (
            merged(poll.clone(), json!({"event_types": ["schedule..created"]})),
            "event_types",
        ),
        (
            merged(poll.clone(), json!({"event_types": ["send.*.x"]})),
            "event_types",
        ),
    ];
    for (body, field) in cases {
        let reply = app.post(GROUPS, body.clone()).await;
        let errors = reply.json();
        assert_eq!(reply.status.as_u16(), 400, "{body}: {errors}");
        assert!(errors[field].is_array(), "{body}: {errors}");
    }
    assert!(list_groups(&app).await.is_empty(), "nothing written");

    // The limits themselves are fine.
    let name = format!("edge_{}", "x".repeat(59));
    assert_eq!(name.len(), 64);
    let body = merged(
        poll_group(&name),
        json!({"lease_seconds": 1, "max_batch_size": 10_000, "event_types": ["*"]}),
    );
    create_group(&app, body).await;
    let body = merged(
        poll_group("edge-2"),
        json!({"lease_seconds": 86_400, "max_batch_size": 1}),
    );
    create_group(&app, body).await;

    // A duplicate name.
    create_group(&app, merged(poll.clone(), json!({"title": "First"}))).await;
    let reply = app
        .post(GROUPS, merged(poll.clone(), json!({"title": "Second"})))
        .await
        .expect(400);
    assert!(reply.json()["name"].is_array(), "{}", reply.text());
    assert_eq!(get_group(&app, "records").await["title"], "First");
    assert_eq!(list_groups(&app).await.len(), 3);

    // A bad PATCH changes nothing.
    let before = get_group(&app, "records").await;
    for (body, field) in [
        (json!({"lease_seconds": 0}), "lease_seconds"),
        (json!({"minute": "61"}), "minute"),
        (json!({"format": "xml"}), "format"),
        (json!({"method": "carrier-pigeon"}), "method"),
        (json!({"method": "send"}), "target_url"),
        (json!({"title": ""}), "title"),
    ] {
        let reply = app.patch(&group_path("records"), body.clone()).await;
        let errors = reply.json();
        assert_eq!(reply.status.as_u16(), 400, "{body}: {errors}");
        assert!(errors[field].is_array(), "{body}: {errors}");
    }
    assert_eq!(get_group(&app, "records").await, before);

    // A message added by hand must be a JSON object.
    for body in [
        json!({}),
        json!({"data": "text"}),
        json!({"data": [1, 2]}),
        json!({"data": 3}),
    ] {
        app.post(&format!("{}messages/", group_path("records")), body)
            .await
            .expect(400);
    }
    assert!(messages(&app, "records", "").await.is_empty());
}

async fn an_unknown_group_or_message_gets_404_everywhere(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let missing = group_path("nowhere");
    for path in [
        missing.clone(),
        format!("{missing}messages/"),
        format!("{missing}messages/1/"),
        format!("{missing}errors/"),
        fetch_path("nowhere"),
        format!("{}?token={}", mark_path("nowhere"), forged_token()),
        haplo_fetch_path("nowhere"),
    ] {
        app.get(&path).await.expect(404);
    }
    app.patch(&missing, json!({"title": "x"})).await.expect(404);
    app.delete(&missing).await.expect(404);
    app.post(&format!("{missing}messages/"), json!({"data": {"a": 1}}))
        .await
        .expect(404);
    for path in [
        format!("{missing}send/"),
        format!("{missing}tokens/"),
        format!("{missing}messages/1/unsend/"),
        fetch_path("nowhere"),
    ] {
        app.call(Method::POST, &path, None).await.expect(404);
    }
    assert!(list_groups(&app).await.is_empty());

    // Messages: unknown ids, and ids of another group.
    create_group(&app, poll_group("records")).await;
    create_group(&app, poll_group("other")).await;
    let id = add_message(&app, "records", json!({"a": 1})).await;
    app.get(&format!("{}messages/999999/", group_path("records")))
        .await
        .expect(404);
    app.get(&format!("{}messages/{id}/", group_path("other")))
        .await
        .expect(404);
    app.call(
        Method::POST,
        &format!("{}messages/{id}/unsend/", group_path("other")),
        None,
    )
    .await
    .expect(404);
    app.call(Method::POST, &format!("{ERRORS}999999/acknowledge/"), None)
        .await
        .expect(404);
    assert_eq!(waiting(&app, "records").await, [id]);
}

async fn only_admins_manage_groups(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let user = issue_token(&app.db, "user@example.org", false).await;
    create_group(&app, poll_group("records")).await;
    let id = add_message(&app, "records", json!({"a": 1})).await;
    let group = group_path("records");
    let calls: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, GROUPS.into(), None),
        (Method::POST, GROUPS.into(), Some(poll_group("mine"))),
        (Method::GET, group.clone(), None),
        (Method::PATCH, group.clone(), Some(json!({"title": "Mine"}))),
        (Method::DELETE, group.clone(), None),
        (Method::GET, format!("{group}messages/"), None),
        (
            Method::POST,
            format!("{group}messages/"),
            Some(json!({"data": {"b": 2}})),
        ),
        (Method::GET, format!("{group}messages/{id}/"), None),
        (Method::POST, format!("{group}messages/{id}/unsend/"), None),
        (Method::GET, fetch_path("records"), None),
        (Method::POST, fetch_path("records"), None),
        (Method::GET, haplo_fetch_path("records"), None),
        (
            Method::GET,
            format!("{}?token={}", mark_path("records"), forged_token()),
            None,
        ),
        (Method::POST, format!("{group}send/"), None),
        (Method::POST, format!("{group}tokens/"), None),
        (Method::GET, format!("{group}errors/"), None),
        (Method::GET, ERRORS.into(), None),
        (Method::POST, format!("{ERRORS}1/acknowledge/"), None),
    ];
    for (method, path, body) in calls {
        let mut request = app
            .client
            .request(method.clone(), app.url(&path))
            .header("Authorization", format!("Token {user}"));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply = app.send(request).await;
        assert_eq!(reply.status.as_u16(), 403, "{method} {path}: {reply:?}");
    }
    assert_eq!(names(&list_groups(&app).await), ["records"]);
    let group = get_group(&app, "records").await;
    assert_eq!(group["title"], "Poll group records");
    assert_eq!(messages(&app, "records", "").await.len(), 1);
    assert_eq!(
        batch_ids(&fetch(&app, "records", None).await),
        [id],
        "no refused fetch leased it"
    );
}

// ---- messages ----

async fn events_become_messages_of_the_groups_whose_event_types_match(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let before_groups = app.create_schedule().await;
    create_group(
        &app,
        merged(
            poll_group("schedules"),
            json!({"event_types": ["schedule.*"]}),
        ),
    )
    .await;
    create_group(
        &app,
        merged(
            poll_group("sets"),
            json!({"event_types": ["messageset.created"]}),
        ),
    )
    .await;
    create_group(&app, poll_group("manual")).await;

    let first = app.create_schedule().await;
    let second = app.create_schedule().await;
    let body = json!({"short_name": "set", "content_type": "text", "default_schedule": first});
    let set = app
        .post("/api/v1/messageset/", body)
        .await
        .expect(201)
        .json()["id"]
        .as_i64()
        .unwrap();
    // A refused change writes no event, hence no message.
    app.post("/api/v1/schedule/", json!({"minute": "60"}))
        .await
        .expect(400);

    let listed = messages(&app, "schedules", "").await;
    assert_eq!(
        listed.len(),
        2,
        "one message per schedule created: {listed:?}"
    );
    let events_path = |object_type: &str, id: i64| {
        format!("/api/v1/events/?limit=1000&object_type={object_type}&object_id={id}")
    };
    let mut expected_fetch = Vec::new();
    // Newest first.
    for (message, schedule) in listed.iter().zip([second, first]) {
        let events = results(
            app.get(&events_path("schedule", schedule))
                .await
                .expect(200)
                .json(),
        );
        assert_eq!(events.len(), 1, "{events:?}");
        let event = &events[0];
        assert_eq!(event["type"], "schedule.created");
        let data = json!({
            "event_id": event["id"], "type": event["type"], "object": event["object"],
            "sequence": event["sequence"], "data": event["data"],
        });
        assert_eq!(message["data"], data, "the event as callbacks get it");
        assert_eq!(message["event_id"], event["id"]);
        assert_eq!(message["group"], "schedules");
        assert!(message["manual_created_by"].is_null(), "{message}");
        assert!(message["sent_at"].is_null(), "{message}");
        time(&message["created_at"]);
        expected_fetch.push((
            message["id"].as_i64().unwrap(),
            data,
            time(&event["timestamp"]),
        ));
    }
    expected_fetch.reverse();
    let before_groups = before_groups.to_string();
    assert!(
        !listed
            .iter()
            .any(|m| m["data"]["object"]["id"] == before_groups.as_str()),
        "a schedule created before the group is not in it"
    );

    let sets = messages(&app, "sets", "").await;
    assert_eq!(sets.len(), 1, "{sets:?}");
    assert_eq!(sets[0]["data"]["type"], "messageset.created");
    assert_eq!(sets[0]["data"]["object"]["id"], set.to_string());
    assert!(messages(&app, "manual", "").await.is_empty());
    assert_eq!(get_group(&app, "schedules").await["unsent_count"], 2);

    // Fetched, each message is its data beside its id and the event's timestamp.
    let batch = fetch(&app, "schedules", None).await;
    let fetched = batch["messages"].as_array().unwrap();
    assert_eq!(fetched.len(), 2, "{batch}");
    for (message, (id, data, timestamp)) in fetched.iter().zip(&expected_fetch) {
        assert_message_shape(message, *id, data);
        assert_eq!(time(&message["datetime"]), *timestamp, "{message}");
    }
}

async fn an_admin_adds_a_message_by_hand(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    create_group(&app, poll_group("records")).await;
    let before = Utc::now() - chrono::Duration::seconds(1);
    let data = json!({"kind": "note", "n": 1, "nested": {"list": [1, "two"]}});
    let created = app
        .post(
            &format!("{}messages/", group_path("records")),
            json!({ "data": data }),
        )
        .await
        .expect(201)
        .json();
    let id = created["id"].as_i64().expect("id");
    assert_eq!(created["group"], "records");
    assert_eq!(created["data"], data);
    assert_eq!(created["manual_created_by"], ADMIN);
    assert!(created["event_id"].is_null(), "{created}");
    assert!(created["sent_at"].is_null(), "{created}");
    assert!(time(&created["created_at"]) >= before);

    let shown = message(&app, "records", id).await;
    assert_eq!(shown["id"], id);
    assert_eq!(shown["data"], data);
    assert_eq!(shown["manual_created_by"], ADMIN);
    assert!(shown["audit"].is_array(), "{shown}");
    let listed = messages(&app, "records", "").await;
    assert_eq!(ids_of(&listed), [id]);
    assert_eq!(listed[0]["manual_created_by"], ADMIN);
    assert_eq!(get_group(&app, "records").await["unsent_count"], 1);

    let batch = fetch(&app, "records", None).await;
    assert_message_shape(&batch["messages"][0], id, &data);
    assert_eq!(
        time(&batch["messages"][0]["datetime"]),
        time(&created["created_at"])
    );
}

// ---- unsend ----

async fn an_unsent_message_comes_back_and_its_audit_trail_says_who(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    create_group(&app, poll_group("records")).await;
    let ids = add_messages(&app, "records", 3).await;
    let batch = fetch(&app, "records", Some(2)).await;
    assert_eq!(batch_ids(&batch), [ids[0], ids[1]]);
    assert_eq!(
        counts(&mark(&app, "records", &token_of(&batch)).await),
        (2, 1)
    );

    let audit = |message: &Value| -> Vec<Value> {
        message["audit"]
            .as_array()
            .unwrap_or_else(|| panic!("audit: {message}"))
            .clone()
    };

    // A sent message made unsent.
    let shown = message(&app, "records", ids[0]).await;
    time(&shown["sent_at"]);
    let before = audit(&shown);
    unsend(&app, "records", ids[0]).await;
    let shown = message(&app, "records", ids[0]).await;
    assert!(shown["sent_at"].is_null(), "{shown}");
    let added: Vec<Value> = audit(&shown)
        .into_iter()
        .filter(|entry| !before.contains(entry))
        .collect();
    assert_eq!(added.len(), 1, "one audit entry: {shown}");
    let entry = added[0].to_string();
    assert!(entry.contains(ADMIN), "who: {entry}");
    assert!(entry.to_lowercase().contains("unsen"), "what: {entry}");

    // A waiting message: nothing changes, nothing is recorded.
    let waiting_before = message(&app, "records", ids[2]).await;
    unsend(&app, "records", ids[2]).await;
    assert_eq!(message(&app, "records", ids[2]).await, waiting_before);

    assert_eq!(waiting(&app, "records").await, [ids[0], ids[2]]);
    let again = fetch(&app, "records", None).await;
    assert_eq!(batch_ids(&again), [ids[0], ids[2]], "it goes again");
    assert_eq!(
        counts(&mark(&app, "records", &token_of(&again)).await),
        (2, 0)
    );
    assert_eq!(sent(&app, "records").await, ids);
}
