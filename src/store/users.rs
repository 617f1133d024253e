//! SQL for users and API tokens.

use chrono::{DateTime, Utc};

use super::{on_conn, Conn, Result};
use crate::model::auth::{Caller, TokenInfo, User};

/// Creates the user, or returns the existing one with that email (and whether it was created).
pub async fn get_or_create_user(
    conn: Conn<'_>,
    email: &str,
    is_admin: bool,
    now: DateTime<Utc>,
) -> Result<(User, bool)> {
    const INSERT: &str = "insert into app_user (email, is_admin, is_active, created_at) \
        values ($1, $2, true, $3) on conflict (email) do nothing returning *";
    const SELECT: &str = "select * from app_user where email = $1";
    Ok(on_conn!(conn, c => {
        let created: Option<User> = sqlx::query_as(INSERT).bind(email).bind(is_admin).bind(now)
            .fetch_optional(&mut *c).await?;
        match created {
            Some(user) => (user, true),
            None => (sqlx::query_as(SELECT).bind(email).fetch_one(&mut *c).await?, false),
        }
    }))
}

pub async fn find_user(conn: Conn<'_>, email: &str) -> Result<Option<User>> {
    const SQL: &str = "select * from app_user where email = $1";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL).bind(email).fetch_optional(&mut *c).await)?)
}

pub async fn set_admin(conn: Conn<'_>, user_id: i64, is_admin: bool) -> Result<()> {
    const SQL: &str = "update app_user set is_admin = $2 where id = $1";
    on_conn!(conn, c => sqlx::query(SQL).bind(user_id).bind(is_admin).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn list_users(conn: Conn<'_>) -> Result<Vec<User>> {
    const SQL: &str = "select * from app_user order by id";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL).fetch_all(&mut *c).await)?)
}

pub async fn count_users(conn: Conn<'_>) -> Result<i64> {
    const SQL: &str = "select count(*) from app_user";
    Ok(on_conn!(conn, c => sqlx::query_scalar(SQL).fetch_one(&mut *c).await)?)
}

pub async fn insert_token(
    conn: Conn<'_>,
    user_id: i64,
    token_hash: &str,
    prefix: &str,
    scope: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    const SQL: &str = "insert into api_token (user_id, token_hash, prefix, scope, created_at) \
        values ($1, $2, $3, $4, $5)";
    on_conn!(conn, c => sqlx::query(SQL).bind(user_id).bind(token_hash).bind(prefix).bind(scope).bind(now).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// The user behind an unrevoked token, if any.
pub async fn caller_for_token(conn: Conn<'_>, token_hash: &str) -> Result<Option<Caller>> {
    const SQL: &str =
        "select u.id as user_id, u.email, u.is_admin, u.is_active, t.scope from api_token t \
        join app_user u on u.id = t.user_id where t.token_hash = $1 and t.revoked_at is null";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL).bind(token_hash).fetch_optional(&mut *c).await)?)
}

pub async fn list_tokens(conn: Conn<'_>) -> Result<Vec<TokenInfo>> {
    const SQL: &str =
        "select t.id, t.prefix, u.email, t.created_at, t.revoked_at from api_token t \
        join app_user u on u.id = t.user_id order by t.id";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL).fetch_all(&mut *c).await)?)
}

/// Revokes the unrevoked tokens whose prefix is `prefix`; returns how many.
pub async fn revoke_tokens_by_prefix(
    conn: Conn<'_>,
    prefix: &str,
    now: DateTime<Utc>,
) -> Result<u64> {
    const SQL: &str =
        "update api_token set revoked_at = $2 where prefix = $1 and revoked_at is null";
    Ok(
        on_conn!(conn, c => sqlx::query(SQL).bind(prefix).bind(now).execute(&mut *c).await.map(|r| r.rows_affected()))?,
    )
}

pub async fn revoke_token_by_hash(
    conn: Conn<'_>,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<u64> {
    const SQL: &str =
        "update api_token set revoked_at = $2 where token_hash = $1 and revoked_at is null";
    Ok(
        on_conn!(conn, c => sqlx::query(SQL).bind(token_hash).bind(now).execute(&mut *c).await.map(|r| r.rows_affected()))?,
    )
}
