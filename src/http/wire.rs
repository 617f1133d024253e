//! Details of the wire format shared by every resource.

use chrono::{DateTime, SecondsFormat, Utc};
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
