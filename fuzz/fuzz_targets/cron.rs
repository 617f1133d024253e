//! Schedule fields (src/content/cron.rs, src/content/zone.rs, src/scheduling): five cron fields
//! and a time zone, as a schedule body carries them. Every field kind parses any text or refuses
//! it; what parses renders as a crontab field (the Seed Scheduler's definition) and, with a
//! known zone, is evaluated the way the ticker and `next_due` evaluate it, from any moment
//! between 1970 and 2106. A message set's send window ends go through the same checks as its
//! body's.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sbm::content::cron::{parse, to_crontab, CronField};
use sbm::content::zone;
use sbm::scheduling::Cron;

// One schedule per input, a line each: minute, hour, day of week, day of month, month of year,
// time zone, send window start, send window end, and the moment (seconds since 1970, which
// wrap into 1970–2106).
fuzz_target!(|text: &str| {
    let mut lines = text.split('\n');
    let mut line = || lines.next().unwrap_or("");
    let fields = [line(), line(), line(), line(), line()];
    let (timezone, start, end) = (line(), line(), line());
    let at = line().trim().parse::<u64>().unwrap_or(0) % (u64::from(u32::MAX) + 1);
    for (field, text) in CronField::ALL.into_iter().zip(fields) {
        if parse(field, text).is_ok() {
            let _ = to_crontab(field, text);
        }
    }
    let mut errors = sbm::validation::FieldErrors::new();
    zone::check_window(Some(start), Some(end), &mut errors);
    let _ = zone::SendWindow::parse(start);
    let _ = zone::check_zone(timezone, false);
    let (Ok(cron), Ok(tz)) = (Cron::from_fields(fields), zone::parse_zone(timezone)) else {
        return;
    };
    let now = chrono::DateTime::from_timestamp(at as i64, 0).expect("in chrono's range");
    let _ = cron.next_after(now);
    if let Some(next) = cron.next_after_in(tz, now) {
        assert!(next > now, "{next} is not after {now}");
    }
    if let Ok(window) = zone::SendWindow::new(start, end) {
        let _ = window.next_send_time(tz, now);
    }
});
