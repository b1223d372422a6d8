//! Line diff (Myers' O(ND) algorithm) over interned lines.
//!
//! The result is a list of hunks, each a maximal run of changes between two
//! matched lines, so two hunks of one diff never touch. The diff is a pure
//! function of its inputs: every replica computes the same hunks.

use std::ops::Range;

/// One change: `old` lines of the first text are replaced by `new` lines of
/// the second. An empty `old` range is a pure insertion before `old.start`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hunk {
    pub old: Range<usize>,
    pub new: Range<usize>,
}

/// Above this much work (edit distance × length) the middle of the texts is
/// treated as one replacement instead: still correct, only coarser.
const MAX_WORK: usize = 16_000_000;

/// The hunks turning `a` into `b`.
pub(crate) fn diff(a: &[u32], b: &[u32]) -> Vec<Hunk> {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (am, bm) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let mut matches = Vec::new();
    if !am.is_empty() && !bm.is_empty() {
        if let Some(found) = myers(am, bm) {
            matches = found;
        }
    }
    // Matched pairs in order, bracketed by the common prefix and suffix.
    let mut hunks = Vec::new();
    let (mut x, mut y) = (0, 0);
    for (mx, my) in matches
        .into_iter()
        .chain(std::iter::once((am.len(), bm.len())))
    {
        if mx > x || my > y {
            hunks.push(Hunk {
                old: prefix + x..prefix + mx,
                new: prefix + y..prefix + my,
            });
        }
        x = mx + 1;
        y = my + 1;
    }
    hunks
}

/// Matched index pairs of a shortest edit script, or `None` when too costly.
fn myers(a: &[u32], b: &[u32]) -> Option<Vec<(usize, usize)>> {
    let (n, m) = (a.len() as isize, b.len() as isize);
    let max = (n + m) as usize;
    let offset = max as isize + 1;
    let width = 2 * max + 3;
    let mut v = vec![0isize; width];
    let mut trace: Vec<Vec<isize>> = Vec::new();
    let idx = |k: isize| (k + offset) as usize;
    let mut end = None;
    'outer: for d in 0..=max as isize {
        if (d as usize + 1).saturating_mul(width) > MAX_WORK {
            return None;
        }
        trace.push(v.clone());
        let mut k = -d;
        while k <= d {
            let mut x = if k == -d || (k != d && v[idx(k - 1)] < v[idx(k + 1)]) {
                v[idx(k + 1)]
            } else {
                v[idx(k - 1)] + 1
            };
            let mut y = x - k;
            while x < n && y < m && a[x as usize] == b[y as usize] {
                x += 1;
                y += 1;
            }
            v[idx(k)] = x;
            if x >= n && y >= m {
                end = Some(d);
                break 'outer;
            }
            k += 2;
        }
    }
    let d_end = end?;
    let mut matches = Vec::new();
    let (mut x, mut y) = (n, m);
    for d in (0..=d_end).rev() {
        let v = &trace[d as usize];
        let k = x - y;
        let prev_k = if k == -d || (k != d && v[idx(k - 1)] < v[idx(k + 1)]) {
            k + 1
        } else {
            k - 1
        };
        let prev_x = v[idx(prev_k)];
        let prev_y = prev_x - prev_k;
        while x > prev_x && y > prev_y && x > 0 && y > 0 {
            x -= 1;
            y -= 1;
            matches.push((x as usize, y as usize));
        }
        if d > 0 {
            x = prev_x;
            y = prev_y;
        }
    }
    matches.reverse();
    Some(matches)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(a: &[u32], b: &[u32], hunks: &[Hunk]) -> Vec<u32> {
        let mut out = Vec::new();
        let mut pos = 0;
        for h in hunks {
            out.extend_from_slice(&a[pos..h.old.start]);
            out.extend_from_slice(&b[h.new.clone()]);
            pos = h.old.end;
        }
        out.extend_from_slice(&a[pos..]);
        out
    }

    #[test]
    fn hunks_rebuild_the_new_text() {
        let cases: &[(&[u32], &[u32])] = &[
            (&[], &[]),
            (&[], &[1, 2]),
            (&[1, 2], &[]),
            (&[1, 2, 3], &[1, 9, 3]),
            (&[1, 2, 3, 4, 5], &[0, 1, 3, 5, 6]),
            (&[1, 1, 1], &[1, 1]),
            (&[1, 2, 1, 2], &[2, 1, 2, 1]),
        ];
        for (a, b) in cases {
            let hunks = diff(a, b);
            assert_eq!(&apply(a, b, &hunks), b, "{a:?} -> {b:?}: {hunks:?}");
            for w in hunks.windows(2) {
                assert!(w[0].old.end < w[1].old.start, "{hunks:?}");
            }
        }
    }

    #[test]
    fn an_insertion_is_one_empty_range() {
        assert_eq!(
            diff(&[1, 2], &[1, 7, 2]),
            vec![Hunk {
                old: 1..1,
                new: 1..2
            }]
        );
    }
}
