//! The tick loop: every few seconds, fire each (schedule, zone) pair's due minute that has not
//! fired yet.
//!
//! A schedule's subscribers are grouped by zone: those that name none, or the schedule's own, are
//! evaluated in the schedule's zone; each other zone a subscriber names is its own group. A tick
//! is claimed by inserting its (schedule, zone, minute) row, in the same transaction as the sends
//! it enqueues with one statement, so racing workers and restarts fire it exactly once (the
//! groups due at the same minute share that transaction: [`fire_zones`]). After
//! downtime only the latest missed due minute within the catch-up window fires (subscribers
//! should not get several messages at once); earlier missed minutes are logged as skipped.
//!
//! A tick of more than `part_size` sends (`SBM_TICK_PART_SIZE`) is not written in its own
//! transaction: that would hold a million-row transaction (and on SQLite the one write lock) for
//! seconds before the first send could leave. The tick's transaction writes instead the first
//! job of [`PARALLEL_PARTS`] chains of `EnqueueSendPart` jobs, which split the subscription ids
//! between them. Each part writes the sends of its id range and the job of the next part of its
//! chain in one transaction, and finishes itself in it, so every subscriber of the tick gets one
//! send job, once, whatever crashes (the range of a part that did not commit is written when it
//! runs again). The workers start sending as soon as the first part commits.

use std::time::Duration;

use chrono::{DateTime, Utc};

use uuid::Uuid;

use super::{minute_of, Cron};
use crate::content::zone::{parse_zone, Tz};
use crate::jobs::{Claim, Job, Outcome};
use crate::model::content::Schedule;
use crate::store::ticks::{IdRange, Zones};
use crate::store::{self, ticks as sql, Conn, Db, Tx};

/// How far back missed ticks are looked for, to report them; older gaps are reported as one.
const LOOK_BACK: chrono::Duration = chrono::Duration::days(7);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    pub schedule_id: i64,
    pub timezone: String,
    pub minute: DateTime<Utc>,
    /// The sends of the tick: written with it, or due and left to its parts.
    pub enqueued: u64,
    /// How many chains of parts write them (0: the tick wrote them itself).
    pub parts: u64,
}

/// How many parts of one tick are written at once, each chain by whichever worker claims its
/// next part: enough to keep two cores' inserts busy beside the sends, few enough to leave the
/// pool's connections to the sends.
pub const PARALLEL_PARTS: u64 = 4;

/// What writing a tick's sends needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickSettings {
    /// The attempts of each send job.
    pub max_attempts: i32,
    /// Above this many sends a tick is written in parts (`SBM_TICK_PART_SIZE`).
    pub part_size: u64,
}

impl From<i32> for TickSettings {
    fn from(max_attempts: i32) -> Self {
        TickSettings {
            max_attempts,
            part_size: crate::config::DEFAULT_TICK_PART_SIZE,
        }
    }
}

/// The sends of one zone group (or of a fire on request), once the tick's transaction has
/// written them or their parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Enqueued {
    /// The sends written, or due and left to the parts.
    pub sends: u64,
    /// How many chains of parts were queued (0: the sends were written).
    pub parts: u64,
}

/// The subscribers of a schedule who share a zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneGroup {
    pub zone: String,
    /// The schedule's own zone: includes the subscribers that name no zone.
    pub unzoned: bool,
}

/// The schedule's zone groups: its own zone always (so its ticks are claimed as before zones
/// existed, subscribers or not), then each other zone a live subscriber names.
pub async fn zone_groups(conn: Conn<'_>, schedule: &Schedule) -> store::Result<Vec<ZoneGroup>> {
    let named = sql::subscription_zones(conn, schedule.id).await?;
    let own = ZoneGroup {
        zone: schedule.timezone.clone(),
        unzoned: true,
    };
    let others = named
        .into_iter()
        .filter(|zone| *zone != schedule.timezone)
        .map(|zone| ZoneGroup {
            zone,
            unzoned: false,
        });
    Ok(std::iter::once(own).chain(others).collect())
}

/// Fires the zone groups' ticks for `minute` now, in one transaction, each unless it already
/// fired. Returns, per group in order, its sends, or `None` when its tick was already taken.
///
/// One transaction for all of a schedule's groups due at the same minute: their sends become
/// visible to the workers together, and the job table's statistics are refreshed once for the
/// lot, not once per zone.
pub async fn fire_zones(
    db: &Db,
    settings: impl Into<TickSettings>,
    schedule_id: i64,
    groups: &[&ZoneGroup],
    minute: DateTime<Utc>,
) -> store::Result<Vec<Option<Enqueued>>> {
    let settings = settings.into();
    let now = store::now();
    let mut tx = db.begin().await?;
    let mut fired = Vec::with_capacity(groups.len());
    for group in groups {
        let zone = group.zone.as_str();
        if !sql::claim_tick(tx.conn(), schedule_id, zone, minute, now).await? {
            fired.push(None);
            continue;
        }
        let zones = if group.unzoned {
            Zones::OrUnzoned(zone)
        } else {
            Zones::Only(zone)
        };
        let enqueued =
            enqueue_or_split(&mut tx, &settings, schedule_id, zones, Some(minute)).await?;
        if enqueued.parts == 0 {
            sql::record_tick_enqueued(tx.conn(), schedule_id, zone, minute, enqueued.sends as i64)
                .await?;
        }
        fired.push(Some(enqueued));
    }
    let written = fired
        .iter()
        .flatten()
        .filter(|e| e.parts == 0)
        .map(|e| e.sends);
    refresh_statistics_after(&mut tx, written.sum()).await?;
    tx.commit().await?;
    Ok(fired)
}

/// Writes the sends of `zones` in `tx` when there are at most `part_size` of them. Otherwise
/// writes the first part job of each of [`PARALLEL_PARTS`] chains, which between them cover
/// every subscription id in parts of about `part_size` sends (ids are random UUIDs, so equal
/// ranges of ids hold about equal numbers of subscriptions; an uneven spread only makes some
/// parts larger, never loses or repeats one).
async fn enqueue_or_split(
    tx: &mut Tx,
    settings: &TickSettings,
    schedule_id: i64,
    zones: Zones<'_>,
    minute: Option<DateTime<Utc>>,
) -> store::Result<Enqueued> {
    let now = store::now();
    let due = sql::due_count(tx.conn(), schedule_id, zones).await?.max(0) as u64;
    if due <= settings.part_size.max(1) {
        let sends = sql::enqueue_sends(
            tx.conn(),
            schedule_id,
            zones,
            IdRange::ALL,
            settings.max_attempts,
            now,
        )
        .await?;
        return Ok(Enqueued { sends, parts: 0 });
    }
    let (zone, unzoned) = match zones {
        Zones::All => (None, false),
        Zones::Only(zone) => (Some(zone.to_owned()), false),
        Zones::OrUnzoned(zone) => (Some(zone.to_owned()), true),
    };
    let parts = due.div_ceil(settings.part_size.max(1));
    let chains = chains_of(parts, PARALLEL_PARTS);
    for (first, last, run_last) in &chains {
        let part = Job::EnqueueSendPart {
            schedule_id,
            zone: zone.clone(),
            unzoned,
            minute,
            first: Uuid::from_u128(*first),
            last: Uuid::from_u128(*last),
            run_last: Uuid::from_u128(*run_last),
        };
        crate::jobs::enqueue_with_attempts(tx, settings.max_attempts, &part).await?;
    }
    Ok(Enqueued {
        sends: due,
        parts: chains.len() as u64,
    })
}

/// The id space cut into `parts` equal ranges, dealt in order to at most `chains` chains: for
/// each chain, its first part's range and the last id of its last part.
fn chains_of(parts: u64, chains: u64) -> Vec<(u128, u128, u128)> {
    let parts = u128::from(parts.max(1));
    if parts == 1 {
        return vec![(0, u128::MAX, u128::MAX)];
    }
    let width = u128::MAX / parts + 1;
    let start_of = |part: u128| part * width;
    let end_of = |part: u128| {
        if part + 1 == parts {
            u128::MAX
        } else {
            start_of(part + 1) - 1
        }
    };
    let chains = u128::from(chains.max(1)).min(parts);
    (0..chains)
        .map(|chain| {
            let first_part = chain * parts / chains;
            let last_part = (chain + 1) * parts / chains - 1;
            (start_of(first_part), end_of(first_part), end_of(last_part))
        })
        .collect()
}

/// The range after a part of a chain, as wide as the part, up to the chain's end; `None` after
/// the chain's last part.
fn next_part(first: u128, last: u128, run_last: u128) -> Option<(u128, u128)> {
    let next = last.checked_add(1).filter(|next| *next <= run_last)?;
    let width = last - first;
    Some((next, next.saturating_add(width).min(run_last)))
}

/// A chain of parts of a large tick: the `EnqueueSendPart` job. Each part, in one transaction,
/// writes the sends of the subscriptions in its id range, adds them to its tick's count, and
/// records the next part as the job's own progress (renewing its lease), or finishes the job
/// after the chain's last part. A worker that takes the job over after a crash starts at the
/// first part that did not commit.
///
/// The parts of a chain run back to back in the one job rather than as a job each: a next
/// part's job would wait behind the sends written before it in the queue's order.
#[allow(clippy::too_many_arguments)]
pub async fn enqueue_part(
    db: &Db,
    claim: &Claim<'_>,
    max_attempts: i32,
    lease: Duration,
    schedule_id: i64,
    zone: Option<&str>,
    unzoned: bool,
    minute: Option<DateTime<Utc>>,
    mut range: IdRange,
    run_last: Uuid,
) -> Outcome {
    let zones = match (zone, unzoned) {
        (None, _) => Zones::All,
        (Some(zone), false) => Zones::Only(zone),
        (Some(zone), true) => Zones::OrUnzoned(zone),
    };
    loop {
        let mut tx = db.begin().await?;
        let now = store::now();
        let sends =
            sql::enqueue_sends(tx.conn(), schedule_id, zones, range, max_attempts, now).await?;
        if let (Some(zone), Some(minute)) = (zone, minute) {
            sql::add_tick_enqueued(tx.conn(), schedule_id, zone, minute, sends as i64).await?;
        }
        // The first part of a tick refreshes the planner's view of the job table, as a tick
        // written at once does: the other parts' claims are then not planned for an empty queue.
        if range.first.is_nil() {
            refresh_statistics_after(&mut tx, sends).await?;
        }
        let (first, last) = (range.first.as_u128(), range.last.as_u128());
        let Some((next_first, next_last)) = next_part(first, last, run_last.as_u128()) else {
            if claim.finish(&mut tx).await? {
                tx.commit().await?;
            }
            return Ok(());
        };
        let next = IdRange {
            first: Uuid::from_u128(next_first),
            last: Uuid::from_u128(next_last),
        };
        let progress = Job::EnqueueSendPart {
            schedule_id,
            zone: zone.map(str::to_owned),
            unzoned,
            minute,
            first: next.first,
            last: next.last,
            run_last,
        };
        if !claim
            .record_progress(&mut tx, &progress, crate::jobs::after(now, lease))
            .await?
        {
            return Ok(());
        }
        tx.commit().await?;
        tracing::debug!(schedule = schedule_id, zone, sends, "tick part enqueued");
        range = next;
    }
}

/// Sends this many or more at once refresh the job table's planner statistics, in the
/// transaction that writes them: before the jobs become visible, so that no worker plans its
/// claims for an empty queue.
const REFRESH_STATISTICS_AT: u64 = 10_000;

async fn refresh_statistics_after(tx: &mut Tx, enqueued: u64) -> store::Result<()> {
    if enqueued >= REFRESH_STATISTICS_AT {
        store::jobs::refresh_statistics(tx.conn()).await?;
    }
    Ok(())
}

/// Fires the schedule now, on request (the `FireSchedule` job), in the caller's transaction:
/// enqueues the send of every ready subscription on it, whatever its zone and without claiming
/// a tick (in parts when there are more than `part_size`).
pub async fn fire_on_request(
    tx: &mut Tx,
    settings: impl Into<TickSettings>,
    schedule_id: i64,
) -> store::Result<Enqueued> {
    let settings = settings.into();
    let enqueued = enqueue_or_split(tx, &settings, schedule_id, Zones::All, None).await?;
    if enqueued.parts == 0 {
        refresh_statistics_after(tx, enqueued.sends).await?;
    }
    Ok(enqueued)
}

/// Fires every zone group of the schedule for the UTC `minute`, whether or not it is due there
/// (for tests, benchmarks and one-off runs). Returns the sends enqueued, or `None` when every
/// group's tick was already taken.
pub async fn fire(
    db: &Db,
    settings: impl Into<TickSettings>,
    schedule_id: i64,
    minute: DateTime<Utc>,
) -> store::Result<Option<u64>> {
    let groups = {
        let mut conn = db.acquire().await?;
        match store::content::get_schedule(conn.conn(), schedule_id).await? {
            Some(schedule) => zone_groups(conn.conn(), &schedule).await?,
            None => return Ok(None),
        }
    };
    let groups: Vec<&ZoneGroup> = groups.iter().collect();
    let fired = fire_zones(db, settings, schedule_id, &groups, minute).await?;
    Ok(fired
        .into_iter()
        .flatten()
        .map(|e| e.sends)
        .reduce(|a, b| a + b))
}

/// Which minute of `schedule` to fire at `now` (in UTC), if any, and how many earlier due
/// minutes were missed and are skipped.
pub fn plan(
    schedule: &Schedule,
    cron: &Cron,
    last_tick: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    catch_up: Duration,
) -> (Option<DateTime<Utc>>, usize) {
    plan_in(schedule, cron, Tz::UTC, last_tick, now, catch_up)
}

/// [`plan`] for the schedule's fields evaluated in `zone`, with that zone's last tick.
pub fn plan_in(
    schedule: &Schedule,
    cron: &Cron,
    zone: Tz,
    last_tick: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    catch_up: Duration,
) -> (Option<DateTime<Utc>>, usize) {
    let now = minute_of(now);
    let window_start = now - chrono::Duration::from_std(catch_up).unwrap_or_default();
    // Never before the schedule existed, nor before its last tick, nor beyond the look-back.
    let mut from = minute_of(schedule.created_at).max(now - LOOK_BACK);
    if let Some(last) = last_tick {
        from = from.max(last + chrono::Duration::minutes(1));
    }
    if last_tick.is_none() {
        from = from.max(window_start);
    }
    let due = cron.due_minutes_in(zone, from, now);
    match due.last() {
        Some(latest) if *latest >= window_start => (Some(*latest), due.len() - 1),
        _ => (None, due.len()),
    }
}

/// One pass over every schedule and each of its zones.
pub async fn tick(
    db: &Db,
    settings: impl Into<TickSettings>,
    now: DateTime<Utc>,
    catch_up: Duration,
) -> store::Result<Vec<Fired>> {
    let schedules = {
        let mut conn = db.acquire().await?;
        sql::all_schedules(conn.conn()).await?
    };
    let settings = settings.into();
    let mut fired = Vec::new();
    for schedule in schedules {
        let cron = match Cron::parse(&schedule) {
            Ok(cron) => cron,
            Err(err) => {
                tracing::warn!(schedule = schedule.id, error = %err, "schedule cannot be evaluated");
                continue;
            }
        };
        let groups = {
            let mut conn = db.acquire().await?;
            zone_groups(conn.conn(), &schedule).await?
        };
        let mut due = Vec::new();
        for group in groups {
            if let Some(minute) = due_minute(db, &schedule, &cron, &group, now, catch_up).await? {
                due.push((group, minute));
            }
        }
        fired.extend(fire_due(db, settings, schedule.id, &due).await?);
    }
    Ok(fired)
}

/// The minute the zone group's tick is due at now, if any (reporting missed ones).
async fn due_minute(
    db: &Db,
    schedule: &Schedule,
    cron: &Cron,
    group: &ZoneGroup,
    now: DateTime<Utc>,
    catch_up: Duration,
) -> store::Result<Option<DateTime<Utc>>> {
    let zone = match parse_zone(&group.zone) {
        Ok(zone) => zone,
        Err(err) => {
            tracing::warn!(schedule = schedule.id, zone = %group.zone, error = %err, "zone cannot be evaluated");
            return Ok(None);
        }
    };
    let last = {
        let mut conn = db.acquire().await?;
        match sql::last_tick(conn.conn(), schedule.id, &group.zone).await? {
            // The schedule moved to this zone: its subscribers last got a message at its last
            // tick in the zone before, which no minute of this one may repeat.
            None if group.unzoned => sql::last_tick_any_zone(conn.conn(), schedule.id).await?,
            last => last,
        }
    };
    // A zone that has never fired for this schedule (its first subscriber just arrived) has no
    // missed minute to catch up: only a minute due now fires.
    let catch_up = if last.is_none() && !group.unzoned {
        Duration::ZERO
    } else {
        catch_up
    };
    let (minute, skipped) = plan_in(schedule, cron, zone, last, now, catch_up);
    if skipped > 0 {
        metrics::counter!("sbm_scheduler_ticks_skipped_total").increment(skipped as u64);
        tracing::warn!(
            schedule = schedule.id,
            zone = %group.zone,
            skipped,
            "missed ticks outside the catch-up window are skipped"
        );
    }
    Ok(minute)
}

/// Fires the due zone groups of one schedule, those due at the same minute together.
async fn fire_due(
    db: &Db,
    settings: TickSettings,
    schedule_id: i64,
    due: &[(ZoneGroup, DateTime<Utc>)],
) -> store::Result<Vec<Fired>> {
    let mut minutes: Vec<DateTime<Utc>> = due.iter().map(|(_, minute)| *minute).collect();
    minutes.sort();
    minutes.dedup();
    let mut fired = Vec::new();
    for minute in minutes {
        let groups: Vec<&ZoneGroup> = due
            .iter()
            .filter(|(_, m)| *m == minute)
            .map(|(group, _)| group)
            .collect();
        let counts = fire_zones(db, settings, schedule_id, &groups, minute).await?;
        for (group, enqueued) in groups.into_iter().zip(counts) {
            let Some(Enqueued { sends, parts }) = enqueued else {
                continue;
            };
            metrics::counter!("sbm_scheduler_ticks_total").increment(1);
            tracing::info!(schedule = schedule_id, zone = %group.zone, %minute, enqueued = sends, parts, "tick fired");
            fired.push(Fired {
                schedule_id,
                timezone: group.zone.clone(),
                minute,
                enqueued: sends,
                parts,
            });
        }
    }
    Ok(fired)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks every chain part by part, as the workers do.
    fn ranges_of(parts: u64, chains: u64) -> Vec<(u128, u128)> {
        let mut ranges = Vec::new();
        for (first, last, run_last) in chains_of(parts, chains) {
            let mut part = Some((first, last));
            while let Some((first, last)) = part {
                ranges.push((first, last));
                part = next_part(first, last, run_last);
            }
        }
        ranges
    }

    #[test]
    fn the_parts_of_a_tick_cover_every_id_once() {
        for parts in [1, 2, 3, 4, 5, 7, 20, 21, 64, 1_000] {
            for chains in [1, 2, 4, 9] {
                let ranges = ranges_of(parts, chains);
                assert_eq!(ranges.len() as u64, parts, "{parts} parts, {chains} chains");
                assert_eq!(ranges[0].0, 0);
                assert_eq!(ranges.last().unwrap().1, u128::MAX);
                for pair in ranges.windows(2) {
                    assert_eq!(pair[0].1 + 1, pair[1].0, "{parts} parts, {chains} chains");
                }
                assert!(ranges.iter().all(|(first, last)| first <= last));
            }
        }
    }

    #[test]
    fn a_tick_runs_at_most_the_parallel_parts_at_once() {
        assert_eq!(chains_of(20, PARALLEL_PARTS).len() as u64, PARALLEL_PARTS);
        assert_eq!(chains_of(3, PARALLEL_PARTS).len(), 3);
        // Equal parts: ids are random, so each holds about the same number of subscriptions.
        let ranges = ranges_of(20, PARALLEL_PARTS);
        let widths: Vec<u128> = ranges.iter().map(|(first, last)| last - first).collect();
        let (min, max) = (widths.iter().min().unwrap(), widths.iter().max().unwrap());
        assert!(max - min <= 20, "{widths:?}");
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn every_ten_minutes() -> Schedule {
        Schedule {
            id: 1,
            minute: "0,10,20,30,40,50".into(),
            hour: "*".into(),
            day_of_week: "*".into(),
            day_of_month: "*".into(),
            month_of_year: "*".into(),
            created_at: at("2026-11-01T00:00:00Z"),
            updated_at: at("2026-11-01T00:00:00Z"),
            timezone: "UTC".into(),
        }
    }

    #[test]
    fn the_due_minute_fires_once_it_has_come() {
        let s = every_ten_minutes();
        let cron = Cron::parse(&s).unwrap();
        let window = Duration::from_secs(15 * 60);
        let last = Some(at("2026-11-24T10:00:00Z"));
        assert_eq!(
            plan(&s, &cron, last, at("2026-11-24T10:09:59Z"), window),
            (None, 0)
        );
        assert_eq!(
            plan(&s, &cron, last, at("2026-11-24T10:10:05Z"), window),
            (Some(at("2026-11-24T10:10:00Z")), 0)
        );
        assert_eq!(
            plan(
                &s,
                &cron,
                Some(at("2026-11-24T10:10:00Z")),
                at("2026-11-24T10:10:30Z"),
                window
            ),
            (None, 0)
        );
    }

    #[test]
    fn after_downtime_only_the_latest_missed_tick_in_the_window_fires() {
        let s = every_ten_minutes();
        let cron = Cron::parse(&s).unwrap();
        let window = Duration::from_secs(15 * 60);
        // Down from 10:05 to 10:52: 10:10 … 10:50 were missed; 10:50 is inside the window.
        let (fire, skipped) = plan(
            &s,
            &cron,
            Some(at("2026-11-24T10:00:00Z")),
            at("2026-11-24T10:52:00Z"),
            window,
        );
        assert_eq!((fire, skipped), (Some(at("2026-11-24T10:50:00Z")), 4));
        // Down until 11:08 with a 5-minute window: 11:00 is too old; nothing fires, all skipped.
        let (fire, skipped) = plan(
            &s,
            &cron,
            Some(at("2026-11-24T10:00:00Z")),
            at("2026-11-24T11:08:00Z"),
            Duration::from_secs(300),
        );
        assert_eq!((fire, skipped), (None, 6));
    }

    #[test]
    fn a_zone_fires_its_local_minute_once_across_the_fall_back_hour() {
        let mut s = every_ten_minutes();
        s.minute = "30".into();
        s.hour = "1".into();
        s.timezone = "Europe/London".into();
        let cron = Cron::parse(&s).unwrap();
        let london = crate::content::zone::parse_zone("Europe/London").unwrap();
        let window = Duration::from_secs(15 * 60);
        // 01:30 BST (00:30Z) fires; 01:30 GMT an hour later (01:30Z) is the same local minute.
        let first = plan_in(&s, &cron, london, None, at("2027-10-31T00:30:10Z"), window);
        assert_eq!(first, (Some(at("2027-10-31T00:30:00Z")), 0));
        let again = plan_in(
            &s,
            &cron,
            london,
            first.0,
            at("2027-10-31T01:30:10Z"),
            window,
        );
        assert_eq!(again, (None, 0));
        // In UTC the same fields fire at 01:30Z.
        assert_eq!(
            plan(&s, &cron, first.0, at("2027-10-31T01:30:10Z"), window),
            (Some(at("2027-10-31T01:30:00Z")), 0)
        );
    }

    #[test]
    fn a_schedule_never_fires_for_minutes_before_it_existed() {
        let mut s = every_ten_minutes();
        s.created_at = at("2026-11-24T10:05:00Z");
        let cron = Cron::parse(&s).unwrap();
        assert_eq!(
            plan(
                &s,
                &cron,
                None,
                at("2026-11-24T10:07:00Z"),
                Duration::from_secs(3600)
            ),
            (None, 0)
        );
        assert_eq!(
            plan(
                &s,
                &cron,
                None,
                at("2026-11-24T10:10:00Z"),
                Duration::from_secs(3600)
            ),
            (Some(at("2026-11-24T10:10:00Z")), 0)
        );
    }
}
