//! Which release of the Django service a source database was made by, from the tables and
//! columns it has and the migrations Django recorded.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::PgConnection;

/// Columns every supported release (0.9 of 2017 to 0.13 of 2019) has, per table.
const REQUIRED: &[(&str, &[&str])] = &[
    (
        "contentstore_schedule",
        &[
            "id",
            "minute",
            "hour",
            "day_of_week",
            "day_of_month",
            "month_of_year",
        ],
    ),
    (
        "contentstore_messageset",
        &[
            "id",
            "short_name",
            "notes",
            "channel",
            "next_set_id",
            "default_schedule_id",
            "content_type",
            "created_at",
            "updated_at",
        ],
    ),
    (
        "contentstore_binarycontent",
        &["id", "content", "created_at", "updated_at"],
    ),
    (
        "contentstore_message",
        &[
            "id",
            "messageset_id",
            "sequence_number",
            "lang",
            "text_content",
            "binary_content_id",
            "created_at",
            "updated_at",
        ],
    ),
    (
        "subscriptions_subscription",
        &[
            "id",
            "identity",
            "version",
            "messageset_id",
            "initial_sequence_number",
            "next_sequence_number",
            "lang",
            "active",
            "completed",
            "schedule_id",
            "process_status",
            "metadata",
            "created_at",
            "updated_at",
            "created_by_id",
            "updated_by_id",
        ],
    ),
    (
        "subscriptions_subscriptionsendfailure",
        &["id", "subscription_id", "task_id", "initiated_at", "reason"],
    ),
    (
        "auth_user",
        &[
            "id",
            "username",
            "email",
            "is_staff",
            "is_superuser",
            "is_active",
            "date_joined",
        ],
    ),
    ("authtoken_token", &["key", "user_id", "created"]),
    ("django_migrations", &["app", "name"]),
];

/// The migrations of `contentstore` and `subscriptions` up to 0.13.1; a source with any other
/// migration of these apps applied has a layout this importer has not seen.
const KNOWN_MIGRATIONS: &[(&str, &[&str])] = &[
    (
        "contentstore",
        &[
            "0001_initial",
            "0002_messageset_content_type",
            "0003_auto_20160513_1115",
            "0004_auto_20160810_0916",
            "0005_auto_20160912_0923",
            "0006_messageset_channel",
            "0007_auto_20171102_0950",
            "0008_schedule_scheduler_schedule_id",
            "0009_add_messageset_label",
            "0010_auto_20181126_1104",
            "0011_message_metadata",
        ],
    ),
    (
        "subscriptions",
        &[
            "0001_initial",
            "0002_auto_20160224_0822",
            "0003_auto_20160322_1534",
            "0004_subscription_initial_sequence_number",
            "0005_subscriptionsendfailure",
            "0006_auto_20170727_0820",
            "0007_auto_20171102_0950",
            "0008_resendrequest",
            "0009_auto_20181126_1111",
            "0010_add_can_find_behind_subscriptions_permission",
        ],
    ),
];

/// What the source has beyond the 0.9 layout (each came with a 0.10–0.13 migration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Layout {
    /// `contentstore_schedule.scheduler_schedule_id` (contentstore 0008).
    pub schedule_scheduler_id: bool,
    /// `contentstore_messageset.label` (contentstore 0009).
    pub message_set_label: bool,
    /// `contentstore_message.metadata` (contentstore 0011).
    pub message_metadata: bool,
}

#[derive(Debug, Clone)]
pub struct Schema {
    pub layout: Layout,
    /// The last applied migration of each app, e.g. "contentstore 0011_message_metadata".
    pub migrations: Vec<String>,
}

impl Schema {
    /// "0.13 (2019)", "0.9 (2017)" or the intermediate layout, with the last migrations.
    pub fn describe(&self) -> String {
        let l = self.layout;
        let release = match (
            l.schedule_scheduler_id,
            l.message_set_label,
            l.message_metadata,
        ) {
            (true, true, true) => "0.13 layout (2019)",
            (false, false, false) => "0.9 layout (2017)",
            _ => "0.10-0.12 layout (2018)",
        };
        format!("{release}; {}", self.migrations.join(", "))
    }
}

/// Reads the source's catalogue and names the layout, or says what is missing or unknown.
pub async fn detect(conn: &mut PgConnection) -> anyhow::Result<Schema> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "select table_name::text, column_name::text from information_schema.columns \
         where table_schema = current_schema()",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut columns: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (table, column) in rows {
        columns.entry(table).or_default().insert(column);
    }
    check_required(&columns)?;
    let has = |table: &str, column: &str| columns.get(table).is_some_and(|c| c.contains(column));
    let layout = Layout {
        schedule_scheduler_id: has("contentstore_schedule", "scheduler_schedule_id"),
        message_set_label: has("contentstore_messageset", "label"),
        message_metadata: has("contentstore_message", "metadata"),
    };
    let applied: Vec<(String, String)> = sqlx::query_as(
        "select app::text, name::text from django_migrations \
         where app in ('contentstore', 'subscriptions') order by app, name",
    )
    .fetch_all(&mut *conn)
    .await?;
    let migrations = check_migrations(&applied)?;
    Ok(Schema { layout, migrations })
}

fn check_required(columns: &BTreeMap<String, BTreeSet<String>>) -> anyhow::Result<()> {
    let mut missing = Vec::new();
    for (table, wanted) in REQUIRED {
        match columns.get(*table) {
            None => missing.push(format!("table {table}")),
            Some(have) => missing.extend(
                wanted
                    .iter()
                    .filter(|c| !have.contains(**c))
                    .map(|c| format!("column {table}.{c}")),
            ),
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(
            "the source is not a seed-stage-based-messaging database of a known release \
             (0.9 to 0.13): missing {}",
            missing.join(", ")
        )
    }
}

fn check_migrations(applied: &[(String, String)]) -> anyhow::Result<Vec<String>> {
    let mut last = Vec::new();
    for (app, known) in KNOWN_MIGRATIONS {
        let mine: Vec<&str> = applied
            .iter()
            .filter(|(a, _)| a == app)
            .map(|(_, n)| n.as_str())
            .collect();
        if let Some(unknown) = mine.iter().find(|n| !known.contains(n)) {
            anyhow::bail!(
                "the source has migration {app}.{unknown} applied, which no release from 0.9 \
                 to 0.13 has: its layout is unknown to this importer"
            );
        }
        match mine.last() {
            Some(name) => last.push(format!("{app} {name}")),
            None => {
                anyhow::bail!("the source has no {app} migrations recorded in django_migrations")
            }
        }
    }
    Ok(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(cols: &[&str]) -> BTreeSet<String> {
        cols.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn a_missing_table_and_column_are_named() {
        let mut columns: BTreeMap<String, BTreeSet<String>> = REQUIRED
            .iter()
            .map(|(t, c)| (t.to_string(), table(c)))
            .collect();
        assert!(check_required(&columns).is_ok());
        columns.remove("authtoken_token");
        columns
            .get_mut("contentstore_message")
            .unwrap()
            .remove("lang");
        let err = check_required(&columns).unwrap_err().to_string();
        assert!(err.contains("table authtoken_token"), "{err}");
        assert!(err.contains("column contentstore_message.lang"), "{err}");
    }

    #[test]
    fn unknown_migrations_are_refused() {
        let applied = |extra: &str| {
            vec![
                ("contentstore".to_string(), "0001_initial".to_string()),
                ("contentstore".to_string(), extra.to_string()),
                ("subscriptions".to_string(), "0001_initial".to_string()),
            ]
        };
        assert_eq!(
            check_migrations(&applied("0011_message_metadata")).unwrap(),
            vec![
                "contentstore 0011_message_metadata",
                "subscriptions 0001_initial"
            ]
        );
        let err = check_migrations(&applied("0012_something")).unwrap_err();
        assert!(err.to_string().contains("contentstore.0012_something"));
    }
}
