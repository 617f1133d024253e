//! Schedule fields (src/content/cron.rs): every field kind parses any text without panicking,
//! and what parses also renders as a crontab field.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sbm::content::cron::{parse, to_crontab, CronField};

fuzz_target!(|text: &str| {
    for field in [
        CronField::Minute,
        CronField::Hour,
        CronField::DayOfWeek,
        CronField::DayOfMonth,
        CronField::MonthOfYear,
    ] {
        if parse(field, text).is_ok() {
            let _ = to_crontab(field, text);
        }
    }
});
