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
         <<<<<<< device 1a2b3c · 2025-11-30 14:02:00 UTC\n\
         mine\n\
         =======\n\
         theirs\n\
         >>>>>>> device 9f8e7d · 2025-11-30 14:05:00 UTC\n\
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

/// A root and two devices' edits of it that conflict, as both devices
/// show them: the versions, the two edits' stamps, and the merged text.
fn conflict_of(root: &str, a: &str, b: &str) -> (Vec<V>, Hlc, Hlc, String) {
    let (o, a1, b1) = (h(1, "o"), h(2, "aa"), h(3, "bb"));
    let vs = vec![v(&o, &[], root), v(&a1, &[&o], a), v(&b1, &[&o], b)];
    let shown = merge(&vs).text;
    assert_eq!(shown.matches(CONFLICT_START).count(), 1, "{shown}");
    (vs, a1, b1, shown)
}

/// A conflict between TWO-A and TWO-B in five lines.
fn shown_conflict() -> (Vec<V>, Hlc, Hlc, String) {
    let root = "one\ntwo\nthree\nfour\nfive\n";
    conflict_of(
        root,
        &root.replace("two", "TWO-A"),
        &root.replace("two", "TWO-B"),
    )
}

#[test]
fn two_devices_resolving_one_block_differently_conflict_again() {
    let (mut vs, a1, b1, _) = shown_conflict();
    let (a2, b2) = (h(4, "aa"), h(5, "bb"));
    vs.push(v(&a2, &[&a1, &b1], "one\nTWO-A\nthree\nfour\nfive\n"));
    vs.push(v(&b2, &[&a1, &b1], "one\nTWO-B\nthree\nfour\nfive\n"));
    let m = merge(&vs);
    // Both resolutions vanished ("one three four five") when the ancestor
    // held the block's sides one after the other.
    assert_eq!(m.conflicts, 1, "{}", m.text);
    assert!(m.text.contains("\nTWO-A\n=======\nTWO-B\n"), "{}", m.text);
    assert_eq!(m.text.matches("TWO-").count(), 2, "{}", m.text);
}

#[test]
fn a_block_kept_on_both_devices_survives_their_edits_elsewhere_once() {
    let (mut vs, a1, b1, shown) = shown_conflict();
    let (a2, b2) = (h(4, "aa"), h(5, "bb"));
    vs.push(v(&a2, &[&a1, &b1], &shown.replace("five", "FIVE-A")));
    vs.push(v(&b2, &[&a1, &b1], &shown.replace("one", "ONE-B")));
    let m = merge(&vs);
    // The marker lines were doubled: an unbalanced block.
    assert_eq!(
        m.text,
        shown.replace("five", "FIVE-A").replace("one", "ONE-B")
    );
    assert_eq!(m.conflicts, 0);
}

#[test]
fn a_resolution_and_an_edit_elsewhere_both_apply() {
    let (mut vs, a1, b1, shown) = shown_conflict();
    let (a2, b2) = (h(4, "aa"), h(5, "bb"));
    vs.push(v(&a2, &[&a1, &b1], "one\nRESOLVED\nthree\nfour\nfive\n"));
    vs.push(v(&b2, &[&a1, &b1], &format!("{shown}appended-B\n")));
    let m = merge(&vs);
    // The resolution was wrapped in a new block inside the old markers.
    assert_eq!(m.text, "one\nRESOLVED\nthree\nfour\nfive\nappended-B\n");
    assert_eq!(m.conflicts, 0);
}

/// Sides in a block are ordered by what the block shows (minute, device,
/// text), never by which merge made it: a device whose id sorts first
/// writing later in the same minute did not turn a resolution into a
/// four-sided block.
#[test]
fn a_resolution_lands_whatever_the_devices_ids_sort_like() {
    let o = h(1_000, "oo");
    let (a, b, c) = (h(50_000, "zz"), h(55_000, "aa"), h(58_000, "mm"));
    let root = "one\ntwo\nthree\nfour\nfive\n";
    let mut vs = vec![
        v(&o, &[], root),
        v(&a, &[&o], &root.replace("two", "TWO-A")),
        v(&b, &[&o], &root.replace("two", "TWO-B")),
        v(&c, &[&o], &root.replace("two", "TWO-C")),
    ];
    let two = merge_body(&view(&vs[..3])).text;
    let three = merge(&vs).text;
    let (e, d1, d2) = (h(70_000, "zz"), h(80_000, "zz"), h(81_000, "aa"));
    vs.push(v(&e, &[&a, &b], &two.replace("five", "FIVE-E")));
    vs.push(v(&d1, &[&a, &b, &c], &three));
    vs.push(v(&d2, &[&a, &b, &c], "one\nRES\nthree\nfour\nfive\n"));
    let m = merge(&vs);
    assert_eq!(m.text, "one\nRES\nthree\nfour\nFIVE-E\n");
    assert_eq!(m.conflicts, 0);
}

/// Two devices editing inside a block they both see, each on its own
/// side: both edits land in the block, which stays as it was otherwise.
#[test]
fn edits_inside_a_block_on_two_devices_merge_inside_it() {
    let (mut vs, a1, b1, shown) = conflict_of(
        "one\ntwo\nthree\n",
        "one\nTWO-A\nmore A\nthree\n",
        "one\nTWO-B\nmore B\nthree\n",
    );
    let (a2, b2) = (h(4, "aa"), h(5, "bb"));
    vs.push(v(
        &a2,
        &[&a1, &b1],
        &shown.replace("more A", "more A, edited"),
    ));
    vs.push(v(
        &b2,
        &[&a1, &b1],
        &shown.replace("TWO-B", "TWO-B, edited"),
    ));
    let m = merge(&vs);
    assert_eq!(
        m.text,
        shown
            .replace("more A", "more A, edited")
            .replace("TWO-B", "TWO-B, edited")
    );
    assert_eq!(m.conflicts, 0, "an edited block is no new conflict");
    // An edit inside it beside one of the line just before it: the same.
    let (a3, b3) = (h(6, "aa"), h(7, "bb"));
    let edited = m.text.clone();
    vs.push(v(&a3, &[&a2, &b2], &edited.replace("TWO-A", "TWO-A again")));
    vs.push(v(
        &b3,
        &[&a2, &b2],
        &edited
            .replace("one\n", "ONE\n")
            .replace("more B", "more B again"),
    ));
    let m = merge(&vs);
    assert_eq!(
        m.text,
        edited
            .replace("TWO-A", "TWO-A again")
            .replace("one\n", "ONE\n")
            .replace("more B", "more B again")
    );
}

/// One device resolves to one side of a block while the other amends the
/// other side: the block comes back as the second device has it (its
/// sides keep their labels), whichever device sorts first.
#[test]
fn a_resolution_to_one_side_beside_an_amended_block_keeps_that_block() {
    for (ao, bo) in [("aa", "zz"), ("zz", "aa")] {
        let (o, a1, b1) = (h(1_000, "oo"), h(2_000, ao), h(2_500, bo));
        let mut vs = vec![
            v(&o, &[], "one\nx3\nfive\n"),
            v(&a1, &[&o], "one\nx3-A\nfive\n"),
            v(&b1, &[&o], "one\nx3-B\nfive\n"),
        ];
        let shown = merge(&vs).text;
        let amended = shown.replace("x3-A", "x3-A, amended");
        let (a2, b2) = (h(2_700, ao), h(2_800, bo));
        vs.push(v(&a2, &[&a1, &b1], "one\nx3-B\nfive\n"));
        vs.push(v(&b2, &[&a1, &b1], &amended));
        assert_eq!(merge(&vs).text, amended, "devices {ao}, {bo}");
    }
}

/// A note quoting a git conflict is text: edits of two of its lines merge
/// as any lines do.
#[test]
fn a_quoted_git_conflict_is_plain_text() {
    let (o, a1, b1) = (h(1, "o"), h(2, "aa"), h(3, "bb"));
    let quote = "How to read one:\n<<<<<<< HEAD\nfoo\n=======\nbar\n>>>>>>> main\nend\n";
    let m = merge(&[
        v(&o, &[], quote),
        v(&a1, &[&o], &quote.replace("foo", "FOO")),
        v(&b1, &[&o], &quote.replace("bar", "BAR")),
    ]);
    assert_eq!(m.text, quote.replace("foo", "FOO").replace("bar", "BAR"));
    assert_eq!(m.conflicts, 0);
}

/// A side holding a line of `=` (a heading's underline) still reads back
/// as its block: kept on two devices that edit around it, it stays once.
#[test]
fn a_block_whose_side_holds_an_underline_stays_whole() {
    let (mut vs, a1, b1, shown) = conflict_of(
        "one\ntwo\nthree\nfour\nfive\n",
        "one\nMeeting\n=======\nthree\nfour\nfive\n",
        "one\nTWO-B\nthree\nfour\nfive\n",
    );
    let (a2, b2) = (h(4, "aa"), h(5, "bb"));
    vs.push(v(&a2, &[&a1, &b1], &shown.replace("five", "FIVE-A")));
    vs.push(v(&b2, &[&a1, &b1], &shown.replace("one", "ONE-B")));
    let m = merge(&vs);
    assert_eq!(
        m.text,
        shown.replace("five", "FIVE-A").replace("one", "ONE-B")
    );
}

/// A body ending in a block without a final newline keeps its bytes.
#[test]
fn a_text_ending_in_a_block_keeps_its_last_byte() {
    let (_, _, _, shown) = conflict_of("x\ntwo\n", "x\nTWO-A\n", "x\nTWO-B\n");
    let trimmed = shown.trim_end_matches('\n');
    let c = h(4, "cc");
    let m = merge(&[v(&c, &[], trimmed)]);
    assert_eq!(m.text, trimmed);
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

/// What an author whose version descends from `parents` saw: those
/// versions' stamps (its base) and the merge of them and their ancestors.
fn seen_by(vs: &[V], parents: &[usize]) -> (Vec<Hlc>, String) {
    let mut parents: Vec<usize> = parents.to_vec();
    parents.sort_unstable();
    parents.dedup();
    let base: Vec<Hlc> = parents.iter().map(|&p| vs[p].hlc.clone()).collect();
    let mut keep = vec![false; vs.len()];
    let mut stack = parents;
    while let Some(p) = stack.pop() {
        if !keep[p] {
            keep[p] = true;
            for b in &vs[p].base {
                stack.extend(vs.iter().position(|x| &x.hlc == b));
            }
        }
    }
    let subset: Vec<BodyVersion<'_>> = view(vs)
        .into_iter()
        .enumerate()
        .filter(|(j, _)| keep[*j])
        .map(|(_, v)| v)
        .collect();
    (base, merge_body(&subset).text)
}

/// Builds the versions: each author sees the merge of its parents.
fn history(steps: &[Step]) -> Vec<V> {
    let mut vs: Vec<V> = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let parents: Vec<usize> = s.parents.iter().filter(|&&p| p < i).copied().collect();
        let (base, seen) = seen_by(&vs, &parents);
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

/// A text's lines, with each conflict block as one segment of its sides.
enum Seg {
    Line(String),
    Block {
        raw: Vec<String>,
        sides: Vec<Vec<String>>,
    },
}

fn segments(text: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    let mut block: Option<(Vec<String>, Vec<Vec<String>>)> = None;
    for line in text.lines() {
        match &mut block {
            None if line.starts_with(CONFLICT_START) => {
                block = Some((vec![line.to_owned()], vec![Vec::new()]));
            }
            None => out.push(Seg::Line(line.to_owned())),
            Some((raw, sides)) => {
                raw.push(line.to_owned());
                if line.starts_with(CONFLICT_SEPARATOR) {
                    sides.push(Vec::new());
                } else if line.starts_with(CONFLICT_END) {
                    let (raw, sides) = block.take().expect("open block");
                    out.push(Seg::Block { raw, sides });
                } else if let Some(side) = sides.last_mut() {
                    side.push(line.to_owned());
                }
            }
        }
    }
    out
}

/// Whether every block is whole and none is inside another.
fn well_formed(text: &str) -> bool {
    let mut open = false;
    for line in text.lines() {
        if line.starts_with(CONFLICT_START) {
            if open {
                return false;
            }
            open = true;
        } else if line.starts_with(CONFLICT_SEPARATOR) && !open {
            return false;
        } else if line.starts_with(CONFLICT_END) {
            if !open {
                return false;
            }
            open = false;
        }
    }
    !open
}

/// Versions whose authors treat the blocks they see as people do: keep
/// every side (0), leave the block as it is and write elsewhere (1), or
/// pick one side (2).
/// (Each step also rewrites a line outside the blocks, when `rewrite`.)
type BlockStep = (Vec<usize>, u8, usize, u8, usize, Option<usize>);

fn history_with_blocks(steps: &[BlockStep], same_minute: bool) -> Vec<V> {
    let mut vs: Vec<V> = Vec::new();
    for (i, (parents, origin, insert_at, mode, pick, rewrite)) in steps.iter().enumerate() {
        let parents: Vec<usize> = parents.iter().filter(|&&p| p < i).copied().collect();
        let (base, seen) = seen_by(&vs, &parents);
        let segs_seen = segments(&seen);
        let plain: Vec<usize> = (0..segs_seen.len())
            .filter(|&k| matches!(segs_seen[k], Seg::Line(_)))
            .collect();
        let rewritten = rewrite
            .filter(|_| !plain.is_empty())
            .map(|r| plain[r % plain.len()]);
        let mut segs: Vec<Vec<String>> = segs_seen
            .into_iter()
            .enumerate()
            .map(|(k, seg)| match seg {
                Seg::Line(_) if Some(k) == rewritten => vec![format!("r{i}")],
                Seg::Line(l) => vec![l],
                Seg::Block { raw, sides } => match mode % 3 {
                    0 => sides.concat(),
                    1 => raw,
                    _ => sides[pick % sides.len()].clone(),
                },
            })
            .collect();
        // A new line between segments: never inside a block left as it is.
        segs.insert(insert_at % (segs.len() + 1), vec![format!("v{i}")]);
        // A minute apart, each version's label is its own; within one
        // minute, labels tie and the devices' ids sort against their order.
        let hlc = Hlc {
            millis: (i as u64 + 1) * if same_minute { 1_000 } else { 60_000 },
            counter: 0,
            origin: ["cc", "bb", "aa"][*origin as usize % 3].into(),
        };
        vs.push(V {
            op_id: format!("op{i}"),
            hlc,
            base,
            body: segs.concat().join("\n") + "\n",
        });
    }
    vs
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// Blocks kept, resolved or picked from on several devices: every
    /// order gives the same text, and its blocks stay whole, never doubled
    /// or nested (marker lines were doubled when two devices kept a block
    /// and wrote elsewhere).
    #[test]
    fn blocks_kept_or_resolved_by_authors_stay_whole(
        steps in prop::collection::vec(
            (
                prop::collection::vec(0..8usize, 1..3),
                0..3u8,
                0..8usize,
                0..3u8,
                0..3usize,
                proptest::option::of(0..8usize),
            ),
            1..10,
        ),
        seeds in prop::collection::vec(any::<u64>(), 2),
        same_minute in any::<bool>(),
    ) {
        // A root of five lines, then two devices rewriting the same one: a
        // block every later author sees, then treats in their own way.
        let mut all: Vec<BlockStep> = vec![
            (vec![], 0, 9, 1, 0, None),
            (vec![0], 1, 9, 1, 0, Some(0)),
            (vec![0], 2, 9, 1, 0, Some(0)),
        ];
        all.extend(steps);
        let vs = history_with_blocks(&all, same_minute);
        let m = merge_body(&view(&vs));
        for seed in seeds {
            prop_assert_eq!(&merge_body(&shuffled(&vs, seed)), &m);
        }
        prop_assert!(well_formed(&m.text), "{}", m.text);
        for v in &vs {
            prop_assert!(well_formed(&v.body), "an author's text: {}", v.body);
        }
    }
}

/// Authors who edit the text they are shown line by line, marker-like
/// lines included (a heading underline, a quoted git conflict, a `>>>>>>>`
/// quote), in one minute or minutes apart, some without a final newline:
/// every order and duplicate gives the same bytes, and a line only one head
/// wrote is never lost.
mod line_editing_authors {
    use super::*;

    /// Each step: parents, origin, edit, position, content, jitter (ms).
    type RStep = (Vec<usize>, u8, u8, usize, u8, u64);

    const POOL: &[&str] = &[
        "=======",
        "========",
        ">>>>>>> quote",
        "<<<<<<< HEAD",
        "plain",
        "",
    ];

    fn build(steps: &[RStep], same_minute: bool) -> Vec<V> {
        let mut vs: Vec<V> = Vec::new();
        for (i, (parents, origin, kind, at, content, jitter)) in steps.iter().enumerate() {
            let parents: Vec<usize> = parents.iter().filter(|&&p| p < i).copied().collect();
            let (base, seen) = seen_by(&vs, &parents);
            let mut lines: Vec<String> = seen.lines().map(str::to_owned).collect();
            let n = lines.len();
            match kind % 5 {
                0 if n > 0 => lines[at % n] = format!("r{i}"),
                1 if n > 0 => {
                    lines.remove(at % n);
                }
                2 => lines.insert(
                    at % (n + 1),
                    POOL[*content as usize % POOL.len()].to_owned(),
                ),
                3 => {
                    // resolve the first block by keeping its first side
                    if let Some(s) = lines.iter().position(|l| l.starts_with(CONFLICT_START)) {
                        if let Some(e) = lines[s..].iter().position(|l| l.starts_with(CONFLICT_END))
                        {
                            let e = s + e;
                            let sep = lines[s..e]
                                .iter()
                                .position(|l| l.starts_with(CONFLICT_SEPARATOR))
                                .map(|k| s + k)
                                .unwrap_or(e);
                            let first: Vec<String> = lines[s + 1..sep].to_vec();
                            lines.splice(s..=e, first);
                        }
                    }
                }
                _ => {}
            }
            lines.insert((at / 3) % (lines.len() + 1), format!("v{i}"));
            let millis = if same_minute {
                i as u64 * 10 + jitter % 7
            } else {
                (i as u64 + 1) * 60_000 + jitter % 50_000
            };
            let hlc = Hlc {
                millis,
                counter: i as u32,
                origin: ["aaaaaaa1", "aaaaaaa2", "bb"][*origin as usize % 3].into(),
            };
            let nl = if content % 4 == 3 { "" } else { "\n" };
            vs.push(V {
                op_id: format!("op{i}"),
                hlc,
                base,
                body: lines.join("\n") + nl,
            });
        }
        vs
    }

    fn check(vs: &[V], seeds: &[u64]) -> Result<(), TestCaseError> {
        let m = merge_body(&view(vs));
        for &seed in seeds {
            let mut dup = shuffled(vs, seed);
            let extra: Vec<_> = shuffled(vs, seed ^ 0x55).into_iter().take(3).collect();
            dup.extend(extra);
            prop_assert_eq!(&merge_body(&dup), &m);
        }
        // Lines only one head wrote survive.
        for (hlc, op) in &m.head_versions {
            let hv = vs.iter().find(|v| &v.hlc == hlc && &v.op_id == op).unwrap();
            for l in hv.body.lines() {
                if (l.starts_with('v') || l.starts_with('r'))
                    && vs.iter().filter(|o| o.body.lines().any(|x| x == l)).count() == 1
                {
                    prop_assert!(m.text.lines().any(|x| x == l), "lost {l}\n{}", m.text);
                }
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]
        #[test]
        fn every_order_gives_the_same_bytes_and_loses_nothing(
            steps in prop::collection::vec((prop::collection::vec(0..10usize, 1..3), 0..3u8, 0..5u8, 0..30usize, 0..12u8, 0..100_000u64), 1..12),
            same_minute in any::<bool>(),
            seeds in prop::collection::vec(any::<u64>(), 2),
        ) {
            let mut all: Vec<RStep> = vec![
                (vec![], 0, 2, 0, 0, 0), (vec![0], 0, 2, 0, 1, 0),
                (vec![0], 1, 0, 1, 0, 0),
                (vec![0], 2, 0, 1, 0, 0),
            ];
            all.extend(steps);
            let vs = build(&all, same_minute);
            check(&vs, &seeds)?;
        }
    }
}
