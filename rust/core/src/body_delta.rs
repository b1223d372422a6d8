//! Line deltas: a body version stored as its changes to an earlier version,
//! so a one-line edit of a long note costs a line, not the note.
//!
//! A delta is a list of parts walked over the lines of its base text (lines
//! keep their `\n`; the last may lack it): a positive number keeps that many
//! lines, a negative number drops that many, and a string inserts its text.
//! As JSON: `[12, -1, "the new line\n", 30]`. A delta must account for every
//! line of its base exactly once, so one that does not fit its base is
//! refused instead of guessed at.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::op::MAX_BODY_BYTES;

/// Most parts a delta may have.
pub const MAX_DELTA_PARTS: usize = 100_000;

/// One step of a delta.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeltaPart {
    /// Copies this many lines of the base.
    Keep(u32),
    /// Skips this many lines of the base.
    Drop(u32),
    /// Inserts this text (whole lines, except perhaps at the very end).
    Insert(String),
}

/// The changes turning one body text into another.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "Vec<RawPart>", into = "Vec<RawPart>")]
pub struct BodyDelta(pub Vec<DeltaPart>);

/// The JSON shape of a part: a signed count or a text.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum RawPart {
    Count(i64),
    Text(String),
}

impl TryFrom<Vec<RawPart>> for BodyDelta {
    type Error = String;

    fn try_from(raw: Vec<RawPart>) -> Result<Self, String> {
        let mut parts = Vec::with_capacity(raw.len());
        for part in raw {
            parts.push(match part {
                RawPart::Count(n) if n > 0 => DeltaPart::Keep(
                    u32::try_from(n).map_err(|_| format!("delta count {n} is too large"))?,
                ),
                RawPart::Count(n) if n < 0 => DeltaPart::Drop(
                    u32::try_from(-n).map_err(|_| format!("delta count {n} is too large"))?,
                ),
                RawPart::Count(_) => return Err("a delta count cannot be 0".into()),
                RawPart::Text(t) if t.is_empty() => {
                    return Err("a delta cannot insert empty text".into())
                }
                RawPart::Text(t) => DeltaPart::Insert(t),
            });
        }
        Ok(Self(parts))
    }
}

impl From<BodyDelta> for Vec<RawPart> {
    fn from(delta: BodyDelta) -> Self {
        delta
            .0
            .into_iter()
            .map(|p| match p {
                DeltaPart::Keep(n) => RawPart::Count(i64::from(n)),
                DeltaPart::Drop(n) => RawPart::Count(-i64::from(n)),
                DeltaPart::Insert(t) => RawPart::Text(t),
            })
            .collect()
    }
}

/// Why a delta does not fit its base.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("body delta does not fit its base: {0}")]
pub struct DeltaError(pub String);

impl BodyDelta {
    /// The changes turning `old` into `new`, line by line.
    pub fn between(old: &str, new: &str) -> Self {
        let (a, b) = (lines(old), lines(new));
        // Both sides share one numbering of distinct lines.
        let mut ids: HashMap<&str, u32> = HashMap::new();
        let ta = intern(&mut ids, &a);
        let tb = intern(&mut ids, &b);
        let mut parts = Vec::new();
        let mut at = 0;
        for hunk in crate::merge::diff::diff(&ta, &tb) {
            push_keep(&mut parts, hunk.old.start - at);
            if !hunk.old.is_empty() {
                parts.push(DeltaPart::Drop(hunk.old.len() as u32));
            }
            if !hunk.new.is_empty() {
                parts.push(DeltaPart::Insert(b[hunk.new.clone()].concat()));
            }
            at = hunk.old.end;
        }
        push_keep(&mut parts, a.len() - at);
        Self(parts)
    }

    /// Applies the delta to `base`; refuses one that reaches past the base,
    /// leaves lines of it unaccounted for, or makes a body too large.
    pub fn apply(&self, base: &str) -> Result<String, DeltaError> {
        let lines = lines(base);
        let mut out = String::with_capacity(base.len());
        let mut at = 0usize;
        for part in &self.0 {
            match part {
                DeltaPart::Keep(n) | DeltaPart::Drop(n) => {
                    let end = at
                        .checked_add(*n as usize)
                        .filter(|end| *end <= lines.len())
                        .ok_or_else(|| {
                            DeltaError(format!(
                                "it reaches line {} of a base of {} lines",
                                at.saturating_add(*n as usize),
                                lines.len()
                            ))
                        })?;
                    if matches!(part, DeltaPart::Keep(_)) {
                        for line in &lines[at..end] {
                            out.push_str(line);
                        }
                    }
                    at = end;
                }
                DeltaPart::Insert(text) => out.push_str(text),
            }
            if out.len() > MAX_BODY_BYTES {
                return Err(DeltaError(format!(
                    "the body would be larger than {MAX_BODY_BYTES} bytes"
                )));
            }
        }
        if at != lines.len() {
            return Err(DeltaError(format!(
                "it covers {at} of the base's {} lines",
                lines.len()
            )));
        }
        Ok(out)
    }

    /// Bytes of text the delta inserts.
    pub fn inserted_len(&self) -> usize {
        self.0
            .iter()
            .map(|p| match p {
                DeltaPart::Insert(t) => t.len(),
                _ => 0,
            })
            .sum()
    }

    /// Whether the delta is well formed on its own (sizes, counts); whether
    /// it fits its base is known only once the base is.
    pub fn check(&self) -> Result<(), String> {
        if self.0.len() > MAX_DELTA_PARTS {
            return Err(format!("body delta has more than {MAX_DELTA_PARTS} parts"));
        }
        if self.inserted_len() > MAX_BODY_BYTES {
            return Err(format!(
                "body delta inserts more than {MAX_BODY_BYTES} bytes"
            ));
        }
        Ok(())
    }
}

fn intern<'a>(ids: &mut HashMap<&'a str, u32>, lines: &[&'a str]) -> Vec<u32> {
    lines
        .iter()
        .map(|l| {
            let next = ids.len() as u32;
            *ids.entry(l).or_insert(next)
        })
        .collect()
}

fn push_keep(parts: &mut Vec<DeltaPart>, n: usize) {
    if n > 0 {
        parts.push(DeltaPart::Keep(n as u32));
    }
}

/// The lines of `text`, each with its `\n` (the last may lack it).
fn lines(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn one_line_change_is_one_line() {
        let old: String = (0..200).map(|i| format!("line number {i}\n")).collect();
        let new = old.replace("line number 100\n", "changed\n");
        let delta = BodyDelta::between(&old, &new);
        assert_eq!(
            delta.0,
            vec![
                DeltaPart::Keep(100),
                DeltaPart::Drop(1),
                DeltaPart::Insert("changed\n".into()),
                DeltaPart::Keep(99)
            ]
        );
        assert_eq!(
            serde_json::to_string(&delta).unwrap(),
            r#"[100,-1,"changed\n",99]"#
        );
        assert_eq!(delta.apply(&old).unwrap(), new);
    }

    #[test]
    fn misfits_are_refused() {
        let base = "a\nb\n";
        for json in [
            r#"[3]"#,
            r#"[1]"#,
            r#"[-3]"#,
            r#"[2,-1]"#,
            r#"[4294967295,1]"#,
        ] {
            let delta: BodyDelta = serde_json::from_str(json).unwrap();
            assert!(delta.apply(base).is_err(), "{json}");
        }
        for json in [r#"[0]"#, r#"[""]"#, r#"[1.5]"#, r#"[99999999999]"#, r#"{}"#] {
            assert!(serde_json::from_str::<BodyDelta>(json).is_err(), "{json}");
        }
        let empty: BodyDelta = serde_json::from_str("[]").unwrap();
        assert_eq!(empty.apply("").unwrap(), "");
    }

    proptest! {
        #[test]
        fn delta_rebuilds_the_new_text(
            old in prop::collection::vec("[abc]{0,3}\n?", 0..12),
            new in prop::collection::vec("[abc]{0,3}\n?", 0..12),
        ) {
            let (old, new) = (old.concat(), new.concat());
            let delta = BodyDelta::between(&old, &new);
            prop_assert_eq!(delta.apply(&old).unwrap(), new);
            let json = serde_json::to_string(&delta).unwrap();
            prop_assert_eq!(serde_json::from_str::<BodyDelta>(&json).unwrap(), delta);
        }
    }
}
