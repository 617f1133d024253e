//! A schedule's fields evaluated in a time zone: the fields match local wall-clock minutes, and
//! each matching local minute fires at the instant [`resolve`] gives it (once for a minute a
//! fall-back repeats, at the first valid minute after a spring-forward gap for one it skips).
//! Several skipped minutes resolve to one instant and fire once.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Timelike, Utc};

use super::{minute_of, Cron};
use crate::content::zone::{local, parse_zone, resolve, Tz};
use crate::model::content::Schedule;
use crate::wire::content::DueTimeOut;

impl Cron {
    fn day_matches(&self, day: NaiveDate) -> bool {
        self.month_of_year.contains(day.month() as u8)
            && self.day_of_month.contains(day.day() as u8)
            && self
                .day_of_week
                .contains(day.weekday().number_from_monday() as u8)
    }

    /// The first matching time of day at or after `from` on a day that matches.
    fn first_time_from(&self, from: NaiveTime) -> Option<NaiveTime> {
        for hour in from.hour()..24 {
            if !self.hour.contains(hour as u8) {
                continue;
            }
            let first = if hour == from.hour() {
                from.minute()
            } else {
                0
            };
            for minute in first..60 {
                if self.minute.contains(minute as u8) {
                    return NaiveTime::from_hms_opt(hour, minute, 0);
                }
            }
        }
        None
    }

    /// The first instant after `t` at which the schedule fires in `zone`, within a leap
    /// cycle's worth of days; `None` for fields that never meet.
    pub fn next_after_in(&self, zone: Tz, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let after = minute_of(t);
        // Local minutes up to `after`'s own resolve to `after` or earlier, so the search
        // starts at the local minute after it.
        let start = local(zone, after).with_second(0)? + Duration::minutes(1);
        let mut day = start.date();
        let mut from = start.time();
        for _ in 0..=366 * 4 {
            if self.day_matches(day) {
                while let Some(time) = self.first_time_from(from) {
                    match resolve(zone, day.and_time(time)) {
                        Some(fires) if fires > after => return Some(fires),
                        // The second pass of a repeated hour: its minutes fired the first time.
                        _ => match time.overflowing_add_signed(Duration::minutes(1)) {
                            (next, 0) => from = next,
                            _ => break,
                        },
                    }
                }
            }
            day = day.succ_opt()?;
            from = NaiveTime::MIN;
        }
        None
    }

    /// The instants in `from..=to` (minute starts) at which the schedule fires in `zone`,
    /// oldest first.
    pub fn due_minutes_in(
        &self,
        zone: Tz,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Vec<DateTime<Utc>> {
        let mut due = Vec::new();
        let mut cursor = from - Duration::minutes(1);
        while let Some(next) = self.next_after_in(zone, cursor) {
            if next > to {
                break;
            }
            due.push(next);
            cursor = next;
        }
        due
    }

    /// The next `n` instants after `t` at which the schedule fires in `zone`.
    pub fn upcoming_in(&self, zone: Tz, t: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut due = Vec::with_capacity(n);
        let mut cursor = t;
        while due.len() < n {
            let Some(next) = self.next_after_in(zone, cursor) else {
                break;
            };
            due.push(next);
            cursor = next;
        }
        due
    }
}

/// The schedule's next `n` due times after `now`, in its own zone.
pub fn due_times(schedule: &Schedule, now: DateTime<Utc>, n: usize) -> Vec<DueTimeOut> {
    let (Ok(cron), Ok(zone)) = (Cron::parse(schedule), parse_zone(&schedule.timezone)) else {
        return Vec::new();
    };
    cron.upcoming_in(zone, now, n)
        .into_iter()
        .map(|t| DueTimeOut::new(zone, t))
        .collect()
}

/// The next five due times a schedule shows (`next_due`), from now.
pub fn next_due(schedule: &Schedule) -> Vec<DueTimeOut> {
    due_times(schedule, crate::store::now(), 5)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::zone::parse_zone;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn cron(minute: &str, hour: &str, dow: &str, dom: &str, month: &str) -> Cron {
        Cron::from_fields([minute, hour, dow, dom, month]).unwrap()
    }

    /// (zone, schedule, after, expected next firings in UTC)
    type Case = (&'static str, Cron, &'static str, &'static [&'static str]);

    #[test]
    fn schedules_fire_at_local_times_across_daylight_saving_in_both_hemispheres() {
        let daily = |minute: &str, hour: &str| cron(minute, hour, "*", "*", "*");
        let cases: Vec<Case> = vec![
            // London, spring forward 2027-03-28 01:00 GMT → 02:00 BST: 08:00 moves from 08:00Z
            // to 07:00Z; 01:30 does not exist and fires at 02:00 BST, once.
            (
                "Europe/London",
                daily("0", "8"),
                "2027-03-26T12:00:00Z",
                &[
                    "2027-03-27T08:00:00Z",
                    "2027-03-28T07:00:00Z",
                    "2027-03-29T07:00:00Z",
                ],
            ),
            (
                "Europe/London",
                daily("30", "1"),
                "2027-03-27T12:00:00Z",
                &["2027-03-28T01:00:00Z", "2027-03-29T00:30:00Z"],
            ),
            // Two skipped minutes and the first real one fire once, together.
            (
                "Europe/London",
                cron("15,45", "1", "*", "*", "*"),
                "2027-03-27T12:00:00Z",
                &[
                    "2027-03-28T01:00:00Z",
                    "2027-03-29T00:15:00Z",
                    "2027-03-29T00:45:00Z",
                ],
            ),
            // London, fall back 2027-10-31 02:00 BST → 01:00 GMT: 01:30 happens twice, fires once.
            (
                "Europe/London",
                daily("30", "1"),
                "2027-10-30T12:00:00Z",
                &["2027-10-31T00:30:00Z", "2027-11-01T01:30:00Z"],
            ),
            // Every minute through the repeated hour: the second pass fires nothing.
            (
                "Europe/London",
                cron("*", "1", "*", "31", "10"),
                "2027-10-31T00:58:00Z",
                &["2027-10-31T00:59:00Z", "2028-10-31T01:00:00Z"],
            ),
            // Sydney (southern hemisphere): spring forward 2026-10-04 02:00 AEST → 03:00 AEDT.
            (
                "Australia/Sydney",
                daily("30", "2"),
                "2026-10-02T00:00:00Z",
                &[
                    "2026-10-02T16:30:00Z",
                    "2026-10-03T16:00:00Z",
                    "2026-10-04T15:30:00Z",
                ],
            ),
            // Sydney fall back 2027-04-04 03:00 AEDT → 02:00 AEST: 02:30 once, the first.
            (
                "Australia/Sydney",
                daily("30", "2"),
                "2027-04-02T12:00:00Z",
                &[
                    "2027-04-02T15:30:00Z",
                    "2027-04-03T15:30:00Z",
                    "2027-04-04T16:30:00Z",
                ],
            ),
            (
                "Australia/Sydney",
                daily("0", "8"),
                "2027-04-02T12:00:00Z",
                &[
                    "2027-04-02T21:00:00Z",
                    "2027-04-03T22:00:00Z",
                    "2027-04-04T22:00:00Z",
                ],
            ),
            // São Paulo kept daylight saving until 2019 (clocks went 00:00 → 01:00 on
            // 2018-11-04 and back 00:00 → 23:00 on 2019-02-17), and has had none since.
            (
                "America/Sao_Paulo",
                daily("30", "0"),
                "2018-11-02T12:00:00Z",
                &[
                    "2018-11-03T03:30:00Z",
                    "2018-11-04T03:00:00Z",
                    "2018-11-05T02:30:00Z",
                ],
            ),
            (
                "America/Sao_Paulo",
                daily("30", "23"),
                "2019-02-15T12:00:00Z",
                &[
                    "2019-02-16T01:30:00Z",
                    "2019-02-17T01:30:00Z",
                    "2019-02-18T02:30:00Z",
                ],
            ),
            (
                "America/Sao_Paulo",
                daily("0", "8"),
                "2026-11-01T00:00:00Z",
                &["2026-11-01T11:00:00Z", "2026-11-02T11:00:00Z"],
            ),
            // Leap days, in a zone ahead of UTC: 29 February 08:00 in Johannesburg.
            (
                "Africa/Johannesburg",
                cron("0", "8", "*", "29", "2"),
                "2026-11-24T00:00:00Z",
                &["2028-02-29T06:00:00Z", "2032-02-29T06:00:00Z"],
            ),
            // Behind UTC: local 29 February 23:00 is 1 March in UTC.
            (
                "America/Sao_Paulo",
                cron("0", "23", "*", "29", "2"),
                "2026-11-24T00:00:00Z",
                &["2028-03-01T02:00:00Z"],
            ),
            // Day of week is the local day: Mondays 06:00 in Sydney are Sunday evenings in UTC.
            (
                "Australia/Sydney",
                cron("0", "6", "1", "*", "*"),
                "2027-01-01T00:00:00Z",
                &["2027-01-03T19:00:00Z", "2027-01-10T19:00:00Z"],
            ),
            // UTC is unchanged.
            (
                "UTC",
                daily("0", "8"),
                "2027-03-27T12:00:00Z",
                &["2027-03-28T08:00:00Z", "2027-03-29T08:00:00Z"],
            ),
        ];
        for (zone, cron, after, expected) in &cases {
            let zone = parse_zone(zone).unwrap();
            let got = cron.upcoming_in(zone, at(after), expected.len());
            let expected: Vec<DateTime<Utc>> = expected.iter().map(|s| at(s)).collect();
            assert_eq!(got, expected, "{zone} {cron:?} after {after}");
        }
    }

    #[test]
    fn fields_that_never_meet_never_fire_in_any_zone() {
        let never = cron("0", "0", "*", "31", "2");
        let zone = parse_zone("Europe/London").unwrap();
        assert_eq!(never.next_after_in(zone, at("2026-11-24T10:00:00Z")), None);
    }

    #[test]
    fn due_minutes_in_a_range_follow_the_zone() {
        let london = parse_zone("Europe/London").unwrap();
        let every_half_hour = cron("0,30", "*", "*", "*", "*");
        // Across the fall-back hour: 01:00 and 01:30 fire in their first pass (BST, 00:00Z and
        // 00:30Z), not again in the second (GMT, 01:00Z and 01:30Z); 02:00 GMT is 02:00Z.
        let due = every_half_hour.due_minutes_in(
            london,
            at("2027-10-31T00:00:00Z"),
            at("2027-10-31T02:00:00Z"),
        );
        assert_eq!(
            due,
            vec![
                at("2027-10-31T00:00:00Z"),
                at("2027-10-31T00:30:00Z"),
                at("2027-10-31T02:00:00Z"),
            ]
        );
        // In UTC the same as the UTC evaluation.
        let utc = parse_zone("UTC").unwrap();
        let (from, to) = (at("2026-11-24T10:00:00Z"), at("2026-11-24T11:00:00Z"));
        assert_eq!(
            every_half_hour.due_minutes_in(utc, from, to),
            super::super::due_minutes(&every_half_hour, from, to)
        );
    }
}
