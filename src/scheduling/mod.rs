//! The built-in scheduler (used when no Seed Scheduler is configured): which minutes each
//! Schedule is due at, and the ticks that enqueue the sends of every subscription on a schedule
//! with one set-based statement.

pub mod forecast;
pub mod local;
pub mod sync;
pub mod ticker;

use chrono::{DateTime, Datelike, DurationRound, Timelike, Utc};

use crate::content::cron::{parse, CronField, CronValues};
use crate::model::content::Schedule;

/// A Schedule's five fields, parsed.
#[derive(Debug, Clone)]
pub struct Cron {
    minute: CronValues,
    hour: CronValues,
    day_of_week: CronValues,
    day_of_month: CronValues,
    month_of_year: CronValues,
}

impl Cron {
    pub fn parse(s: &Schedule) -> Result<Cron, String> {
        Cron::from_fields([
            &s.minute,
            &s.hour,
            &s.day_of_week,
            &s.day_of_month,
            &s.month_of_year,
        ])
    }

    /// From the five fields in a Schedule's order: minute, hour, day of week, day of month,
    /// month of year.
    pub fn from_fields(fields: [&str; 5]) -> Result<Cron, String> {
        let [minute, hour, day_of_week, day_of_month, month_of_year] = fields;
        Ok(Cron {
            minute: parse(CronField::Minute, minute)?,
            hour: parse(CronField::Hour, hour)?,
            day_of_week: parse(CronField::DayOfWeek, day_of_week)?,
            day_of_month: parse(CronField::DayOfMonth, day_of_month)?,
            month_of_year: parse(CronField::MonthOfYear, month_of_year)?,
        })
    }

    /// The first due minute after `t`, within a leap cycle's worth of days; `None` for
    /// fields that never meet (31 February).
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut minute = minute_of(t) + chrono::Duration::minutes(1);
        let end = minute + chrono::Duration::days(366 * 4);
        while minute < end {
            let day_matches = self.month_of_year.contains(minute.month() as u8)
                && self.day_of_month.contains(minute.day() as u8)
                && self
                    .day_of_week
                    .contains(minute.weekday().number_from_monday() as u8);
            if !day_matches {
                let next_day = minute.date_naive().succ_opt()?;
                minute = next_day.and_hms_opt(0, 0, 0)?.and_utc();
                continue;
            }
            if self.is_due(minute) {
                return Some(minute);
            }
            minute += chrono::Duration::minutes(1);
        }
        None
    }

    /// Whether the schedule fires in the minute that starts at `minute` (UTC). Every field must
    /// match, day of week and day of month included, as in the Celery crontab the Seed
    /// Scheduler evaluated (not Vixie cron's either-day rule).
    pub fn is_due(&self, minute: DateTime<Utc>) -> bool {
        self.minute.contains(minute.minute() as u8)
            && self.hour.contains(minute.hour() as u8)
            && self
                .day_of_week
                .contains(minute.weekday().number_from_monday() as u8)
            && self.day_of_month.contains(minute.day() as u8)
            && self.month_of_year.contains(minute.month() as u8)
    }

    /// Whether the schedule fires on some minute of the given weekday (1 = Monday), ignoring
    /// dates: for estimating sends per weekday.
    pub fn runs_on_weekday(&self, weekday: u8) -> bool {
        self.day_of_week.contains(weekday)
    }
}

/// The start of the minute `t` falls in.
pub fn minute_of(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(chrono::Duration::minutes(1))
        .expect("a minute is a valid truncation unit")
}

/// The due minutes in `from..=to` (both minute starts), oldest first.
pub fn due_minutes(cron: &Cron, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let mut due = Vec::new();
    let mut minute = from;
    while minute <= to {
        if cron.is_due(minute) {
            due.push(minute);
        }
        minute += chrono::Duration::minutes(1);
    }
    due
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(minute: &str, hour: &str, dow: &str, dom: &str, month: &str) -> Cron {
        let now = Utc::now();
        Cron::parse(&Schedule {
            id: 1,
            minute: minute.into(),
            hour: hour.into(),
            day_of_week: dow.into(),
            day_of_month: dom.into(),
            month_of_year: month.into(),
            created_at: now,
            updated_at: now,
            timezone: "UTC".into(),
        })
        .unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn due_minutes_follow_every_field() {
        // 2026-11-23 is a Monday; 2026-11-29 a Sunday.
        let cases: &[(Cron, &str, bool)] = &[
            (
                schedule("*", "*", "*", "*", "*"),
                "2026-11-24T13:37:00Z",
                true,
            ),
            (
                schedule("0", "8", "1,4", "*", "*"),
                "2026-11-23T08:00:00Z",
                true,
            ),
            (
                schedule("0", "8", "1,4", "*", "*"),
                "2026-11-26T08:00:00Z",
                true,
            ),
            (
                schedule("0", "8", "1,4", "*", "*"),
                "2026-11-24T08:00:00Z",
                false,
            ),
            (
                schedule("0", "8", "1,4", "*", "*"),
                "2026-11-23T08:01:00Z",
                false,
            ),
            (
                schedule("0", "8", "1,4", "*", "*"),
                "2026-11-23T09:00:00Z",
                false,
            ),
            (
                schedule("30", "9", "7", "*", "*"),
                "2026-11-29T09:30:00Z",
                true,
            ),
            (
                schedule("30", "9", "0", "*", "*"),
                "2026-11-29T09:30:00Z",
                true,
            ),
            (
                schedule("30", "9", "0", "*", "*"),
                "2026-11-23T09:30:00Z",
                false,
            ),
            (
                schedule("0,15,30,45", "*", "*", "*", "*"),
                "2026-11-24T10:45:00Z",
                true,
            ),
            (
                schedule("0,15,30,45", "*", "*", "*", "*"),
                "2026-11-24T10:46:00Z",
                false,
            ),
            (
                schedule("0", "0", "*", "31", "*"),
                "2026-12-31T00:00:00Z",
                true,
            ),
            (
                schedule("0", "0", "*", "31", "*"),
                "2026-11-30T00:00:00Z",
                false,
            ),
            (
                schedule("0", "0", "*", "29", "2"),
                "2028-02-29T00:00:00Z",
                true,
            ),
            (
                schedule("0", "0", "*", "1", "1,7"),
                "2027-07-01T00:00:00Z",
                true,
            ),
            (
                schedule("0", "0", "*", "1", "1,7"),
                "2027-06-01T00:00:00Z",
                false,
            ),
            // Both days restricted: both must match (Celery crontab).
            (
                schedule("0", "12", "1", "1", "*"),
                "2027-02-01T12:00:00Z",
                true,
            ),
            (
                schedule("0", "12", "1", "1", "*"),
                "2026-12-01T12:00:00Z",
                false,
            ),
            (
                schedule("0", "23", "*", "*", "*"),
                "2026-11-24T23:00:00Z",
                true,
            ),
        ];
        for (cron, time, expected) in cases {
            assert_eq!(cron.is_due(at(time)), *expected, "{cron:?} at {time}");
        }
    }

    #[test]
    fn the_next_due_minute_follows_every_field() {
        let daily = Cron::from_fields(["0", "2", "*", "*", "*"]).unwrap();
        assert_eq!(
            daily.next_after(at("2026-11-24T01:59:30Z")),
            Some(at("2026-11-24T02:00:00Z"))
        );
        assert_eq!(
            daily.next_after(at("2026-11-24T02:00:00Z")),
            Some(at("2026-11-25T02:00:00Z"))
        );
        // Sundays at 06:30; 2026-11-29 is a Sunday.
        let sundays = Cron::from_fields(["30", "6", "7", "*", "*"]).unwrap();
        assert_eq!(
            sundays.next_after(at("2026-11-24T10:00:00Z")),
            Some(at("2026-11-29T06:30:00Z"))
        );
        let leap_day = Cron::from_fields(["0", "0", "*", "29", "2"]).unwrap();
        assert_eq!(
            leap_day.next_after(at("2026-11-24T10:00:00Z")),
            Some(at("2028-02-29T00:00:00Z"))
        );
        let never = Cron::from_fields(["0", "0", "*", "31", "2"]).unwrap();
        assert_eq!(never.next_after(at("2026-11-24T10:00:00Z")), None);
    }

    #[test]
    fn due_minutes_in_a_range_are_listed_oldest_first() {
        let cron = schedule("0,30", "*", "*", "*", "*");
        let due = due_minutes(
            &cron,
            at("2026-11-24T10:00:00Z"),
            at("2026-11-24T11:00:00Z"),
        );
        assert_eq!(
            due,
            vec![
                at("2026-11-24T10:00:00Z"),
                at("2026-11-24T10:30:00Z"),
                at("2026-11-24T11:00:00Z")
            ]
        );
        assert!(due_minutes(
            &cron,
            at("2026-11-24T10:01:00Z"),
            at("2026-11-24T10:29:00Z")
        )
        .is_empty());
    }

    #[test]
    fn minutes_are_truncated() {
        assert_eq!(
            minute_of(at("2026-11-24T10:17:42.5Z")),
            at("2026-11-24T10:17:00Z")
        );
    }

    #[test]
    fn weekdays_count_from_monday_with_sunday_as_7_or_0() {
        let cron = schedule("0", "8", "0,3", "*", "*");
        assert!(cron.runs_on_weekday(7) && cron.runs_on_weekday(3) && !cron.runs_on_weekday(1));
    }
}
