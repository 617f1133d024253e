//! What an import did, per table, and its progress while it runs.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

/// Rows of a table listed by id in the printed report; the counts are always complete.
const LISTED_PER_TABLE: usize = 200;

/// One source table's outcome.
#[derive(Debug, Default, Clone, Serialize)]
pub struct TableReport {
    pub read: u64,
    /// New in sbm.
    pub inserted: u64,
    /// Already in sbm from an earlier run, and changed in the source since.
    pub updated: u64,
    /// Already in sbm and unchanged.
    pub unchanged: u64,
    /// In sbm from an earlier run, gone from the source.
    pub deleted: u64,
    /// Not imported, by source id, with the reason.
    pub skipped: Vec<(String, String)>,
    /// Imported as they are, but sbm's own validation would refuse them.
    pub warnings: Vec<(String, String)>,
    /// Target rows and checksum after the import, against what the source says they must be.
    pub verified: Option<Verification>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Verification {
    pub expected_rows: u64,
    pub target_rows: u64,
    pub expected_checksum: String,
    pub target_checksum: String,
}

impl Verification {
    pub fn of(expected: &Checksum, target: &Checksum) -> Self {
        Verification {
            expected_rows: expected.rows,
            target_rows: target.rows,
            expected_checksum: expected.hex(),
            target_checksum: target.hex(),
        }
    }

    pub fn matches(&self) -> bool {
        self.expected_rows == self.target_rows && self.expected_checksum == self.target_checksum
    }
}

impl TableReport {
    pub fn written(&self) -> u64 {
        self.inserted + self.updated
    }

    pub fn skip(&mut self, id: impl ToString, reason: impl Into<String>) {
        self.skipped.push((id.to_string(), reason.into()));
    }

    pub fn warn(&mut self, id: impl ToString, reason: impl Into<String>) {
        self.warnings.push((id.to_string(), reason.into()));
    }
}

/// Every table's report, in the order the tables were imported.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub schema_version: String,
    pub dry_run: bool,
    pub tables: BTreeMap<String, TableReport>,
    #[serde(skip)]
    order: Vec<String>,
}

impl Report {
    pub fn new(schema_version: String, dry_run: bool) -> Self {
        Report {
            schema_version,
            dry_run,
            ..Report::default()
        }
    }

    pub fn table(&mut self, name: &str) -> &mut TableReport {
        if !self.tables.contains_key(name) {
            self.order.push(name.to_string());
        }
        self.tables.entry(name.to_string()).or_default()
    }

    pub fn get(&self, name: &str) -> Option<&TableReport> {
        self.tables.get(name)
    }

    /// Whether every verified table matched.
    pub fn verified(&self) -> bool {
        self.tables
            .values()
            .all(|t| t.verified.as_ref().is_none_or(Verification::matches))
    }

    /// The report as an operator reads it.
    pub fn render(&self) -> String {
        let mut out = format!(
            "{:<40} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8}  check\n",
            "table", "read", "inserted", "updated", "unchanged", "deleted", "skipped", "warned"
        );
        for name in &self.order {
            let t = &self.tables[name];
            let check = match &t.verified {
                None => "-".to_string(),
                Some(v) if v.matches() => format!("ok ({} rows)", v.target_rows),
                Some(v) => format!(
                    "MISMATCH: sbm has {} rows (checksum {}), source says {} ({})",
                    v.target_rows, v.target_checksum, v.expected_rows, v.expected_checksum
                ),
            };
            out.push_str(&format!(
                "{:<40} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8}  {check}\n",
                name,
                t.read,
                t.inserted,
                t.updated,
                t.unchanged,
                t.deleted,
                t.skipped.len(),
                t.warnings.len()
            ));
        }
        for name in &self.order {
            let t = &self.tables[name];
            list(&mut out, name, "skipped", &t.skipped);
            list(&mut out, name, "imported with a warning", &t.warnings);
        }
        out
    }
}

fn list(out: &mut String, table: &str, what: &str, rows: &[(String, String)]) {
    if rows.is_empty() {
        return;
    }
    out.push_str(&format!("\n{table}: {} {what}:\n", rows.len()));
    for (id, reason) in rows.iter().take(LISTED_PER_TABLE) {
        out.push_str(&format!("  id {id}: {reason}\n"));
    }
    if rows.len() > LISTED_PER_TABLE {
        out.push_str(&format!(
            "  … and {} more (all in the import_run row of this run)\n",
            rows.len() - LISTED_PER_TABLE
        ));
    }
}

/// Progress of one table: a bar with rows/s on a terminal, a line every few seconds otherwise.
pub struct Progress {
    bar: Option<ProgressBar>,
    table: String,
    total: u64,
    done: u64,
    started: Instant,
    last_line: Instant,
}

const LINE_EVERY: Duration = Duration::from_secs(5);

impl Progress {
    pub fn new(table: &str, total: u64, quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(total);
            let style = ProgressStyle::with_template(
                "{prefix:<40} [{bar:30}] {pos}/{len} rows ({per_sec}, {eta} left)",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(table.to_string());
            bar
        });
        let now = Instant::now();
        Progress {
            bar,
            table: table.to_string(),
            total,
            done: 0,
            started: now,
            last_line: if quiet {
                now + Duration::from_secs(1 << 30)
            } else {
                now
            },
        }
    }

    pub fn inc(&mut self, rows: u64) {
        self.done += rows;
        if let Some(bar) = &self.bar {
            bar.inc(rows);
        } else if self.last_line.elapsed() >= LINE_EVERY {
            self.last_line = Instant::now();
            eprintln!("{}", self.line());
        }
    }

    fn line(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        format!(
            "{}: {}/{} rows ({:.0} rows/s)",
            self.table,
            self.done,
            self.total,
            self.done as f64 / secs
        )
    }

    pub fn finish(self, quiet: bool) {
        match self.bar {
            Some(bar) => bar.finish(),
            None if !quiet => eprintln!("{} done", self.line()),
            None => {}
        }
    }
}

/// An order-independent checksum of fingerprints: the sum of their SHA-256 prefixes.
#[derive(Debug, Default, Clone, Copy)]
pub struct Checksum {
    pub rows: u64,
    sum: u64,
}

impl Checksum {
    pub fn add(&mut self, fingerprint: &str) {
        let digest = Sha256::digest(fingerprint.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        self.sum = self.sum.wrapping_add(u64::from_be_bytes(first));
        self.rows += 1;
    }

    pub fn hex(&self) -> String {
        format!("{:016x}", self.sum)
    }
}
