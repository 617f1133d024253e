//! The poll API: fetch and mark of leased batches, tokens, scoped poll tokens.

use super::*;
use crate::on_both_backends;

on_both_backends!(
    fetch_and_mark_until_nothing_is_unread_sees_every_message_once,
    a_batch_never_marked_comes_back_after_its_lease,
    a_late_mark_still_marks_its_batch,
    two_concurrent_pollers_never_get_the_same_message,
    a_forged_missing_or_foreign_token_gets_400_and_marks_nothing,
    a_send_group_has_no_poll_api,
    a_scoped_poll_token_works_only_on_its_groups_fetch_and_mark,
);

// ---- poll ----

async fn fetch_and_mark_until_nothing_is_unread_sees_every_message_once(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    create_group(&app, poll_group("records")).await;
    let ids = add_messages(&app, "records", 5).await;
    let data: HashMap<i64, Value> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, json!({"n": i, "text": format!("message {i}")})))
        .collect();

    let mut seen: Vec<i64> = Vec::new();
    let mut rounds = Vec::new();
    let ways = [Via::Query, Via::Form, Via::Json];
    for round in 0.. {
        assert!(round < 10, "fetch and mark never ended: {rounds:?}");
        let batch = if round % 2 == 0 {
            fetch(&app, "records", Some(2)).await
        } else {
            fetch_by_post(&app, "records", Some(2)).await
        };
        assert_eq!(batch["version"], 0, "{batch}");
        let got = batch_ids(&batch);
        let remaining = 5 - seen.len() as i64 - got.len() as i64;
        assert_eq!(batch["unreadCount"], remaining, "{batch}");
        for message in batch["messages"].as_array().unwrap() {
            let id = message["id"].as_i64().unwrap();
            assert_message_shape(message, id, &data[&id]);
        }
        seen.extend(&got);
        let via = ways[round % 3];
        let marked = mark_at(
            &app,
            Caller::Admin,
            &mark_path("records"),
            &token_of(&batch),
            via,
        )
        .await
        .expect(200)
        .json();
        assert_eq!(
            counts(&marked),
            (got.len() as i64, remaining),
            "{via:?}: {marked}"
        );
        rounds.push(got);
        if marked["unreadCount"] == 0 {
            break;
        }
    }
    assert_eq!(
        rounds,
        [vec![ids[0], ids[1]], vec![ids[2], ids[3]], vec![ids[4]]],
        "oldest first, at most 2 a batch"
    );
    assert_eq!(seen, ids, "every message exactly once");

    let batch = fetch(&app, "records", None).await;
    assert_eq!(batch_ids(&batch), Vec::<i64>::new());
    assert_eq!(batch["unreadCount"], 0);
    assert_eq!(sent(&app, "records").await, ids);
    for message in messages(&app, "records", "").await {
        time(&message["sent_at"]);
    }
    assert_eq!(get_group(&app, "records").await["unsent_count"], 0);
}

async fn a_batch_never_marked_comes_back_after_its_lease(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    create_group(
        &app,
        merged(poll_group("records"), json!({"lease_seconds": 1})),
    )
    .await;
    let ids = add_messages(&app, "records", 3).await;

    // The poller fetches, then crashes before marking.
    let crashed = fetch(&app, "records", None).await;
    assert_eq!(batch_ids(&crashed), ids);
    assert_eq!(crashed["unreadCount"], 0);
    let meanwhile = fetch(&app, "records", None).await;
    assert_eq!(
        batch_ids(&meanwhile),
        Vec::<i64>::new(),
        "held by the first batch"
    );
    assert_eq!(
        meanwhile["unreadCount"], 3,
        "leased messages are still waiting"
    );

    leases_end(&app, "records").await;
    let again = fetch(&app, "records", None).await;
    assert_eq!(batch_ids(&again), ids, "the same messages come back");
    assert_ne!(token_of(&again), token_of(&crashed));

    assert_eq!(
        counts(&mark(&app, "records", &token_of(&again)).await),
        (3, 0)
    );
    assert_eq!(
        counts(&mark(&app, "records", &token_of(&crashed)).await),
        (0, 0),
        "the old token afterwards is harmless"
    );
    assert_eq!(
        counts(&mark(&app, "records", &token_of(&again)).await),
        (0, 0),
        "marking twice marks 0"
    );
    assert_eq!(sent(&app, "records").await, ids);
    assert!(batch_ids(&fetch(&app, "records", None).await).is_empty());
}

async fn a_late_mark_still_marks_its_batch(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    create_group(
        &app,
        merged(poll_group("records"), json!({"lease_seconds": 1})),
    )
    .await;
    let ids = add_messages(&app, "records", 2).await;
    let batch = fetch(&app, "records", None).await;
    assert_eq!(batch_ids(&batch), ids);
    leases_end(&app, "records").await;
    assert_eq!(
        counts(&mark(&app, "records", &token_of(&batch)).await),
        (2, 0)
    );
    assert_eq!(sent(&app, "records").await, ids);
    let next = fetch(&app, "records", None).await;
    assert!(batch_ids(&next).is_empty(), "{next}");
}

async fn two_concurrent_pollers_never_get_the_same_message(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    create_group(&app, poll_group("records")).await;
    let ids = add_messages(&app, "records", 20).await;
    let mut seen: Vec<i64> = Vec::new();
    for round in 0.. {
        assert!(round < 30, "polling never ended; seen {seen:?}");
        let (a, b) = tokio::join!(
            fetch(&app, "records", Some(3)),
            fetch_by_post(&app, "records", Some(3))
        );
        let (a_ids, b_ids) = (batch_ids(&a), batch_ids(&b));
        let a_set: HashSet<i64> = a_ids.iter().copied().collect();
        assert!(
            b_ids.iter().all(|id| !a_set.contains(id)),
            "both pollers got a message: {a_ids:?} {b_ids:?}"
        );
        if a_ids.is_empty() && b_ids.is_empty() {
            break;
        }
        seen.extend(&a_ids);
        seen.extend(&b_ids);
        let (ta, tb) = (token_of(&a), token_of(&b));
        let (ma, mb) = tokio::join!(mark(&app, "records", &ta), mark(&app, "records", &tb));
        assert_eq!(counts(&ma).0, a_ids.len() as i64, "{ma}");
        assert_eq!(counts(&mb).0, b_ids.len() as i64, "{mb}");
    }
    assert_eq!(sorted(seen), ids, "every message once");
    assert_eq!(sent(&app, "records").await, ids);
}

async fn a_forged_missing_or_foreign_token_gets_400_and_marks_nothing(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    create_group(&app, poll_group("records")).await;
    create_group(&app, poll_group("other")).await;
    let records = add_messages(&app, "records", 2).await;
    let other = add_messages(&app, "other", 2).await;
    let records_batch = fetch(&app, "records", None).await;
    let other_batch = fetch(&app, "other", None).await;
    let (records_token, other_token) = (token_of(&records_batch), token_of(&other_batch));

    let mut altered = records_token.clone();
    let last = altered.pop().unwrap();
    altered.push(if last == 'a' { 'b' } else { 'a' });
    for token in [forged_token(), altered, String::new()] {
        for via in [Via::Query, Via::Form, Via::Json] {
            mark_at(&app, Caller::Admin, &mark_path("records"), &token, via)
                .await
                .expect(400);
        }
    }
    // No token at all.
    app.get(&mark_path("records")).await.expect(400);
    app.call(Method::POST, &mark_path("records"), None)
        .await
        .expect(400);
    app.post(&mark_path("records"), json!({})).await.expect(400);
    // A token of another group, both ways round.
    for via in [Via::Query, Via::Form, Via::Json] {
        mark_at(
            &app,
            Caller::Admin,
            &mark_path("records"),
            &other_token,
            via,
        )
        .await
        .expect(400);
        mark_at(
            &app,
            Caller::Admin,
            &mark_path("other"),
            &records_token,
            via,
        )
        .await
        .expect(400);
    }
    mark_at(
        &app,
        Caller::Admin,
        &haplo_mark_path("records"),
        &other_token,
        Via::Form,
    )
    .await
    .expect(400);

    assert_eq!(waiting(&app, "records").await, records, "nothing marked");
    assert_eq!(waiting(&app, "other").await, other, "nothing marked");
    // The real tokens still work, each on its own group.
    assert_eq!(counts(&mark(&app, "records", &records_token).await), (2, 0));
    assert_eq!(counts(&mark(&app, "other", &other_token).await), (2, 0));
}

async fn a_send_group_has_no_poll_api(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    create_group(&app, send_group("warehouse", "https://dw.example.org/sbm")).await;
    add_message(&app, "warehouse", json!({"a": 1})).await;
    for path in [
        fetch_path("warehouse"),
        haplo_fetch_path("warehouse"),
        format!("{}?token={}", mark_path("warehouse"), forged_token()),
    ] {
        app.get(&path).await.expect(400);
    }
    app.call(Method::POST, &fetch_path("warehouse"), None)
        .await
        .expect(400);
    assert_eq!(waiting(&app, "warehouse").await.len(), 1);
}

/// Fetches with one caller and path, checks the batch is `expected`, marks it with another
/// caller, path and way of giving the token, and checks everything got marked.
async fn round_trip(
    app: &TestApp,
    (fetch_caller, fetch_path): (Caller<'_>, String),
    (mark_caller, mark_path, via): (Caller<'_>, String, Via),
    expected: &[i64],
) {
    let batch = fetch_at(app, fetch_caller, &fetch_path)
        .await
        .expect(200)
        .json();
    assert_eq!(batch_ids(&batch), expected);
    let marked = mark_at(app, mark_caller, &mark_path, &token_of(&batch), via)
        .await
        .expect(200)
        .json();
    assert_eq!(counts(&marked), (expected.len() as i64, 0));
}

async fn a_scoped_poll_token_works_only_on_its_groups_fetch_and_mark(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    create_group(&app, poll_group("records")).await;
    create_group(&app, poll_group("other")).await;
    let other = add_messages(&app, "other", 1).await;
    let created = app
        .call(
            Method::POST,
            &format!("{}tokens/", group_path("records")),
            None,
        )
        .await
        .expect(201)
        .json();
    let token = created["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_string();

    // As `Authorization: Token …` on the sbm paths.
    let first = add_messages(&app, "records", 2).await;
    let fetch_sbm = with_limit(&fetch_path("records"), Some(10));
    let token_caller = Caller::Token(&token);
    let mark_sbm = (token_caller, mark_path("records"), Via::Query);
    round_trip(&app, (token_caller, fetch_sbm), mark_sbm, &first).await;

    // As Haplo clients do: HTTP Basic with user `haplo`, on Haplo's paths.
    let second = add_messages(&app, "records", 2).await;
    let haplo = Caller::Basic("haplo", &token);
    let mark_haplo = (haplo, haplo_mark_path("records"), Via::Form);
    round_trip(
        &app,
        (haplo, haplo_fetch_path("records")),
        mark_haplo,
        &second,
    )
    .await;

    // Any user name; Basic on the sbm path, Token on Haplo's.
    let third = add_messages(&app, "records", 1).await;
    let anyone = (Caller::Basic("anyone", &token), fetch_path("records"));
    let mark_json = (token_caller, haplo_mark_path("records"), Via::Json);
    round_trip(&app, anyone, mark_json, &third).await;

    // Nothing else.
    let records = group_path("records");
    let refused: Vec<(Caller, Method, String)> = vec![
        (Caller::Token(&token), Method::GET, fetch_path("other")),
        (Caller::Token(&token), Method::POST, fetch_path("other")),
        (
            Caller::Basic("haplo", &token),
            Method::GET,
            haplo_fetch_path("other"),
        ),
        (
            Caller::Token(&token),
            Method::GET,
            format!("{}?token={}", mark_path("other"), forged_token()),
        ),
        (
            Caller::Token(&token),
            Method::GET,
            "/api/v1/schedule/".into(),
        ),
        (
            Caller::Basic("haplo", &token),
            Method::GET,
            "/api/v1/schedule/".into(),
        ),
        (Caller::Token(&token), Method::GET, GROUPS.into()),
        (Caller::Token(&token), Method::GET, records.clone()),
        (
            Caller::Token(&token),
            Method::GET,
            format!("{records}messages/"),
        ),
        (
            Caller::Token(&token),
            Method::POST,
            format!("{records}tokens/"),
        ),
        (
            Caller::Token(&token),
            Method::POST,
            format!("{records}send/"),
        ),
        (Caller::Token(&token), Method::GET, ERRORS.into()),
    ];
    for (caller, method, path) in refused {
        let reply = app.send(request(&app, caller, method.clone(), &path)).await;
        assert_eq!(reply.status.as_u16(), 403, "{method} {path}: {reply:?}");
    }
    assert_eq!(
        waiting(&app, "other").await,
        other,
        "the other group untouched"
    );
    let all = sorted([first, second, third].concat());
    assert_eq!(sent(&app, "records").await, all);
}
