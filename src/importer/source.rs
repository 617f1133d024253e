//! Reading the Django database: one read-only, repeatable-read snapshot, each table streamed in
//! id order, each row turned into sbm's record of it and checked against sbm's rules.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use super::schema::{self, Layout, Schema};
use crate::content::cron::{self, CronField};
use crate::content::is_language_code;
use crate::model::content::{Message, MessageSet, Schedule, CONTENT_TYPES};
use crate::model::subscriptions::{status, Subscription};

/// The source connection, inside its snapshot transaction.
pub struct Source {
    pub conn: PgConnection,
    pub schema: Schema,
}

impl Source {
    /// Connects, starts the snapshot and detects the layout. Nothing is ever written: the
    /// transaction is read-only and is rolled back when the connection closes.
    pub async fn open(url: &str) -> anyhow::Result<Source> {
        let mut conn = PgConnection::connect(url).await?;
        sqlx::query("begin isolation level repeatable read read only")
            .execute(&mut conn)
            .await?;
        let schema = schema::detect(&mut conn).await?;
        Ok(Source { conn, schema })
    }

    pub async fn count(&mut self, table: &str) -> anyhow::Result<u64> {
        let n: i64 = sqlx::query_scalar(&format!("select count(*) from {table}"))
            .fetch_one(&mut self.conn)
            .await?;
        Ok(n as u64)
    }

    /// The largest id of an integer-keyed table (0 when empty).
    pub async fn max_id(&mut self, table: &str) -> anyhow::Result<i64> {
        let n: i64 =
            sqlx::query_scalar(&format!("select coalesce(max(id), 0)::bigint from {table}"))
                .fetch_one(&mut self.conn)
                .await?;
        Ok(n)
    }

    pub async fn close(mut self) -> anyhow::Result<()> {
        sqlx::query("rollback").execute(&mut self.conn).await?;
        self.conn.close().await?;
        Ok(())
    }
}

/// A source row made into sbm's record, or the reason it cannot be; with what sbm's own
/// validation would refuse but can still serve.
pub struct Checked<T> {
    pub source_id: String,
    pub row: Result<T, String>,
    pub warnings: Vec<String>,
}

impl<T> Checked<T> {
    fn ok(source_id: impl ToString, row: T, warnings: Vec<String>) -> Self {
        Checked {
            source_id: source_id.to_string(),
            row: Ok(row),
            warnings,
        }
    }

    fn skip(source_id: impl ToString, reason: String) -> Self {
        Checked {
            source_id: source_id.to_string(),
            row: Err(reason),
            warnings: Vec::new(),
        }
    }
}

// ---- schedules ----

pub fn schedule_sql(layout: Layout) -> String {
    let scheduler_id = if layout.schedule_scheduler_id {
        "scheduler_schedule_id"
    } else {
        "null::uuid"
    };
    format!(
        "select id::bigint, minute::text, hour::text, day_of_week::text, day_of_month::text, \
         month_of_year::text, {scheduler_id} as scheduler_schedule_id \
         from contentstore_schedule order by id"
    )
}

#[derive(Debug, sqlx::FromRow)]
pub struct SourceSchedule {
    pub id: i64,
    pub minute: String,
    pub hour: String,
    pub day_of_week: String,
    pub day_of_month: String,
    pub month_of_year: String,
    pub scheduler_schedule_id: Option<Uuid>,
}

/// Django kept no timestamps for schedules: an imported schedule is created `now`.
pub fn schedule(s: &SourceSchedule, now: DateTime<Utc>) -> Checked<Schedule> {
    let fields = [
        (CronField::Minute, &s.minute),
        (CronField::Hour, &s.hour),
        (CronField::DayOfWeek, &s.day_of_week),
        (CronField::DayOfMonth, &s.day_of_month),
        (CronField::MonthOfYear, &s.month_of_year),
    ];
    let warnings = fields
        .iter()
        .filter_map(|(field, text)| {
            cron::parse(*field, text)
                .err()
                .map(|err| format!("{} {text:?}: {err}", field.name()))
        })
        .collect();
    let row = Schedule {
        id: s.id,
        minute: s.minute.clone(),
        hour: s.hour.clone(),
        day_of_week: s.day_of_week.clone(),
        day_of_month: s.day_of_month.clone(),
        month_of_year: s.month_of_year.clone(),
        // The original knew only UTC.
        timezone: "UTC".into(),
        created_at: now,
        updated_at: now,
    };
    Checked::ok(s.id, row, warnings)
}

// ---- message sets ----

pub fn message_set_sql(layout: Layout) -> String {
    let label = if layout.message_set_label {
        "label::text"
    } else {
        "''::text"
    };
    format!(
        "select id::bigint, short_name::text, {label} as label, notes, channel::text, \
         next_set_id::bigint, default_schedule_id::bigint, content_type::text, created_at, \
         updated_at, null::text as send_window_start, null::text as send_window_end \
         from contentstore_messageset order by id"
    )
}

/// The rows as sbm stores them; `known_schedules` are the imported schedule ids, `known_sets`
/// every source set id.
pub fn message_set(
    s: MessageSet,
    known_schedules: &impl Fn(i64) -> bool,
    known_sets: &impl Fn(i64) -> bool,
) -> Checked<MessageSet> {
    if !known_schedules(s.default_schedule_id) {
        return Checked::skip(
            s.id,
            format!("default schedule {} does not exist", s.default_schedule_id),
        );
    }
    if !CONTENT_TYPES.contains(&s.content_type.as_str()) {
        return Checked::skip(s.id, format!("unknown content type {:?}", s.content_type));
    }
    let mut warnings = Vec::new();
    let mut row = s;
    if let Some(next) = row.next_set_id.filter(|n| !known_sets(*n)) {
        warnings.push(format!(
            "next set {next} does not exist; imported without one"
        ));
        row.next_set_id = None;
    }
    Checked::ok(row.id, row, warnings)
}

// ---- binary content ----

pub const BINARY_CONTENT_SQL: &str = "select id::bigint, content::text as path, \
    ''::text as media_type, 0::bigint as size_bytes, created_at, updated_at \
    from contentstore_binarycontent order by id";

// ---- messages ----

pub fn message_sql(layout: Layout) -> String {
    let metadata = if layout.message_metadata {
        "metadata"
    } else {
        "null::jsonb"
    };
    format!(
        "select id::bigint, messageset_id::bigint as message_set_id, sequence_number, \
         lang::text, text_content, binary_content_id::bigint, {metadata} as metadata, \
         created_at, updated_at from contentstore_message order by id"
    )
}

pub fn message(
    m: Message,
    known_sets: &impl Fn(i64) -> bool,
    known_binaries: &impl Fn(i64) -> bool,
) -> Checked<Message> {
    if !known_sets(m.message_set_id) {
        return Checked::skip(
            m.id,
            format!("message set {} was not imported", m.message_set_id),
        );
    }
    if m.sequence_number < 1 {
        return Checked::skip(
            m.id,
            format!("sequence number {} is below 1", m.sequence_number),
        );
    }
    if let Some(binary) = m.binary_content_id.filter(|b| !known_binaries(*b)) {
        return Checked::skip(m.id, format!("binary content {binary} was not imported"));
    }
    let mut warnings = Vec::new();
    if !is_language_code(&m.lang) {
        warnings.push(format!("language {:?} is not an ISO 639-3 code", m.lang));
    }
    if m.text_content.as_deref().is_none_or(str::is_empty) && m.binary_content_id.is_none() {
        warnings.push("neither text nor binary content".to_string());
    }
    Checked::ok(m.id, m, warnings)
}

// ---- subscriptions ----

pub const SUBSCRIPTION_SQL: &str = "select id, identity::text, version, \
    messageset_id::bigint as message_set_id, next_sequence_number, initial_sequence_number, \
    lang::text, active, completed, schedule_id::bigint, process_status, metadata, created_at, \
    updated_at, created_by_id::bigint as created_by, updated_by_id::bigint as updated_by \
    from subscriptions_subscription order by id";

#[derive(Debug, sqlx::FromRow)]
pub struct SourceSubscription {
    pub id: Uuid,
    pub identity: String,
    pub version: i32,
    pub message_set_id: i64,
    pub next_sequence_number: i32,
    pub initial_sequence_number: Option<i32>,
    pub lang: String,
    pub active: bool,
    pub completed: bool,
    pub schedule_id: i64,
    pub process_status: i32,
    pub metadata: Option<Json<Value>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: Option<i64>,
    pub updated_by: Option<i64>,
}

/// What a subscription refers to, as imported.
pub struct Known<'a> {
    pub sets: &'a dyn Fn(i64) -> bool,
    pub schedules: &'a dyn Fn(i64) -> bool,
    /// The sbm user id of a Django user id.
    pub user: &'a dyn Fn(i64) -> Option<i64>,
}

pub fn subscription(s: SourceSubscription, known: &Known<'_>) -> Checked<Subscription> {
    let Ok(identity) = Uuid::parse_str(s.identity.trim()) else {
        return Checked::skip(s.id, format!("identity {:?} is not a UUID", s.identity));
    };
    if !(known.sets)(s.message_set_id) {
        return Checked::skip(
            s.id,
            format!("message set {} was not imported", s.message_set_id),
        );
    }
    if !(known.schedules)(s.schedule_id) {
        return Checked::skip(s.id, format!("schedule {} was not imported", s.schedule_id));
    }
    if s.next_sequence_number < 1 {
        return Checked::skip(
            s.id,
            format!("next sequence number {} is below 1", s.next_sequence_number),
        );
    }
    let Some(process_status) = i16::try_from(s.process_status)
        .ok()
        .filter(|p| status::ALL.contains(p))
    else {
        return Checked::skip(
            s.id,
            format!("process status {} is not one of -2..2", s.process_status),
        );
    };
    let mut warnings = Vec::new();
    if !is_language_code(&s.lang) {
        warnings.push(format!("language {:?} is not an ISO 639-3 code", s.lang));
    }
    let mut user = |id: Option<i64>, what: &str| {
        let mapped = id.and_then(known.user);
        if let (Some(id), None) = (id, mapped) {
            warnings.push(format!("{what} user {id} was not imported"));
        }
        mapped
    };
    let created_by = user(s.created_by, "created_by");
    let updated_by = user(s.updated_by, "updated_by");
    let row = Subscription {
        id: s.id,
        identity,
        version: s.version,
        message_set_id: s.message_set_id,
        next_sequence_number: s.next_sequence_number,
        initial_sequence_number: s.initial_sequence_number,
        lang: s.lang,
        active: s.active,
        completed: s.completed,
        schedule_id: s.schedule_id,
        process_status,
        metadata: s.metadata,
        created_at: s.created_at,
        updated_at: s.updated_at,
        created_by,
        updated_by,
        send_requested_at: None,
        timezone: None,
    };
    Checked::ok(s.id, row, warnings)
}

// ---- users, tokens, failed sends ----

pub const USER_SQL: &str = "select id::bigint, username::text, email::text, is_staff, \
    is_superuser, is_active, date_joined from auth_user order by id";

#[derive(Debug, sqlx::FromRow)]
pub struct SourceUser {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub is_active: bool,
    pub date_joined: DateTime<Utc>,
}

pub const TOKEN_SQL: &str =
    "select key::text, user_id::bigint, created from authtoken_token order by user_id, created";

/// A DRF token. `key` is a live credential: it is hashed at once and never printed.
#[derive(sqlx::FromRow)]
pub struct SourceToken {
    pub key: String,
    pub user_id: i64,
    pub created: DateTime<Utc>,
}

pub const SEND_FAILURE_SQL: &str = "select id::bigint, subscription_id, task_id, initiated_at, \
    reason from subscriptions_subscriptionsendfailure order by id";

#[derive(Debug, sqlx::FromRow)]
pub struct SourceSendFailure {
    pub id: i64,
    pub subscription_id: Uuid,
    pub task_id: Uuid,
    pub initiated_at: DateTime<Utc>,
    pub reason: String,
}
