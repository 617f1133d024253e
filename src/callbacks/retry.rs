//! When a failed delivery is tried again.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use rand::Rng;

/// Delays between delivery attempts.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// The delay after the 1st, 2nd, … failed attempt; its length is the number of retries.
    pub schedule: Vec<Duration>,
    /// Relative spread of each delay, e.g. 0.2 for ±20 % (clamped to [0, 1]).
    pub jitter: f64,
    /// The longest `Retry-After` honoured.
    pub retry_after_max: Duration,
}

impl RetryPolicy {
    /// Delay before the next attempt after `attempts` failed attempts (attempts >= 1): schedule[attempts-1] spread by ±jitter (uniform), or None when the schedule is exhausted (the delivery has failed).
    pub fn delay(&self, attempts: u32, rng: &mut impl Rng) -> Option<Duration> {
        let index = usize::try_from(attempts.max(1) - 1).ok()?;
        let base = *self.schedule.get(index)?;
        let jitter = if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        if jitter == 0.0 {
            return Some(base);
        }
        Some(base.mul_f64(1.0 + rng.gen_range(-jitter..=jitter)))
    }

    /// As `delay`, but a `Retry-After` the receiver sent with 429 or 503 replaces the scheduled delay, clamped to [1 s, retry_after_max]. Still None when the schedule is exhausted.
    pub fn delay_after(
        &self,
        attempts: u32,
        retry_after: Option<Duration>,
        rng: &mut impl Rng,
    ) -> Option<Duration> {
        let scheduled = self.delay(attempts, rng)?;
        let Some(asked) = retry_after else {
            return Some(scheduled);
        };
        let min = Duration::from_secs(1);
        Some(asked.clamp(min, self.retry_after_max.max(min)))
    }
}

/// A `Retry-After` header value: delay-seconds, or an HTTP-date (RFC 9110 IMF-fixdate, e.g. "Wed, 21 Oct 2015 07:28:00 GMT") measured from `now` (a date in the past gives zero). None if unparsable.
///
/// The obsolete RFC 850 and asctime date forms, which RFC 9110 asks recipients to accept, are parsed too.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits to fit is still "a very long time"; the caller clamps it.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    const FORMATS: [&str; 3] = [
        "%a, %d %b %Y %H:%M:%S GMT", // IMF-fixdate
        "%A, %d-%b-%y %H:%M:%S GMT", // RFC 850
        "%a %b %e %H:%M:%S %Y",      // asctime
    ];
    let date = FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(value, f).ok())?
        .and_utc();
    Some((date - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn policy(jitter: f64) -> RetryPolicy {
        RetryPolicy {
            schedule: vec![secs(60), secs(300), secs(1800), secs(7200)],
            jitter,
            retry_after_max: secs(3600),
        }
    }

    #[test]
    fn without_jitter_delays_follow_the_schedule() {
        let p = policy(0.0);
        let mut rng = StdRng::seed_from_u64(1);
        for (i, expected) in p.schedule.iter().enumerate() {
            assert_eq!(p.delay(i as u32 + 1, &mut rng), Some(*expected));
        }
    }

    #[test]
    fn exhausted_schedule_gives_none() {
        let mut rng = StdRng::seed_from_u64(2);
        for jitter in [0.0, 0.2] {
            let p = policy(jitter);
            assert_eq!(p.delay(5, &mut rng), None);
            assert_eq!(p.delay(100, &mut rng), None);
            assert_eq!(p.delay(u32::MAX, &mut rng), None);
        }
        let empty = RetryPolicy {
            schedule: vec![],
            ..policy(0.0)
        };
        assert_eq!(empty.delay(1, &mut rng), None);
    }

    #[test]
    fn zero_attempts_is_treated_as_one() {
        let mut rng = StdRng::seed_from_u64(3);
        assert_eq!(policy(0.0).delay(0, &mut rng), Some(secs(60)));
    }

    #[test]
    fn jitter_stays_within_bounds_and_spreads() {
        let p = policy(0.2);
        let mut rng = StdRng::seed_from_u64(42);
        for (i, base) in p.schedule.iter().enumerate() {
            let (lo, hi) = (base.mul_f64(0.8), base.mul_f64(1.2));
            let mut below = false;
            let mut above = false;
            for _ in 0..2000 {
                let d = p.delay(i as u32 + 1, &mut rng).unwrap();
                assert!(d >= lo && d <= hi, "{d:?} outside [{lo:?}, {hi:?}]");
                below |= d < base.mul_f64(0.9);
                above |= d > base.mul_f64(1.1);
            }
            assert!(below && above, "jitter does not spread around {base:?}");
        }
    }

    #[test]
    fn absurd_jitter_is_clamped() {
        let mut rng = StdRng::seed_from_u64(4);
        for _ in 0..1000 {
            let d = policy(5.0).delay(1, &mut rng).unwrap();
            assert!(d <= secs(120));
        }
        assert_eq!(policy(f64::NAN).delay(1, &mut rng), Some(secs(60)));
        assert_eq!(policy(-0.5).delay(1, &mut rng), Some(secs(60)));
    }

    #[test]
    fn retry_after_replaces_and_is_clamped() {
        let p = policy(0.2);
        let mut rng = StdRng::seed_from_u64(5);
        assert_eq!(p.delay_after(1, Some(secs(90)), &mut rng), Some(secs(90)));
        assert_eq!(
            p.delay_after(1, Some(Duration::ZERO), &mut rng),
            Some(secs(1))
        );
        assert_eq!(
            p.delay_after(1, Some(Duration::from_millis(300)), &mut rng),
            Some(secs(1))
        );
        assert_eq!(
            p.delay_after(2, Some(secs(3600)), &mut rng),
            Some(secs(3600))
        );
        assert_eq!(
            p.delay_after(2, Some(secs(86_400)), &mut rng),
            Some(secs(3600))
        );
        assert_eq!(
            p.delay_after(2, Some(Duration::from_secs(u64::MAX)), &mut rng),
            Some(secs(3600))
        );
    }

    #[test]
    fn retry_after_with_exhausted_schedule_gives_none() {
        let p = policy(0.0);
        let mut rng = StdRng::seed_from_u64(6);
        assert_eq!(p.delay_after(5, Some(secs(10)), &mut rng), None);
        assert_eq!(p.delay_after(5, None, &mut rng), None);
    }

    #[test]
    fn without_retry_after_delay_after_is_delay() {
        let p = policy(0.2);
        let (mut a, mut b) = (StdRng::seed_from_u64(7), StdRng::seed_from_u64(7));
        for attempts in 1..=5 {
            assert_eq!(
                p.delay_after(attempts, None, &mut a),
                p.delay(attempts, &mut b)
            );
        }
    }

    #[test]
    fn retry_after_max_below_one_second_still_gives_one_second() {
        let p = RetryPolicy {
            retry_after_max: Duration::ZERO,
            ..policy(0.0)
        };
        let mut rng = StdRng::seed_from_u64(8);
        assert_eq!(p.delay_after(1, Some(secs(30)), &mut rng), Some(secs(1)));
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2015, 10, 21, 7, 0, 0).unwrap()
    }

    #[test]
    fn parse_delay_seconds() {
        assert_eq!(parse_retry_after("120", now()), Some(secs(120)));
        assert_eq!(parse_retry_after(" 5 ", now()), Some(secs(5)));
        assert_eq!(parse_retry_after("0", now()), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now()),
            Some(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn parse_http_dates() {
        let cases = [
            ("Wed, 21 Oct 2015 07:28:00 GMT", Some(secs(28 * 60))),
            ("  Wed, 21 Oct 2015 07:00:01 GMT ", Some(secs(1))),
            ("Wed, 21 Oct 2015 07:00:00 GMT", Some(Duration::ZERO)),
            ("Wed, 21 Oct 2015 06:59:59 GMT", Some(Duration::ZERO)),
            ("Tue, 20 Oct 2015 07:00:00 GMT", Some(Duration::ZERO)),
            ("Thu, 22 Oct 2015 07:00:00 GMT", Some(secs(86_400))),
            ("Wednesday, 21-Oct-15 08:00:00 GMT", Some(secs(3600))),
            ("Wed Oct 21 07:10:00 2015", Some(secs(600))),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_retry_after(value, now()), expected, "{value:?}");
        }
    }

    #[test]
    fn parse_garbage_is_none() {
        for value in [
            "",
            "   ",
            "soon",
            "-5",
            "1.5",
            "+5",
            "12 s",
            "Wed, 21 Oct 2015 07:28:00",
            "Wed, 21 Oct 2015 07:28:00 +0000",
            "2015-10-21T07:28:00Z",
            "Wed, 32 Oct 2015 07:28:00 GMT",
            // chrono rejects a weekday that does not fit the date.
            "Thu, 21 Oct 2015 07:28:00 GMT",
        ] {
            assert_eq!(parse_retry_after(value, now()), None, "{value:?}");
        }
    }
}
