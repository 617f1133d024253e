//! SQL for the sealed columns: reading them all and replacing one value if unchanged, for
//! `sbm secrets rotate` and the secret rotation of a callback.

use uuid::Uuid;

use super::{on_conn, Conn, Result};

/// Every callback that has a secret: (id, stored secret).
pub async fn callback_secrets(conn: Conn<'_>) -> Result<Vec<(Uuid, String)>> {
    const SQL: &str = "select id, secret from callback where secret is not null order by id";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL).fetch_all(&mut *c).await)?)
}

/// Replaces a callback's stored secret if it is still `old`; whether it was replaced.
pub async fn replace_callback_secret(
    conn: Conn<'_>,
    id: Uuid,
    old: &str,
    new: &str,
) -> Result<bool> {
    const SQL: &str = "update callback set secret = $3 where id = $1 and secret = $2";
    let changed = on_conn!(conn, c => sqlx::query(SQL).bind(id).bind(old).bind(new).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(changed == 1)
}

/// Every integration group that has an auth header: (name, stored header).
pub async fn integration_auth_headers(conn: Conn<'_>) -> Result<Vec<(String, String)>> {
    const SQL: &str = "select name, auth_header from integration_group \
        where auth_header is not null order by name";
    Ok(on_conn!(conn, c => sqlx::query_as(SQL).fetch_all(&mut *c).await)?)
}

/// Replaces a group's stored auth header if it is still `old`; whether it was replaced.
pub async fn replace_integration_auth_header(
    conn: Conn<'_>,
    name: &str,
    old: &str,
    new: &str,
) -> Result<bool> {
    const SQL: &str =
        "update integration_group set auth_header = $3 where name = $1 and auth_header = $2";
    let changed = on_conn!(conn, c => sqlx::query(SQL).bind(name).bind(old).bind(new).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(changed == 1)
}

/// Gives a callback without a secret its first one; whether it had none.
pub async fn set_callback_secret_if_none(conn: Conn<'_>, id: Uuid, new: &str) -> Result<bool> {
    const SQL: &str = "update callback set secret = $2 where id = $1 and secret is null";
    let changed = on_conn!(conn, c => sqlx::query(SQL).bind(id).bind(new).execute(&mut *c).await.map(|r| r.rows_affected()))?;
    Ok(changed == 1)
}
