//! Body merges and equal stamps, end to end through replicas.

use heph_core::{Action, Field, Hlc, Kind, NewNode, NodePatch, Op};
use heph_store::Replica;

fn set_body(r: &mut Replica, id: &str, body: &str) {
    r.update(
        id,
        &NodePatch {
            body: Some(body.into()),
            ..NodePatch::default()
        },
    )
    .unwrap();
}

fn body(r: &Replica, id: &str) -> String {
    r.get(id).unwrap().unwrap().body
}

/// Lets the wall clock move so stamps of the next edit are later.
fn tick() {
    std::thread::sleep(std::time::Duration::from_millis(3));
}

/// Two devices exchange everything, in both directions.
fn exchange(a: &mut Replica, b: &mut Replica) {
    let from_a = a.export_ops().unwrap();
    let from_b = b.export_ops().unwrap();
    a.apply_ops(&from_b).unwrap();
    b.apply_ops(&from_a).unwrap();
}

fn short(r: &Replica) -> String {
    r.origin().chars().take(6).collect()
}

#[test]
fn journal_on_two_devices_keeps_both_lines() {
    let date = time::macros::date!(2026 - 11 - 30);
    let mut a = Replica::open_in_memory().unwrap();
    let mut b = Replica::open_in_memory().unwrap();
    let id = a.journal(date).unwrap().id;
    assert_eq!(b.journal(date).unwrap().id, id);
    set_body(&mut a, &id, "- call the plumber\n");
    tick();
    set_body(&mut b, &id, "- buy milk\n");
    exchange(&mut a, &mut b);
    let text = body(&a, &id);
    assert_eq!(text, "- call the plumber\n- buy milk\n");
    assert_eq!(body(&b, &id), text);
    assert_eq!(a.canonical_dump().unwrap(), b.canonical_dump().unwrap());
}

#[test]
fn interleaved_append_chains_keep_all_four_lines() {
    let mut a = Replica::open_in_memory().unwrap();
    let mut b = Replica::open_in_memory().unwrap();
    let id = a
        .create(NewNode {
            kind: Some(Kind::Note),
            title: "log".into(),
            ..NewNode::default()
        })
        .unwrap()
        .id;
    b.apply_ops(&a.export_ops().unwrap()).unwrap();
    tick();
    set_body(&mut a, &id, "a1\n");
    tick();
    set_body(&mut b, &id, "b1\n");
    tick();
    set_body(&mut a, &id, "a1\na2\n");
    tick();
    set_body(&mut b, &id, "b1\nb2\n");
    exchange(&mut a, &mut b);
    assert_eq!(body(&a, &id), "a1\na2\nb1\nb2\n");
    assert_eq!(a.canonical_dump().unwrap(), b.canonical_dump().unwrap());
    // A third replica receiving the ops one at a time agrees.
    let mut c = Replica::open_in_memory().unwrap();
    for op in a.export_ops().unwrap().into_iter().rev() {
        c.apply_ops(&[op]).unwrap();
    }
    assert_eq!(c.canonical_dump().unwrap(), a.canonical_dump().unwrap());
}

#[test]
fn same_line_edits_make_one_block_naming_both_devices() {
    let mut a = Replica::open_in_memory().unwrap();
    let mut b = Replica::open_in_memory().unwrap();
    let id = a
        .create(NewNode {
            kind: Some(Kind::Note),
            title: "n".into(),
            body: "intro\nshared line\noutro\n".into(),
            ..NewNode::default()
        })
        .unwrap()
        .id;
    b.apply_ops(&a.export_ops().unwrap()).unwrap();
    tick();
    set_body(&mut a, &id, "intro\nalpha wrote this\noutro\n");
    // Sides are in the order of their labels, which name the second: the
    // version written a second earlier is on top.
    std::thread::sleep(std::time::Duration::from_millis(1_050));
    set_body(&mut b, &id, "intro\nbeta wrote this\noutro\n");
    let report = a.apply_ops(&b.export_ops().unwrap()).unwrap();
    b.apply_ops(&a.export_ops().unwrap()).unwrap();
    let text = body(&a, &id);
    assert_eq!(text.matches("<<<<<<<").count(), 1, "{text}");
    assert_eq!(text.matches(">>>>>>>").count(), 1, "{text}");
    let first = format!("<<<<<<< device {} · ", short(&a));
    let last = format!(">>>>>>> device {} · ", short(&b));
    assert!(text.contains(&first) && text.contains(&last), "{text}");
    assert!(
        text.starts_with("intro\n") && text.ends_with("outro\n"),
        "{text}"
    );
    assert!(!text.contains("ours") && !text.contains("theirs"));
    assert_eq!(report.conflicts, 1);
    assert_eq!(report.conflict_nodes, vec![id.clone()]);
    assert_eq!(body(&b, &id), text);
}

fn op(op_id: &str, hlc: &Hlc, node: &str, action: Action) -> Op {
    Op {
        op_id: op_id.into(),
        hlc: hlc.clone(),
        node: node.into(),
        action,
    }
}

#[test]
fn ops_with_one_stamp_converge_in_both_orders() {
    let t0: Hlc = "000000000001000000-aaaa".parse().unwrap();
    let t1: Hlc = "000000000002000000-bbbb".parse().unwrap();
    let node = "n1";
    let create = op("c", &t0, node, Action::Create { kind: Kind::Note });
    let first = vec![
        op(
            "x1",
            &t1,
            node,
            Action::Set {
                field: Field::Title,
                value: Some("from x".into()),
            },
        ),
        op(
            "x2",
            &t1,
            node,
            Action::SetBody {
                body: "body x\n".into(),
                base: vec![],
            },
        ),
        op("x3", &t1, node, Action::AddTag { tag: "red".into() }),
    ];
    let second = vec![
        op(
            "y1",
            &t1,
            node,
            Action::Set {
                field: Field::Title,
                value: Some("from y".into()),
            },
        ),
        op(
            "y2",
            &t1,
            node,
            Action::SetBody {
                body: "body y\n".into(),
                base: vec![],
            },
        ),
        op("y3", &t1, node, Action::RemoveTag { tag: "red".into() }),
    ];
    let mut dumps = Vec::new();
    for (one, two) in [(&first, &second), (&second, &first)] {
        let mut r = Replica::open_in_memory().unwrap();
        r.apply_ops(std::slice::from_ref(&create)).unwrap();
        for o in one.iter().chain(two.iter()) {
            r.apply_ops(std::slice::from_ref(o)).unwrap();
        }
        let n = r.get(node).unwrap().unwrap();
        assert_eq!(n.title, "from y");
        assert!(!n.tags.contains("red"));
        assert_eq!(n.body, "body x\nbody y\n");
        dumps.push(r.canonical_dump().unwrap());
    }
    assert_eq!(dumps[0], dumps[1]);
}

/// A long linear history with two concurrent heads at the end.
#[test]
fn a_long_history_merges_from_the_common_ancestor() {
    let mut a = Replica::open_in_memory().unwrap();
    let id = a
        .create(NewNode {
            kind: Some(Kind::Note),
            title: "long".into(),
            body: "0\n".into(),
            ..NewNode::default()
        })
        .unwrap()
        .id;
    let mut text = String::from("0\n");
    for i in 1..300 {
        text.push_str(&format!("{i}\n"));
        set_body(&mut a, &id, &text);
    }
    let mut b = Replica::open_in_memory().unwrap();
    b.apply_ops(&a.export_ops().unwrap()).unwrap();
    tick();
    set_body(&mut a, &id, &format!("top a\n{text}"));
    tick();
    set_body(&mut b, &id, &format!("{text}end b\n"));
    let report = a.apply_ops(&b.export_ops().unwrap()).unwrap();
    b.apply_ops(&a.export_ops().unwrap()).unwrap();
    assert_eq!(body(&a, &id), format!("top a\n{text}end b\n"));
    assert_eq!(report.merged, 1);
    assert!(report.conflict_nodes.is_empty());
    assert_eq!(a.canonical_dump().unwrap(), b.canonical_dump().unwrap());
}

/// A task turned into a note on one device while the other ticks it done:
/// each field's last writer wins, and a note shows no status, whatever
/// the order the ops arrive in (a note read `[x]` everywhere, with a
/// status nothing could set again).
#[test]
fn a_note_made_while_its_task_was_ticked_shows_no_status() {
    let mut a = Replica::open_in_memory().unwrap();
    let mut b = Replica::open_in_memory().unwrap();
    let id = a
        .create(NewNode {
            kind: Some(Kind::Task),
            title: "t".into(),
            ..NewNode::default()
        })
        .unwrap()
        .id;
    b.apply_ops(&a.export_ops().unwrap()).unwrap();
    tick();
    a.update(
        &id,
        &NodePatch {
            kind: Some(Kind::Note),
            ..NodePatch::default()
        },
    )
    .unwrap();
    tick();
    b.update(
        &id,
        &NodePatch {
            status: Some(Some(heph_core::Status::Done)),
            ..NodePatch::default()
        },
    )
    .unwrap();
    exchange(&mut a, &mut b);
    for r in [&a, &b] {
        let node = r.get(&id).unwrap().unwrap();
        assert_eq!((node.kind, node.status), (Kind::Note, None));
    }
    assert_eq!(a.canonical_dump().unwrap(), b.canonical_dump().unwrap());
    // Made a task again, it is a task to do, on both.
    tick();
    a.update(
        &id,
        &NodePatch {
            kind: Some(Kind::Task),
            ..NodePatch::default()
        },
    )
    .unwrap();
    exchange(&mut a, &mut b);
    for r in [&a, &b] {
        let node = r.get(&id).unwrap().unwrap();
        assert_eq!(node.kind, Kind::Task);
        assert_eq!(node.status, Some(heph_core::Status::Todo));
    }
}

/// A note made on `a`, its line `x3` then changed on both devices, which
/// exchange everything: a conflict block both show. Its id.
fn x3_conflict(a: &mut Replica, b: &mut Replica) -> String {
    let id = a
        .create(NewNode {
            kind: Some(Kind::Note),
            title: "n".into(),
            body: "one\nx3\nfive\n".into(),
            ..NewNode::default()
        })
        .unwrap()
        .id;
    b.apply_ops(&a.export_ops().unwrap()).unwrap();
    tick();
    set_body(a, &id, "one\nx3-A\nfive\n");
    tick();
    set_body(b, &id, "one\nx3-B\nfive\n");
    exchange(a, b);
    id
}

/// A block resolved here, kept and edited inside on another device: it
/// comes back (nothing is dropped), and the pass that brings it says so,
/// though the merge made no new block.
#[test]
fn a_block_coming_back_over_a_resolution_is_reported() {
    let mut a = Replica::open_in_memory().unwrap();
    let mut b = Replica::open_in_memory().unwrap();
    let id = x3_conflict(&mut a, &mut b);
    let shown = body(&a, &id);
    assert_eq!(shown, body(&b, &id));
    assert_eq!(shown.matches("<<<<<<<").count(), 1, "{shown}");
    tick();
    // A keeps B's side; B keeps the block and amends A's side.
    set_body(&mut a, &id, "one\nx3-B\nfive\n");
    tick();
    set_body(&mut b, &id, &shown.replace("x3-A", "x3-A, amended by B"));
    let report = a.apply_ops(&b.export_ops().unwrap()).unwrap();
    let text = body(&a, &id);
    assert!(
        text.contains("x3-A, amended by B") && text.contains("<<<<<<<"),
        "{text}"
    );
    assert_eq!(report.conflict_nodes, vec![id.clone()], "{text}");
    // B held that block already: nothing new to it.
    let report = b.apply_ops(&a.export_ops().unwrap()).unwrap();
    assert_eq!(body(&b, &id), text);
    assert!(report.conflict_nodes.is_empty());
}

/// A replica whose bodies were merged by an earlier rule merges the ones
/// with several heads again at its next open, index included, so it shows
/// what a device that pulls every op today computes.
#[test]
fn bodies_merged_by_an_earlier_rule_are_merged_again_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    let mut a = Replica::open(&path).unwrap();
    let mut b = Replica::open_in_memory().unwrap();
    let id = x3_conflict(&mut a, &mut b);
    let merged = body(&a, &id);
    drop(a);
    // As an earlier heph left it: another text, and no mark of the rule.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(&format!(
        "INSERT INTO nodes_fts (nodes_fts, rowid, title, body)
           SELECT 'delete', rowid, title, body FROM nodes WHERE id = '{id}';
         UPDATE nodes SET body = 'one\nx3-A\nx3-B\nfive\n' WHERE id = '{id}';
         INSERT INTO nodes_fts (rowid, title, body)
           SELECT rowid, title, body FROM nodes WHERE id = '{id}';
         DELETE FROM meta WHERE key = 'merge_rule';"
    ))
    .unwrap();
    drop(conn);
    let a = Replica::open(&path).unwrap();
    assert_eq!(body(&a, &id), merged);
    assert_eq!(a.canonical_dump().unwrap(), b.canonical_dump().unwrap());
    assert_eq!(a.search("x3", 10).unwrap().len(), 1);
    // The index holds what the rows hold.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO nodes_fts (nodes_fts) VALUES ('integrity-check')",
        [],
    )
    .unwrap();
}

/// The first open after an upgrade merges bodies again; while another
/// writer holds the replica, the open goes on without it (it does not hang
/// for the store's 30 s), and a later open does it.
#[test]
fn an_open_beside_another_writer_merges_again_later() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    drop(Replica::open(&path).unwrap());
    let other = rusqlite::Connection::open(&path).unwrap();
    other
        .execute_batch("DELETE FROM meta WHERE key = 'merge_rule'; BEGIN IMMEDIATE;")
        .unwrap();
    let started = std::time::Instant::now();
    let opened = Replica::open(&path);
    assert!(opened.is_ok(), "{opened:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    drop(opened);
    other.execute_batch("COMMIT").unwrap();
    drop(Replica::open(&path).unwrap());
    let rule: String = other
        .query_row("SELECT value FROM meta WHERE key = 'merge_rule'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(rule, "2");
}
