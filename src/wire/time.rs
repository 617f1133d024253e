//! Times on the wire: DRF's format in API bodies, RFC 3339 with microseconds in events, local
//! times with their zone's offset.

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde::Serializer;

/// Timestamps as DRF wrote them: ISO 8601 in UTC with a `Z`, microseconds when non-zero.
pub fn drf_time<S: Serializer>(time: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format_time(time))
}

pub fn format_time(time: &DateTime<Utc>) -> String {
    let format = if time.timestamp_subsec_micros() == 0 {
        SecondsFormat::Secs
    } else {
        SecondsFormat::Micros
    };
    time.to_rfc3339_opts(format, true)
}

/// `t` as RFC 3339 with the zone's offset at that instant (`2027-03-28T08:00:00+01:00`).
pub fn format_local(zone: Tz, t: DateTime<Utc>) -> String {
    t.with_timezone(&zone)
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Times in events, callbacks and deliveries: RFC 3339 in UTC, always with microseconds.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_look_like_drf() {
        let t = DateTime::parse_from_rfc3339("2016-02-17T07:59:42.831533+00:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(format_time(&t), "2016-02-17T07:59:42.831533Z");
        let t = DateTime::parse_from_rfc3339("2016-02-17T07:59:42+00:00")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(format_time(&t), "2016-02-17T07:59:42Z");
    }
}
