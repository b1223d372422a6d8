//! The structure record of the full-text index: which segments it holds,
//! on which level. FTS5 keeps it as row 10 of `nodes_fts_data`, in the
//! format its source documents ("structure record"): a 4-byte cookie, then
//! varints — the number of levels, of segments, the write counter, and
//! per level the segments being merged, the segments, and each segment's
//! id, first and last page. (A second format, marked after the cookie,
//! serves contentless tables with deletes; the replica has none.)
//!
//! Only [`lift_levels`] changes it, after a bulk build (see
//! `bulk_index::rebuild`); any record it does not read as expected is
//! left as it is.

/// The row of `nodes_fts_data` that holds the structure record.
pub(crate) const STRUCTURE_ROWID: i64 = 10;

/// The most levels FTS5 reads in a record.
const MAX_LEVELS: usize = 64;

/// The marker of the second format (after the cookie).
const V2_MARKER: [u8; 4] = [0xff, 0x00, 0x00, 0x01];

#[derive(Debug, Clone, PartialEq, Eq)]
struct Level {
    merging: u64,
    /// Each segment's id, first and last page.
    segments: Vec<[u64; 3]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Structure {
    cookie: [u8; 4],
    write_counter: u64,
    levels: Vec<Level>,
}

/// Moves every level of the index up by `by` levels, merges under way
/// with them (a merge reads the first segments of a level into the last
/// one of the level above, which moves too): the record with the move,
/// or `None` when the index is empty or the record is not one this reads.
pub(crate) fn lift_levels(record: &[u8], by: usize) -> Option<Vec<u8>> {
    let mut structure = decode(record)?;
    if by == 0
        || structure.levels.iter().all(|l| l.segments.is_empty())
        || structure.levels.len() + by > MAX_LEVELS
    {
        return None;
    }
    let empty = Level {
        merging: 0,
        segments: Vec::new(),
    };
    structure
        .levels
        .splice(0..0, std::iter::repeat_n(empty, by));
    encode(&structure)
}

fn decode(record: &[u8]) -> Option<Structure> {
    let cookie: [u8; 4] = record.get(..4)?.try_into().ok()?;
    if record.get(4..8) == Some(&V2_MARKER[..]) {
        return None;
    }
    let mut at = 4;
    let mut next = || {
        let (value, used) = get_varint(record.get(at..)?)?;
        at += used;
        Some(value)
    };
    let level_count = next()?;
    let segment_count = next()?;
    let write_counter = next()?;
    // FTS5 allows at most 2,000 segments; a larger count is not a record
    // this reads.
    if level_count > 2000 || segment_count > 2000 {
        return None;
    }
    let mut levels = Vec::new();
    let mut seen = 0;
    for _ in 0..level_count {
        let merging = next()?;
        let count = next()?;
        seen += count;
        if seen > segment_count {
            return None;
        }
        let mut segments = Vec::new();
        for _ in 0..count {
            segments.push([next()?, next()?, next()?]);
        }
        levels.push(Level { merging, segments });
    }
    (seen == segment_count && at == record.len()).then_some(Structure {
        cookie,
        write_counter,
        levels,
    })
}

/// The record of `structure`, or `None` for a value beyond what
/// [`put_varint`] writes.
fn encode(structure: &Structure) -> Option<Vec<u8>> {
    let mut out = structure.cookie.to_vec();
    let segments: usize = structure.levels.iter().map(|l| l.segments.len()).sum();
    put_varint(&mut out, structure.levels.len() as u64)?;
    put_varint(&mut out, segments as u64)?;
    put_varint(&mut out, structure.write_counter)?;
    for level in &structure.levels {
        put_varint(&mut out, level.merging)?;
        put_varint(&mut out, level.segments.len() as u64)?;
        for value in level.segments.iter().flatten() {
            put_varint(&mut out, *value)?;
        }
    }
    Some(out)
}

/// SQLite's varint: 7 bits a byte, most significant first, the high bit
/// set on every byte but the last; a ninth byte carries 8 bits.
fn get_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &byte) in bytes.iter().enumerate().take(9) {
        if i == 8 {
            return Some(((value << 8) | u64::from(byte), 9));
        }
        value = (value << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Writes `value` in up to eight bytes (56 bits: levels, segment ids and
/// pages are far below; the ninth-byte form is not written), or `None`.
fn put_varint(out: &mut Vec<u8>, value: u64) -> Option<()> {
    if value >= 1 << 56 {
        return None;
    }
    let mut groups = vec![(value & 0x7f) as u8];
    let mut rest = value >> 7;
    while rest > 0 {
        groups.push((rest & 0x7f) as u8 | 0x80);
        rest >>= 7;
    }
    out.extend(groups.iter().rev());
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(levels: &[(u64, &[[u64; 3]])]) -> Vec<u8> {
        encode(&Structure {
            cookie: [0, 0, 0, 7],
            write_counter: 20_770,
            levels: levels
                .iter()
                .map(|(merging, segments)| Level {
                    merging: *merging,
                    segments: segments.to_vec(),
                })
                .collect(),
        })
        .unwrap()
    }

    #[test]
    fn varints_round_trip() {
        for value in [0, 1, 127, 128, 300, 16_383, 16_384, 1 << 35, (1 << 56) - 1] {
            let mut out = Vec::new();
            put_varint(&mut out, value).unwrap();
            assert_eq!(get_varint(&out), Some((value, out.len())), "{value}");
        }
        assert!(put_varint(&mut Vec::new(), 1 << 56).is_none());
        assert_eq!(get_varint(&[0x81, 0x00]), Some((128, 2)));
    }

    #[test]
    fn every_level_moves_up_and_nothing_else_changes() {
        let built = record(&[
            (0, &[[1, 1, 7907], [2, 7908, 15_814], [3, 15_815, 20_758]]),
            (2, &[[4, 20_759, 20_800], [5, 20_801, 20_900]]),
            (0, &[[6, 20_901, 20_950]]),
        ]);
        let before = decode(&built).unwrap();
        let lifted = decode(&lift_levels(&built, 4).unwrap()).unwrap();
        assert_eq!(lifted.cookie, [0, 0, 0, 7]);
        assert_eq!(lifted.write_counter, 20_770);
        assert_eq!(lifted.levels.len(), 7);
        assert!(lifted.levels[..4].iter().all(|l| l.segments.is_empty()));
        assert_eq!(lifted.levels[4..], before.levels[..]);
    }

    #[test]
    fn records_it_should_not_touch_are_left_alone() {
        // Nothing to move.
        assert!(lift_levels(&record(&[(0, &[])]), 4).is_none());
        assert!(lift_levels(&record(&[(0, &[[1, 1, 9]])]), 0).is_none());
        let deep: Vec<(u64, &[[u64; 3]])> = vec![(0, &[[1, 1, 9]]); 61];
        assert!(lift_levels(&record(&deep), 4).is_none());
        assert!(lift_levels(&record(&deep[..60]), 4).is_some());
        // The second format, a cut record, bytes left over.
        let mut v2 = vec![0, 0, 0, 7];
        v2.extend(V2_MARKER);
        v2.extend(&record(&[(0, &[[1, 1, 9]])])[4..]);
        assert!(lift_levels(&v2, 4).is_none());
        let whole = record(&[(0, &[[1, 1, 9]])]);
        assert!(lift_levels(&whole[..whole.len() - 1], 4).is_none());
        let mut longer = whole.clone();
        longer.push(0);
        assert!(lift_levels(&longer, 4).is_none());
    }
}
