//! Local time: IANA zone names (chrono-tz carries the zone rules, none are written here), how a
//! local minute maps onto UTC across daylight saving, and a message set's send window.
//!
//! The one rule for daylight saving, used by schedules and windows alike ([`resolve`]): a local
//! minute that happens once is that instant; a minute that happens twice (a fall-back repeats
//! an hour) is its first occurrence; a minute that never happens (a spring-forward skips it) is
//! the first minute that does happen after the gap.

use chrono::{DateTime, Duration, NaiveDateTime, NaiveTime, TimeZone, Utc};
pub use chrono_tz::Tz;

pub use crate::model::content::DEFAULT_ZONE;

/// Why the Seed Scheduler cannot take a zone (compatible mode).
pub const SCHEDULER_UTC_ONLY: &str = "The Seed Scheduler (SCHEDULER_URL is set) evaluates cron \
    fields in UTC only, so schedules and subscriptions must use UTC in this mode. Run without \
    SCHEDULER_URL (the built-in scheduler) to use other time zones.";

/// The zone a name gives, or the error message for the field.
pub fn parse_zone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>().map_err(|_| {
        format!(
            "\"{name}\" is not a known IANA time zone name (such as UTC, Africa/Johannesburg \
            or America/Sao_Paulo)."
        )
    })
}

/// Whether the zone is UTC under another name (what the Seed Scheduler can evaluate).
pub fn is_utc(name: &str) -> bool {
    matches!(
        name,
        "UTC" | "Etc/UTC" | "Etc/UCT" | "UCT" | "Etc/Universal" | "Universal" | "Etc/Zulu" | "Zulu"
    )
}

/// Checks a zone name for a schedule or subscription; in compatible mode (a Seed Scheduler
/// configured) only UTC is accepted.
pub fn check_zone(name: &str, scheduler_mode: bool) -> Result<(), String> {
    parse_zone(name)?;
    if scheduler_mode && !is_utc(name) {
        return Err(SCHEDULER_UTC_ONLY.into());
    }
    Ok(())
}

/// Checks a message set's window ends (both or neither) for field errors.
pub fn check_window(
    start: Option<&str>,
    end: Option<&str>,
    errors: &mut crate::validation::FieldErrors,
) {
    const BOTH: &str = "Give both send_window_start and send_window_end, or neither.";
    match (start, end) {
        (None, None) => {}
        (Some(_), None) => errors.add("send_window_end", BOTH),
        (None, Some(_)) => errors.add("send_window_start", BOTH),
        (Some(start), Some(end)) => {
            let mut ok = true;
            for (field, value) in [("send_window_start", start), ("send_window_end", end)] {
                if let Err(message) = parse_time_of_day(value) {
                    errors.add(field, message);
                    ok = false;
                }
            }
            if ok {
                if let Err(message) = SendWindow::new(start, end) {
                    errors.add("send_window_end", message);
                }
            }
        }
    }
}

/// The zone a subscriber's sends are timed in: their own, else their schedule's (UTC if a
/// stored name is no longer known to the zone database).
pub fn effective_zone(subscriber: Option<&str>, schedule: &str) -> Tz {
    parse_zone(subscriber.unwrap_or(schedule)).unwrap_or(Tz::UTC)
}

/// The window a message set's sends keep: its own, else the configured default.
pub fn window_of(
    set: &crate::model::content::MessageSet,
    default: Option<SendWindow>,
) -> Option<SendWindow> {
    match (&set.send_window_start, &set.send_window_end) {
        (Some(start), Some(end)) => SendWindow::new(start, end).ok().or(default),
        _ => default,
    }
}

/// The instant a local minute stands for (see the module's rule); `None` only when the zone has
/// no valid minute within two days after it, which no zone has.
pub fn resolve(zone: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    if let Some(t) = zone.from_local_datetime(&local).earliest() {
        return Some(t.with_timezone(&Utc));
    }
    let mut later = local;
    for _ in 0..2 * 24 * 60 {
        later += Duration::minutes(1);
        if let Some(t) = zone.from_local_datetime(&later).earliest() {
            return Some(t.with_timezone(&Utc));
        }
    }
    None
}

/// The wall-clock time at `t` in `zone`.
pub fn local(zone: Tz, t: DateTime<Utc>) -> NaiveDateTime {
    t.with_timezone(&zone).naive_local()
}

pub use crate::wire::time::format_local;

/// Hours in which sends may leave, in the subscriber's local time: from `start` (included) to
/// `end` (excluded); an `end` before `start` crosses midnight (20:00–07:00 is the night).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendWindow {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

pub const WINDOW_TIME_ERROR: &str = "Enter a time of day as HH:MM (00:00 to 23:59).";

/// `HH:MM`, exactly five characters.
pub fn parse_time_of_day(text: &str) -> Result<NaiveTime, String> {
    let bytes = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| bytes[r].iter().all(u8::is_ascii_digit);
    if bytes.len() != 5 || bytes[2] != b':' || !digits(0..2) || !digits(3..5) {
        return Err(WINDOW_TIME_ERROR.into());
    }
    NaiveTime::parse_from_str(text, "%H:%M").map_err(|_| WINDOW_TIME_ERROR.into())
}

impl SendWindow {
    /// From the two ends as stored; errors name the problem for a field error.
    pub fn new(start: &str, end: &str) -> Result<SendWindow, String> {
        let window = SendWindow {
            start: parse_time_of_day(start)?,
            end: parse_time_of_day(end)?,
        };
        if window.start == window.end {
            return Err("The window must not start and end at the same time.".into());
        }
        Ok(window)
    }

    /// From `HH:MM-HH:MM` (the SBM_SEND_WINDOW setting).
    pub fn parse(text: &str) -> Result<SendWindow, String> {
        let (start, end) = text
            .trim()
            .split_once('-')
            .ok_or_else(|| format!("expected HH:MM-HH:MM, such as 07:00-20:00, not {text:?}"))?;
        SendWindow::new(start.trim(), end.trim())
    }

    pub fn contains(&self, time: NaiveTime) -> bool {
        if self.start < self.end {
            self.start <= time && time < self.end
        } else {
            time >= self.start || time < self.end
        }
    }

    /// When a send may leave, at `now` or later: `now` when it is inside the window, else the
    /// window's next opening in `zone` (daylight saving resolved as everywhere else).
    pub fn next_send_time(&self, zone: Tz, now: DateTime<Utc>) -> DateTime<Utc> {
        let here = local(zone, now);
        if self.contains(here.time()) {
            return now;
        }
        let mut day = here.date();
        for _ in 0..3 {
            if let Some(opening) = resolve(zone, day.and_time(self.start)).filter(|t| *t > now) {
                return opening;
            }
            day = day.succ_opt().unwrap_or(day);
        }
        now
    }

    /// `07:00-20:00`.
    pub fn describe(&self) -> String {
        format!(
            "{}-{}",
            self.start.format("%H:%M"),
            self.end.format("%H:%M")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn naive(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    #[test]
    fn zone_names_are_iana_names() {
        for good in [
            "UTC",
            "Africa/Johannesburg",
            "America/Sao_Paulo",
            "Europe/London",
        ] {
            assert_eq!(parse_zone(good).unwrap().name(), good);
        }
        for bad in ["", "utc ", "Mars/Olympus_Mons", "+02:00", "Africa/"] {
            assert!(parse_zone(bad).unwrap_err().contains("IANA"), "{bad}");
        }
        assert!(is_utc("UTC") && is_utc("Etc/UTC") && !is_utc("Europe/London"));
    }

    #[test]
    fn local_minutes_resolve_once_across_daylight_saving() {
        let london = parse_zone("Europe/London").unwrap();
        let sydney = parse_zone("Australia/Sydney").unwrap();
        let cases: &[(Tz, &str, &str)] = &[
            // An ordinary minute.
            (london, "2027-01-10 08:00", "2027-01-10T08:00:00Z"),
            (london, "2027-07-10 08:00", "2027-07-10T07:00:00Z"),
            // Spring forward (01:00 → 02:00): 01:30 never happens, 02:00 is the next minute.
            (london, "2027-03-28 01:30", "2027-03-28T01:00:00Z"),
            (london, "2027-03-28 01:00", "2027-03-28T01:00:00Z"),
            // Fall back (02:00 → 01:00): 01:30 happens twice; the first is taken.
            (london, "2027-10-31 01:30", "2027-10-31T00:30:00Z"),
            // Southern hemisphere: Sydney springs forward in October, falls back in April.
            (sydney, "2026-10-04 02:30", "2026-10-03T16:00:00Z"),
            (sydney, "2027-04-04 02:30", "2027-04-03T15:30:00Z"),
        ];
        for (zone, local, utc) in cases {
            assert_eq!(
                resolve(*zone, naive(local)),
                Some(at(utc)),
                "{zone} {local}"
            );
        }
    }

    #[test]
    fn windows_may_cross_midnight() {
        let day = SendWindow::parse("07:00-20:00").unwrap();
        let night = SendWindow::parse("20:00-07:00").unwrap();
        let t = |s: &str| parse_time_of_day(s).unwrap();
        for (time, in_day) in [
            ("06:59", false),
            ("07:00", true),
            ("19:59", true),
            ("20:00", false),
        ] {
            assert_eq!(day.contains(t(time)), in_day, "{time}");
            assert_eq!(night.contains(t(time)), !in_day, "{time}");
        }
    }

    #[test]
    fn window_ends_are_hh_mm() {
        for bad in ["7:00", "07:00:00", "24:00", "07:60", "0700", "ab:cd", ""] {
            assert!(parse_time_of_day(bad).is_err(), "{bad}");
        }
        assert!(SendWindow::new("07:00", "07:00").is_err());
        assert!(SendWindow::parse("07:00").is_err());
        assert_eq!(
            SendWindow::parse(" 07:00 - 20:00 ").unwrap().describe(),
            "07:00-20:00"
        );
    }

    #[test]
    fn a_send_outside_the_window_waits_for_its_next_opening_in_the_subscribers_zone() {
        let window = SendWindow::parse("07:00-20:00").unwrap();
        let jhb = parse_zone("Africa/Johannesburg").unwrap();
        // 23:30 in Johannesburg (21:30 UTC): the window opens at 07:00 the next day (05:00 UTC).
        assert_eq!(
            window.next_send_time(jhb, at("2027-01-10T21:30:00Z")),
            at("2027-01-11T05:00:00Z")
        );
        // 03:00 local: later the same day.
        assert_eq!(
            window.next_send_time(jhb, at("2027-01-11T01:00:00Z")),
            at("2027-01-11T05:00:00Z")
        );
        // Inside: now.
        let now = at("2027-01-11T10:00:00Z");
        assert_eq!(window.next_send_time(jhb, now), now);
        // A window opening in a spring-forward gap opens at the first minute after it.
        let early = SendWindow::parse("01:30-20:00").unwrap();
        let london = parse_zone("Europe/London").unwrap();
        assert_eq!(
            early.next_send_time(london, at("2027-03-27T23:00:00Z")),
            at("2027-03-28T01:00:00Z")
        );
    }
}
