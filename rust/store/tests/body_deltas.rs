//! Body edits travel as deltas against their base version: small on the
//! replica and the hub, held back until their base arrives, refused when
//! they do not fit it — and every replica still converges.

use heph_core::body_delta::BodyDelta;
use heph_core::{Action, Kind, NewNode, NodePatch, Op};
use heph_store::{RawOp, Replica};

fn note(r: &mut Replica, body: &str) -> String {
    r.create(NewNode {
        kind: Some(Kind::Note),
        title: "n".into(),
        body: body.into(),
        ..NewNode::default()
    })
    .unwrap()
    .id
}

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

fn json_bytes(ops: &[Op]) -> usize {
    ops.iter()
        .map(|o| serde_json::to_vec(o).unwrap().len())
        .sum()
}

fn raw(ops: &[Op], first_seq: i64) -> Vec<RawOp> {
    ops.iter()
        .enumerate()
        .map(|(i, o)| RawOp {
            seq: first_seq + i as i64,
            raw: serde_json::to_string(o).unwrap(),
        })
        .collect()
}

fn ten_kb() -> String {
    (0..200)
        .map(|i| format!("line {i:03} of a long note, with a few more words in it.\n"))
        .collect()
}

#[test]
fn a_one_line_edit_of_a_long_note_is_small() {
    let mut a = Replica::open_in_memory().unwrap();
    let body = ten_kb();
    assert!(body.len() >= 10_000);
    let id = note(&mut a, &body);
    let before = a.export_ops().unwrap();
    set_body(
        &mut a,
        &id,
        &body.replace("line 100 of", "line one hundred of"),
    );
    let after = a.export_ops().unwrap();
    let added = &after[before.len()..];
    assert_eq!(added.len(), 1);
    assert!(
        matches!(added[0].action, Action::EditBody { .. }),
        "{:?}",
        added[0].action
    );
    // What the replica's log and the hub store: the op as JSON.
    assert!(json_bytes(added) < 2048, "{} bytes", json_bytes(added));

    // Another device rebuilds the same text from it.
    let mut b = Replica::open_in_memory().unwrap();
    b.apply_pulled("hub", &raw(&after, 1), after.len() as i64, None)
        .unwrap();
    assert_eq!(
        b.get(&id).unwrap().unwrap().body,
        a.get(&id).unwrap().unwrap().body
    );
    assert_eq!(a.canonical_dump().unwrap(), b.canonical_dump().unwrap());
}

#[test]
fn a_rewrite_is_stored_whole() {
    let mut a = Replica::open_in_memory().unwrap();
    let id = note(&mut a, "one\ntwo\n");
    set_body(&mut a, &id, "something else entirely\n");
    let ops = a.export_ops().unwrap();
    assert!(matches!(ops.last().unwrap().action, Action::SetBody { .. }));
}

#[test]
fn deltas_arriving_before_their_base_wait_for_it() {
    let mut a = Replica::open_in_memory().unwrap();
    let mut body = ten_kb();
    let id = note(&mut a, &body);
    for i in 0..5 {
        body = body.replace(&format!("line 01{i}"), &format!("edited {i}"));
        set_body(&mut a, &id, &body);
    }
    let ops = a.export_ops().unwrap();
    let deltas = ops
        .iter()
        .filter(|o| matches!(o.action, Action::EditBody { .. }))
        .count();
    assert_eq!(deltas, 5);

    // Newest first, one op per page: every delta waits for its base.
    let mut b = Replica::open_in_memory().unwrap();
    let mut held = 0;
    for (i, op) in ops.iter().enumerate().rev() {
        let page = raw(std::slice::from_ref(op), i as i64 + 1);
        let outcome = b.apply_pulled("hub", &page, i as i64 + 1, None).unwrap();
        assert_eq!(outcome.quarantined, 0);
        held += outcome.applied.held;
    }
    assert_eq!(held, 5);
    assert_eq!(b.get(&id).unwrap().unwrap().body, body);
    assert_eq!(a.canonical_dump().unwrap(), b.canonical_dump().unwrap());
    // Delivered again: nothing changes.
    b.apply_ops(&ops).unwrap();
    assert_eq!(a.canonical_dump().unwrap(), b.canonical_dump().unwrap());
}

/// A delta against the node's first version, as a peer would send it.
fn delta_op(base_op: &Op, op_id: &str, delta: &str) -> Op {
    let mut hlc = base_op.hlc.clone();
    hlc.counter += 1000;
    Op {
        op_id: op_id.into(),
        hlc: hlc.clone(),
        node: base_op.node.clone(),
        action: Action::EditBody {
            base: vec![base_op.hlc.clone()],
            from: base_op.op_id.clone(),
            delta: serde_json::from_str::<BodyDelta>(delta).unwrap(),
        },
    }
}

#[test]
fn a_delta_that_does_not_fit_is_quarantined() {
    let mut a = Replica::open_in_memory().unwrap();
    let id = note(&mut a, "a\nb\n");
    let ops = a.export_ops().unwrap();
    let first = ops
        .iter()
        .find(|o| matches!(o.action, Action::SetBody { .. }))
        .unwrap()
        .clone();
    let mut b = Replica::open_in_memory().unwrap();
    b.apply_ops(&ops).unwrap();
    let before = b.canonical_dump().unwrap();
    for (n, delta) in ["[5]", "[1]", "[-3]", r#"[2,-1,"x"]"#].iter().enumerate() {
        let bad = delta_op(&first, &format!("bad{n}"), delta);
        let page = raw(std::slice::from_ref(&bad), 100 + n as i64);
        let outcome = b.apply_pulled("hub", &page, 100 + n as i64, None).unwrap();
        assert_eq!(outcome.quarantined, 1, "{delta}");
        assert!(b.apply_ops(&[bad]).is_err(), "{delta}");
    }
    assert_eq!(b.quarantine_summary(None).unwrap().count, 4);
    assert_eq!(b.canonical_dump().unwrap(), before);
    assert_eq!(b.get(&id).unwrap().unwrap().body, "a\nb\n");

    // A delta naming a version of another node, or one not in its base.
    let other = note(&mut a, "c\n");
    let other_first = a
        .export_ops()
        .unwrap()
        .into_iter()
        .find(|o| o.node == other && matches!(o.action, Action::SetBody { .. }))
        .unwrap();
    b.apply_ops(&a.export_ops().unwrap()).unwrap();
    let mut wrong_node = delta_op(&first, "wrong-node", "[2]");
    if let Action::EditBody { from, .. } = &mut wrong_node.action {
        *from = other_first.op_id.clone();
    }
    assert!(b.apply_ops(&[wrong_node]).is_err());
    let mut not_in_base = delta_op(&first, "not-in-base", "[2]");
    if let Action::EditBody { base, .. } = &mut not_in_base.action {
        base.clear();
    }
    assert!(b.apply_ops(&[not_in_base]).is_err());
}

#[test]
fn a_held_delta_that_does_not_fit_its_base_stays_out() {
    let mut a = Replica::open_in_memory().unwrap();
    let id = note(&mut a, "a\nb\n");
    let ops = a.export_ops().unwrap();
    let first = ops
        .iter()
        .find(|o| matches!(o.action, Action::SetBody { .. }))
        .unwrap()
        .clone();
    let bad = delta_op(&first, "bad", "[7]");
    let mut b = Replica::open_in_memory().unwrap();
    let report = b.apply_ops(std::slice::from_ref(&bad)).unwrap();
    assert_eq!(report.held, 1);
    // The base arrives: the delta is checked, found wanting, kept aside.
    b.apply_ops(&ops).unwrap();
    assert_eq!(b.get(&id).unwrap().unwrap().body, "a\nb\n");
    let mut c = Replica::open_in_memory().unwrap();
    c.apply_ops(&ops).unwrap();
    assert_eq!(b.canonical_dump().unwrap(), c.canonical_dump().unwrap());
    assert_eq!(b.held_ops().unwrap().len(), 1);
    assert!(b.held_ops().unwrap()[0].1.is_some());
}

/// Phone and laptop edit one long note offline, each as deltas; after
/// syncing both ways both hold one merged text.
#[test]
fn concurrent_deltas_merge() {
    let mut phone = Replica::open_in_memory().unwrap();
    let mut laptop = Replica::open_in_memory().unwrap();
    let body = ten_kb();
    let id = note(&mut phone, &body);
    laptop.apply_ops(&phone.export_ops().unwrap()).unwrap();
    set_body(&mut phone, &id, &body.replace("line 010 of", "phone wrote"));
    set_body(
        &mut laptop,
        &id,
        &body.replace("line 190 of", "laptop wrote"),
    );
    set_body(
        &mut laptop,
        &id,
        &body
            .replace("line 190 of", "laptop wrote")
            .replace("line 191 of", "laptop again"),
    );
    let from_phone = phone.export_ops().unwrap();
    let from_laptop = laptop.export_ops().unwrap();
    phone.apply_ops(&from_laptop).unwrap();
    laptop.apply_ops(&from_phone).unwrap();
    let merged = phone.get(&id).unwrap().unwrap().body;
    assert!(merged.contains("phone wrote") && merged.contains("laptop again"));
    assert!(!merged.contains("<<<<<<<"));
    assert_eq!(
        phone.canonical_dump().unwrap(),
        laptop.canonical_dump().unwrap()
    );
    // Editing the merged text goes on as a delta.
    set_body(
        &mut phone,
        &id,
        &merged.replace("line 100 of", "after merge"),
    );
    let last = phone.export_ops().unwrap().pop().unwrap();
    assert!(matches!(last.action, Action::EditBody { .. }));
    laptop.apply_ops(&phone.export_ops().unwrap()).unwrap();
    assert_eq!(
        phone.canonical_dump().unwrap(),
        laptop.canonical_dump().unwrap()
    );
}

/// The index reads its text from the nodes (external content): a changed,
/// deleted, restored or merged note is found by its new words only, and
/// the index stays sound.
#[test]
fn search_follows_edits_deletes_and_merges() {
    let mut a = Replica::open_in_memory().unwrap();
    let mut b = Replica::open_in_memory().unwrap();
    let body = ten_kb();
    let id = note(&mut a, &format!("{body}zebra\n"));
    b.apply_ops(&a.export_ops().unwrap()).unwrap();
    assert_eq!(a.search("zebra", 5).unwrap().len(), 1);
    set_body(&mut a, &id, &format!("{body}giraffe\n"));
    assert!(a.search("zebra", 5).unwrap().is_empty());
    assert_eq!(a.search("giraffe", 5).unwrap().len(), 1);
    set_body(&mut b, &id, &format!("okapi\n{body}zebra\n"));
    a.apply_ops(&b.export_ops().unwrap()).unwrap();
    assert_eq!(a.search("okapi", 5).unwrap()[0].id, id);
    assert_eq!(a.search("giraffe", 5).unwrap()[0].id, id);
    a.delete(&id).unwrap();
    assert!(a.search("okapi", 5).unwrap().is_empty());
    a.restore(&id).unwrap();
    assert_eq!(a.search("okapi", 5).unwrap().len(), 1);
    // The dump runs the index's own integrity check.
    a.canonical_dump().unwrap();
    b.apply_ops(&a.export_ops().unwrap()).unwrap();
    assert_eq!(a.canonical_dump().unwrap(), b.canonical_dump().unwrap());
}
