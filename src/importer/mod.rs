//! `sbm import django`: moving a running Django seed-stage-based-messaging into sbm
//! (docs/import.md).
//!
//! The source is read in one read-only, repeatable-read snapshot; everything is written in one
//! transaction of the target, checked (counts and a checksum of key columns per table) before
//! it commits, and rolled back on `--dry-run` or a mismatch. Re-running it brings sbm level
//! with the source again: new rows, changed rows and rows gone from the source.

mod accounts;
pub mod command;
mod media;
mod merge;
pub mod report;
mod schema;
mod source;

use std::collections::HashSet;
use std::path::PathBuf;

use futures_util::TryStreamExt;
use uuid::Uuid;

use crate::config::WorkerConfig;
use crate::effects::Effects;
use crate::jobs::JobSettings;
use crate::model::content::{BinaryContent, Message, MessageSet, Schedule};
use crate::model::subscriptions::Subscription;
use crate::store::import::{self as sql, ContentTable};
use crate::store::{self, Db, Tx};
use merge::{delete_gone, merge, target_checksum, Merged, Row};
use report::{Progress, Report, Verification};
use source::{Checked, Source};

pub use report::TableReport;

#[derive(Debug, Clone)]
pub struct Options {
    /// `postgres://…` of the Django database.
    pub from: String,
    /// The Django MEDIA_ROOT, where binary content files are copied from.
    pub media_root: Option<PathBuf>,
    /// sbm's media root, where they are copied to.
    pub target_media_root: PathBuf,
    pub dry_run: bool,
    /// A binary content file that cannot be copied stops the import.
    pub strict: bool,
    /// Write lifecycle events for what is imported, with URLs under this origin.
    pub emit_events: Option<String>,
    /// No progress output (tests, benchmarks).
    pub quiet: bool,
}

const SCHEDULES: &str = "contentstore_schedule";
const MESSAGE_SETS: &str = "contentstore_messageset";
const BINARY_CONTENT: &str = "contentstore_binarycontent";
const MESSAGES: &str = "contentstore_message";
const SUBSCRIPTIONS: &str = "subscriptions_subscription";
/// `import_key` rows that remember the 0.13 schedules' Seed Scheduler ids.
const SCHEDULER_IDS: &str = "contentstore_schedule.scheduler_schedule_id";

/// What one run carries from table to table.
struct Run<'a> {
    options: &'a Options,
    db: &'a Db,
    source: Source,
    tx: Tx,
    report: Report,
    effects: Option<Effects>,
}

/// Imports (or, with `dry_run`, only reads and checks) everything. `Err` when the source cannot
/// be read or is of an unknown layout, or a write fails; otherwise the report, whose
/// [`Report::verified`] says whether sbm now matches the source (nothing is committed if not).
pub async fn run(db: &Db, options: &Options) -> anyhow::Result<Report> {
    let started = store::now();
    let source = Source::open(&options.from).await?;
    let report = Report::new(source.schema.describe(), options.dry_run);
    let effects = options.emit_events.as_ref().map(|origin| Effects {
        jobs: JobSettings::from(&WorkerConfig::default()),
        scheduler_mode: false,
        go_metrics: false,
        public_origin: origin.clone(),
        next_due: crate::scheduling::local::next_due,
    });
    let tx = db.begin().await?;
    let mut run = Run {
        options,
        db,
        source,
        tx,
        report,
        effects,
    };
    run.everything().await?;
    let Run {
        source,
        mut tx,
        report,
        ..
    } = run;
    source.close().await?;
    if options.dry_run || !report.verified() {
        drop(tx);
        return Ok(report);
    }
    let summary = serde_json::to_value(&report)?;
    let source_name = redact(&options.from);
    sql::record_run(
        tx.conn(),
        &source_name,
        &report.schema_version,
        started,
        store::now(),
        &summary,
    )
    .await?;
    tx.commit().await?;
    Ok(report)
}

/// The ids of the rows that will be imported.
fn accepted_keys<T: Row<Key = i64>>(rows: &[Checked<T>]) -> HashSet<i64> {
    rows.iter()
        .filter_map(|c| c.row.as_ref().ok())
        .map(Row::key)
        .collect()
}

/// The URL without its password.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

impl Run<'_> {
    async fn everything(&mut self) -> anyhow::Result<()> {
        let mut table = std::mem::take(self.report.table(accounts::USERS));
        let (users, expected_users) =
            accounts::import_users(&mut self.source.conn, &mut self.tx, &mut table).await?;
        *self.report.table(accounts::USERS) = table;

        let schedules = self.schedules().await?;
        let known_schedules: HashSet<i64> = accepted_keys(&schedules);
        let (sets, links) = self.message_sets(&known_schedules).await?;
        let known_sets: HashSet<i64> = accepted_keys(&sets);
        let binaries = self.binary_contents().await?;
        let known_binaries: HashSet<i64> = accepted_keys(&binaries);
        let schedule_rows = self.write(SCHEDULES, schedules).await?;
        let set_rows = self.write(MESSAGE_SETS, sets).await?;
        let binary_rows = self.write(BINARY_CONTENT, binaries).await?;
        let messages = self.messages(&known_sets, &known_binaries).await?;
        let subscriptions = self
            .subscriptions(&known_sets, &known_schedules, &users)
            .await?;
        sql::set_next_sets(self.tx.conn(), &links).await?;

        // Children first: nothing left refers to a row when it goes.
        self.remove(SUBSCRIPTIONS, &subscriptions.gone).await?;
        self.remove(MESSAGES, &messages.gone).await?;
        self.remove(BINARY_CONTENT, &binary_rows.gone).await?;
        self.remove(MESSAGE_SETS, &set_rows.gone).await?;
        self.remove(SCHEDULES, &schedule_rows.gone).await?;

        let expected_accounts = self.tokens_and_failures(&users, expected_users).await?;
        self.advance_sequences().await?;

        self.verify::<Schedule>(SCHEDULES, &schedule_rows).await?;
        self.verify::<MessageSet>(MESSAGE_SETS, &set_rows).await?;
        self.verify::<BinaryContent>(BINARY_CONTENT, &binary_rows)
            .await?;
        self.verify::<Message>(MESSAGES, &messages).await?;
        self.verify::<Subscription>(SUBSCRIPTIONS, &subscriptions)
            .await?;
        let [u, t, f] = &expected_accounts;
        let [users, tokens, failures] = accounts::verify(&mut self.tx, [u, t, f]).await?;
        self.report.table(accounts::USERS).verified = Some(users);
        self.report.table(accounts::TOKENS).verified = Some(tokens);
        self.report.table(accounts::SEND_FAILURES).verified = Some(failures);
        Ok(())
    }

    /// Tokens and send failures (after subscriptions); the expected users, tokens and failures.
    async fn tokens_and_failures(
        &mut self,
        users: &std::collections::HashMap<i64, i64>,
        expected_users: merge::Checksum,
    ) -> anyhow::Result<[merge::Checksum; 3]> {
        let skipped_subscriptions = self.skipped_subscriptions();
        let mut table = std::mem::take(self.report.table(accounts::TOKENS));
        let expected_tokens =
            accounts::import_tokens(&mut self.source.conn, &mut self.tx, users, &mut table).await?;
        *self.report.table(accounts::TOKENS) = table;
        let mut table = std::mem::take(self.report.table(accounts::SEND_FAILURES));
        let max_attempts = WorkerConfig::default().max_attempts;
        let expected_failures = accounts::import_send_failures(
            &mut self.source.conn,
            &mut self.tx,
            &skipped_subscriptions,
            max_attempts,
            &mut table,
        )
        .await?;
        *self.report.table(accounts::SEND_FAILURES) = table;
        Ok([expected_users, expected_tokens, expected_failures])
    }

    async fn advance_sequences(&mut self) -> anyhow::Result<()> {
        let tables = [
            (SCHEDULES, ContentTable::Schedule),
            (MESSAGE_SETS, ContentTable::MessageSet),
            (BINARY_CONTENT, ContentTable::BinaryContent),
            (MESSAGES, ContentTable::Message),
        ];
        for (source_table, table) in tables {
            let max = self.source.max_id(source_table).await?;
            sql::advance_sequence(self.tx.conn(), table, max).await?;
        }
        Ok(())
    }

    /// Schedules are few: read whole, to check message sets and subscriptions against.
    async fn schedules(&mut self) -> anyhow::Result<Vec<Checked<Schedule>>> {
        let sql_text = source::schedule_sql(self.source.schema.layout);
        let rows: Vec<source::SourceSchedule> = sqlx::query_as(&sql_text)
            .fetch_all(&mut self.source.conn)
            .await?;
        let now = store::now();
        for row in &rows {
            if let Some(scheduler_id) = row.scheduler_schedule_id {
                let key = scheduler_id.to_string();
                sql::put_import_key(self.tx.conn(), SCHEDULER_IDS, &key, row.id).await?;
            }
        }
        Ok(rows.iter().map(|s| source::schedule(s, now)).collect())
    }

    /// Message sets, and each one's `next_set` to link once all are written.
    async fn message_sets(
        &mut self,
        schedules: &HashSet<i64>,
    ) -> anyhow::Result<(Vec<Checked<MessageSet>>, Vec<(i64, Option<i64>)>)> {
        let sql_text = source::message_set_sql(self.source.schema.layout);
        let rows: Vec<MessageSet> = sqlx::query_as(&sql_text)
            .fetch_all(&mut self.source.conn)
            .await?;
        let all: HashSet<i64> = rows.iter().map(|s| s.id).collect();
        let checked: Vec<Checked<MessageSet>> = rows
            .into_iter()
            .map(|s| source::message_set(s, &|id| schedules.contains(&id), &|id| all.contains(&id)))
            .collect();
        let accepted = accepted_keys(&checked);
        let links = checked
            .iter()
            .filter_map(|c| c.row.as_ref().ok())
            .map(|s| (s.id, s.next_set_id.filter(|n| accepted.contains(n))))
            .collect();
        Ok((checked, links))
    }

    /// Binary content rows, with their files brought over.
    async fn binary_contents(&mut self) -> anyhow::Result<Vec<Checked<BinaryContent>>> {
        let rows: Vec<BinaryContent> = sqlx::query_as(source::BINARY_CONTENT_SQL)
            .fetch_all(&mut self.source.conn)
            .await?;
        let copy = media::MediaCopy {
            from: self.options.media_root.clone(),
            to: self.options.target_media_root.clone(),
            dry_run: self.options.dry_run,
        };
        let mut checked = Vec::with_capacity(rows.len());
        for mut row in rows {
            let mut warnings = Vec::new();
            if let Err(reason) = copy.bring(&mut row).await {
                if self.options.strict {
                    anyhow::bail!("binary content {}: {reason} (--strict)", row.id);
                }
                warnings.push(reason);
            }
            checked.push(Checked {
                source_id: row.id.to_string(),
                row: Ok(row),
                warnings,
            });
        }
        Ok(checked)
    }

    /// Merges a table read whole.
    async fn write<T: Row>(
        &mut self,
        table: &str,
        rows: Vec<Checked<T>>,
    ) -> anyhow::Result<Merged<T>> {
        let stream = futures_util::stream::iter(rows.into_iter().map(Ok));
        self.merge_stream(table, stream).await
    }

    async fn merge_stream<T: Row>(
        &mut self,
        table: &str,
        stream: impl futures_util::Stream<Item = anyhow::Result<Checked<T>>> + Unpin,
    ) -> anyhow::Result<Merged<T>> {
        let total = self.source.count(table).await?;
        let mut progress = Progress::new(table, total, self.options.quiet);
        let mut report = std::mem::take(self.report.table(table));
        let merged = merge(
            stream,
            &mut self.tx,
            self.db,
            &mut report,
            &mut progress,
            self.effects.as_ref(),
        )
        .await?;
        progress.finish(self.options.quiet);
        *self.report.table(table) = report;
        Ok(merged)
    }

    async fn messages(
        &mut self,
        sets: &HashSet<i64>,
        binaries: &HashSet<i64>,
    ) -> anyhow::Result<Merged<Message>> {
        let total = self.source.count(MESSAGES).await?;
        let sql_text = source::message_sql(self.source.schema.layout);
        let mut progress = Progress::new(MESSAGES, total, self.options.quiet);
        let mut report = std::mem::take(self.report.table(MESSAGES));
        let stream = sqlx::query_as::<_, Message>(&sql_text)
            .fetch(&mut self.source.conn)
            .map_err(anyhow::Error::from)
            .map_ok(|m| source::message(m, &|id| sets.contains(&id), &|id| binaries.contains(&id)));
        let merged = merge(
            stream,
            &mut self.tx,
            self.db,
            &mut report,
            &mut progress,
            self.effects.as_ref(),
        )
        .await?;
        progress.finish(self.options.quiet);
        *self.report.table(MESSAGES) = report;
        Ok(merged)
    }

    async fn subscriptions(
        &mut self,
        sets: &HashSet<i64>,
        schedules: &HashSet<i64>,
        users: &std::collections::HashMap<i64, i64>,
    ) -> anyhow::Result<Merged<Subscription>> {
        let total = self.source.count(SUBSCRIPTIONS).await?;
        let mut progress = Progress::new(SUBSCRIPTIONS, total, self.options.quiet);
        let mut report = std::mem::take(self.report.table(SUBSCRIPTIONS));
        let known = source::Known {
            sets: &|id| sets.contains(&id),
            schedules: &|id| schedules.contains(&id),
            user: &|id| users.get(&id).copied(),
        };
        let stream = sqlx::query_as::<_, source::SourceSubscription>(source::SUBSCRIPTION_SQL)
            .fetch(&mut self.source.conn)
            .map_err(anyhow::Error::from)
            .map_ok(|s| source::subscription(s, &known));
        let merged = merge(
            stream,
            &mut self.tx,
            self.db,
            &mut report,
            &mut progress,
            self.effects.as_ref(),
        )
        .await?;
        progress.finish(self.options.quiet);
        *self.report.table(SUBSCRIPTIONS) = report;
        Ok(merged)
    }

    fn skipped_subscriptions(&mut self) -> HashSet<Uuid> {
        self.report
            .table(SUBSCRIPTIONS)
            .skipped
            .iter()
            .filter_map(|(id, _)| Uuid::parse_str(id).ok())
            .collect()
    }

    async fn remove<T: Row>(&mut self, table: &str, gone: &[T]) -> anyhow::Result<()> {
        let deleted = delete_gone(&mut self.tx, gone, self.effects.as_ref()).await?;
        self.report.table(table).deleted += deleted;
        Ok(())
    }

    async fn verify<T: Row>(&mut self, table: &str, merged: &Merged<T>) -> anyhow::Result<()> {
        let target = target_checksum::<T>(&mut self.tx).await?;
        self.report.table(table).verified = Some(Verification::of(&merged.expected, &target));
        Ok(())
    }
}
