//! Bringing one sbm table level with its source table: both are walked in id order side by
//! side, so that new, changed, unchanged and vanished rows are told apart in one pass with a
//! bounded number of rows in memory; then the table is read back and checked.

use std::collections::VecDeque;

use uuid::Uuid;

use crate::effects::{self, Change, Effects, Op};
use crate::events::Event;
use crate::model::content::{BinaryContent, Message, MessageSet, Schedule};
use crate::store::import::{self as sql, ContentTable, BATCH_ROWS};
use crate::store::{self, Conn, Db, Tx};
use futures_util::TryStreamExt;

pub use super::report::Checksum;
use super::report::{Progress, TableReport};
use super::source::Checked;
use crate::model::subscriptions::Subscription;

/// An sbm record that an import writes with its source id.
pub trait Row: Sized + Send + Sync {
    type Key: Ord + Copy + Send + Sync + std::fmt::Debug;
    fn key(&self) -> Self::Key;
    /// Whether the stored row already says what the source row says.
    fn same(&self, stored: &Self) -> bool;
    /// The key columns, as text, for the checksum that compares source and target.
    fn fingerprint(&self) -> String;
    fn page(
        conn: Conn<'_>,
        after: Option<Self::Key>,
    ) -> impl std::future::Future<Output = store::Result<Vec<Self>>> + Send;
    fn upsert(
        conn: Conn<'_>,
        rows: &[Self],
    ) -> impl std::future::Future<Output = store::Result<()>> + Send;
    fn delete(
        conn: Conn<'_>,
        keys: &[Self::Key],
    ) -> impl std::future::Future<Output = store::Result<u64>> + Send;
    /// The lifecycle events of the change, for `--emit-events`.
    fn events(effects: &Effects, op: Op, before: Option<&Self>, after: &Self) -> Vec<Event>;
}

const PAGE: i64 = BATCH_ROWS as i64;

/// A table's rows as they were before this run, read a page at a time on a connection of its
/// own (the writes of this run are in a transaction it does not see).
pub struct Before<T: Row> {
    db: Db,
    buffer: VecDeque<T>,
    last: Option<T::Key>,
    done: bool,
}

impl<T: Row> Before<T> {
    pub fn new(db: &Db) -> Self {
        Before {
            db: db.clone(),
            buffer: VecDeque::new(),
            last: None,
            done: false,
        }
    }

    async fn fill(&mut self) -> store::Result<()> {
        if self.buffer.is_empty() && !self.done {
            let mut conn = self.db.acquire().await?;
            let rows = T::page(conn.conn(), self.last).await?;
            self.done = (rows.len() as i64) < PAGE;
            self.last = rows.last().map(Row::key).or(self.last);
            self.buffer.extend(rows);
        }
        Ok(())
    }

    /// Takes the stored rows whose keys come before `key` (gone from the source) and the row
    /// with that key, if any. `None` as `key` takes everything that is left.
    pub async fn take_until(
        &mut self,
        key: Option<T::Key>,
        gone: &mut Vec<T>,
    ) -> store::Result<Option<T>> {
        loop {
            self.fill().await?;
            let Some(front) = self.buffer.front() else {
                return Ok(None);
            };
            match key.map(|k| front.key().cmp(&k)) {
                None | Some(std::cmp::Ordering::Less) => gone.extend(self.buffer.pop_front()),
                Some(std::cmp::Ordering::Equal) => return Ok(self.buffer.pop_front()),
                Some(std::cmp::Ordering::Greater) => return Ok(None),
            }
        }
    }
}

/// The checksum of what the table holds now, read in the import's own transaction.
pub async fn target_checksum<T: Row>(tx: &mut Tx) -> store::Result<Checksum> {
    let mut sum = Checksum::default();
    let mut after = None;
    loop {
        let rows = T::page(tx.conn(), after).await?;
        for row in &rows {
            sum.add(&row.fingerprint());
        }
        if (rows.len() as i64) < PAGE {
            return Ok(sum);
        }
        after = rows.last().map(Row::key);
    }
}

/// What merging one table left to do and to check.
pub struct Merged<T: Row> {
    /// Stored rows the source no longer has (or can no longer give): deleted once every
    /// table is written, children first.
    pub gone: Vec<T>,
    /// Over the rows the target must hold.
    pub expected: Checksum,
}

/// Writes the source rows that are new or changed (in batches), counts the rest, and collects
/// the stored rows that have gone.
pub async fn merge<T, S>(
    mut source: S,
    tx: &mut Tx,
    db: &Db,
    report: &mut TableReport,
    progress: &mut Progress,
    emit: Option<&Effects>,
) -> anyhow::Result<Merged<T>>
where
    T: Row,
    S: futures_util::Stream<Item = anyhow::Result<Checked<T>>> + Unpin,
{
    let mut before = Before::<T>::new(db);
    let mut merged = Merged {
        gone: Vec::new(),
        expected: Checksum::default(),
    };
    let mut batch: Vec<T> = Vec::with_capacity(BATCH_ROWS);
    let mut events = Vec::new();
    while let Some(item) = source.try_next().await? {
        report.read += 1;
        progress.inc(1);
        for warning in item.warnings {
            report.warn(&item.source_id, warning);
        }
        let row = match item.row {
            Ok(row) => row,
            Err(reason) => {
                report.skip(&item.source_id, reason);
                continue;
            }
        };
        let stored = before.take_until(Some(row.key()), &mut merged.gone).await?;
        merged.expected.add(&row.fingerprint());
        let op = match &stored {
            Some(stored) if row.same(stored) => {
                report.unchanged += 1;
                continue;
            }
            Some(_) => {
                report.updated += 1;
                Op::Updated
            }
            None => {
                report.inserted += 1;
                Op::Created
            }
        };
        if let Some(effects) = emit {
            events.extend(T::events(effects, op, stored.as_ref(), &row));
        }
        batch.push(row);
        if batch.len() >= BATCH_ROWS {
            flush(tx, &mut batch, &mut events).await?;
        }
    }
    flush(tx, &mut batch, &mut events).await?;
    before.take_until(None, &mut merged.gone).await?;
    Ok(merged)
}

async fn flush<T: Row>(
    tx: &mut Tx,
    batch: &mut Vec<T>,
    events: &mut Vec<Event>,
) -> store::Result<()> {
    T::upsert(tx.conn(), batch).await?;
    batch.clear();
    crate::effects::record_events(tx, std::mem::take(events)).await
}

/// Deletes the gone rows (with their events when asked); returns how many went.
pub async fn delete_gone<T: Row>(
    tx: &mut Tx,
    gone: &[T],
    emit: Option<&Effects>,
) -> store::Result<u64> {
    let mut deleted = 0;
    for chunk in gone.chunks(BATCH_ROWS) {
        let keys: Vec<T::Key> = chunk.iter().map(Row::key).collect();
        deleted += T::delete(tx.conn(), &keys).await?;
        if let Some(effects) = emit {
            let events = chunk
                .iter()
                .flat_map(|row| T::events(effects, Op::Deleted, None, row))
                .collect();
            crate::effects::record_events(tx, events).await?;
        }
    }
    Ok(deleted)
}

fn ts(t: &chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_micros()
}

impl Row for Schedule {
    type Key = i64;
    fn key(&self) -> i64 {
        self.id
    }
    fn same(&self, stored: &Self) -> bool {
        self.fingerprint() == stored.fingerprint()
    }
    fn fingerprint(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}|{}",
            self.id,
            self.minute,
            self.hour,
            self.day_of_week,
            self.day_of_month,
            self.month_of_year
        )
    }
    async fn page(conn: Conn<'_>, after: Option<i64>) -> store::Result<Vec<Self>> {
        sql::schedules_after(conn, after.unwrap_or(i64::MIN), PAGE).await
    }
    async fn upsert(conn: Conn<'_>, rows: &[Self]) -> store::Result<()> {
        sql::upsert_schedules(conn, rows).await
    }
    async fn delete(conn: Conn<'_>, keys: &[i64]) -> store::Result<u64> {
        sql::delete_content(conn, ContentTable::Schedule, keys).await
    }
    fn events(effects: &Effects, op: Op, _: Option<&Self>, after: &Self) -> Vec<Event> {
        effects::events(effects, Change::Schedule(op, after))
    }
}

impl Row for MessageSet {
    type Key = i64;
    fn key(&self) -> i64 {
        self.id
    }
    /// `next_set` is linked after all sets are in, and compared there.
    fn same(&self, stored: &Self) -> bool {
        let unlinked = |s: &MessageSet| MessageSet {
            next_set_id: None,
            ..s.clone()
        };
        unlinked(self).fingerprint() == unlinked(stored).fingerprint()
            && self.label == stored.label
            && self.notes == stored.notes
            && self.channel == stored.channel
            && ts(&self.created_at) == ts(&stored.created_at)
    }
    fn fingerprint(&self) -> String {
        format!(
            "{}|{}|{:?}|{}|{}|{}",
            self.id,
            self.short_name,
            self.next_set_id,
            self.default_schedule_id,
            self.content_type,
            ts(&self.updated_at)
        )
    }
    async fn page(conn: Conn<'_>, after: Option<i64>) -> store::Result<Vec<Self>> {
        sql::message_sets_after(conn, after.unwrap_or(i64::MIN), PAGE).await
    }
    async fn upsert(conn: Conn<'_>, rows: &[Self]) -> store::Result<()> {
        sql::upsert_message_sets(conn, rows).await
    }
    async fn delete(conn: Conn<'_>, keys: &[i64]) -> store::Result<u64> {
        sql::delete_content(conn, ContentTable::MessageSet, keys).await
    }
    fn events(effects: &Effects, op: Op, _: Option<&Self>, after: &Self) -> Vec<Event> {
        effects::events(effects, Change::MessageSet(op, after))
    }
}

impl Row for BinaryContent {
    type Key = i64;
    fn key(&self) -> i64 {
        self.id
    }
    fn same(&self, stored: &Self) -> bool {
        self.fingerprint() == stored.fingerprint()
            && self.media_type == stored.media_type
            && self.size_bytes == stored.size_bytes
            && ts(&self.created_at) == ts(&stored.created_at)
    }
    fn fingerprint(&self) -> String {
        format!("{}|{}|{}", self.id, self.path, ts(&self.updated_at))
    }
    async fn page(conn: Conn<'_>, after: Option<i64>) -> store::Result<Vec<Self>> {
        sql::binary_contents_after(conn, after.unwrap_or(i64::MIN), PAGE).await
    }
    async fn upsert(conn: Conn<'_>, rows: &[Self]) -> store::Result<()> {
        sql::upsert_binary_contents(conn, rows).await
    }
    async fn delete(conn: Conn<'_>, keys: &[i64]) -> store::Result<u64> {
        sql::delete_content(conn, ContentTable::BinaryContent, keys).await
    }
    fn events(effects: &Effects, op: Op, _: Option<&Self>, after: &Self) -> Vec<Event> {
        effects::events(effects, Change::BinaryContent(op, after))
    }
}

impl Row for Message {
    type Key = i64;
    fn key(&self) -> i64 {
        self.id
    }
    fn same(&self, stored: &Self) -> bool {
        self.fingerprint() == stored.fingerprint()
            && self.metadata.as_ref().map(|j| &j.0) == stored.metadata.as_ref().map(|j| &j.0)
            && ts(&self.created_at) == ts(&stored.created_at)
    }
    fn fingerprint(&self) -> String {
        format!(
            "{}|{}|{}|{}|{:?}|{:?}|{}",
            self.id,
            self.message_set_id,
            self.sequence_number,
            self.lang,
            self.text_content,
            self.binary_content_id,
            ts(&self.updated_at)
        )
    }
    async fn page(conn: Conn<'_>, after: Option<i64>) -> store::Result<Vec<Self>> {
        sql::messages_after(conn, after.unwrap_or(i64::MIN), PAGE).await
    }
    async fn upsert(conn: Conn<'_>, rows: &[Self]) -> store::Result<()> {
        sql::upsert_messages(conn, rows).await
    }
    async fn delete(conn: Conn<'_>, keys: &[i64]) -> store::Result<u64> {
        sql::delete_content(conn, ContentTable::Message, keys).await
    }
    fn events(effects: &Effects, op: Op, _: Option<&Self>, after: &Self) -> Vec<Event> {
        effects::events(effects, Change::Message(op, after))
    }
}

impl Row for Subscription {
    type Key = Uuid;
    fn key(&self) -> Uuid {
        self.id
    }
    fn same(&self, stored: &Self) -> bool {
        self.fingerprint() == stored.fingerprint()
            && self.version == stored.version
            && self.initial_sequence_number == stored.initial_sequence_number
            && self.metadata.as_ref().map(|j| &j.0) == stored.metadata.as_ref().map(|j| &j.0)
            && ts(&self.created_at) == ts(&stored.created_at)
            && self.created_by == stored.created_by
            && self.updated_by == stored.updated_by
    }
    fn fingerprint(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}|{}|{}|{}|{}|{}",
            self.id,
            self.identity,
            self.message_set_id,
            self.next_sequence_number,
            self.lang,
            self.active,
            self.completed,
            self.schedule_id,
            self.process_status,
            ts(&self.updated_at)
        )
    }
    async fn page(conn: Conn<'_>, after: Option<Uuid>) -> store::Result<Vec<Self>> {
        sql::subscriptions_after(conn, after, PAGE).await
    }
    async fn upsert(conn: Conn<'_>, rows: &[Self]) -> store::Result<()> {
        sql::upsert_subscriptions(conn, rows).await
    }
    async fn delete(conn: Conn<'_>, keys: &[Uuid]) -> store::Result<u64> {
        sql::delete_subscriptions(conn, keys).await
    }
    fn events(effects: &Effects, op: Op, before: Option<&Self>, after: &Self) -> Vec<Event> {
        let change = match (op, before) {
            (Op::Created, _) => Change::SubscriptionCreated(after),
            (Op::Updated, Some(before)) => Change::SubscriptionUpdated { before, after },
            (Op::Updated, None) => Change::SubscriptionCreated(after),
            (Op::Deleted, _) => Change::SubscriptionDeleted(after),
        };
        effects::events(effects, change)
    }
}
