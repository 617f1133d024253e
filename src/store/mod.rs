//! Storage: the connection pool, transactions and every SQL statement sbm runs.
//!
//! sbm serves PostgreSQL (production) and SQLite (the embedded default) with one behaviour. The
//! SQL is written once in the dialect both understand (`$n` placeholders, `returning`,
//! `on conflict`), and [`on_conn!`] compiles each statement for both drivers, so no query text is
//! duplicated. What the dialects do differently (transaction start, constraint names in errors,
//! connection set-up) lives in [`dialect`].

mod dialect;
mod error;
pub mod filter;
pub mod integration_messages;
pub mod integrations;
mod sqlite_lists;

pub mod admin;
pub mod audit;
pub mod callbacks;
pub mod content;
pub mod deliveries;
pub mod events;
pub mod import;
pub mod jobs;
pub mod local_time;
pub mod metrics;
pub mod push_batches;
pub mod retention;
pub mod secrets;
pub mod send_rate;
pub mod subscriptions;
pub mod ticks;
pub mod users;

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool};

pub use error::{Error, Result};

/// Runs `$body` with `$c` bound to the concrete connection (`&mut PgConnection` or
/// `&mut SqliteConnection`) behind a [`Conn`]. The body is compiled once per driver.
macro_rules! on_conn {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::store::Conn::Postgres($c) => $body,
            $crate::store::Conn::Sqlite($c) => $body,
        }
    };
}
pub(crate) use on_conn;

/// Which database engine a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    pub fn from_url(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else {
            anyhow::bail!("unsupported database URL (expected postgres://… or sqlite://…): {url}")
        }
    }
}

/// Pool settings that do not depend on the engine.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

/// The shared connection pool.
#[derive(Clone, Debug)]
pub enum Db {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// A borrowed connection of either engine; every store function takes one.
pub enum Conn<'c> {
    Postgres(&'c mut PgConnection),
    Sqlite(&'c mut SqliteConnection),
}

/// An open transaction. Dropped without [`Tx::commit`], it rolls back.
pub enum Tx {
    Postgres(sqlx::Transaction<'static, Postgres>),
    Sqlite(sqlx::Transaction<'static, Sqlite>),
}

/// A connection checked out of the pool, for reads that need no transaction.
pub enum Pooled {
    Postgres(PoolConnection<Postgres>),
    Sqlite(PoolConnection<Sqlite>),
}

impl Db {
    /// Connects to the database named by `url`, creating an SQLite file if it does not exist.
    pub async fn connect(url: &str, settings: &PoolSettings) -> anyhow::Result<Db> {
        dialect::connect(url, settings).await
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Postgres(_) => Backend::Postgres,
            Db::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// Applies the migrations in `migrations/<backend>/` that have not run yet.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Db::Postgres(pool) => sqlx::migrate!("migrations/postgres").run(pool).await?,
            Db::Sqlite(pool) => {
                // SQLite cannot change a table's constraints in place: a migration rebuilds
                // the table, which must not cascade to the rows that refer to it. Its documented
                // way is to turn foreign keys off around the change (outside a transaction,
                // where the pragma works) and check them afterwards.
                let mut conn = pool.acquire().await?;
                sqlx::query("pragma foreign_keys = off")
                    .execute(&mut *conn)
                    .await?;
                let migrated = sqlx::migrate!("migrations/sqlite")
                    .run_direct(&mut *conn)
                    .await;
                sqlx::query("pragma foreign_keys = on")
                    .execute(&mut *conn)
                    .await?;
                migrated?;
                let broken: Vec<(String,)> =
                    sqlx::query_as("select \"table\" from pragma_foreign_key_check")
                        .fetch_all(&mut *conn)
                        .await?;
                anyhow::ensure!(
                    broken.is_empty(),
                    "the migrations left rows whose references are broken in: {broken:?}"
                );
            }
        }
        Ok(())
    }

    /// Starts a read-write transaction.
    pub async fn begin(&self) -> Result<Tx> {
        dialect::begin(self).await
    }

    /// Checks out a connection for reads.
    pub async fn acquire(&self) -> Result<Pooled> {
        Ok(match self {
            Db::Postgres(pool) => Pooled::Postgres(pool.acquire().await?),
            Db::Sqlite(pool) => Pooled::Sqlite(pool.acquire().await?),
        })
    }

    /// Answers whether the database takes a trivial query.
    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.acquire().await?;
        on_conn!(conn.conn(), c => sqlx::query("select 1").execute(&mut *c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    pub async fn close(&self) {
        match self {
            Db::Postgres(pool) => pool.close().await,
            Db::Sqlite(pool) => pool.close().await,
        }
    }
}

impl Tx {
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            Tx::Postgres(tx) => Conn::Postgres(tx),
            Tx::Sqlite(tx) => Conn::Sqlite(tx),
        }
    }

    pub async fn commit(self) -> Result<()> {
        match self {
            Tx::Postgres(tx) => tx.commit().await?,
            Tx::Sqlite(tx) => tx.commit().await?,
        }
        Ok(())
    }
}

impl Pooled {
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            Pooled::Postgres(c) => Conn::Postgres(c),
            Pooled::Sqlite(c) => Conn::Sqlite(c),
        }
    }
}

/// The current time at the precision both engines keep (microseconds), so that a value read
/// back equals the value written on either engine.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// One page of a list: how many rows match in all, and the rows of this page.
#[derive(Debug)]
pub struct Page<T> {
    pub count: i64,
    pub rows: Vec<T>,
}

/// Which slice of a list to read.
#[derive(Debug, Clone, Copy)]
pub struct Slice {
    pub limit: i64,
    pub offset: i64,
}

impl Conn<'_> {
    pub fn backend(&self) -> Backend {
        match self {
            Conn::Postgres(_) => Backend::Postgres,
            Conn::Sqlite(_) => Backend::Sqlite,
        }
    }
}
