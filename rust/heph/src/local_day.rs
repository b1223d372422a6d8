//! The user's local calendar day, in any process.
//!
//! `time`'s `now_local` refuses to read the offset once a process has more
//! than one thread (the sidecar and the hub are multi-threaded), and falls
//! back to UTC: "today" would then be yesterday or tomorrow for hours in
//! zones far from UTC. chrono reads `TZ` and `/etc/localtime` itself,
//! thread-safely.

use chrono::Datelike;

/// Today on the user's local calendar.
pub fn today() -> time::Date {
    let local = chrono::Local::now().date_naive();
    u16::try_from(local.ordinal())
        .ok()
        .and_then(|day| time::Date::from_ordinal_date(local.year(), day).ok())
        .unwrap_or_else(|| time::OffsetDateTime::now_utc().date())
}

/// What field parsing needs: today, for `today`, `tomorrow`, `fri`, `+3d`.
pub fn context() -> heph_core::fields::Context {
    heph_core::fields::Context { today: today() }
}
