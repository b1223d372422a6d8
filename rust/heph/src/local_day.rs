//! The user's local calendar day, in any process.
//!
//! `time`'s `now_local` refuses to read the offset once a process has more
//! than one thread (the sidecar and the hub are multi-threaded), and falls
//! back to UTC: "today" would then be yesterday or tomorrow for hours in
//! zones far from UTC. On glibc the C library's own `localtime_r` answers
//! (thread-safe there): the same day as `date` and as Neovim's `os.date`,
//! for every `TZ` the system takes (chrono refuses POSIX rules whose
//! change times lie outside 0–24 h, as tzdata writes for Jerusalem or
//! Nuuk, and silently used UTC). glibc reads the zone once per process:
//! after the system's zone changes, a running sidecar keeps the old one
//! until it restarts, as Neovim's `os.date` does, so the two still agree.
//! Elsewhere chrono reads `TZ` and `/etc/localtime` itself.

/// Today on the user's local calendar.
pub fn today() -> time::Date {
    local_today().unwrap_or_else(|| time::OffsetDateTime::now_utc().date())
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn local_today() -> Option<time::Date> {
    // `time_t` is 64-bit on every glibc target heph builds for.
    #[allow(clippy::useless_conversion)]
    let now: libc::time_t = time::OffsetDateTime::now_utc()
        .unix_timestamp()
        .try_into()
        .ok()?;
    // SAFETY: `tm` is plain data, written by localtime_r before it is read;
    // glibc's localtime_r is thread-safe (it locks its time zone state),
    // and nothing in heph changes `TZ` while running.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut tm).is_null() {
            return None;
        }
        tm
    };
    let day = u16::try_from(tm.tm_yday + 1).ok()?;
    time::Date::from_ordinal_date(tm.tm_year.checked_add(1900)?, day).ok()
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn local_today() -> Option<time::Date> {
    use chrono::Datelike;
    let local = chrono::Local::now().date_naive();
    time::Date::from_ordinal_date(local.year(), u16::try_from(local.ordinal()).ok()?).ok()
}

/// What field parsing needs: today, for `today`, `tomorrow`, `fri`, `+3d`.
pub fn context() -> heph_core::fields::Context {
    heph_core::fields::Context { today: today() }
}
