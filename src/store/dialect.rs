//! The few places where PostgreSQL and SQLite need different code.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::ConnectOptions;

use super::{Backend, Db, PoolSettings, Result, Tx};

pub(super) async fn connect(url: &str, settings: &PoolSettings) -> anyhow::Result<Db> {
    Ok(match Backend::from_url(url)? {
        Backend::Postgres => {
            let options = PgConnectOptions::from_str(url)?
                .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1));
            let pool = PgPoolOptions::new()
                .test_before_acquire(false)
                .before_acquire(|c, meta| Box::pin(ping_if_idle(c, meta)))
                .max_connections(settings.max_connections)
                .acquire_timeout(settings.acquire_timeout)
                .connect_with(options)
                .await?;
            Db::Postgres(pool)
        }
        Backend::Sqlite => {
            // WAL lets readers run beside the single writer; the busy timeout makes a second
            // writer wait instead of failing at once; foreign keys are off by default in SQLite.
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
                .pragma("wal_autocheckpoint", SQLITE_CHECKPOINT_PAGES.to_string())
                .pragma(
                    "cache_size",
                    format!("-{}", sqlite_cache_kib(settings.max_connections)),
                )
                .statement_cache_capacity(SQLITE_STATEMENT_CACHE);
            let pool = SqlitePoolOptions::new()
                .test_before_acquire(false)
                .before_acquire(|c, meta| Box::pin(ping_if_idle(c, meta)))
                .max_connections(settings.max_connections)
                .acquire_timeout(settings.acquire_timeout)
                .connect_with(options)
                .await?;
            Db::Sqlite(pool)
        }
    })
}

/// WAL pages (4 KiB each) a commit may leave before it copies them back into the database file
/// and syncs it (a checkpoint). SQLite's default of 1,000 made every few dozen send batches pay
/// a checkpoint inside their commit (a 100,000-send tick's commits: 3.0 ms on average, 8.9 ms at
/// the 90th percentile); at 10,000 (a WAL of about 40 MiB) fewer checkpoints run, and a page
/// written many times between two of them is copied once (1.7 ms and 1.1 ms).
const SQLITE_CHECKPOINT_PAGES: u32 = 10_000;

/// SQLite's page cache is per connection (2 MiB each by default), so a pool of 40 held 80 MiB of
/// cached pages, most of them copies of the same pages, and a 100,000-send tick peaked at over
/// 260 MiB. Only one connection writes at a time; the readers are served well enough by the
/// operating system's file cache. The pool shares one budget instead.
const SQLITE_CACHE_BUDGET_KIB: u32 = 32 * 1024;

/// Each connection's share of [`SQLITE_CACHE_BUDGET_KIB`], from 512 KiB to 8 MiB.
fn sqlite_cache_kib(max_connections: u32) -> u32 {
    (SQLITE_CACHE_BUDGET_KIB / max_connections.max(1)).clamp(512, 8 * 1024)
}

/// Prepared statements kept per SQLite connection (sqlx keeps 100 by default). Each holds its
/// compiled program, and batched statements had a text per batch size (one placeholder a row),
/// so a full cache on each of 40 connections held some 100 MiB at 100,000 sends. The send and
/// delivery paths' batches now read one JSON parameter (`sqlite_lists`), one text whatever the
/// size; statements still built per size elsewhere (imports, lists of ids) are prepared again.
const SQLITE_STATEMENT_CACHE: usize = 16;

/// A pooled connection idle for longer than this is pinged before it is handed out.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// sqlx pings every connection it hands out (`test_before_acquire`): one more round trip per
/// request, which under load was one in two of a GET's. A connection used within the last
/// second is handed out as it is; one idle for longer (where a restarted server or a dropped
/// link shows) is still pinged, and replaced if the ping fails.
async fn ping_if_idle<C: sqlx::Connection>(
    c: &mut C,
    meta: sqlx::pool::PoolConnectionMetadata,
) -> std::result::Result<bool, sqlx::Error> {
    if meta.idle_for > PING_AFTER_IDLE {
        c.ping().await?;
    }
    Ok(true)
}

pub(super) async fn begin(db: &Db) -> Result<Tx> {
    Ok(match db {
        Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        // A deferred SQLite transaction that reads and then writes fails with SQLITE_BUSY when
        // another connection committed in between; taking the write lock up front avoids that.
        Db::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
    })
}

/// Unique constraints by name, with the column list SQLite reports for each in its error
/// message ("UNIQUE constraint failed: message_set.short_name"), because SQLite does not
/// report constraint names.
const UNIQUE_CONSTRAINTS: &[(&str, &str)] = &[
    ("app_user_email_key", "app_user.email"),
    ("api_token_hash_key", "api_token.token_hash"),
    ("message_set_short_name_key", "message_set.short_name"),
    (
        "message_set_sequence_lang_key",
        "message.message_set_id, message.sequence_number, message.lang",
    ),
];

/// The name of the unique constraint a database error reports, on either engine.
pub(super) fn unique_constraint(err: &dyn sqlx::error::DatabaseError) -> Option<&'static str> {
    if let Some(name) = err.constraint() {
        return UNIQUE_CONSTRAINTS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(n, _)| *n);
    }
    let columns = err.message().strip_prefix("UNIQUE constraint failed: ")?;
    UNIQUE_CONSTRAINTS
        .iter()
        .find(|(_, cols)| *cols == columns)
        .map(|(n, _)| *n)
}

/// Whether the error means the database is busy or overloaded (worth a 503 and a retry),
/// rather than a bug or bad data.
pub(super) fn is_busy(err: &dyn sqlx::error::DatabaseError) -> bool {
    match err.code().as_deref() {
        // SQLite: SQLITE_BUSY (5), SQLITE_LOCKED (6) and their extended codes.
        Some(code)
            if code
                .parse::<i64>()
                .map(|c| c & 0xff == 5 || c & 0xff == 6)
                .unwrap_or(false) =>
        {
            true
        }
        // PostgreSQL: serialization failure, deadlock, too many connections, lock timeout.
        Some("40001" | "40P01" | "53300" | "55P03") => true,
        // PostgreSQL: the server ended the connection (administrator command, crash, shutting
        // down or starting up) or lost it (class 08): the next connection may well work.
        Some("57P01" | "57P02" | "57P03") => true,
        Some(code) if code.starts_with("08") => true,
        _ => false,
    }
}

/// The statistics of a queue table lag far behind it (autovacuum has not caught up with a
/// million rows that came and went); keep the planner on ordered index walks, which skip dead
/// entries, whatever they say. `set local` ends with the caller's transaction.
pub(super) async fn prefer_index_walks(
    c: &mut sqlx::PgConnection,
) -> std::result::Result<(), sqlx::Error> {
    sqlx::query("set local enable_bitmapscan = off")
        .execute(&mut *c)
        .await?;
    sqlx::query("set local enable_seqscan = off")
        .execute(&mut *c)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    /// A database error with just a code, as either driver reports one.
    #[derive(Debug)]
    struct Coded(&'static str);

    impl std::fmt::Display for Coded {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "error {}", self.0)
        }
    }

    impl std::error::Error for Coded {}

    impl sqlx::error::DatabaseError for Coded {
        fn message(&self) -> &str {
            "coded"
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    #[test]
    fn the_sqlite_pool_shares_one_page_cache_budget() {
        assert_eq!(sqlite_cache_kib(1), 8 * 1024);
        assert_eq!(sqlite_cache_kib(10), 3276);
        assert_eq!(sqlite_cache_kib(40), 819);
        assert_eq!(sqlite_cache_kib(1000), 512);
        assert_eq!(sqlite_cache_kib(0), 8 * 1024);
    }

    #[test]
    fn a_terminated_or_lost_connection_is_busy_not_a_bug() {
        // Found by the crash campaign: pg_terminate_backend answered 500 instead of 503.
        for code in [
            "57P01", "57P02", "57P03", "08006", "08003", "40001", "5", "517", "6",
        ] {
            assert!(is_busy(&Coded(code)), "{code}");
        }
        for code in ["23505", "42P01", "22P02", "1", "19"] {
            assert!(!is_busy(&Coded(code)), "{code}");
        }
    }
}
