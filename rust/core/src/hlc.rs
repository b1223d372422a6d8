//! Hybrid logical clock: physical milliseconds + a counter + the origin.
//!
//! The text encoding is fixed-width hex followed by the origin, so comparing
//! two encoded stamps byte by byte orders them by time (then by origin).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Default bound on how far in the future a received stamp may be.
pub const DEFAULT_MAX_DRIFT_MS: u64 = 24 * 60 * 60 * 1000;

/// One hybrid logical clock stamp.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hlc {
    /// Physical time in milliseconds since the Unix epoch.
    pub millis: u64,
    /// Logical counter for stamps within the same millisecond.
    pub counter: u32,
    /// The replica that made the stamp (breaks ties deterministically).
    pub origin: String,
}

/// Errors from parsing or observing stamps.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HlcError {
    /// The text is not a valid stamp.
    #[error("invalid clock stamp {0:?}")]
    Invalid(String),
    /// A received stamp is further in the future than the allowed drift.
    #[error(
        "op stamped {} in the future of this device's clock (limit {}): either the \
         device that made it has a clock that runs ahead, or this device's clock is behind",
        human_ms(*ahead_ms), human_ms(*limit_ms)
    )]
    TooFarAhead {
        /// How far ahead of local time the stamp is.
        ahead_ms: u64,
        /// The configured limit.
        limit_ms: u64,
    },
    /// The counter would overflow within one millisecond (no longer
    /// returned: the clock moves to the next millisecond instead).
    #[error("clock counter overflow")]
    CounterOverflow,
}

/// Largest counter value a stamp can encode (six hex digits).
pub const MAX_COUNTER: u32 = 0xff_ffff;

/// A duration in milliseconds for people: `3 d 2 h`, `5 h 12 min`, `40 s`.
pub fn human_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d} d {h} h")
    } else if h > 0 {
        format!("{h} h {m} min")
    } else if m > 0 {
        format!("{m} min {s} s")
    } else if secs > 0 {
        format!("{s} s")
    } else {
        format!("{ms} ms")
    }
}

impl Hlc {
    /// The smallest stamp of an origin, used as a lower bound.
    pub fn zero(origin: &str) -> Self {
        Self {
            millis: 0,
            counter: 0,
            origin: origin.to_owned(),
        }
    }
}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.millis >> 48 != 0 || self.counter > MAX_COUNTER {
            // Wider than the fixed width (never made by a clock): as is.
            return write!(
                f,
                "{:012x}{:06x}-{}",
                self.millis, self.counter, self.origin
            );
        }
        // Spelled out: every applied op writes its stamp several times, and
        // the padded `{:012x}` of `write!` cost more than the rest of it.
        let mut head = [0u8; 19];
        hex_digits(&mut head[..12], self.millis);
        hex_digits(&mut head[12..18], u64::from(self.counter));
        head[18] = b'-';
        f.write_str(std::str::from_utf8(&head).map_err(|_| fmt::Error)?)?;
        f.write_str(&self.origin)
    }
}

/// Writes the low `out.len()` hex digits of `value` into `out`, lowercase.
fn hex_digits(out: &mut [u8], mut value: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in out.iter_mut().rev() {
        *byte = DIGITS[(value & 0xf) as usize];
        value >>= 4;
    }
}

impl FromStr for Hlc {
    type Err = HlcError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || HlcError::Invalid(s.chars().take(80).collect());
        let (stamp, origin) = s.split_once('-').ok_or_else(bad)?;
        if stamp.len() != 18 || origin.is_empty() || origin.len() > 64 {
            return Err(bad());
        }
        // Lowercase hex only: the canonical spelling (byte order is time
        // order), and every byte ASCII so the slicing below is on char
        // boundaries.
        if !stamp
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad());
        }
        if !origin
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(bad());
        }
        let millis = u64::from_str_radix(&stamp[..12], 16).map_err(|_| bad())?;
        let counter = u32::from_str_radix(&stamp[12..], 16).map_err(|_| bad())?;
        Ok(Self {
            millis,
            counter,
            origin: origin.to_owned(),
        })
    }
}

impl Serialize for Hlc {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Hlc {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Parsed from the input in place, without a String per stamp.
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = Hlc;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a clock stamp")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Hlc, E> {
                text.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(Text)
    }
}

/// A replica's clock. The physical time source is injectable for tests.
#[derive(Debug, Clone)]
pub struct Clock {
    last: Hlc,
    max_drift_ms: u64,
    offset_ms: i64,
}

impl Clock {
    /// A clock for `origin`, starting after `last` (the newest stamp known).
    pub fn new(origin: &str, last: Option<Hlc>) -> Self {
        Self {
            last: last.unwrap_or_else(|| Hlc::zero(origin)),
            max_drift_ms: DEFAULT_MAX_DRIFT_MS,
            offset_ms: 0,
        }
        .with_origin(origin)
    }

    fn with_origin(mut self, origin: &str) -> Self {
        self.last.origin = origin.to_owned();
        self
    }

    /// Sets how far in the future a received stamp may be.
    pub fn set_max_drift_ms(&mut self, ms: u64) {
        self.max_drift_ms = ms;
    }

    /// Skews the physical clock (simulates a device whose clock is wrong).
    pub fn set_offset_ms(&mut self, offset: i64) {
        self.offset_ms = offset;
    }

    /// Physical time as this clock sees it.
    pub fn physical_ms(&self) -> u64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        (now + self.offset_ms).max(0) as u64
    }

    /// A new stamp for a local op, later than every stamp seen so far.
    pub fn tick(&mut self) -> Result<Hlc, HlcError> {
        self.tick_at(self.physical_ms())
    }

    /// `tick` with an explicit physical time (tests: clocks going backwards).
    pub fn tick_at(&mut self, physical_ms: u64) -> Result<Hlc, HlcError> {
        if physical_ms > self.last.millis {
            self.last.millis = physical_ms;
            self.last.counter = 0;
        } else if self.last.counter >= MAX_COUNTER {
            // The counter is full (e.g. a peer sent a stamp at its maximum):
            // borrow the next millisecond instead of refusing to write.
            self.last.millis += 1;
            self.last.counter = 0;
        } else {
            self.last.counter += 1;
        }
        Ok(self.last.clone())
    }

    /// Takes a received stamp into account so later local stamps sort after it.
    pub fn observe(&mut self, remote: &Hlc) -> Result<(), HlcError> {
        self.observe_at(remote, self.physical_ms())
    }

    /// `observe` with an explicit physical time.
    pub fn observe_at(&mut self, remote: &Hlc, physical_ms: u64) -> Result<(), HlcError> {
        self.check_drift_at(remote, physical_ms)?;
        if (remote.millis, remote.counter) > (self.last.millis, self.last.counter) {
            self.last.millis = remote.millis;
            self.last.counter = remote.counter;
        }
        Ok(())
    }

    /// Moves the clock past a stamp already stored in this replica (written by
    /// another process sharing it), without the drift check: it is ours.
    pub fn witness(&mut self, stored: &Hlc) {
        if (stored.millis, stored.counter) > (self.last.millis, self.last.counter) {
            self.last.millis = stored.millis;
            self.last.counter = stored.counter;
        }
    }

    /// Puts the clock back to just after `last` (or to nothing), even when it
    /// had moved further: after this replica's own future stamps were
    /// replaced, the clock must stop counting from them.
    pub fn reset(&mut self, last: Option<&Hlc>) {
        self.last.millis = last.map_or(0, |l| l.millis);
        self.last.counter = last.map_or(0, |l| l.counter);
    }

    /// Refuses a stamp too far ahead of local time, without changing the clock.
    pub fn check_drift(&self, remote: &Hlc) -> Result<(), HlcError> {
        self.check_drift_at(remote, self.physical_ms())
    }

    /// `check_drift` with an explicit physical time.
    pub fn check_drift_at(&self, remote: &Hlc, physical_ms: u64) -> Result<(), HlcError> {
        let ahead = remote.millis.saturating_sub(physical_ms);
        if ahead > self.max_drift_ms {
            return Err(HlcError::TooFarAhead {
                ahead_ms: ahead,
                limit_ms: self.max_drift_ms,
            });
        }
        Ok(())
    }

    /// The configured drift limit in milliseconds.
    pub fn max_drift_ms(&self) -> u64 {
        self.max_drift_ms
    }

    /// The newest stamp this clock has issued or observed.
    pub fn last(&self) -> &Hlc {
        &self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_fixed_width_hex_then_the_origin() {
        for (millis, counter) in [
            (0, 0),
            (1, 0xabc),
            (1_717_200_000_123, 42),
            ((1 << 48) - 1, MAX_COUNTER),
            (1 << 48, 0),
            (u64::MAX, u32::MAX),
        ] {
            let stamp = Hlc {
                millis,
                counter,
                origin: "dev_1".into(),
            };
            assert_eq!(
                stamp.to_string(),
                format!("{millis:012x}{counter:06x}-dev_1"),
                "{millis} {counter}"
            );
        }
        let stamp: Hlc = "018fd1189401000000-corpus".parse().unwrap();
        assert_eq!(stamp.to_string(), "018fd1189401000000-corpus");
    }

    #[test]
    fn encoding_orders_like_time() {
        let a = Hlc {
            millis: 5,
            counter: 9,
            origin: "b".into(),
        };
        let b = Hlc {
            millis: 6,
            counter: 0,
            origin: "a".into(),
        };
        let c = Hlc {
            millis: 6,
            counter: 1,
            origin: "a".into(),
        };
        assert!(a.to_string() < b.to_string());
        assert!(b.to_string() < c.to_string());
        assert!(a < b && b < c);
        assert_eq!(c.to_string().parse::<Hlc>().unwrap(), c);
    }

    #[test]
    fn monotonic_when_clock_goes_backwards() {
        let mut clock = Clock::new("o1", None);
        let t1 = clock.tick_at(1_000).unwrap();
        let t2 = clock.tick_at(500).unwrap();
        let t3 = clock.tick_at(500).unwrap();
        let t4 = clock.tick_at(2_000).unwrap();
        assert!(t1 < t2 && t2 < t3 && t3 < t4, "{t1} {t2} {t3} {t4}");
        assert_eq!(t2.millis, 1_000);
    }

    #[test]
    fn later_than_observed_remote() {
        let mut clock = Clock::new("o1", None);
        let remote = Hlc {
            millis: 9_000,
            counter: 4,
            origin: "o2".into(),
        };
        clock.observe_at(&remote, 1_000).unwrap();
        let next = clock.tick_at(1_000).unwrap();
        assert!(next.to_string() > remote.to_string() || (next.millis, next.counter) > (9_000, 4));
        assert_eq!((next.millis, next.counter), (9_000, 5));
    }

    #[test]
    fn refuses_stamps_far_in_the_future() {
        let mut clock = Clock::new("o1", None);
        let day = DEFAULT_MAX_DRIFT_MS;
        let far = Hlc {
            millis: 1_000 + day + 1,
            counter: 0,
            origin: "o2".into(),
        };
        let err = clock.observe_at(&far, 1_000).unwrap_err();
        assert!(matches!(err, HlcError::TooFarAhead { .. }));
        assert!(err.to_string().contains("future"));
        // The clock was not poisoned.
        assert_eq!(clock.tick_at(1_000).unwrap().millis, 1_000);
        let near = Hlc {
            millis: 1_000 + day,
            counter: 0,
            origin: "o2".into(),
        };
        clock.observe_at(&near, 1_000).unwrap();
    }

    #[test]
    fn rejects_malformed_text() {
        for bad in [
            "",
            "xyz",
            "00000000000g000000-a",
            "000000000001000000-",
            "0001-a",
            "000000000001000000-a b",
            "00000000000A000000-a",
            "+00000000001000000-a",
            "0000000000é000000-a",
            "000000000é00000000-a",
            "ééééééééé-a",
        ] {
            assert!(bad.parse::<Hlc>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_full_counter_moves_to_the_next_millisecond() {
        let mut clock = Clock::new("o1", None);
        let remote = Hlc {
            millis: 5_000,
            counter: MAX_COUNTER,
            origin: "o2".into(),
        };
        clock.observe_at(&remote, 5_000).unwrap();
        let next = clock.tick_at(5_000).unwrap();
        assert_eq!((next.millis, next.counter), (5_001, 0));
        assert!(next.to_string() > remote.to_string());
        assert_eq!(next.to_string().parse::<Hlc>().unwrap(), next);
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_ms(3 * 86_400_000 + 7_200_000), "3 d 2 h");
        assert_eq!(human_ms(90_000), "1 min 30 s");
        assert_eq!(human_ms(12), "12 ms");
    }
}
