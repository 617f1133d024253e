//! The five cron-like fields of a Schedule: each is `*` or a comma list of numbers in range.
//!
//! Written here rather than taken from a cron crate because the format is not crontab: day of
//! week counts 1–7 from Monday (0 is accepted as Sunday too), there are no ranges or steps, and
//! the errors must name the field and its range for the API's field-level error body.

use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CronField {
    Minute,
    Hour,
    DayOfWeek,
    DayOfMonth,
    MonthOfYear,
}

impl CronField {
    pub const ALL: [CronField; 5] = [
        CronField::Minute,
        CronField::Hour,
        CronField::DayOfWeek,
        CronField::DayOfMonth,
        CronField::MonthOfYear,
    ];

    /// The field's name in the API.
    pub fn name(self) -> &'static str {
        match self {
            CronField::Minute => "minute",
            CronField::Hour => "hour",
            CronField::DayOfWeek => "day_of_week",
            CronField::DayOfMonth => "day_of_month",
            CronField::MonthOfYear => "month_of_year",
        }
    }

    /// The smallest and largest value allowed.
    pub fn range(self) -> (u8, u8) {
        match self {
            CronField::Minute => (0, 59),
            CronField::Hour => (0, 23),
            CronField::DayOfWeek => (0, 7),
            CronField::DayOfMonth => (1, 31),
            CronField::MonthOfYear => (1, 12),
        }
    }

    fn error(self) -> String {
        match self {
            CronField::DayOfWeek => {
                "Enter * or a comma-separated list of days of the week from 1 to 7 \
                (1 = Monday, 7 = Sunday; 0 is also accepted for Sunday)."
                    .to_string()
            }
            _ => {
                let (low, high) = self.range();
                format!("Enter * or a comma-separated list of numbers from {low} to {high}.")
            }
        }
    }
}

/// The values a field allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CronValues {
    Any,
    /// For day of week, 0 (Sunday) is folded into 7 so that each day has one number.
    Only(BTreeSet<u8>),
}

impl CronValues {
    pub fn contains(&self, value: u8) -> bool {
        match self {
            CronValues::Any => true,
            CronValues::Only(set) => set.contains(&value),
        }
    }
}

/// Parses one field. Spaces around items are ignored, as the original ignored them when it
/// built a crontab string.
pub fn parse(field: CronField, text: &str) -> Result<CronValues, String> {
    let trimmed = text.trim();
    if trimmed == "*" {
        return Ok(CronValues::Any);
    }
    let (low, high) = field.range();
    let mut values = BTreeSet::new();
    for item in trimmed.split(',') {
        let item = item.trim();
        if item.is_empty() || !item.bytes().all(|b| b.is_ascii_digit()) {
            return Err(field.error());
        }
        let value: u8 = item.parse().map_err(|_| field.error())?;
        if value < low || value > high {
            return Err(field.error());
        }
        let value = if field == CronField::DayOfWeek && value == 0 {
            7
        } else {
            value
        };
        values.insert(value);
    }
    Ok(CronValues::Only(values))
}

/// The field as a standard crontab field (no spaces; Sunday as 0, which every cron accepts),
/// for peers such as the Seed Scheduler.
pub fn to_crontab(field: CronField, text: &str) -> String {
    match parse(field, text) {
        Ok(CronValues::Only(values)) => values
            .iter()
            .map(|v| {
                if field == CronField::DayOfWeek && *v == 7 {
                    0
                } else {
                    *v
                }
            })
            .collect::<BTreeSet<u8>>()
            .iter()
            .map(u8::to_string)
            .collect::<Vec<_>>()
            .join(","),
        _ => "*".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CronField::*;

    fn only(values: &[u8]) -> CronValues {
        CronValues::Only(values.iter().copied().collect())
    }

    #[test]
    fn accepts_star_and_comma_lists_within_range() {
        let cases: &[(CronField, &str, CronValues)] = &[
            (Minute, "*", CronValues::Any),
            (Minute, " * ", CronValues::Any),
            (Minute, "0", only(&[0])),
            (Minute, "0,15,30,45", only(&[0, 15, 30, 45])),
            (Minute, "59", only(&[59])),
            (Hour, "8, 20", only(&[8, 20])),
            (Hour, "23", only(&[23])),
            (DayOfWeek, "1,3,5", only(&[1, 3, 5])),
            (DayOfWeek, "7", only(&[7])),
            (DayOfWeek, "0", only(&[7])),
            (DayOfWeek, "0,7", only(&[7])),
            (DayOfMonth, "1,31", only(&[1, 31])),
            (MonthOfYear, "12", only(&[12])),
            (MonthOfYear, "01", only(&[1])),
        ];
        for (field, text, expected) in cases {
            assert_eq!(
                &parse(*field, text).unwrap(),
                expected,
                "{field:?} {text:?}"
            );
        }
    }

    #[test]
    fn refuses_values_out_of_range_and_other_syntax() {
        let cases: &[(CronField, &str)] = &[
            (Minute, "60"),
            (Minute, "-1"),
            (Minute, ""),
            (Minute, "a"),
            (Minute, "1,,2"),
            (Minute, "1,"),
            (Minute, "*/5"),
            (Minute, "1-5"),
            (Minute, "*,1"),
            (Minute, "1.5"),
            (Minute, "999999999999"),
            (Hour, "24"),
            (DayOfWeek, "8"),
            (DayOfMonth, "0"),
            (DayOfMonth, "32"),
            (MonthOfYear, "0"),
            (MonthOfYear, "13"),
        ];
        for (field, text) in cases {
            let err = parse(*field, text).expect_err(text);
            assert!(err.starts_with("Enter *"), "{err}");
        }
    }

    #[test]
    fn errors_name_the_range() {
        assert!(parse(Minute, "60").unwrap_err().contains("0 to 59"));
        assert!(parse(DayOfWeek, "9").unwrap_err().contains("1 to 7"));
    }

    #[test]
    fn crontab_form_drops_spaces_and_writes_sunday_as_zero() {
        assert_eq!(to_crontab(Minute, "0, 30"), "0,30");
        assert_eq!(to_crontab(DayOfWeek, "1,7"), "0,1");
        assert_eq!(to_crontab(DayOfWeek, "*"), "*");
    }
}
