//! Stage-based content: schedules, message sets, messages and binary content. The functions here
//! are what handlers call; each takes the caller's transaction and enforces the business rules
//! (cron fields, language codes, references, uniqueness, refusing to delete what is in use).

pub mod cron;
pub mod media;
/// Old path of [`crate::model::content`], kept while the step-7 branches merge.
pub use crate::model::content as model;
pub mod zone;

pub use crate::domain::{Error, Result};
use crate::effects::{follow, Change, Effects, Op};
use crate::model::content::{
    BinaryContent, Message, MessageFields, MessageSet, MessageSetFields, Schedule, ScheduleFields,
    StoredFile, Usage, CONTENT_TYPES,
};
use crate::store::content::{self as sql, Table};
use crate::store::{self, Tx};
use crate::validation::{missing_pk, FieldErrors, NON_FIELD_ERRORS};

pub(crate) async fn check_reference(
    tx: &mut Tx,
    errors: &mut FieldErrors,
    field: &str,
    table: Table,
    id: i64,
) -> Result<()> {
    if !errors.has(field) && !sql::exists(tx.conn(), table, id).await? {
        errors.add(field, missing_pk(id));
    }
    Ok(())
}

fn refuse_if_used(what: &str, usage: Usage) -> Result<()> {
    if usage.is_empty() {
        Ok(())
    } else {
        Err(Error::InUse(format!(
            "Cannot delete this {what}: it is still used by {}. Remove or change those first.",
            usage.describe()
        )))
    }
}

// ---- schedules ----

fn validate_schedule(effects: &Effects, f: &ScheduleFields) -> Result<(), FieldErrors> {
    let mut errors = FieldErrors::new();
    let values = [
        &f.minute,
        &f.hour,
        &f.day_of_week,
        &f.day_of_month,
        &f.month_of_year,
    ];
    for (field, value) in cron::CronField::ALL.into_iter().zip(values) {
        if let Err(message) = cron::parse(field, value) {
            errors.add(field.name(), message);
        }
    }
    if let Err(message) = zone::check_zone(&f.timezone, effects.scheduler_mode) {
        errors.add("timezone", message);
    }
    errors.into_result()
}

pub async fn create_schedule(
    tx: &mut Tx,
    effects: &Effects,
    f: &ScheduleFields,
) -> Result<Schedule> {
    validate_schedule(effects, f)?;
    let schedule = sql::insert_schedule(tx.conn(), f, store::now()).await?;
    follow(tx, effects, Change::Schedule(Op::Created, &schedule)).await?;
    Ok(schedule)
}

pub async fn update_schedule(
    tx: &mut Tx,
    effects: &Effects,
    id: i64,
    f: &ScheduleFields,
) -> Result<Schedule> {
    validate_schedule(effects, f)?;
    let schedule = sql::update_schedule(tx.conn(), id, f, store::now()).await?;
    follow(tx, effects, Change::Schedule(Op::Updated, &schedule)).await?;
    Ok(schedule)
}

pub async fn delete_schedule(tx: &mut Tx, effects: &Effects, id: i64) -> Result<()> {
    let schedule = sql::get_schedule(tx.conn(), id)
        .await?
        .ok_or(Error::NotFound)?;
    let sets = sql::count_message_sets_on_schedule(tx.conn(), id).await?;
    let subscriptions = crate::store::subscriptions::count_on_schedule(tx.conn(), id).await?;
    refuse_if_used(
        "schedule",
        Usage(vec![
            ("message set(s) as default_schedule", sets),
            ("subscription(s)", subscriptions),
        ]),
    )?;
    sql::delete_schedule(tx.conn(), id).await?;
    follow(tx, effects, Change::Schedule(Op::Deleted, &schedule)).await?;
    Ok(())
}

// ---- message sets ----

async fn validate_message_set(tx: &mut Tx, id: Option<i64>, f: &MessageSetFields) -> Result<()> {
    let mut errors = FieldErrors::new();
    if !CONTENT_TYPES.contains(&f.content_type.as_str()) {
        errors.add(
            "content_type",
            format!("\"{}\" is not a valid choice.", f.content_type),
        );
    }
    check_reference(
        tx,
        &mut errors,
        "default_schedule",
        Table::Schedule,
        f.default_schedule_id,
    )
    .await?;
    if let Some(next) = f.next_set_id {
        if Some(next) == id {
            errors.add("next_set", "A message set cannot follow itself.");
        }
        check_reference(tx, &mut errors, "next_set", Table::MessageSet, next).await?;
    }
    zone::check_window(
        f.send_window_start.as_deref(),
        f.send_window_end.as_deref(),
        &mut errors,
    );
    Ok(errors.into_result()?)
}

pub async fn create_message_set(
    tx: &mut Tx,
    effects: &Effects,
    f: &MessageSetFields,
) -> Result<MessageSet> {
    validate_message_set(tx, None, f).await?;
    let set = sql::insert_message_set(tx.conn(), f, store::now()).await?;
    follow(tx, effects, Change::MessageSet(Op::Created, &set)).await?;
    Ok(set)
}

pub async fn update_message_set(
    tx: &mut Tx,
    effects: &Effects,
    id: i64,
    f: &MessageSetFields,
) -> Result<MessageSet> {
    validate_message_set(tx, Some(id), f).await?;
    let set = sql::update_message_set(tx.conn(), id, f, store::now()).await?;
    follow(tx, effects, Change::MessageSet(Op::Updated, &set)).await?;
    Ok(set)
}

pub async fn delete_message_set(tx: &mut Tx, effects: &Effects, id: i64) -> Result<()> {
    let set = sql::get_message_set(tx.conn(), id)
        .await?
        .ok_or(Error::NotFound)?;
    let messages = sql::count_messages_in_set(tx.conn(), id).await?;
    let followers = sql::count_sets_followed_by(tx.conn(), id).await?;
    let subscriptions = crate::store::subscriptions::count_on_message_set(tx.conn(), id).await?;
    refuse_if_used(
        "message set",
        Usage(vec![
            ("message(s)", messages),
            ("message set(s) as next_set", followers),
            ("subscription(s)", subscriptions),
        ]),
    )?;
    sql::delete_message_set(tx.conn(), id).await?;
    follow(tx, effects, Change::MessageSet(Op::Deleted, &set)).await?;
    Ok(())
}

// ---- messages ----

/// Language codes as the original used them: an ISO 639-3 code, optionally with a country
/// (`eng`, `eng_ZA`, `zul_ZA`). At most six characters, the original's column width.
pub fn is_language_code(lang: &str) -> bool {
    let bytes = lang.as_bytes();
    let letters = |s: &[u8]| s.iter().all(u8::is_ascii_alphabetic);
    match bytes.len() {
        3 => letters(bytes),
        6 => letters(&bytes[..3]) && bytes[3] == b'_' && letters(&bytes[4..]),
        _ => false,
    }
}

pub const LANGUAGE_ERROR: &str =
    "Enter an ISO 639-3 language code, optionally with a country code, such as eng or eng_ZA.";

async fn validate_message(tx: &mut Tx, f: &MessageFields) -> Result<()> {
    let mut errors = FieldErrors::new();
    if f.sequence_number < 1 {
        errors.add(
            "sequence_number",
            "Ensure this value is greater than or equal to 1.",
        );
    }
    if !is_language_code(&f.lang) {
        errors.add("lang", LANGUAGE_ERROR);
    }
    check_reference(
        tx,
        &mut errors,
        "messageset",
        Table::MessageSet,
        f.message_set_id,
    )
    .await?;
    match f.binary_content_id {
        Some(binary) => {
            check_reference(
                tx,
                &mut errors,
                "binary_content",
                Table::BinaryContent,
                binary,
            )
            .await?
        }
        None if f.text_content.as_deref().unwrap_or("").is_empty() => {
            errors.add(NON_FIELD_ERRORS, "Messages must have text or file attached")
        }
        None => {}
    }
    Ok(errors.into_result()?)
}

pub async fn create_message(tx: &mut Tx, effects: &Effects, f: &MessageFields) -> Result<Message> {
    validate_message(tx, f).await?;
    let message = sql::insert_message(tx.conn(), f, store::now()).await?;
    follow(tx, effects, Change::Message(Op::Created, &message)).await?;
    Ok(message)
}

pub async fn update_message(
    tx: &mut Tx,
    effects: &Effects,
    id: i64,
    f: &MessageFields,
) -> Result<Message> {
    validate_message(tx, f).await?;
    let message = sql::update_message(tx.conn(), id, f, store::now()).await?;
    follow(tx, effects, Change::Message(Op::Updated, &message)).await?;
    Ok(message)
}

pub async fn delete_message(tx: &mut Tx, effects: &Effects, id: i64) -> Result<()> {
    let message = sql::get_message(tx.conn(), id)
        .await?
        .ok_or(Error::NotFound)?;
    sql::delete_message(tx.conn(), id).await?;
    follow(tx, effects, Change::Message(Op::Deleted, &message)).await?;
    Ok(())
}

// ---- binary content ----

pub async fn create_binary_content(
    tx: &mut Tx,
    effects: &Effects,
    file: &StoredFile,
) -> Result<BinaryContent> {
    let record = sql::insert_binary_content(tx.conn(), file, store::now()).await?;
    follow(tx, effects, Change::BinaryContent(Op::Created, &record)).await?;
    Ok(record)
}

/// Points the record at a newly stored file; returns the record and the path of the file it
/// replaced, which the caller removes once the transaction has committed.
pub async fn replace_binary_content(
    tx: &mut Tx,
    effects: &Effects,
    id: i64,
    file: &StoredFile,
) -> Result<(BinaryContent, String)> {
    let old = sql::get_binary_content(tx.conn(), id)
        .await?
        .ok_or(Error::NotFound)?;
    let new = sql::update_binary_content(tx.conn(), id, file, store::now()).await?;
    follow(tx, effects, Change::BinaryContent(Op::Updated, &new)).await?;
    Ok((new, old.path))
}

/// Deletes the record; returns the path of its file, which the caller removes after commit.
pub async fn delete_binary_content(tx: &mut Tx, effects: &Effects, id: i64) -> Result<String> {
    let record = sql::get_binary_content(tx.conn(), id)
        .await?
        .ok_or(Error::NotFound)?;
    let messages = sql::count_messages_using_binary(tx.conn(), id).await?;
    refuse_if_used("binary content", Usage(vec![("message(s)", messages)]))?;
    sql::delete_binary_content(tx.conn(), id).await?;
    follow(tx, effects, Change::BinaryContent(Op::Deleted, &record)).await?;
    Ok(record.path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_codes_look_like_the_originals() {
        for good in ["eng", "eng_ZA", "zul_ZA", "afr_ZA", "xho"] {
            assert!(is_language_code(good), "{good}");
        }
        for bad in [
            "", "en", "english", "eng-ZA", "eng_", "eng_Z4", "en_ZA", "eng_ZAF", "12_345",
        ] {
            assert!(!is_language_code(bad), "{bad}");
        }
    }
}
