//! Property: replicas holding the same ops hold byte-identical state,
//! whatever order the ops arrived in and however often.

use std::collections::HashSet;

use heph_core::{Kind, NewNode, NodePatch, Op, Status};
use heph_store::Replica;
use proptest::prelude::*;

/// One step of a random editing session on one of three devices.
#[derive(Debug, Clone)]
enum Step {
    Create {
        device: usize,
        note: bool,
    },
    Title {
        device: usize,
        node: usize,
        word: u8,
    },
    EditLine {
        device: usize,
        node: usize,
        line: usize,
        word: u8,
    },
    InsertLine {
        device: usize,
        node: usize,
        line: usize,
        word: u8,
    },
    Tag {
        device: usize,
        node: usize,
        tag: u8,
        add: bool,
    },
    Status {
        device: usize,
        node: usize,
        done: bool,
    },
    Delete {
        device: usize,
        node: usize,
    },
    Restore {
        device: usize,
        node: usize,
    },
    /// `to` receives a random part of `from`'s ops.
    Sync {
        from: usize,
        to: usize,
        keep_every: usize,
    },
}

fn step() -> impl Strategy<Value = Step> {
    let d = 0..3usize;
    prop_oneof![
        (d.clone(), any::<bool>()).prop_map(|(device, note)| Step::Create { device, note }),
        (d.clone(), 0..6usize, any::<u8>()).prop_map(|(device, node, word)| Step::Title {
            device,
            node,
            word
        }),
        (d.clone(), 0..6usize, 0..5usize, any::<u8>()).prop_map(|(device, node, line, word)| {
            Step::EditLine {
                device,
                node,
                line,
                word,
            }
        }),
        (d.clone(), 0..6usize, 0..5usize, any::<u8>()).prop_map(|(device, node, line, word)| {
            Step::InsertLine {
                device,
                node,
                line,
                word,
            }
        }),
        (d.clone(), 0..6usize, 0..4u8, any::<bool>()).prop_map(|(device, node, tag, add)| {
            Step::Tag {
                device,
                node,
                tag,
                add,
            }
        }),
        (d.clone(), 0..6usize, any::<bool>()).prop_map(|(device, node, done)| Step::Status {
            device,
            node,
            done
        }),
        (d.clone(), 0..6usize).prop_map(|(device, node)| Step::Delete { device, node }),
        (d.clone(), 0..6usize).prop_map(|(device, node)| Step::Restore { device, node }),
        (d.clone(), d, 1..4usize).prop_map(|(from, to, keep_every)| Step::Sync {
            from,
            to,
            keep_every
        }),
    ]
}

fn ids(r: &Replica) -> Vec<String> {
    let mut ids: Vec<String> = r
        .export_ops()
        .unwrap()
        .into_iter()
        .map(|o| o.node)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

fn pick(r: &Replica, n: usize) -> Option<String> {
    let ids = ids(r);
    (!ids.is_empty()).then(|| ids[n % ids.len()].clone())
}

/// Runs the steps; returns the devices.
fn run(steps: &[Step]) -> Vec<Replica> {
    let mut devices: Vec<Replica> = (0..3).map(|_| Replica::open_in_memory().unwrap()).collect();
    for s in steps {
        match *s {
            Step::Create { device, note } => {
                let kind = if note { Kind::Note } else { Kind::Task };
                devices[device]
                    .create(NewNode {
                        kind: Some(kind),
                        title: "n".into(),
                        // Long enough that line edits travel as deltas.
                        body: (0..30).map(|i| format!("line {i}\n")).collect(),
                        ..NewNode::default()
                    })
                    .unwrap();
            }
            Step::Sync {
                from,
                to,
                keep_every,
            } => {
                if from == to {
                    continue;
                }
                let ops: Vec<Op> = devices[from].export_ops().unwrap();
                // A partial delivery in log order, as an interrupted sync would give.
                let cut = ops.len() * keep_every / 3;
                devices[to].apply_ops(&ops[..cut.min(ops.len())]).unwrap();
            }
            Step::Title { device, node, word } => edit(&mut devices[device], node, |_| NodePatch {
                title: Some(format!("t{word}")),
                ..NodePatch::default()
            }),
            Step::EditLine {
                device,
                node,
                line,
                word,
            } => edit(&mut devices[device], node, |body| {
                let mut lines: Vec<String> = body.lines().map(str::to_owned).collect();
                if lines.is_empty() {
                    lines.push(String::new());
                }
                let i = line % lines.len();
                lines[i] = format!("w{word}");
                NodePatch {
                    body: Some(lines.join("\n") + "\n"),
                    ..NodePatch::default()
                }
            }),
            Step::InsertLine {
                device,
                node,
                line,
                word,
            } => edit(&mut devices[device], node, |body| {
                let mut lines: Vec<String> = body.lines().map(str::to_owned).collect();
                let i = line % (lines.len() + 1);
                lines.insert(i, format!("i{word}"));
                NodePatch {
                    body: Some(lines.join("\n") + "\n"),
                    ..NodePatch::default()
                }
            }),
            Step::Tag {
                device,
                node,
                tag,
                add,
            } => tag_step(&mut devices[device], node, tag, add),
            Step::Status { device, node, done } => {
                edit(&mut devices[device], node, |_| NodePatch {
                    status: Some(Some(if done { Status::Done } else { Status::Todo })),
                    ..NodePatch::default()
                })
            }
            Step::Delete { device, node } => {
                if let Some(id) = pick(&devices[device], node) {
                    let _ = devices[device].delete(&id);
                }
            }
            Step::Restore { device, node } => {
                if let Some(id) = pick(&devices[device], node) {
                    let _ = devices[device].restore(&id);
                }
            }
        }
    }
    devices
}

/// Adds or removes a tag on the `node`-th node the device knows.
fn tag_step(r: &mut Replica, node: usize, tag: u8, add: bool) {
    let Some(id) = pick(r, node) else { return };
    let Some(current) = r.get(&id).unwrap() else {
        return;
    };
    let mut tags = current.tags.clone();
    let tag = format!("tag{tag}");
    if add {
        tags.insert(tag);
    } else {
        tags.remove(&tag);
    }
    let _ = r.update(
        &id,
        &NodePatch {
            tags: Some(tags),
            ..NodePatch::default()
        },
    );
}

fn edit(r: &mut Replica, node: usize, patch: impl FnOnce(&str) -> NodePatch) {
    let Some(id) = pick(r, node) else { return };
    let Some(current) = r.get(&id).unwrap() else {
        return;
    };
    // Editing a deleted node is refused; that's fine for the property.
    let _ = r.update(&id, &patch(&current.body));
}

fn all_ops(devices: &[Replica]) -> Vec<Op> {
    let mut seen = HashSet::new();
    let mut ops = Vec::new();
    for d in devices {
        for op in d.export_ops().unwrap() {
            if seen.insert(op.op_id.clone()) {
                ops.push(op);
            }
        }
    }
    ops
}

/// Whether a conflict block opens inside another one.
fn nested_conflict(body: &str) -> bool {
    let mut open = false;
    for line in body.lines() {
        if line.starts_with("<<<<<<<") {
            if open {
                return true;
            }
            open = true;
        } else if line.starts_with(">>>>>>>") {
            open = false;
        }
    }
    false
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    #[test]
    fn any_delivery_order_converges(
        steps in prop::collection::vec(step(), 1..40),
        orders in prop::collection::vec(any::<u64>(), 3),
        chunk in 1..7usize,
    ) {
        let devices = run(&steps);
        let ops = all_ops(&devices);
        let deltas = ops.iter().filter(|o| matches!(o.action, heph_core::Action::EditBody { .. })).count();
        let edits = ops.iter().filter(|o| o.is_body_version()).count();
        prop_assume!(edits <= 1 || deltas > 0, "body edits but no deltas");
        let mut dumps = Vec::new();
        for seed in orders {
            // A shuffled copy with some ops delivered twice.
            let mut delivery = ops.clone();
            let mut state = seed | 1;
            let mut next = || { state ^= state << 13; state ^= state >> 7; state ^= state << 17; state };
            for i in (1..delivery.len()).rev() {
                let j = (next() % (i as u64 + 1)) as usize;
                delivery.swap(i, j);
            }
            let dups: Vec<Op> = delivery.iter().filter(|_| next() % 4 == 0).cloned().collect();
            delivery.extend(dups);
            let mut r = Replica::open_in_memory().unwrap();
            for batch in delivery.chunks(chunk) {
                r.apply_ops(batch).unwrap();
            }
            // Never nested, unless a device saved marker lines itself.
            let saved_markers: HashSet<String> = ops
                .iter()
                .filter(|o| matches!(&o.action, heph_core::Action::SetBody { body, .. } if body.contains("<<<<<<<")))
                .map(|o| o.node.clone())
                .collect();
            for id in ids(&r).into_iter().filter(|id| !saved_markers.contains(id)) {
                let body = r.get(&id).unwrap().unwrap().body;
                prop_assert!(!nested_conflict(&body), "{}", body);
            }
            dumps.push(r.canonical_dump().unwrap());
        }
        // The devices themselves, once they hold everything, agree too.
        for mut d in devices {
            d.apply_ops(&ops).unwrap();
            dumps.push(d.canonical_dump().unwrap());
        }
        for dump in &dumps[1..] {
            prop_assert_eq!(dump, &dumps[0]);
        }
    }
}

/// Two devices edit different lines of one note offline: both edits survive.
#[test]
fn disjoint_line_edits_both_survive() {
    let mut a = Replica::open_in_memory().unwrap();
    let mut b = Replica::open_in_memory().unwrap();
    let note = a
        .create(NewNode {
            kind: Some(Kind::Note),
            title: "n".into(),
            body: "one\ntwo\nthree\n".into(),
            ..NewNode::default()
        })
        .unwrap();
    b.apply_ops(&a.export_ops().unwrap()).unwrap();
    a.update(
        &note.id,
        &NodePatch {
            body: Some("ONE\ntwo\nthree\n".into()),
            ..NodePatch::default()
        },
    )
    .unwrap();
    b.update(
        &note.id,
        &NodePatch {
            body: Some("one\ntwo\nTHREE\n".into()),
            ..NodePatch::default()
        },
    )
    .unwrap();
    let report = a.apply_ops(&b.export_ops().unwrap()).unwrap();
    b.apply_ops(&a.export_ops().unwrap()).unwrap();
    assert_eq!(report.merged, 1);
    assert_eq!(a.get(&note.id).unwrap().unwrap().body, "ONE\ntwo\nTHREE\n");
    assert_eq!(a.canonical_dump().unwrap(), b.canonical_dump().unwrap());
    // Editing the merged text continues from it (no resurrected conflict).
    a.update(
        &note.id,
        &NodePatch {
            body: Some("ONE\ntwo\nTHREE\nfour\n".into()),
            ..NodePatch::default()
        },
    )
    .unwrap();
    b.apply_ops(&a.export_ops().unwrap()).unwrap();
    assert_eq!(
        b.get(&note.id).unwrap().unwrap().body,
        "ONE\ntwo\nTHREE\nfour\n"
    );
}

/// Two devices rewrite the same line: both versions are kept, marked.
#[test]
fn overlapping_edits_keep_both_versions() {
    let mut a = Replica::open_in_memory().unwrap();
    let mut b = Replica::open_in_memory().unwrap();
    let note = a
        .create(NewNode {
            kind: Some(Kind::Note),
            title: "n".into(),
            body: "shared line\n".into(),
            ..NewNode::default()
        })
        .unwrap();
    b.apply_ops(&a.export_ops().unwrap()).unwrap();
    a.update(
        &note.id,
        &NodePatch {
            body: Some("alpha wrote this\n".into()),
            ..NodePatch::default()
        },
    )
    .unwrap();
    b.update(
        &note.id,
        &NodePatch {
            body: Some("beta wrote this\n".into()),
            ..NodePatch::default()
        },
    )
    .unwrap();
    let report = a.apply_ops(&b.export_ops().unwrap()).unwrap();
    b.apply_ops(&a.export_ops().unwrap()).unwrap();
    let body = a.get(&note.id).unwrap().unwrap().body;
    assert!(
        body.contains("alpha wrote this") && body.contains("beta wrote this"),
        "{body}"
    );
    assert!(body.contains("<<<<<<<"), "{body}");
    assert_eq!(report.conflicts, 1);
    assert_eq!(b.get(&note.id).unwrap().unwrap().body, body);
}

/// Delete against a concurrent later edit: the edit brings the node back.
#[test]
fn a_later_concurrent_edit_outlives_a_delete() {
    let mut a = Replica::open_in_memory().unwrap();
    let mut b = Replica::open_in_memory().unwrap();
    let id = a
        .create(NewNode {
            title: "x".into(),
            ..NewNode::default()
        })
        .unwrap()
        .id;
    b.apply_ops(&a.export_ops().unwrap()).unwrap();
    a.delete(&id).unwrap();
    // b's edit is stamped after the delete (b has not seen it).
    std::thread::sleep(std::time::Duration::from_millis(5));
    b.update(
        &id,
        &NodePatch {
            title: Some("still needed".into()),
            ..NodePatch::default()
        },
    )
    .unwrap();
    a.apply_ops(&b.export_ops().unwrap()).unwrap();
    b.apply_ops(&a.export_ops().unwrap()).unwrap();
    let node = a.get(&id).unwrap().unwrap();
    assert!(!node.deleted);
    assert_eq!(node.title, "still needed");
    assert_eq!(a.canonical_dump().unwrap(), b.canonical_dump().unwrap());
}
