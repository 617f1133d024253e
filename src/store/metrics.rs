//! SQL for the Go Metrics outbox and the figures the scheduled metrics report.

use chrono::{DateTime, Utc};

use super::{on_conn, Conn, Result};

pub async fn record(
    conn: Conn<'_>,
    names: &[String],
    value: f64,
    now: DateTime<Utc>,
) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    on_conn!(conn, c => {
        let mut qb = sqlx::QueryBuilder::new("insert into metric_outbox (name, value, created_at) ");
        qb.push_values(names, |mut row, name| {
            row.push_bind(name.clone()).push_bind(value).push_bind(now);
        });
        qb.build().execute(&mut *c).await?;
    });
    Ok(())
}

/// The oldest pending increments, up to `limit`: (id, name, value).
pub async fn pending(conn: Conn<'_>, limit: i64) -> Result<Vec<(i64, String, f64)>> {
    const SQL: &str = "select id, name, value from metric_outbox order by id limit $1";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL).bind(limit).fetch_all(&mut *c).await)?)
}

pub async fn delete_through(conn: Conn<'_>, last_id: i64) -> Result<u64> {
    const SQL: &str = "delete from metric_outbox where id <= $1";
    Ok(
        on_conn!(conn, c => sqlx::query(SQL).bind(last_id).execute(&mut *c).await.map(|r| r.rows_affected()))?,
    )
}

/// Subscription counts for the scheduled metrics.
pub struct Totals {
    pub active: i64,
    pub created: i64,
    pub broken: i64,
    pub completed: i64,
    pub incomplete: i64,
}

pub async fn totals(conn: Conn<'_>) -> Result<Totals> {
    const SQL: &str = "select \
        coalesce(sum(case when active then 1 else 0 end), 0), count(*), \
        coalesce(sum(case when process_status = -1 then 1 else 0 end), 0), \
        coalesce(sum(case when completed then 1 else 0 end), 0), \
        coalesce(sum(case when not completed then 1 else 0 end), 0) from subscription";
    let (active, created, broken, completed, incomplete): (i64, i64, i64, i64, i64) =
        on_conn!(conn, c => sqlx::query_as(SQL).fetch_one(&mut *c).await)?;
    Ok(Totals {
        active,
        created,
        broken,
        completed,
        incomplete,
    })
}

/// (message set short name, content type, language, schedule id, active subscriptions, all
/// subscriptions) per group.
pub async fn breakdown(conn: Conn<'_>) -> Result<Vec<(String, String, String, i64, i64, i64)>> {
    const SQL: &str = "select m.short_name, m.content_type, s.lang, s.schedule_id, \
        coalesce(sum(case when s.active then 1 else 0 end), 0), count(*) \
        from subscription s join message_set m on m.id = s.message_set_id \
        group by m.short_name, m.content_type, s.lang, s.schedule_id";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL).fetch_all(&mut *c).await)?)
}

pub async fn message_set_names(conn: Conn<'_>) -> Result<Vec<String>> {
    const SQL: &str = "select short_name from message_set order by short_name";
    Ok(on_conn!(conn, c => sqlx::query_scalar(SQL).fetch_all(&mut *c).await)?)
}
