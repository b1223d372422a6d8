use proptest::prelude::*;

use super::*;

fn h(ms: u64, origin: &str) -> Hlc {
    Hlc {
        millis: ms,
        counter: 0,
        origin: origin.into(),
    }
}

/// Owned versions, borrowed as `BodyVersion`s by `merge`.
struct V {
    hlc: Hlc,
    op_id: String,
    base: Vec<Hlc>,
    body: String,
}

fn v(hlc: &Hlc, base: &[&Hlc], body: &str) -> V {
    V {
        hlc: hlc.clone(),
        op_id: format!("op-{hlc}"),
        base: base.iter().map(|b| (*b).clone()).collect(),
        body: body.into(),
    }
}

fn view(vs: &[V]) -> Vec<BodyVersion<'_>> {
    vs.iter()
        .map(|v| BodyVersion {
            hlc: &v.hlc,
            op_id: &v.op_id,
            base: &v.base,
            body: &v.body,
        })
        .collect()
}

fn merge(vs: &[V]) -> MergedBody {
    let m = merge_body(&view(vs));
    let rev: Vec<_> = view(vs).into_iter().rev().collect();
    assert_eq!(merge_body(&rev), m, "order changed the result");
    m
}

/// Whether `text` has a conflict block inside another one.
fn nested(text: &str) -> bool {
    let mut open = false;
    for line in text.lines() {
        if line.starts_with(CONFLICT_START) {
            if open {
                return true;
            }
            open = true;
        } else if line.starts_with(CONFLICT_END) {
            open = false;
        }
    }
    false
}

#[test]
fn linear_history_takes_the_latest() {
    let (a, b) = (h(1, "x"), h(2, "x"));
    let m = merge(&[v(&b, &[&a], "two\n"), v(&a, &[], "one\n")]);
    assert_eq!(m.text, "two\n");
    assert_eq!(m.heads, vec![b.clone()]);
    assert_eq!(m.merges, 0);
}

#[test]
fn disjoint_concurrent_edits_both_survive() {
    let (a, b, c) = (h(1, "x"), h(2, "x"), h(3, "y"));
    let m = merge(&[
        v(&a, &[], "l1\nl2\nl3\n"),
        v(&b, &[&a], "L1\nl2\nl3\n"),
        v(&c, &[&a], "l1\nl2\nL3\n"),
    ]);
    assert_eq!(m.text, "L1\nl2\nL3\n");
    assert_eq!(m.conflicts, 0);
    assert_eq!(m.heads.len(), 2);
}

#[test]
fn two_devices_adding_to_an_empty_journal_keep_both_lines() {
    let (a, b) = (h(1, "aaaaaaaa"), h(2, "bbbbbbbb"));
    let m = merge(&[v(&a, &[], "from a\n"), v(&b, &[], "from b\n")]);
    assert_eq!(m.text, "from a\nfrom b\n");
    assert_eq!(m.conflicts, 0);
}

#[test]
fn interleaved_append_chains_keep_all_lines_without_markers() {
    let (a1, b1, a2, b2) = (h(1, "a"), h(2, "b"), h(3, "a"), h(4, "b"));
    let m = merge(&[
        v(&a1, &[], "a1\n"),
        v(&b1, &[], "b1\n"),
        v(&a2, &[&a1], "a1\na2\n"),
        v(&b2, &[&b1], "b1\nb2\n"),
    ]);
    assert_eq!(m.text, "a1\na2\nb1\nb2\n");
    assert_eq!(m.conflicts, 0);
}

#[test]
fn appends_after_the_same_line_keep_both() {
    let (o, a, b) = (h(1, "o"), h(2, "a"), h(3, "b"));
    let m = merge(&[
        v(&o, &[], "title\nend\n"),
        v(&a, &[&o], "title\nfrom a\nend\nmore a\n"),
        v(&b, &[&o], "title\nfrom b\nend\nmore b\n"),
    ]);
    assert_eq!(m.text, "title\nfrom a\nfrom b\nend\nmore a\nmore b\n");
    assert_eq!(m.conflicts, 0);
}

#[test]
fn a_deletion_against_an_untouched_line_applies() {
    let (o, a, b) = (h(1, "o"), h(2, "a"), h(3, "b"));
    let m = merge(&[
        v(&o, &[], "1\n2\n3\n"),
        v(&a, &[&o], "1\n3\n"),
        v(&b, &[&o], "1\n2\n3\n4\n"),
    ]);
    assert_eq!(m.text, "1\n3\n4\n");
}

#[test]
fn overlapping_edits_make_one_block_naming_both_devices() {
    let (a, b, c) = (
        h(1, "x"),
        h(1_764_511_320_000, "1a2b3c4d"),
        h(1_764_511_500_000, "9f8e7d6c"),
    );
    let m = merge(&[
        v(&a, &[], "keep\nsame\nkeep too\n"),
        v(&b, &[&a], "keep\nmine\nkeep too\n"),
        v(&c, &[&a], "keep\ntheirs\nkeep too\n"),
    ]);
    assert_eq!(
        m.text,
        "keep\n\
         <<<<<<< device 1a2b3c · 2025-11-30 14:02 UTC\n\
         mine\n\
         =======\n\
         theirs\n\
         >>>>>>> device 9f8e7d · 2025-11-30 14:05 UTC\n\
         keep too\n"
    );
    assert_eq!(m.conflicts, 1);
}

#[test]
fn a_third_head_on_a_conflict_grows_the_block() {
    let (o, a, b, c) = (h(1, "o"), h(2, "a"), h(3, "b"), h(4, "c"));
    let m = merge(&[
        v(&o, &[], "x\n"),
        v(&a, &[&o], "A\n"),
        v(&b, &[&o], "B\n"),
        v(&c, &[&o], "C\n"),
    ]);
    assert_eq!(m.text.matches(CONFLICT_START).count(), 1, "{}", m.text);
    assert!(!nested(&m.text));
    for side in ["A\n", "B\n", "C\n"] {
        assert!(m.text.contains(side), "{}", m.text);
    }
}

#[test]
fn equal_stamps_are_two_versions() {
    let a = h(5, "same");
    let mut first = v(&a, &[], "one\n");
    first.op_id = "op-1".into();
    let mut second = v(&a, &[], "two\n");
    second.op_id = "op-2".into();
    let m = merge(&[second, first]);
    assert_eq!(m.text, "one\ntwo\n");
    assert_eq!(m.heads, vec![a.clone()]);
    assert_eq!(m.head_versions.len(), 2);
}

#[test]
fn an_edit_of_the_merge_replaces_it() {
    let (a, b, c, d) = (h(1, "x"), h(2, "x"), h(3, "y"), h(4, "x"));
    let m = merge(&[
        v(&a, &[], "1\n2\n"),
        v(&b, &[&a], "one\n2\n"),
        v(&c, &[&a], "1\ntwo\n"),
        v(&d, &[&b, &c], "one\ntwo\nthree\n"),
    ]);
    assert_eq!(m.text, "one\ntwo\nthree\n");
    assert_eq!(m.heads, vec![d.clone()]);
}

#[test]
fn criss_cross_merges_from_a_virtual_ancestor() {
    // a and b both merged {x, y} (differently); then each edits further.
    let (o, x, y) = (h(1, "o"), h(2, "x"), h(3, "y"));
    let (a, b) = (h(4, "a"), h(5, "b"));
    let (a2, b2) = (h(6, "a"), h(7, "b"));
    let m = merge(&[
        v(&o, &[], "1\n2\n3\n"),
        v(&x, &[&o], "X\n2\n3\n"),
        v(&y, &[&o], "1\n2\nY\n"),
        v(&a, &[&x, &y], "X\n2\nY\n"),
        v(&b, &[&x, &y], "X\n2\nY\n"),
        v(&a2, &[&a], "X\n2a\nY\n"),
        v(&b2, &[&b], "X\n2\nY\nb\n"),
    ]);
    assert_eq!(m.text, "X\n2a\nY\nb\n");
}

#[test]
fn concurrent_roots_merged_in_different_orders_stay_insertions() {
    // Four bodies written from nothing on one device; two merges placed
    // v0's and v3's lines in different orders (v5 has v3 first, the final
    // merge's virtual ancestor of v0 and v3 has v0 first). Diffed against
    // that ancestor as is, both sides seemed to replace v0: a conflict
    // block, and v0 twice. The bodies are as an earlier version saved them.
    let t: Vec<Hlc> = (1..=9).map(|ms| h(ms, "aa")).collect();
    let m = merge(&[
        v(&t[0], &[], "v0\n"),
        v(&t[1], &[], "v1\n"),
        v(&t[2], &[], "v2\n"),
        v(&t[3], &[], "v3\n"),
        v(&t[4], &[&t[0]], "v4\nv0\n"),
        v(&t[5], &[&t[3], &t[4]], "v5\nv3\nv4\nv0\n"),
        v(&t[6], &[&t[3]], "v6\nv3\n"),
        v(&t[7], &[&t[0]], "v7\nv0\n"),
        v(&t[8], &[&t[5]], "v8\nv5\nv3\nv4\nv0\n"),
    ]);
    assert_eq!(m.conflicts, 0, "{}", m.text);
    assert_eq!(m.text, "v1\nv2\nv6\nv8\nv5\nv3\nv7\nv4\nv0\n");
    // The same history, each author seeing what this code merges.
    let step = |parents: &[usize]| Step {
        parents: parents.to_vec(),
        origin: 0,
        insert_at: 0,
        change: None,
    };
    let vs = history(&[
        step(&[]),
        step(&[]),
        step(&[]),
        step(&[]),
        step(&[0]),
        step(&[3, 4]),
        step(&[3]),
        step(&[0]),
        step(&[5]),
    ]);
    let m = merge(&vs);
    assert_eq!(m.conflicts, 0, "{}", m.text);
    for i in 0..vs.len() {
        let line = format!("v{i}");
        assert_eq!(
            m.text.lines().filter(|l| *l == line).count(),
            1,
            "{}",
            m.text
        );
    }
}

#[test]
fn histories_of_many_concurrent_roots_stay_insertions() {
    // Cases the insertion property found (with more and longer histories)
    // against earlier attempts at this merge, which let one merge order
    // concurrent lines unlike another; as `(parents, insert_at)` per step.
    let cases: &[&[(&[usize], usize)]] = &[
        &[
            (&[], 0),
            (&[], 0),
            (&[], 0),
            (&[], 0),
            (&[1], 0),
            (&[2], 0),
            (&[5, 0], 0),
            (&[4], 7),
            (&[5], 0),
            (&[6, 4], 0),
        ],
        &[
            (&[], 0),
            (&[], 0),
            (&[], 0),
            (&[], 0),
            (&[], 0),
            (&[], 0),
            (&[], 0),
            (&[], 0),
            (&[], 0),
            (&[], 0),
            (&[8], 1),
            (&[], 0),
            (&[], 0),
            (&[8], 0),
            (&[5, 4, 10], 1),
            (&[4], 0),
            (&[14], 0),
            (&[14], 4),
        ],
    ];
    for case in cases {
        let steps: Vec<Step> = case
            .iter()
            .map(|&(parents, insert_at)| Step {
                parents: parents.to_vec(),
                origin: 0,
                insert_at,
                change: None,
            })
            .collect();
        let vs = history(&steps);
        let m = merge(&vs);
        assert_eq!(m.conflicts, 0, "{}", m.text);
        for i in 0..vs.len() {
            let line = format!("v{i}");
            assert_eq!(
                m.text.lines().filter(|l| *l == line).count(),
                1,
                "{}",
                m.text
            );
        }
    }
}

/// Still conflicts: 13 bodies written from nothing, merged into one another
/// in many orders. A three-way merge has no line identities, so merges that
/// place the same concurrent lines differently can still meet later, one
/// side having reordered lines of the common ancestor: a conflict block and
/// three lines twice. Found with 30 steps of up to 3 parents, not at the
/// property's sizes.
#[test]
#[ignore = "known limit of the line merge; see the comment"]
fn many_roots_in_many_orders_known_limit() {
    let case: &[(&[usize], usize)] = &[
        (&[], 0),
        (&[], 0),
        (&[], 0),
        (&[1], 2),
        (&[], 0),
        (&[], 0),
        (&[], 0),
        (&[1], 0),
        (&[], 0),
        (&[], 0),
        (&[], 0),
        (&[], 0),
        (&[3], 0),
        (&[8], 0),
        (&[1], 0),
        (&[9], 0),
        (&[], 0),
        (&[5, 7, 8], 3),
        (&[17], 0),
        (&[], 0),
        (&[14, 8], 0),
        (&[5, 3], 0),
        (&[17], 1),
    ];
    let steps: Vec<Step> = case
        .iter()
        .map(|&(parents, insert_at)| Step {
            parents: parents.to_vec(),
            origin: 0,
            insert_at,
            change: None,
        })
        .collect();
    let vs = history(&steps);
    let m = merge(&vs);
    assert_eq!(m.conflicts, 0, "{}", m.text);
}

#[test]
fn without_trailing_newlines() {
    let (o, a, b) = (h(1, "o"), h(2, "a"), h(3, "b"));
    let m = merge(&[
        v(&o, &[], "a\nb\nc"),
        v(&a, &[&o], "A\nb\nc"),
        v(&b, &[&o], "a\nb\nC"),
    ]);
    assert_eq!(m.text, "A\nb\nC");
    let m = merge(&[v(&a, &[], "x"), v(&b, &[], "y")]);
    assert_eq!(m.text, "x\ny");
}

/// One random version: parents among earlier versions, then an edit of the
/// text its author saw.
#[derive(Debug, Clone)]
struct Step {
    parents: Vec<usize>,
    origin: u8,
    insert_at: usize,
    /// Delete or rewrite one line of what the author saw.
    change: Option<(usize, bool)>,
}

fn steps(with_changes: bool) -> impl Strategy<Value = Vec<Step>> {
    let change = if with_changes {
        proptest::option::of((0..8usize, any::<bool>())).boxed()
    } else {
        Just(None).boxed()
    };
    prop::collection::vec(
        (
            prop::collection::vec(0..16usize, 0..3),
            0..3u8,
            0..8usize,
            change,
        )
            .prop_map(|(parents, origin, insert_at, change)| Step {
                parents,
                origin,
                insert_at,
                change,
            }),
        1..12,
    )
}

/// Builds the versions: each author sees the merge of its parents.
fn history(steps: &[Step]) -> Vec<V> {
    let mut vs: Vec<V> = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let mut parents: Vec<usize> = s.parents.iter().filter(|&&p| p < i).copied().collect();
        parents.sort_unstable();
        parents.dedup();
        let base: Vec<Hlc> = parents.iter().map(|&p| vs[p].hlc.clone()).collect();
        // What the author saw: the merge of the parents and their ancestors.
        let seen = {
            let mut keep = vec![false; vs.len()];
            let mut stack = parents.clone();
            while let Some(p) = stack.pop() {
                if !keep[p] {
                    keep[p] = true;
                    for b in &vs[p].base {
                        stack.extend(vs.iter().position(|x| &x.hlc == b));
                    }
                }
            }
            let subset: Vec<BodyVersion<'_>> = view(&vs)
                .into_iter()
                .enumerate()
                .filter(|(j, _)| keep[*j])
                .map(|(_, v)| v)
                .collect();
            merge_body(&subset).text
        };
        // The author resolves any conflict by keeping every side.
        let mut lines: Vec<String> = seen
            .lines()
            .filter(|l| {
                !(l.starts_with(CONFLICT_START)
                    || l.starts_with(CONFLICT_SEPARATOR)
                    || l.starts_with(CONFLICT_END))
            })
            .map(str::to_owned)
            .collect();
        if let Some((at, rewrite)) = s.change {
            if !lines.is_empty() {
                let at = at % lines.len();
                if rewrite {
                    lines[at] = format!("r{i}");
                } else {
                    lines.remove(at);
                }
            }
        }
        lines.insert(s.insert_at % (lines.len() + 1), format!("v{i}"));
        let origin = ["aa", "bb", "cc"][s.origin as usize];
        let hlc = Hlc {
            millis: i as u64 + 1,
            counter: 0,
            origin: origin.into(),
        };
        vs.push(V {
            op_id: format!("op{i}"),
            hlc,
            base,
            body: lines.join("\n") + "\n",
        });
    }
    vs
}

fn shuffled<'a>(vs: &'a [V], seed: u64) -> Vec<BodyVersion<'a>> {
    let mut out = view(vs);
    let mut state = seed | 1;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for i in (1..out.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        out.swap(i, j);
    }
    let dups: Vec<_> = out.iter().filter(|_| next() % 3 == 0).copied().collect();
    out.extend(dups);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn any_history_converges_without_nesting(steps in steps(true), seeds in prop::collection::vec(any::<u64>(), 3)) {
        let vs = history(&steps);
        let m = merge_body(&view(&vs));
        for seed in seeds {
            prop_assert_eq!(&merge_body(&shuffled(&vs, seed)), &m);
        }
        prop_assert!(!nested(&m.text), "{}", m.text);
        prop_assert_eq!(m.text.matches(CONFLICT_START).count(), m.conflicts);
        prop_assert_eq!(m.text.matches(CONFLICT_END).count(), m.conflicts);
    }

    #[test]
    fn insertions_alone_never_conflict_and_all_survive(steps in steps(false), seed in any::<u64>()) {
        let vs = history(&steps);
        let m = merge_body(&view(&vs));
        prop_assert_eq!(&merge_body(&shuffled(&vs, seed)), &m);
        prop_assert_eq!(m.conflicts, 0, "{}", m.text);
        for i in 0..vs.len() {
            let line = format!("v{i}");
            let copies = m.text.lines().filter(|l| *l == line).count();
            prop_assert_eq!(copies, 1, "{} in {}", line, m.text);
        }
    }
}
