//! SQL for the send rate shared by every process on the database: a token bucket per limited
//! peer, refilled on the database's clock (migration 0015).

use super::{on_conn, Conn, Result};

/// What one take of tokens gave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grant {
    /// Whole tokens granted (at most what was asked for).
    pub granted: i64,
    /// Tokens left in the bucket after the grant (a fraction of one when the bucket ran dry).
    pub left: f64,
}

/// The bucket's tokens after a refill to the take's time: `$2` tokens per second since the
/// last refill, at most `$3`.
macro_rules! refilled {
    ($least:literal, $greatest:literal) => {
        concat!(
            $least,
            "($3, send_rate.tokens + $2 * ",
            $greatest,
            "(0, excluded.refilled_at - send_rate.refilled_at))"
        )
    };
}

/// The one statement of a take, for an engine's clock `$now` (seconds since the Unix epoch,
/// with fractions), rounding down (`$floor` … `$floor_end` around a non-negative number) and
/// two-argument min and max. `$1` the bucket, `$2` tokens per second, `$3` the burst (most
/// tokens the bucket holds), `$4` the tokens wanted. A new bucket starts empty.
///
/// The clock is read once, into the proposed row (`excluded.refilled_at`), which may be before
/// a wait for the row's lock. That is harmless: `refilled_at` only moves forward and a refill
/// counts only time after it, so a take that read the clock before the take it waited for
/// refills nothing, and no stretch of time is counted twice or lost. Every `set` expression
/// reads the row as it was before the update, so the refill is written out where it is used.
macro_rules! take_sql {
    ($now:literal, $floor:literal, $floor_end:literal, $least:literal, $greatest:literal) => {
        concat!(
            "insert into send_rate (name, tokens, refilled_at, granted) values ($1, 0, ",
            $now,
            ", 0) on conflict (name) do update set tokens = ",
            refilled!($least, $greatest),
            " - ",
            $least,
            "($4, ",
            $floor,
            refilled!($least, $greatest),
            $floor_end,
            "), granted = ",
            $least,
            "($4, ",
            $floor,
            refilled!($least, $greatest),
            $floor_end,
            "), refilled_at = ",
            $greatest,
            "(send_rate.refilled_at, excluded.refilled_at) returning granted, tokens"
        )
    };
}

const TAKE_POSTGRES: &str = take_sql!(
    "cast(extract(epoch from clock_timestamp()) as double precision)",
    "floor(",
    ")",
    "least",
    "greatest"
);

/// SQLite's clock has milliseconds; a cast to integer rounds a non-negative number down.
const TAKE_SQLITE: &str = take_sql!(
    "((julianday('now') - 2440587.5) * 86400.0)",
    "cast(",
    " as integer)",
    "min",
    "max"
);

/// Takes up to `want` tokens from the bucket `name`, after refilling it at `rate` tokens per
/// second for the database time since its last refill, capped at `burst`.
pub async fn take(conn: Conn<'_>, name: &str, rate: f64, burst: f64, want: i64) -> Result<Grant> {
    let sql = match conn {
        Conn::Postgres(_) => TAKE_POSTGRES,
        Conn::Sqlite(_) => TAKE_SQLITE,
    };
    let (granted, left): (i64, f64) = on_conn!(conn, c => sqlx::query_as(sql)
        .bind(name)
        .bind(rate)
        .bind(burst)
        .bind(want)
        .fetch_one(&mut *c)
        .await?);
    Ok(Grant { granted, left })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Db, PoolSettings};
    use std::time::Duration;

    /// A take after a few milliseconds (SQLite's clock has milliseconds: two statements in
    /// the same one would refill nothing).
    async fn take_later(db: &Db, name: &str, rate: f64, burst: f64, want: i64) -> Grant {
        tokio::time::sleep(Duration::from_millis(3)).await;
        let mut conn = db.acquire().await.unwrap();
        take(conn.conn(), name, rate, burst, want).await.unwrap()
    }

    #[tokio::test]
    async fn a_take_refills_caps_at_the_burst_grants_whole_tokens_and_keeps_the_rest() {
        let settings = PoolSettings {
            max_connections: 1,
            acquire_timeout: Duration::from_secs(5),
        };
        let db = Db::connect("sqlite::memory:", &settings).await.unwrap();
        db.migrate().await.unwrap();
        let grant = |granted, left| Grant { granted, left };
        // A new bucket starts empty; a fast rate then fills it to the burst at once.
        assert_eq!(take_later(&db, "a", 1e9, 5.0, 3).await, grant(0, 0.0));
        assert_eq!(take_later(&db, "a", 1e9, 5.0, 3).await, grant(3, 2.0));
        assert_eq!(take_later(&db, "a", 1e9, 5.0, 10).await, grant(5, 0.0));
        // Whole tokens only: the half stays in the bucket.
        assert_eq!(take_later(&db, "a", 1e9, 2.5, 10).await, grant(2, 0.5));
        // No rate, no refill: only what was left.
        assert_eq!(take_later(&db, "b", 0.0, 5.0, 1).await, grant(0, 0.0));
        assert_eq!(take_later(&db, "b", 0.0, 5.0, 1).await, grant(0, 0.0));
        // A slow rate refills by the elapsed time: 1 token a second, not one yet.
        let slow = take_later(&db, "c", 1.0, 5.0, 1).await;
        let slow = take_later(&db, "c", 1.0, 5.0, 1).await.left - slow.left;
        assert!(slow > 0.0 && slow < 0.5, "{slow}");
    }
}
