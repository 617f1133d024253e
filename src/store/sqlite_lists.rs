//! A batch's rows as one JSON array parameter, read on SQLite with `json_each`.
//!
//! A statement built with one placeholder a row has a different text for each batch size, so a
//! send committer's batches of 1 to 128 rows prepared their statements again nearly every time
//! (a connection caches 16) and planned long `VALUES` lists. With the rows in one parameter the
//! text is the same for every size and stays prepared, as PostgreSQL's `unnest` of arrays does.
//! In the SQL, `value` is each element of the array; `value ->> n` the n-th field of a row.
//! UUIDs go as hex and come back with `unhex(…)`: sqlx stores them as 16-byte blobs.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use uuid::Uuid;

/// `[1,2,3]`.
pub(crate) fn ints(values: &[i64]) -> String {
    serde_json::to_string(values).expect("integers serialize")
}

/// `["<32 hex digits>", …]`: read with `unhex(value)`.
pub(crate) fn uuids(ids: &[Uuid]) -> String {
    let hex: Vec<String> = ids.iter().map(|id| hex(*id)).collect();
    serde_json::to_string(&hex).expect("strings serialize")
}

/// A UUID as a row field: read with `unhex(value ->> n)`.
pub(crate) fn hex(id: Uuid) -> String {
    id.simple().to_string()
}

/// A time as a row field, in the text sqlx binds a `DateTime<Utc>` as on SQLite (so that
/// stored times compare and decode as every other).
pub(crate) fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// Rows as arrays (tuples serialize as arrays): `[[…], […]]`.
pub(crate) fn rows<T: Serialize>(rows: &[T]) -> String {
    serde_json::to_string(rows).expect("rows of plain values serialize")
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::{Connection, SqliteConnection};

    /// What goes through `json_each` is stored as what sqlx binds directly: the same blob for a
    /// UUID, the same text for a time, NULL for `None`.
    #[tokio::test]
    async fn rows_read_with_json_each_store_what_a_bound_value_stores() {
        let mut db = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        sqlx::query("create table t (id blob, at text, n integer, note text)")
            .execute(&mut db)
            .await
            .unwrap();
        let id = Uuid::new_v4();
        let at = Utc::now();
        sqlx::query("insert into t values ($1, $2, 7, null)")
            .bind(id)
            .bind(at)
            .execute(&mut db)
            .await
            .unwrap();
        let row: Vec<(String, String, i64, Option<String>)> = vec![(hex(id), time(at), 7, None)];
        sqlx::query(
            "insert into t select unhex(value ->> 0), value ->> 1, value ->> 2, value ->> 3 \
             from json_each($1)",
        )
        .bind(rows(&row))
        .execute(&mut db)
        .await
        .unwrap();
        let distinct: i64 = sqlx::query_scalar(
            "select count(*) from (select distinct id, at, n, note from t where id in \
             (select unhex(value) from json_each($1)))",
        )
        .bind(uuids(&[id]))
        .fetch_one(&mut db)
        .await
        .unwrap();
        assert_eq!(distinct, 1, "both rows are the same row");
        let back: (Uuid, DateTime<Utc>) = sqlx::query_as("select id, at from t limit 1 offset 1")
            .fetch_one(&mut db)
            .await
            .unwrap();
        assert_eq!(back, (id, at));
        assert_eq!(ints(&[1, 2]), "[1,2]");
    }
}
