//! Integration groups, their topics and push schedule (docs/integrations.md). Their messages,
//! batches, errors and audit trail are in `integration_messages`, re-exported here.

use chrono::{DateTime, Utc};
use sqlx::QueryBuilder;

use super::filter::count_and_page_ordered;
use super::{on_conn, Conn, Page, Result, Slice};

pub use super::integration_messages::*;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GroupRow {
    pub name: String,
    pub method: String,
    pub title: String,
    pub description: String,
    pub lease_seconds: i32,
    pub target_url: Option<String>,
    pub auth_header: Option<String>,
    pub format: String,
    pub minute: String,
    pub hour: String,
    pub day_of_week: String,
    pub day_of_month: String,
    pub month_of_year: String,
    pub max_batch_size: i32,
    pub skip_empty: bool,
    pub instance: String,
    pub next_push_at: Option<DateTime<Utc>>,
    pub last_push_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Counts shown with a group.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct GroupCounts {
    pub unsent: i64,
    pub unacknowledged_errors: i64,
}

const GROUP_COLUMNS: &str =
    "name, method, title, description, lease_seconds, target_url, auth_header, format, \
    minute, hour, day_of_week, day_of_month, month_of_year, max_batch_size, skip_empty, instance, \
    next_push_at, last_push_at, created_at, updated_at";

/// Binds a group's columns in [`GROUP_COLUMNS`] order.
macro_rules! bind_group {
    ($q:expr, $g:expr) => {
        $q.bind(&$g.name)
            .bind(&$g.method)
            .bind(&$g.title)
            .bind(&$g.description)
            .bind($g.lease_seconds)
            .bind(&$g.target_url)
            .bind(&$g.auth_header)
            .bind(&$g.format)
            .bind(&$g.minute)
            .bind(&$g.hour)
            .bind(&$g.day_of_week)
            .bind(&$g.day_of_month)
            .bind(&$g.month_of_year)
            .bind($g.max_batch_size)
            .bind($g.skip_empty)
            .bind(&$g.instance)
            .bind($g.next_push_at)
            .bind($g.last_push_at)
            .bind($g.created_at)
            .bind($g.updated_at)
    };
}

/// Writes a group's topics (after its old ones were removed).
macro_rules! insert_topics {
    ($c:expr, $group:expr, $topics:expr) => {
        if !$topics.is_empty() {
            let mut qb = QueryBuilder::new(
                "insert into integration_group_topic (group_name, topic, topic_prefix) ",
            );
            qb.push_values($topics, |mut row, (topic, prefix)| {
                row.push_bind($group.to_string())
                    .push_bind(topic.clone())
                    .push_bind(prefix.clone());
            });
            qb.push(" on conflict do nothing");
            qb.build().execute(&mut *$c).await?;
        }
    };
}

/// Inserts the group and its topics (each with its normalised prefix); `false` if the name is
/// taken.
pub async fn insert_group(
    conn: Conn<'_>,
    g: &GroupRow,
    topics: &[(String, String)],
) -> Result<bool> {
    let sql = format!(
        "insert into integration_group ({GROUP_COLUMNS}) values \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20) \
         on conflict (name) do nothing"
    );
    Ok(on_conn!(conn, c => {
        let inserted = bind_group!(sqlx::query(&sql), g).execute(&mut *c).await?.rows_affected() > 0;
        if inserted {
            insert_topics!(c, g.name, topics);
        }
        Ok::<bool, sqlx::Error>(inserted)
    })?)
}

/// Replaces every field of the group (but its name) and its topics.
pub async fn update_group(conn: Conn<'_>, g: &GroupRow, topics: &[(String, String)]) -> Result<()> {
    const SQL: &str = "update integration_group set method = $2, title = $3, description = $4, \
        lease_seconds = $5, target_url = $6, auth_header = $7, format = $8, minute = $9, hour = $10, \
        day_of_week = $11, day_of_month = $12, month_of_year = $13, max_batch_size = $14, \
        skip_empty = $15, instance = $16, next_push_at = $17, last_push_at = $18, created_at = $19, \
        updated_at = $20 where name = $1";
    on_conn!(conn, c => {
        bind_group!(sqlx::query(SQL), g).execute(&mut *c).await?;
        sqlx::query("delete from integration_group_topic where group_name = $1")
            .bind(&g.name)
            .execute(&mut *c)
            .await?;
        insert_topics!(c, g.name, topics);
        Ok::<(), sqlx::Error>(())
    })?;
    Ok(())
}

pub async fn get_group(conn: Conn<'_>, name: &str) -> Result<Option<GroupRow>> {
    const SQL: &str = "select * from integration_group where name = $1";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL).bind(name).fetch_optional(&mut *c).await)?)
}

pub async fn list_groups(conn: Conn<'_>, slice: Slice) -> Result<Page<GroupRow>> {
    count_and_page_ordered(conn, "integration_group", &[], "name", slice).await
}

pub async fn delete_group(conn: Conn<'_>, name: &str) -> Result<bool> {
    // SQLite enforces the cascades only with foreign keys on; delete the children explicitly so
    // that both engines end in the same state.
    const CHILDREN: [&str; 5] = [
        "delete from integration_audit where message_id in (select id from integration_message where group_name = $1)",
        "delete from integration_message where group_name = $1",
        "delete from integration_batch where group_name = $1",
        "delete from integration_error where group_name = $1",
        "delete from integration_group_topic where group_name = $1",
    ];
    Ok(on_conn!(conn, c => {
        for sql in CHILDREN {
            sqlx::query(sql).bind(name).execute(&mut *c).await?;
        }
        sqlx::query("delete from integration_group where name = $1")
            .bind(name)
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected() > 0)
    })?)
}

pub async fn group_topics(conn: Conn<'_>, name: &str) -> Result<Vec<String>> {
    const SQL: &str =
        "select topic from integration_group_topic where group_name = $1 order by topic";
    Ok(on_conn!(conn, c => sqlx::query_scalar(SQL).bind(name).fetch_all(&mut *c).await)?)
}

pub async fn group_counts(conn: Conn<'_>, name: &str) -> Result<GroupCounts> {
    const SQL: &str = "select \
        (select count(*) from integration_message where group_name = $1 and sent_at is null) as unsent, \
        (select count(*) from integration_error where group_name = $1 and acknowledged_at is null) as unacknowledged_errors";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL).bind(name).fetch_one(&mut *c).await)?)
}

/// Every (group, topic prefix) that events feed.
pub async fn all_topics(conn: Conn<'_>) -> Result<Vec<(String, String)>> {
    const SQL: &str = "select group_name, topic_prefix from integration_group_topic";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL).fetch_all(&mut *c).await)?)
}

/// Send groups whose push is due.
pub async fn due_pushes(conn: Conn<'_>, now: DateTime<Utc>) -> Result<Vec<GroupRow>> {
    const SQL: &str = "select * from integration_group where method = 'send' and next_push_at <= $1 order by name";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL).bind(now).fetch_all(&mut *c).await)?)
}

/// Moves a group's next push from `due` to `next`; `false` if another process did first.
pub async fn claim_push(
    conn: Conn<'_>,
    name: &str,
    due: DateTime<Utc>,
    next: Option<DateTime<Utc>>,
) -> Result<bool> {
    const SQL: &str =
        "update integration_group set next_push_at = $3 where name = $1 and next_push_at = $2";
    Ok(
        on_conn!(conn, c => sqlx::query(SQL).bind(name).bind(due).bind(next).execute(&mut *c).await.map(|r| r.rows_affected() > 0))?,
    )
}

pub async fn note_push(conn: Conn<'_>, name: &str, now: DateTime<Utc>) -> Result<()> {
    const SQL: &str = "update integration_group set last_push_at = $2 where name = $1";
    on_conn!(conn, c => sqlx::query(SQL).bind(name).bind(now).execute(&mut *c).await.map(|_| ()))?;
    Ok(())
}

/// Waiting messages per group and unacknowledged errors, for /metrics.
pub async fn depth(conn: Conn<'_>) -> Result<(Vec<(String, i64)>, i64)> {
    const WAITING: &str = "select g.name, (select count(*) from integration_message m \
        where m.group_name = g.name and m.sent_at is null) from integration_group g order by g.name";
    const ERRORS: &str = "select count(*) from integration_error where acknowledged_at is null";
    Ok(on_conn!(conn, c => {
        let waiting = sqlx::query_as(WAITING).fetch_all(&mut *c).await?;
        let errors = sqlx::query_scalar(ERRORS).fetch_one(&mut *c).await?;
        Ok::<_, sqlx::Error>((waiting, errors))
    })?)
}
