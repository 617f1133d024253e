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

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{minute_of, Cron};
use crate::content::zone::{parse_zone, Tz};
use crate::model::content::Schedule;
use crate::store::{self, ticks as sql, Conn, Db, Tx};

/// How far back missed ticks are looked for, to report them; older gaps are reported as one.
const LOOK_BACK: chrono::Duration = chrono::Duration::days(7);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    pub schedule_id: i64,
    pub timezone: String,
    pub minute: DateTime<Utc>,
    pub enqueued: u64,
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
/// fired. Returns, per group in order, how many sends it enqueued, or `None` when its tick was
/// already taken.
///
/// One transaction for all of a schedule's groups due at the same minute: their sends become
/// visible to the workers together, and the job table's statistics are refreshed once for the
/// lot, not once per zone.
pub async fn fire_zones(
    db: &Db,
    max_attempts: i32,
    schedule_id: i64,
    groups: &[&ZoneGroup],
    minute: DateTime<Utc>,
) -> store::Result<Vec<Option<u64>>> {
    let now = store::now();
    let mut tx = db.begin().await?;
    let mut fired = Vec::with_capacity(groups.len());
    for group in groups {
        let zone = group.zone.as_str();
        if !sql::claim_tick(tx.conn(), schedule_id, zone, minute, now).await? {
            fired.push(None);
            continue;
        }
        let enqueued = sql::enqueue_zone_sends(
            tx.conn(),
            schedule_id,
            zone,
            group.unzoned,
            max_attempts,
            now,
        )
        .await?;
        sql::record_tick_enqueued(tx.conn(), schedule_id, zone, minute, enqueued as i64).await?;
        fired.push(Some(enqueued));
    }
    refresh_statistics_after(&mut tx, fired.iter().flatten().sum()).await?;
    tx.commit().await?;
    Ok(fired)
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
/// a tick. Returns how many sends it enqueued.
pub async fn fire_on_request(
    tx: &mut Tx,
    max_attempts: i32,
    schedule_id: i64,
) -> store::Result<u64> {
    let enqueued =
        sql::enqueue_schedule_sends(tx.conn(), schedule_id, max_attempts, store::now()).await?;
    refresh_statistics_after(tx, enqueued).await?;
    Ok(enqueued)
}

/// Fires every zone group of the schedule for the UTC `minute`, whether or not it is due there
/// (for tests, benchmarks and one-off runs). Returns the sends enqueued, or `None` when every
/// group's tick was already taken.
pub async fn fire(
    db: &Db,
    max_attempts: i32,
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
    let fired = fire_zones(db, max_attempts, schedule_id, &groups, minute).await?;
    Ok(fired.into_iter().flatten().reduce(|a, b| a + b))
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
    max_attempts: i32,
    now: DateTime<Utc>,
    catch_up: Duration,
) -> store::Result<Vec<Fired>> {
    let schedules = {
        let mut conn = db.acquire().await?;
        sql::all_schedules(conn.conn()).await?
    };
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
        fired.extend(fire_due(db, max_attempts, schedule.id, &due).await?);
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
    max_attempts: i32,
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
        let counts = fire_zones(db, max_attempts, schedule_id, &groups, minute).await?;
        for (group, enqueued) in groups.into_iter().zip(counts) {
            let Some(enqueued) = enqueued else { continue };
            metrics::counter!("sbm_scheduler_ticks_total").increment(1);
            tracing::info!(schedule = schedule_id, zone = %group.zone, %minute, enqueued, "tick fired");
            fired.push(Fired {
                schedule_id,
                timezone: group.zone.clone(),
                minute,
                enqueued,
            });
        }
    }
    Ok(fired)
}

#[cfg(test)]
mod tests {
    use super::*;

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
