//! Deterministic merge of concurrent body edits.
//!
//! Every body version records the versions its author saw (`base`). The body
//! of a node is a pure function of the *set* of versions: replay them in clock
//! order; a version whose author saw everything replayed so far replaces the
//! text; one that did not is merged line-wise (three-way, from the text its
//! author saw) into the text so far. Overlapping edits keep both sides between
//! conflict markers. Nothing is ever silently dropped, and every replica with
//! the same versions computes the same bytes.

use std::collections::HashMap;

use crate::hlc::Hlc;

/// One body version (a set-body op).
#[derive(Debug, Clone, Copy)]
pub struct BodyVersion<'a> {
    /// The op's clock stamp, which identifies the version.
    pub hlc: &'a Hlc,
    /// Versions the author saw when editing.
    pub base: &'a [Hlc],
    /// The text the author saved.
    pub body: &'a str,
}

/// The merged body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergedBody {
    /// The text.
    pub text: String,
    /// The versions no other version was edited from: the `base` for the next edit.
    pub heads: Vec<Hlc>,
    /// How many three-way merges had overlapping edits.
    pub conflicts: usize,
    /// How many three-way merges ran (with or without overlap).
    pub merges: usize,
}

/// Computes the body from a set of versions, in any order, duplicates allowed.
pub fn merge_body(versions: &[BodyVersion<'_>]) -> MergedBody {
    let mut sorted: Vec<BodyVersion<'_>> = versions.to_vec();
    sorted.sort_by(|a, b| a.hlc.cmp(b.hlc));
    sorted.dedup_by(|a, b| a.hlc == b.hlc);
    let graph = Graph::new(&sorted);
    let all = BitSet::full(sorted.len());
    let mut memo = HashMap::new();
    let replay = graph.replay(&all, &mut memo);
    let heads = graph
        .heads(&all)
        .into_iter()
        .map(|i| sorted[i].hlc.clone())
        .collect();
    MergedBody {
        text: replay.text,
        heads,
        conflicts: replay.conflicts,
        merges: replay.merges,
    }
}

/// Line-wise three-way merge. Overlapping changes keep both sides between
/// conflict markers; identical changes on both sides are taken once.
pub fn merge3(base: &str, ours: &str, theirs: &str) -> (String, bool) {
    if ours == theirs {
        return (ours.to_owned(), false);
    }
    if base == ours {
        return (theirs.to_owned(), false);
    }
    if base == theirs {
        return (ours.to_owned(), false);
    }
    // diffy works on whole lines; give every input a final newline and take
    // it away again when neither side had one.
    let had_newline = ours.ends_with('\n') || theirs.ends_with('\n');
    let terminate = |s: &str| {
        if s.is_empty() || s.ends_with('\n') {
            s.to_owned()
        } else {
            format!("{s}\n")
        }
    };
    let (merged, conflict) =
        match diffy::merge(&terminate(base), &terminate(ours), &terminate(theirs)) {
            Ok(text) => (text, false),
            Err(text) => (text, true),
        };
    let merged = if !had_newline && merged.ends_with('\n') {
        merged[..merged.len() - 1].to_owned()
    } else {
        merged
    };
    (merged, conflict)
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct BitSet(Vec<u64>);

impl BitSet {
    fn empty(n: usize) -> Self {
        BitSet(vec![0; n.div_ceil(64)])
    }
    fn full(n: usize) -> Self {
        let mut s = Self::empty(n);
        for i in 0..n {
            s.insert(i);
        }
        s
    }
    fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn contains(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn union_with(&mut self, other: &BitSet) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= b;
        }
    }
    fn is_superset(&self, other: &BitSet) -> bool {
        self.0.iter().zip(&other.0).all(|(a, b)| a & b == *b)
    }
}

struct Replay {
    text: String,
    conflicts: usize,
    merges: usize,
}

struct Graph<'a> {
    versions: &'a [BodyVersion<'a>],
    /// Direct parents (indices of known versions that sort earlier).
    parents: Vec<Vec<usize>>,
    /// Transitive ancestors of each version.
    ancestors: Vec<BitSet>,
}

impl<'a> Graph<'a> {
    fn new(versions: &'a [BodyVersion<'a>]) -> Self {
        let n = versions.len();
        let index: HashMap<&Hlc, usize> = versions
            .iter()
            .enumerate()
            .map(|(i, v)| (v.hlc, i))
            .collect();
        let mut parents = Vec::with_capacity(n);
        let mut ancestors: Vec<BitSet> = Vec::with_capacity(n);
        for (i, v) in versions.iter().enumerate() {
            // An edge to a later version can only come from a broken clock;
            // ignoring it keeps the graph acyclic and the result deterministic.
            let mut ps: Vec<usize> = v
                .base
                .iter()
                .filter_map(|h| index.get(h).copied())
                .filter(|&p| p < i)
                .collect();
            ps.sort_unstable();
            ps.dedup();
            let mut anc = BitSet::empty(n);
            for &p in &ps {
                anc.insert(p);
                anc.union_with(&ancestors[p]);
            }
            parents.push(ps);
            ancestors.push(anc);
        }
        Graph {
            versions,
            parents,
            ancestors,
        }
    }

    /// Members of `set` that are no other member's ancestor.
    fn heads(&self, set: &BitSet) -> Vec<usize> {
        let members: Vec<usize> = (0..self.versions.len())
            .filter(|&i| set.contains(i))
            .collect();
        members
            .iter()
            .copied()
            .filter(|&i| {
                !members
                    .iter()
                    .any(|&j| j != i && self.ancestors[j].contains(i))
            })
            .collect()
    }

    /// The text of a downward-closed set of versions.
    fn replay(&self, set: &BitSet, memo: &mut HashMap<BitSet, String>) -> Replay {
        let mut seen = BitSet::empty(self.versions.len());
        let mut text = String::new();
        let mut conflicts = 0;
        let mut merges = 0;
        for i in 0..self.versions.len() {
            if !set.contains(i) {
                continue;
            }
            let v = &self.versions[i];
            if self.ancestors[i].is_superset(&seen) {
                text = v.body.to_owned();
            } else {
                let base = self.text_of(&self.parents[i], memo);
                let (merged, conflict) = merge3(&base, &text, v.body);
                text = merged;
                merges += 1;
                conflicts += usize::from(conflict);
            }
            seen.insert(i);
        }
        Replay {
            text,
            conflicts,
            merges,
        }
    }

    /// The text its author saw for a version with these parents.
    fn text_of(&self, parents: &[usize], memo: &mut HashMap<BitSet, String>) -> String {
        match parents {
            [] => String::new(),
            // Replaying the ancestors of one version ends with that version.
            [p] => self.versions[*p].body.to_owned(),
            _ => {
                let mut closure = BitSet::empty(self.versions.len());
                for &p in parents {
                    closure.insert(p);
                    closure.union_with(&self.ancestors[p]);
                }
                if let Some(text) = memo.get(&closure) {
                    return text.clone();
                }
                let text = self.replay(&closure, memo).text;
                memo.insert(closure, text.clone());
                text
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(ms: u64, origin: &str) -> Hlc {
        Hlc {
            millis: ms,
            counter: 0,
            origin: origin.into(),
        }
    }

    #[test]
    fn linear_history_takes_the_latest() {
        let (a, b) = (h(1, "x"), h(2, "x"));
        let base_b = [a.clone()];
        let vs = [
            BodyVersion {
                hlc: &b,
                base: &base_b,
                body: "two\n",
            },
            BodyVersion {
                hlc: &a,
                base: &[],
                body: "one\n",
            },
        ];
        let m = merge_body(&vs);
        assert_eq!(m.text, "two\n");
        assert_eq!(m.heads, vec![b.clone()]);
        assert_eq!(m.merges, 0);
    }

    #[test]
    fn disjoint_concurrent_edits_both_survive() {
        let a = h(1, "x");
        let b = h(2, "x");
        let c = h(3, "y");
        let base = [a.clone()];
        let vs = [
            BodyVersion {
                hlc: &a,
                base: &[],
                body: "l1\nl2\nl3\n",
            },
            BodyVersion {
                hlc: &b,
                base: &base,
                body: "L1\nl2\nl3\n",
            },
            BodyVersion {
                hlc: &c,
                base: &base,
                body: "l1\nl2\nL3\n",
            },
        ];
        let m = merge_body(&vs);
        assert_eq!(m.text, "L1\nl2\nL3\n");
        assert_eq!(m.conflicts, 0);
        assert_eq!(m.heads.len(), 2);
        // Any order gives the same bytes.
        let rev: Vec<_> = vs.iter().rev().copied().collect();
        assert_eq!(merge_body(&rev), m);
    }

    #[test]
    fn overlapping_edits_keep_both_sides() {
        let a = h(1, "x");
        let b = h(2, "x");
        let c = h(3, "y");
        let base = [a.clone()];
        let vs = [
            BodyVersion {
                hlc: &a,
                base: &[],
                body: "same\n",
            },
            BodyVersion {
                hlc: &b,
                base: &base,
                body: "mine\n",
            },
            BodyVersion {
                hlc: &c,
                base: &base,
                body: "theirs\n",
            },
        ];
        let m = merge_body(&vs);
        assert!(
            m.text.contains("mine") && m.text.contains("theirs"),
            "{}",
            m.text
        );
        assert!(m.text.contains("<<<<<<<") && m.text.contains(">>>>>>>"));
        assert_eq!(m.conflicts, 1);
    }

    #[test]
    fn an_edit_of_the_merge_replaces_it() {
        let a = h(1, "x");
        let b = h(2, "x");
        let c = h(3, "y");
        let d = h(4, "x");
        let base_a = [a.clone()];
        let base_d = [b.clone(), c.clone()];
        let vs = [
            BodyVersion {
                hlc: &a,
                base: &[],
                body: "1\n2\n",
            },
            BodyVersion {
                hlc: &b,
                base: &base_a,
                body: "one\n2\n",
            },
            BodyVersion {
                hlc: &c,
                base: &base_a,
                body: "1\ntwo\n",
            },
            BodyVersion {
                hlc: &d,
                base: &base_d,
                body: "one\ntwo\nthree\n",
            },
        ];
        let m = merge_body(&vs);
        assert_eq!(m.text, "one\ntwo\nthree\n");
        assert_eq!(m.heads, vec![d.clone()]);
    }

    #[test]
    fn merge3_without_trailing_newlines() {
        let (text, conflict) = merge3("a\nb\nc", "A\nb\nc", "a\nb\nC");
        assert_eq!(text, "A\nb\nC");
        assert!(!conflict);
    }
}
