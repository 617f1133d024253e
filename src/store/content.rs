//! SQL for schedules, message sets, messages and binary content.

use chrono::{DateTime, Utc};
use sqlx::types::Json;

use super::filter::{count_and_page, Condition};
use super::{on_conn, Conn, Page, Result, Slice};
use crate::model::content::{
    BinaryContent, Message, MessageFields, MessageSet, MessageSetFields, Schedule, ScheduleFields,
    StoredFile,
};

/// The tables a content id can point into, for existence checks on references.
#[derive(Debug, Clone, Copy)]
pub enum Table {
    Schedule,
    MessageSet,
    BinaryContent,
}

impl Table {
    fn exists_sql(self) -> &'static str {
        match self {
            Table::Schedule => "select exists(select 1 from schedule where id = $1)",
            Table::MessageSet => "select exists(select 1 from message_set where id = $1)",
            Table::BinaryContent => "select exists(select 1 from binary_content where id = $1)",
        }
    }
}

pub async fn exists(conn: Conn<'_>, table: Table, id: i64) -> Result<bool> {
    let sql = table.exists_sql();
    Ok(on_conn!(conn, c => sqlx::query_scalar::<_, bool>(sql).bind(id).fetch_one(&mut *c).await)?)
}

// ---- schedules ----

pub async fn insert_schedule(
    conn: Conn<'_>,
    f: &ScheduleFields,
    now: DateTime<Utc>,
) -> Result<Schedule> {
    const SQL: &str = "insert into schedule \
        (minute, hour, day_of_week, day_of_month, month_of_year, created_at, updated_at, timezone) \
        values ($1, $2, $3, $4, $5, $6, $6, $7) returning *";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL)
        .bind(&f.minute).bind(&f.hour).bind(&f.day_of_week).bind(&f.day_of_month)
        .bind(&f.month_of_year).bind(now).bind(&f.timezone)
        .fetch_one(&mut *c).await)?)
}

pub async fn update_schedule(
    conn: Conn<'_>,
    id: i64,
    f: &ScheduleFields,
    now: DateTime<Utc>,
) -> Result<Schedule> {
    const SQL: &str = "update schedule set minute = $2, hour = $3, day_of_week = $4, \
        day_of_month = $5, month_of_year = $6, updated_at = $7, timezone = $8 where id = $1 returning *";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL)
        .bind(id).bind(&f.minute).bind(&f.hour).bind(&f.day_of_week).bind(&f.day_of_month)
        .bind(&f.month_of_year).bind(now).bind(&f.timezone)
        .fetch_one(&mut *c).await)?)
}

pub async fn get_schedule(conn: Conn<'_>, id: i64) -> Result<Option<Schedule>> {
    const SQL: &str = "select * from schedule where id = $1";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL).bind(id).fetch_optional(&mut *c).await)?)
}

pub async fn list_schedules(conn: Conn<'_>, slice: Slice) -> Result<Page<Schedule>> {
    count_and_page(conn, "schedule", &[], slice).await
}

pub async fn delete_schedule(conn: Conn<'_>, id: i64) -> Result<bool> {
    const SQL: &str = "delete from schedule where id = $1";
    let done = on_conn!(conn, c => sqlx::query(SQL).bind(id).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(done > 0)
}

pub async fn count_message_sets_on_schedule(conn: Conn<'_>, schedule_id: i64) -> Result<i64> {
    const SQL: &str = "select count(*) from message_set where default_schedule_id = $1";
    Ok(on_conn!(conn, c => sqlx::query_scalar(SQL).bind(schedule_id).fetch_one(&mut *c).await)?)
}

// ---- message sets ----

pub async fn insert_message_set(
    conn: Conn<'_>,
    f: &MessageSetFields,
    now: DateTime<Utc>,
) -> Result<MessageSet> {
    const SQL: &str = "insert into message_set \
        (short_name, label, notes, channel, next_set_id, default_schedule_id, content_type, created_at, updated_at, \
        send_window_start, send_window_end) \
        values ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10) returning *";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL)
        .bind(&f.short_name).bind(&f.label).bind(&f.notes).bind(&f.channel)
        .bind(f.next_set_id).bind(f.default_schedule_id).bind(&f.content_type).bind(now)
        .bind(&f.send_window_start).bind(&f.send_window_end)
        .fetch_one(&mut *c).await)?)
}

pub async fn update_message_set(
    conn: Conn<'_>,
    id: i64,
    f: &MessageSetFields,
    now: DateTime<Utc>,
) -> Result<MessageSet> {
    const SQL: &str =
        "update message_set set short_name = $2, label = $3, notes = $4, channel = $5, \
        next_set_id = $6, default_schedule_id = $7, content_type = $8, updated_at = $9, \
        send_window_start = $10, send_window_end = $11 \
        where id = $1 returning *";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL)
        .bind(id).bind(&f.short_name).bind(&f.label).bind(&f.notes).bind(&f.channel)
        .bind(f.next_set_id).bind(f.default_schedule_id).bind(&f.content_type).bind(now)
        .bind(&f.send_window_start).bind(&f.send_window_end)
        .fetch_one(&mut *c).await)?)
}

pub async fn get_message_set(conn: Conn<'_>, id: i64) -> Result<Option<MessageSet>> {
    const SQL: &str = "select * from message_set where id = $1";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL).bind(id).fetch_optional(&mut *c).await)?)
}

pub async fn list_message_sets(
    conn: Conn<'_>,
    filters: &[Condition],
    slice: Slice,
) -> Result<Page<MessageSet>> {
    count_and_page(conn, "message_set", filters, slice).await
}

pub async fn delete_message_set(conn: Conn<'_>, id: i64) -> Result<bool> {
    const SQL: &str = "delete from message_set where id = $1";
    let done = on_conn!(conn, c => sqlx::query(SQL).bind(id).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(done > 0)
}

pub async fn count_messages_in_set(conn: Conn<'_>, message_set_id: i64) -> Result<i64> {
    const SQL: &str = "select count(*) from message where message_set_id = $1";
    Ok(on_conn!(conn, c => sqlx::query_scalar(SQL).bind(message_set_id).fetch_one(&mut *c).await)?)
}

/// Message sets other than `message_set_id` itself that name it as their `next_set`.
pub async fn count_sets_followed_by(conn: Conn<'_>, message_set_id: i64) -> Result<i64> {
    const SQL: &str = "select count(*) from message_set where next_set_id = $1 and id <> $1";
    Ok(on_conn!(conn, c => sqlx::query_scalar(SQL).bind(message_set_id).fetch_one(&mut *c).await)?)
}

/// Every (message set, language) pair that has at least one message, ordered.
pub async fn languages_by_message_set(conn: Conn<'_>) -> Result<Vec<(i64, String)>> {
    const SQL: &str =
        "select distinct message_set_id, lang from message order by message_set_id, lang";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL).fetch_all(&mut *c).await)?)
}

pub async fn all_message_set_ids(conn: Conn<'_>) -> Result<Vec<i64>> {
    const SQL: &str = "select id from message_set order by id";
    Ok(on_conn!(conn, c => sqlx::query_scalar(SQL).fetch_all(&mut *c).await)?)
}

// ---- messages ----

pub async fn insert_message(
    conn: Conn<'_>,
    f: &MessageFields,
    now: DateTime<Utc>,
) -> Result<Message> {
    const SQL: &str = "insert into message \
        (message_set_id, sequence_number, lang, text_content, binary_content_id, metadata, created_at, updated_at) \
        values ($1, $2, $3, $4, $5, $6, $7, $7) returning *";
    let metadata = f.metadata.clone().map(Json);
    Ok(on_conn!(conn, c => sqlx::query_as(SQL)
        .bind(f.message_set_id).bind(f.sequence_number).bind(&f.lang).bind(&f.text_content)
        .bind(f.binary_content_id).bind(&metadata).bind(now)
        .fetch_one(&mut *c).await)?)
}

pub async fn update_message(
    conn: Conn<'_>,
    id: i64,
    f: &MessageFields,
    now: DateTime<Utc>,
) -> Result<Message> {
    const SQL: &str = "update message set message_set_id = $2, sequence_number = $3, lang = $4, \
        text_content = $5, binary_content_id = $6, metadata = $7, updated_at = $8 \
        where id = $1 returning *";
    let metadata = f.metadata.clone().map(Json);
    Ok(on_conn!(conn, c => sqlx::query_as(SQL)
        .bind(id).bind(f.message_set_id).bind(f.sequence_number).bind(&f.lang)
        .bind(&f.text_content).bind(f.binary_content_id).bind(&metadata).bind(now)
        .fetch_one(&mut *c).await)?)
}

pub async fn get_message(conn: Conn<'_>, id: i64) -> Result<Option<Message>> {
    const SQL: &str = "select * from message where id = $1";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL).bind(id).fetch_optional(&mut *c).await)?)
}

pub async fn list_messages(
    conn: Conn<'_>,
    filters: &[Condition],
    slice: Slice,
) -> Result<Page<Message>> {
    count_and_page(conn, "message", filters, slice).await
}

/// All messages of one set, in sending order.
pub async fn messages_of_set(conn: Conn<'_>, message_set_id: i64) -> Result<Vec<Message>> {
    const SQL: &str =
        "select * from message where message_set_id = $1 order by sequence_number, lang, id";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL).bind(message_set_id).fetch_all(&mut *c).await)?)
}

pub async fn delete_message(conn: Conn<'_>, id: i64) -> Result<bool> {
    const SQL: &str = "delete from message where id = $1";
    let done = on_conn!(conn, c => sqlx::query(SQL).bind(id).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(done > 0)
}

pub async fn count_messages_using_binary(conn: Conn<'_>, binary_content_id: i64) -> Result<i64> {
    const SQL: &str = "select count(*) from message where binary_content_id = $1";
    Ok(
        on_conn!(conn, c => sqlx::query_scalar(SQL).bind(binary_content_id).fetch_one(&mut *c).await)?,
    )
}

// ---- binary content ----

pub async fn insert_binary_content(
    conn: Conn<'_>,
    file: &StoredFile,
    now: DateTime<Utc>,
) -> Result<BinaryContent> {
    const SQL: &str =
        "insert into binary_content (path, media_type, size_bytes, created_at, updated_at) \
        values ($1, $2, $3, $4, $4) returning *";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL)
        .bind(&file.path).bind(&file.media_type).bind(file.size_bytes).bind(now)
        .fetch_one(&mut *c).await)?)
}

pub async fn update_binary_content(
    conn: Conn<'_>,
    id: i64,
    file: &StoredFile,
    now: DateTime<Utc>,
) -> Result<BinaryContent> {
    const SQL: &str =
        "update binary_content set path = $2, media_type = $3, size_bytes = $4, updated_at = $5 \
        where id = $1 returning *";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL)
        .bind(id).bind(&file.path).bind(&file.media_type).bind(file.size_bytes).bind(now)
        .fetch_one(&mut *c).await)?)
}

pub async fn get_binary_content(conn: Conn<'_>, id: i64) -> Result<Option<BinaryContent>> {
    const SQL: &str = "select * from binary_content where id = $1";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL).bind(id).fetch_optional(&mut *c).await)?)
}

pub async fn list_binary_content(conn: Conn<'_>, slice: Slice) -> Result<Page<BinaryContent>> {
    count_and_page(conn, "binary_content", &[], slice).await
}

pub async fn delete_binary_content(conn: Conn<'_>, id: i64) -> Result<bool> {
    const SQL: &str = "delete from binary_content where id = $1";
    let done = on_conn!(conn, c => sqlx::query(SQL).bind(id).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(done > 0)
}

/// The binary content rows with these ids (in any order; missing ids are skipped).
pub async fn binary_contents_by_ids(conn: Conn<'_>, ids: &[i64]) -> Result<Vec<BinaryContent>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(on_conn!(conn, c => {
        let mut qb = sqlx::QueryBuilder::new("select * from binary_content where id in (");
        let mut list = qb.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        qb.push(")");
        qb.build_query_as().fetch_all(&mut *c).await?
    }))
}
