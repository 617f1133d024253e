//! SQL for the admin web UI: passwords, sessions, sign-in attempts, and the read-only summaries
//! its pages show (dashboard counts, a subscription's events).

use chrono::{DateTime, Utc};

use super::{on_conn, Conn, Result};
use crate::model::auth::User;

pub async fn set_password_hash(conn: Conn<'_>, user_id: i64, hash: Option<&str>) -> Result<()> {
    const SQL: &str = "update app_user set password_hash = $2 where id = $1";
    on_conn!(conn, c => sqlx::query(SQL).bind(user_id).bind(hash).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// The user with this email and their password hash, if they have one.
pub async fn user_with_password(
    conn: Conn<'_>,
    email: &str,
) -> Result<Option<(User, Option<String>)>> {
    const USER: &str = "select * from app_user where email = $1";
    const HASH: &str = "select password_hash from app_user where email = $1";
    Ok(on_conn!(conn, c => {
        let user: Option<User> = sqlx::query_as(USER).bind(email).fetch_optional(&mut *c).await?;
        match user {
            None => None,
            Some(user) => {
                let hash: Option<String> = sqlx::query_scalar(HASH).bind(email).fetch_one(&mut *c).await?;
                Some((user, hash))
            }
        }
    }))
}

/// The id and user of an unrevoked token.
pub async fn token_owner(conn: Conn<'_>, token_hash: &str) -> Result<Option<(i64, i64)>> {
    const SQL: &str =
        "select id, user_id from api_token where token_hash = $1 and revoked_at is null";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL).bind(token_hash).fetch_optional(&mut *c).await)?)
}

/// A live session's user, as read on every admin request.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub user_id: i64,
    pub email: String,
    pub csrf_token: String,
}

pub async fn insert_session(
    conn: Conn<'_>,
    id_hash: &str,
    user_id: i64,
    token_id: Option<i64>,
    csrf_token: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    const SQL: &str = "insert into admin_session (id_hash, user_id, token_id, csrf_token, created_at, last_seen_at) \
        values ($1, $2, $3, $4, $5, $5)";
    on_conn!(conn, c => sqlx::query(SQL).bind(id_hash).bind(user_id).bind(token_id).bind(csrf_token).bind(now)
        .execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// The session, if it was seen since `idle_since` and its user is still an active admin (and
/// the token it was started with, if any, is unrevoked).
pub async fn live_session(
    conn: Conn<'_>,
    id_hash: &str,
    idle_since: DateTime<Utc>,
) -> Result<Option<SessionRow>> {
    const SQL: &str = "select s.user_id, u.email, s.csrf_token from admin_session s \
        join app_user u on u.id = s.user_id \
        left join api_token t on t.id = s.token_id \
        where s.id_hash = $1 and s.last_seen_at >= $2 and u.is_active and u.is_admin \
        and (s.token_id is null or t.revoked_at is null)";
    Ok(
        on_conn!(conn, c => sqlx::query_as(SQL).bind(id_hash).bind(idle_since).fetch_optional(&mut *c).await)?,
    )
}

pub async fn touch_session(conn: Conn<'_>, id_hash: &str, now: DateTime<Utc>) -> Result<()> {
    const SQL: &str = "update admin_session set last_seen_at = $2 where id_hash = $1";
    on_conn!(conn, c => sqlx::query(SQL).bind(id_hash).bind(now).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn delete_session(conn: Conn<'_>, id_hash: &str) -> Result<()> {
    const SQL: &str = "delete from admin_session where id_hash = $1";
    on_conn!(conn, c => sqlx::query(SQL).bind(id_hash).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Deletes sessions idle since before `before`; returns how many.
pub async fn delete_idle_sessions(conn: Conn<'_>, before: DateTime<Utc>) -> Result<u64> {
    const SQL: &str = "delete from admin_session where last_seen_at < $1";
    Ok(
        on_conn!(conn, c => sqlx::query(SQL).bind(before).execute(&mut *c).await.map(|r| r.rows_affected()))?,
    )
}

pub async fn record_attempt(
    conn: Conn<'_>,
    email: &str,
    address: &str,
    succeeded: bool,
    now: DateTime<Utc>,
) -> Result<()> {
    const SQL: &str = "insert into admin_login_attempt (email, address, succeeded, attempted_at) \
        values ($1, $2, $3, $4)";
    on_conn!(conn, c => sqlx::query(SQL).bind(email).bind(address).bind(succeeded).bind(now)
        .execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Failed attempts since `since`: for this email, and from this address.
pub async fn failed_attempts(
    conn: Conn<'_>,
    email: &str,
    address: &str,
    since: DateTime<Utc>,
) -> Result<(i64, i64)> {
    const BY_EMAIL: &str = "select count(*) from admin_login_attempt \
        where email = $1 and not succeeded and attempted_at >= $2";
    const BY_ADDRESS: &str = "select count(*) from admin_login_attempt \
        where address = $1 and not succeeded and attempted_at >= $2";
    Ok(on_conn!(conn, c => {
        let email: i64 = sqlx::query_scalar(BY_EMAIL).bind(email).bind(since).fetch_one(&mut *c).await?;
        let address: i64 = sqlx::query_scalar(BY_ADDRESS).bind(address).bind(since).fetch_one(&mut *c).await?;
        (email, address)
    }))
}

pub async fn delete_attempts_before(conn: Conn<'_>, before: DateTime<Utc>) -> Result<u64> {
    const SQL: &str = "delete from admin_login_attempt where attempted_at < $1";
    Ok(
        on_conn!(conn, c => sqlx::query(SQL).bind(before).execute(&mut *c).await.map(|r| r.rows_affected()))?,
    )
}

// ---- dashboard ----

/// `(message set id, short name, active subscriptions)` for every set.
pub async fn active_subscriptions_per_set(conn: Conn<'_>) -> Result<Vec<(i64, String, i64)>> {
    const SQL: &str = "select m.id, m.short_name, \
        (select count(*) from subscription s where s.message_set_id = m.id and s.active and not s.completed) \
        from message_set m order by m.short_name, m.id";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL).fetch_all(&mut *c).await)?)
}

/// How many events of the type happened since `since`.
pub async fn count_events_since(
    conn: Conn<'_>,
    event_type: &str,
    since: DateTime<Utc>,
) -> Result<i64> {
    const SQL: &str = "select count(*) from event where type = $1 and occurred_at >= $2";
    Ok(
        on_conn!(conn, c => sqlx::query_scalar(SQL).bind(event_type).bind(since).fetch_one(&mut *c).await)?,
    )
}

/// `(schedule id, latest minute fired)` per schedule, never-fired ones with `None`.
pub async fn last_tick_per_schedule(conn: Conn<'_>) -> Result<Vec<(i64, Option<DateTime<Utc>>)>> {
    const SQL: &str =
        "select s.id, (select max(t.minute) from schedule_tick t where t.schedule_id = s.id) \
        from schedule s order by s.id";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL).fetch_all(&mut *c).await)?)
}

// ---- lists with search ----

/// Message sets whose short name or label contains `search` (any case), by short name.
pub async fn search_message_sets(
    conn: Conn<'_>,
    search: &str,
    slice: super::Slice,
) -> Result<super::Page<crate::model::content::MessageSet>> {
    const WHERE: &str =
        "where lower(short_name) like $1 escape '\\' or lower(label) like $1 escape '\\'";
    let count_sql = format!("select count(*) from message_set {WHERE}");
    let rows_sql =
        format!("select * from message_set {WHERE} order by short_name, id limit $2 offset $3");
    let pattern = format!("%{}%", like_escape(&search.to_lowercase()));
    Ok(on_conn!(conn, c => {
        let count: i64 = sqlx::query_scalar(&count_sql).bind(&pattern).fetch_one(&mut *c).await?;
        let rows = sqlx::query_as(&rows_sql).bind(&pattern).bind(slice.limit).bind(slice.offset)
            .fetch_all(&mut *c).await?;
        super::Page { count, rows }
    }))
}

/// The text with `%`, `_` and `\` escaped for `like … escape '\'`, so that they match themselves.
pub fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
