//! A replica whose clock ran ahead and was fixed gives its own
//! unacknowledged future-stamped ops fresh stamps, and ends exactly as a
//! replay of its (re-stamped) op set.

use heph_core::{NewNode, NodePatch};
use heph_store::{RawOp, Replica};

const DAY: i64 = 24 * 3600 * 1000;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Pulls `other`'s ops after `from` (an index into its op-log) into `r`.
fn pull(r: &mut Replica, other: &Replica, from: usize) -> usize {
    let ops = other.export_ops().unwrap();
    let raws: Vec<RawOp> = ops[from..]
        .iter()
        .enumerate()
        .map(|(i, op)| RawOp {
            seq: (from + i + 1) as i64,
            raw: serde_json::to_string(op).unwrap(),
        })
        .collect();
    let last = ops.len() as i64;
    r.apply_pulled("hub", &raws, last, None).unwrap();
    ops.len()
}

fn body(text: &str) -> NodePatch {
    NodePatch {
        body: Some(text.into()),
        ..NodePatch::default()
    }
}

#[test]
fn restamped_replica_dumps_like_a_replay_of_its_ops() {
    let mut other = Replica::open_in_memory().unwrap();
    let shared = other
        .create(NewNode {
            title: "shared".into(),
            body: "a\nb\nc\n".into(),
            ..NewNode::default()
        })
        .unwrap();
    let mut r = Replica::open_in_memory().unwrap();
    let mut seen = pull(&mut r, &other, 0);

    // Three days ahead: new nodes and body edits, one concurrent with a
    // pulled edit (a merge), one edited from the merge.
    r.clock_mut().set_offset_ms(3 * DAY);
    let mine = r
        .create(NewNode {
            title: "mine".into(),
            body: "x\n".into(),
            tags: ["t".to_owned()].into(),
            ..NewNode::default()
        })
        .unwrap();
    r.update(&mine.id, &body("x\ny\n")).unwrap();
    r.update(&shared.id, &body("A\nb\nc\n")).unwrap();
    other.update(&shared.id, &body("a\nb\nC\n")).unwrap();
    seen = pull(&mut r, &other, seen);
    assert_eq!(r.get(&shared.id).unwrap().unwrap().body, "A\nb\nC\n");
    r.update(&shared.id, &body("A\nb\nC\nd\n")).unwrap();
    let future = r.export_ops().unwrap();
    let limit = now_ms() + DAY as u64;
    assert!(future.iter().any(|op| op.hlc.millis > limit));

    // The clock is fixed.
    r.clock_mut().set_offset_ms(0);
    let restamped = r.restamp_future_ops().unwrap();
    assert!(restamped >= 6, "{restamped}");
    let ops = r.export_ops().unwrap();
    assert_eq!(ops.len(), future.len(), "no op lost or added");
    let soon = now_ms() + 60_000;
    assert!(ops.iter().all(|op| op.hlc.millis < soon), "{ops:?}");
    // Op ids kept, order kept.
    let ids = |ops: &[heph_core::Op]| {
        let mut v: Vec<_> = ops.iter().map(|o| o.op_id.clone()).collect();
        v.sort();
        v
    };
    assert_eq!(ids(&ops), ids(&future));
    assert_eq!(r.get(&shared.id).unwrap().unwrap().body, "A\nb\nC\nd\n");
    assert_eq!(r.get(&mine.id).unwrap().unwrap().body, "x\ny\n");

    let mut fresh = Replica::open_in_memory().unwrap();
    fresh.apply_ops(&ops).unwrap();
    assert_eq!(r.canonical_dump().unwrap(), fresh.canonical_dump().unwrap());

    // Later writes are stamped now, and a second re-stamp changes nothing.
    r.update(&mine.id, &body("x\ny\nz\n")).unwrap();
    assert_eq!(r.restamp_future_ops().unwrap(), 0);
    let newest = r.export_ops().unwrap().pop().unwrap();
    assert!(newest.hlc.millis < soon, "{newest:?}");
    // Still in step with the other replica after it pulls too.
    other.update(&shared.id, &body("a\nb\nC\nd\ne\n")).unwrap();
    pull(&mut r, &other, seen);
    let mut replay = Replica::open_in_memory().unwrap();
    replay.apply_ops(&r.export_ops().unwrap()).unwrap();
    assert_eq!(
        r.canonical_dump().unwrap(),
        replay.canonical_dump().unwrap()
    );
}

#[test]
fn acknowledged_ops_are_never_restamped() {
    let mut r = Replica::open_in_memory().unwrap();
    r.clock_mut().set_offset_ms(3 * DAY);
    let node = r
        .create(NewNode {
            title: "sent".into(),
            ..NewNode::default()
        })
        .unwrap();
    let sent: Vec<String> = r
        .export_ops()
        .unwrap()
        .into_iter()
        .map(|op| op.op_id)
        .collect();
    r.mark_pushed(&sent).unwrap();
    let before = r.export_ops().unwrap();
    r.clock_mut().set_offset_ms(0);
    assert_eq!(r.restamp_future_ops().unwrap(), 0);
    assert_eq!(r.export_ops().unwrap(), before);
    // New ops still go after what the hub has.
    r.update(
        &node.id,
        &NodePatch {
            title: Some("after".into()),
            ..NodePatch::default()
        },
    )
    .unwrap();
    let newest = r.export_ops().unwrap().pop().unwrap();
    assert!(newest.hlc > before.last().unwrap().hlc);
    assert_eq!(r.get(&node.id).unwrap().unwrap().title, "after");
}
