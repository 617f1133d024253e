//! `sbm import django`: a Django-shaped source on PostgreSQL, built from the original package's
//! own schema (tests/fixtures/django), imported into sbm on either backend and checked through
//! sbm's HTTP API.

use sbm::importer::{self, Options};
use serde_json::json;
use sqlx::{Connection, PgConnection};

use crate::helpers::{spawn_app_with, Backend, TestApp, TestDatabase};
use crate::on_both_backends;

on_both_backends!(
    a_full_import_keeps_ids_fields_tokens_media_and_failed_sends,
    a_second_run_brings_edits_inserts_and_deletes_across,
    a_dry_run_reads_and_reports_but_writes_nothing,
    the_2017_layout_imports_too,
    a_source_of_an_unknown_schema_is_refused,
    events_are_written_only_when_asked,
    the_command_prints_the_report_and_never_a_token,
);

const HUB_TOKEN: &str = "0123456789abcdef0123456789abcdef01234567";
const ROOT_TOKEN: &str = "fedcba9876543210fedcba9876543210fedcba98";
const SENDER_TOKEN: &str = "aaaabbbbccccddddeeeeffff0000111122223333";
const S1: &str = "11111111-1111-4111-8111-111111111111";
const S2: &str = "22222222-2222-4222-8222-222222222222";
const S3: &str = "33333333-3333-4333-8333-333333333333";
const S4: &str = "44444444-4444-4444-8444-444444444444";
const IDENTITY: &str = "aaaaaaaa-0000-4000-8000-000000000001";

/// A PostgreSQL database made from a fixture, with its media directory.
struct DjangoSource {
    db: TestDatabase,
    media: tempfile::TempDir,
}

impl DjangoSource {
    async fn create(fixture: &str) -> Option<DjangoSource> {
        let db = TestDatabase::create(Backend::Postgres).await?;
        let path = format!(
            "{}/tests/fixtures/django/{fixture}",
            env!("CARGO_MANIFEST_DIR")
        );
        let ddl = std::fs::read_to_string(path).expect("fixture");
        // pg_dump empties the search path for its session: a connection of its own.
        let mut conn = PgConnection::connect(db.url()).await.unwrap();
        sqlx::raw_sql(&ddl)
            .execute(&mut conn)
            .await
            .expect("load fixture");
        conn.close().await.unwrap();
        let media = tempfile::tempdir().unwrap();
        Some(DjangoSource { db, media })
    }

    async fn exec(&self, sql: &str) {
        let mut conn = PgConnection::connect(self.db.url()).await.unwrap();
        if let Err(err) = sqlx::raw_sql(sql).execute(&mut conn).await {
            panic!("{err}: {sql}");
        }
    }

    fn options(&self, app: &TestApp) -> Options {
        Options {
            from: self.db.url().to_string(),
            media_root: Some(self.media.path().to_path_buf()),
            target_media_root: app.media_root.clone(),
            dry_run: false,
            strict: false,
            emit_events: None,
            quiet: true,
        }
    }
}

/// Users, tokens, content of every kind, subscriptions and a send failure, with some rows
/// sbm's validation refuses (a `*/5` minute, an unknown language, an identity that is not a
/// UUID, a message set whose schedule is missing).
const SEED_2019: &str = r#"
insert into auth_user (id, password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined) values
  (1, '!', true, 'root', '', '', 'Root@Hub.Example', true, true, '2018-01-01T00:00:00Z'),
  (2, '!', false, 'hub', '', '', '', false, true, '2018-01-02T00:00:00Z'),
  (3, '!', false, 'sender', '', '', 'sender@example.org', false, true, '2018-01-03T00:00:00Z');
insert into authtoken_token (key, created, user_id) values
  ('fedcba9876543210fedcba9876543210fedcba98', '2018-01-01T00:00:00Z', 1),
  ('0123456789abcdef0123456789abcdef01234567', '2018-01-02T00:00:00Z', 2),
  ('aaaabbbbccccddddeeeeffff0000111122223333', '2018-01-03T00:00:00Z', 3);
insert into contentstore_schedule (id, minute, hour, day_of_week, day_of_month, month_of_year, scheduler_schedule_id) values
  (4, '0', '8', '1,4', '*', '*', '5f9d3a52-0000-4000-8000-00000000000a'),
  (7, '*/5', '*', '*', '*', '*', null);
insert into contentstore_messageset (id, short_name, label, notes, channel, next_set_id, default_schedule_id, content_type, created_at, updated_at) values
  (3, 'baby2', 'Baby 2', null, null, null, 4, 'text', '2018-02-01T00:00:00Z', '2018-02-01T00:00:00Z'),
  (2, 'baby1', 'Baby 1', 'first set', 'WHATSAPP', 3, 4, 'text', '2018-02-01T00:00:00Z', '2018-02-02T00:00:00Z'),
  (5, 'audio', '', null, null, null, 7, 'audio', '2018-02-01T00:00:00Z', '2018-02-01T00:00:00Z');
insert into contentstore_binarycontent (id, content, created_at, updated_at) values
  (9, '20180101120000000000.mp3', '2018-03-01T00:00:00Z', '2018-03-01T00:00:00Z'),
  (10, 'gone.ogg', '2018-03-01T00:00:00Z', '2018-03-01T00:00:00Z');
insert into contentstore_message (id, sequence_number, lang, text_content, created_at, updated_at, binary_content_id, messageset_id, metadata) values
  (11, 1, 'eng_ZA', 'Hello', '2018-04-01T00:00:00Z', '2018-04-01T00:00:00Z', null, 2, '{"image": "a.png"}'),
  (12, 2, 'eng_ZA', 'Week 2', '2018-04-01T00:00:00Z', '2018-04-01T00:00:00Z', null, 2, '{}'),
  (13, 1, 'engl', 'Hi', '2018-04-01T00:00:00Z', '2018-04-01T00:00:00Z', null, 3, '{}'),
  (14, 1, 'eng_ZA', null, '2018-04-01T00:00:00Z', '2018-04-01T00:00:00Z', 9, 5, '{}');
insert into subscriptions_subscription (id, identity, version, next_sequence_number, lang, active, completed, schedule_id, process_status, metadata, created_at, updated_at, created_by_id, updated_by_id, messageset_id, initial_sequence_number) values
  ('11111111-1111-4111-8111-111111111111', 'aaaaaaaa-0000-4000-8000-000000000001', 1, 2, 'eng_ZA', true, false, 4, 0,
   '{"scheduler_schedule_id": "6a0e7c1e-0000-4000-8000-000000000001", "prepend_next_delivery": "Welcome back"}',
   '2018-05-01T00:00:00Z', '2018-05-02T00:00:00.123456Z', 2, 3, 2, 1),
  ('22222222-2222-4222-8222-222222222222', 'not-a-uuid', 1, 1, 'eng_ZA', true, false, 4, 0, null,
   '2018-05-01T00:00:00Z', '2018-05-01T00:00:00Z', null, null, 2, 1),
  ('33333333-3333-4333-8333-333333333333', 'aaaaaaaa-0000-4000-8000-000000000003', 1, 1, 'xx', false, true, 4, 2, '{}',
   '2018-05-01T00:00:00Z', '2018-05-01T00:00:00Z', 1, 1, 3, 1);
insert into subscriptions_subscriptionsendfailure (id, task_id, initiated_at, reason, subscription_id) values
  (1, 'b0b0b0b0-0000-4000-8000-000000000001', '2018-06-01T00:00:00Z', 'Message Sender said 500', '11111111-1111-4111-8111-111111111111');
-- a message set whose schedule does not exist: Django's deferred foreign keys are triggers,
-- which the replica role does not fire
set session_replication_role = replica;
insert into contentstore_messageset (id, short_name, label, notes, channel, next_set_id, default_schedule_id, content_type, created_at, updated_at) values
  (6, 'orphan', '', null, null, null, 99, 'text', '2018-02-01T00:00:00Z', '2018-02-01T00:00:00Z');
set session_replication_role = origin;
"#;

/// sbm without its worker, as during a cut-over (and on SQLite its claims every 10 ms would
/// keep the import's write transaction, in another process, waiting).
async fn target(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |c| c.no_worker = true).await
}

fn skipped(report: &importer::report::Report, table: &str) -> Vec<String> {
    let table = report.get(table).expect("table in report");
    table.skipped.iter().map(|(id, _)| id.clone()).collect()
}

fn warned(report: &importer::report::Report, table: &str) -> Vec<String> {
    let table = report.get(table).expect("table in report");
    table.warnings.iter().map(|(id, _)| id.clone()).collect()
}

async fn seeded(app: &TestApp) -> Option<DjangoSource> {
    let _ = app;
    let source = DjangoSource::create("sbm-0.13.1.sql").await?;
    source.exec(SEED_2019).await;
    std::fs::write(
        source.media.path().join("20180101120000000000.mp3"),
        b"ID3 audio",
    )
    .unwrap();
    Some(source)
}

async fn a_full_import_keeps_ids_fields_tokens_media_and_failed_sends(backend: Backend) {
    let Some(app) = target(backend).await else {
        return;
    };
    let Some(source) = seeded(&app).await else {
        return;
    };

    let report = importer::run(&app.db, &source.options(&app))
        .await
        .expect("import");

    assert!(report.verified(), "{}", report.render());
    assert!(
        report.schema_version.contains("0.13 layout"),
        "{}",
        report.schema_version
    );
    assert_eq!(skipped(&report, "subscriptions_subscription"), vec![S2]);
    assert_eq!(skipped(&report, "contentstore_messageset"), vec!["6"]);
    assert_eq!(warned(&report, "contentstore_schedule"), vec!["7"]);
    assert_eq!(warned(&report, "contentstore_message"), vec!["13"]);
    assert_eq!(warned(&report, "contentstore_binarycontent"), vec!["10"]);
    assert_eq!(warned(&report, "subscriptions_subscription"), vec![S3]);
    assert_eq!(
        report.get("subscriptions_subscription").unwrap().inserted,
        2
    );

    // content, with its ids
    let schedule = app.get("/api/v1/schedule/4/").await.expect(200).json();
    assert_eq!(
        (
            schedule["minute"].as_str(),
            schedule["day_of_week"].as_str()
        ),
        (Some("0"), Some("1,4"))
    );
    assert_eq!(
        app.get("/api/v1/schedule/7/").await.expect(200).json()["minute"],
        "*/5"
    );
    let set = app.get("/api/v1/messageset/2/").await.expect(200).json();
    assert_eq!(set["next_set"], 3);
    assert_eq!(set["label"], "Baby 1");
    assert_eq!(set["notes"], "first set");
    assert_eq!(set["channel"], "WHATSAPP");
    assert_eq!(set["default_schedule"], 4);
    app.get("/api/v1/messageset/6/").await.expect(404);
    let message = app.get("/api/v1/message/11/").await.expect(200).json();
    assert_eq!(message["text_content"], "Hello");
    assert_eq!(message["metadata"], json!({"image": "a.png"}));
    assert_eq!(
        app.get("/api/v1/message/14/").await.expect(200).json()["binary_content"],
        9
    );
    let media = app
        .client
        .get(app.url("/media/20180101120000000000.mp3"))
        .send()
        .await
        .unwrap();
    assert_eq!(media.bytes().await.unwrap().as_ref(), b"ID3 audio");

    // subscriptions, with their metadata and users
    let s1 = app
        .get(&format!("/api/v1/subscriptions/{S1}/"))
        .await
        .expect(200)
        .json();
    assert_eq!(s1["identity"], IDENTITY);
    assert_eq!(s1["messageset"], 2);
    assert_eq!(s1["next_sequence_number"], 2);
    assert_eq!(
        s1["metadata"]["scheduler_schedule_id"],
        "6a0e7c1e-0000-4000-8000-000000000001"
    );
    assert_eq!(s1["metadata"]["prepend_next_delivery"], "Welcome back");
    assert!(
        s1["updated_at"]
            .as_str()
            .unwrap()
            .starts_with("2018-05-02T00:00:00.123456"),
        "{s1}"
    );
    let hub = user_id(&app, "django-user-2@django.invalid").await;
    assert_eq!(s1["created_by"], hub);
    assert_eq!(s1["updated_by"], user_id(&app, "sender@example.org").await);
    app.get(&format!("/api/v1/subscriptions/{S2}/"))
        .await
        .expect(404);

    // tokens keep working, with the user's admin flag
    let as_user = |token: &str| {
        app.client
            .get(app.url("/api/v1/schedule/"))
            .header("Authorization", format!("Token {token}"))
    };
    assert_eq!(as_user(HUB_TOKEN).send().await.unwrap().status(), 200);
    assert_eq!(as_user(SENDER_TOKEN).send().await.unwrap().status(), 200);
    let issue = |token: &str| {
        app.client
            .post(app.url("/api/v1/user/token/"))
            .header("Authorization", format!("Token {token}"))
            .json(&json!({"email": "new@example.org"}))
    };
    assert_eq!(issue(ROOT_TOKEN).send().await.unwrap().status(), 201);
    assert_eq!(issue(HUB_TOKEN).send().await.unwrap().status(), 403);

    // the failed send is a failed task, and re-queues
    let failed = app.get("/api/v1/failed-tasks/").await.expect(200).json();
    assert_eq!(failed["count"], 1, "{failed}");
    assert_eq!(failed["results"][0]["subscription"], S1);
    assert_eq!(failed["results"][0]["task"], "send_message");
    assert_eq!(failed["results"][0]["reason"], "Message Sender said 500");
    let requeued = app
        .post("/api/v1/failed-tasks/", json!({}))
        .await
        .expect(201)
        .json();
    assert_eq!(requeued["count"], 1, "{requeued}");

    // nothing fired (the one job is the re-queued send), no events; new rows continue past
    // the imported ids
    assert_eq!(count(&app, "job").await, 1);
    assert_eq!(count(&app, "event").await, 0);
    let new_schedule = app.create_schedule().await;
    assert!(new_schedule > 7, "new schedule id {new_schedule}");
    let body = json!({"short_name": "new", "default_schedule": 4});
    let new_set = app
        .post("/api/v1/messageset/", body)
        .await
        .expect(201)
        .json()["id"]
        .as_i64()
        .unwrap();
    // past the skipped set 6 too: fixed in the source, it comes across on the next run
    assert!(new_set > 6, "new set id {new_set}");
}

async fn user_id(app: &TestApp, email: &str) -> i64 {
    let mut conn = app.db.acquire().await.unwrap();
    sbm::store::users::find_user(conn.conn(), email)
        .await
        .unwrap()
        .expect(email)
        .id
}

async fn count(app: &TestApp, table: &str) -> i64 {
    let mut conn = app.db.acquire().await.unwrap();
    sbm::store::import::count_rows(conn.conn(), table)
        .await
        .unwrap()
}

async fn a_second_run_brings_edits_inserts_and_deletes_across(backend: Backend) {
    let Some(app) = target(backend).await else {
        return;
    };
    let Some(source) = seeded(&app).await else {
        return;
    };
    let first = importer::run(&app.db, &source.options(&app)).await.unwrap();
    assert!(first.verified(), "{}", first.render());

    source
        .exec(&format!(
            "update subscriptions_subscription set next_sequence_number = 5, updated_at = now() where id = '{S1}';
             insert into subscriptions_subscription (id, identity, version, next_sequence_number, lang, active, completed, schedule_id, process_status, metadata, created_at, updated_at, created_by_id, updated_by_id, messageset_id, initial_sequence_number)
               values ('{S4}', '{IDENTITY}', 1, 1, 'eng_ZA', true, false, 4, 0, '{{}}', now(), now(), null, null, 3, 1);
             delete from subscriptions_subscription where id = '{S3}';
             delete from contentstore_message where id = 13;
             update contentstore_messageset set label = 'Baby one', updated_at = now() where id = 2;
             insert into contentstore_message (id, sequence_number, lang, text_content, created_at, updated_at, binary_content_id, messageset_id, metadata)
               values (15, 3, 'eng_ZA', 'Week 3', now(), now(), null, 2, '{{}}');
             delete from authtoken_token where user_id = 3;
             delete from subscriptions_subscriptionsendfailure;"
        ))
        .await;

    let second = importer::run(&app.db, &source.options(&app)).await.unwrap();

    assert!(second.verified(), "{}", second.render());
    let subs = second.get("subscriptions_subscription").unwrap();
    assert_eq!(
        (subs.inserted, subs.updated, subs.unchanged, subs.deleted),
        (1, 1, 0, 1),
        "{}",
        second.render()
    );
    let messages = second.get("contentstore_message").unwrap();
    assert_eq!(
        (
            messages.inserted,
            messages.updated,
            messages.unchanged,
            messages.deleted
        ),
        (1, 0, 3, 1)
    );
    assert_eq!(second.get("authtoken_token").unwrap().deleted, 1);
    assert_eq!(
        app.get(&format!("/api/v1/subscriptions/{S1}/"))
            .await
            .expect(200)
            .json()["next_sequence_number"],
        5
    );
    app.get(&format!("/api/v1/subscriptions/{S4}/"))
        .await
        .expect(200);
    app.get(&format!("/api/v1/subscriptions/{S3}/"))
        .await
        .expect(404);
    app.get("/api/v1/message/13/").await.expect(404);
    assert_eq!(
        app.get("/api/v1/message/15/").await.expect(200).json()["text_content"],
        "Week 3"
    );
    assert_eq!(
        app.get("/api/v1/messageset/2/").await.expect(200).json()["label"],
        "Baby one"
    );
    let sender = app
        .client
        .get(app.url("/api/v1/schedule/"))
        .header("Authorization", format!("Token {SENDER_TOKEN}"));
    assert_eq!(sender.send().await.unwrap().status(), 401);
    assert_eq!(
        app.get("/api/v1/failed-tasks/").await.expect(200).json()["count"],
        0
    );

    // and a third run with nothing changed writes nothing
    let third = importer::run(&app.db, &source.options(&app)).await.unwrap();
    assert!(third.verified());
    for (name, table) in &third.tables {
        if name != "auth_user" {
            assert_eq!(
                (name.as_str(), table.written(), table.deleted),
                (name.as_str(), 0, 0),
                "{}",
                third.render()
            );
        }
    }
}

async fn a_dry_run_reads_and_reports_but_writes_nothing(backend: Backend) {
    let Some(app) = target(backend).await else {
        return;
    };
    let Some(source) = seeded(&app).await else {
        return;
    };
    let options = Options {
        dry_run: true,
        ..source.options(&app)
    };

    let report = importer::run(&app.db, &options).await.unwrap();

    assert!(report.verified(), "{}", report.render());
    assert_eq!(
        report.get("subscriptions_subscription").unwrap().inserted,
        2
    );
    assert_eq!(skipped(&report, "subscriptions_subscription"), vec![S2]);
    assert_eq!(app.count("/api/v1/schedule/").await, 0);
    assert_eq!(app.count("/api/v1/subscriptions/").await, 0);
    assert_eq!(count(&app, "import_key").await, 0);
    assert_eq!(count(&app, "app_user").await, 1);
    assert!(
        std::fs::read_dir(&app.media_root)
            .map(|d| d.count())
            .unwrap_or(0)
            == 0
    );
    let hub = app
        .client
        .get(app.url("/api/v1/schedule/"))
        .header("Authorization", format!("Token {HUB_TOKEN}"));
    assert_eq!(hub.send().await.unwrap().status(), 401);
}

async fn the_2017_layout_imports_too(backend: Backend) {
    let Some(app) = target(backend).await else {
        return;
    };
    let Some(source) = DjangoSource::create("sbm-0.9.30.sql").await else {
        return;
    };
    source
        .exec(&format!(
            "insert into auth_user (id, password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined)
               values (1, '!', false, 'hub', '', '', 'hub@example.org', true, true, '2017-01-01T00:00:00Z');
             insert into authtoken_token (key, created, user_id) values ('{HUB_TOKEN}', '2017-01-01T00:00:00Z', 1);
             insert into contentstore_schedule (id, minute, hour, day_of_week, day_of_month, month_of_year) values (1, '0', '9', '1', '*', '*');
             insert into contentstore_messageset (id, short_name, notes, channel, next_set_id, default_schedule_id, content_type, created_at, updated_at)
               values (1, 'momconnect', null, null, null, 1, 'text', '2017-02-01T00:00:00Z', '2017-02-01T00:00:00Z');
             insert into contentstore_message (id, sequence_number, lang, text_content, created_at, updated_at, binary_content_id, messageset_id)
               values (1, 1, 'zul_ZA', 'Sawubona', '2017-02-01T00:00:00Z', '2017-02-01T00:00:00Z', null, 1);
             insert into subscriptions_subscription (id, identity, version, next_sequence_number, lang, active, completed, schedule_id, process_status, metadata, created_at, updated_at, created_by_id, updated_by_id, messageset_id, initial_sequence_number)
               values ('{S1}', '{IDENTITY}', 1, 1, 'zul_ZA', true, false, 1, 0, null, '2017-03-01T00:00:00Z', '2017-03-01T00:00:00Z', 1, 1, 1, 1);"
        ))
        .await;

    let report = importer::run(&app.db, &source.options(&app)).await.unwrap();

    assert!(report.verified(), "{}", report.render());
    assert!(
        report.schema_version.contains("0.9 layout"),
        "{}",
        report.schema_version
    );
    let set = app.get("/api/v1/messageset/1/").await.expect(200).json();
    assert_eq!(
        (set["short_name"].as_str(), set["label"].as_str()),
        (Some("momconnect"), Some(""))
    );
    assert_eq!(
        app.get("/api/v1/message/1/").await.expect(200).json()["text_content"],
        "Sawubona"
    );
    assert_eq!(
        app.get(&format!("/api/v1/subscriptions/{S1}/"))
            .await
            .expect(200)
            .json()["lang"],
        "zul_ZA"
    );
    let hub = app
        .client
        .post(app.url("/api/v1/user/token/"))
        .header("Authorization", format!("Token {HUB_TOKEN}"))
        .json(&json!({"email": "x@example.org"}));
    assert_eq!(hub.send().await.unwrap().status(), 201);
}

async fn a_source_of_an_unknown_schema_is_refused(backend: Backend) {
    let Some(app) = target(backend).await else {
        return;
    };
    let Some(source) = DjangoSource::create("sbm-0.13.1.sql").await else {
        return;
    };
    source.exec("drop table subscriptions_subscriptionsendfailure; alter table contentstore_message drop column lang;").await;

    let err = importer::run(&app.db, &source.options(&app))
        .await
        .unwrap_err()
        .to_string();

    assert!(
        err.contains("table subscriptions_subscriptionsendfailure"),
        "{err}"
    );
    assert!(err.contains("column contentstore_message.lang"), "{err}");
    assert_eq!(count(&app, "import_run").await, 0);

    // a layout newer than any release this importer knows
    let Some(newer) = DjangoSource::create("sbm-0.13.1.sql").await else {
        return;
    };
    newer.exec("insert into django_migrations (app, name, applied) values ('contentstore', '0012_future', now());").await;
    let err = importer::run(&app.db, &newer.options(&app))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("contentstore.0012_future"), "{err}");
}

async fn events_are_written_only_when_asked(backend: Backend) {
    let Some(app) = target(backend).await else {
        return;
    };
    let Some(source) = seeded(&app).await else {
        return;
    };
    let options = Options {
        emit_events: Some(app.address.clone()),
        ..source.options(&app)
    };

    let report = importer::run(&app.db, &options).await.unwrap();

    assert!(report.verified(), "{}", report.render());
    // 2 schedules, 3 sets, 2 files, 4 messages, 2 subscriptions
    assert_eq!(count(&app, "event").await, 13);
}

async fn sbm_import(app: &TestApp, source: &DjangoSource) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sbm"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", app.database_url())
        .env("RUST_LOG", "debug")
        .args([
            "import",
            "django",
            "--from",
            source.db.url(),
            "--media-root",
        ])
        .arg(source.media.path())
        .arg("--sbm-media-root")
        .arg(&app.media_root);
    crate::helpers::output_of(command).await
}

async fn the_command_prints_the_report_and_never_a_token(backend: Backend) {
    let Some(app) = target(backend).await else {
        return;
    };
    let Some(source) = seeded(&app).await else {
        return;
    };

    let output = sbm_import(&app, &source).await;

    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{printed}");
    assert!(printed.contains("imported and verified"), "{printed}");
    assert!(
        printed.contains("identity \"not-a-uuid\" is not a UUID"),
        "{printed}"
    );
    for token in [HUB_TOKEN, ROOT_TOKEN, SENDER_TOKEN] {
        assert!(
            !printed.contains(&token[..8]),
            "a token was printed: {printed}"
        );
    }
    let hub = app
        .client
        .get(app.url("/api/v1/schedule/"))
        .header("Authorization", format!("Token {HUB_TOKEN}"));
    assert_eq!(hub.send().await.unwrap().status(), 200);

    let Some(unknown) = DjangoSource::create("sbm-0.13.1.sql").await else {
        return;
    };
    unknown.exec("drop table authtoken_token;").await;
    let output = sbm_import(&app, &unknown).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("missing table authtoken_token"), "{stderr}");
}
