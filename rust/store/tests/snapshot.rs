//! Snapshots: a device that bootstraps from one ends byte-identical to one
//! that replayed every op; anything unusable is refused with nothing
//! changed.

use heph_core::{Kind, NewNode, NodePatch, Op};
use heph_store::{RawOp, Replica, SnapshotError};

const HUB: &str = "http://127.0.0.1:1";

/// A hub's log: a corpus of `nodes` nodes, then edits made on a second
/// device (bodies as deltas, titles, tags, deletes, restores).
fn hub_log(seed: u64, nodes: usize) -> Vec<Op> {
    let mut ops: Vec<Op> = heph_corpus::Corpus::new(seed, nodes).ops().collect();
    let mut editor = Replica::open_in_memory().unwrap();
    editor.apply_ops(&ops).unwrap();
    let ids: Vec<String> = {
        let mut seen = std::collections::BTreeSet::new();
        ops.iter().for_each(|o| {
            seen.insert(o.node.clone());
        });
        seen.into_iter().collect()
    };
    let before = editor.op_count().unwrap() as usize;
    for (i, id) in ids.iter().enumerate() {
        match (i as u64 + seed) % 5 {
            0 => {
                let body = editor.get(id).unwrap().unwrap().body;
                let patch = NodePatch {
                    body: Some(format!("{body}edited on the second device\n")),
                    ..NodePatch::default()
                };
                editor.update(id, &patch).unwrap();
            }
            1 => {
                let patch = NodePatch {
                    title: Some(format!("renamed {i}")),
                    ..NodePatch::default()
                };
                editor.update(id, &patch).unwrap();
            }
            2 if i % 3 == 0 => editor.delete(id).unwrap(),
            3 if i % 4 == 0 => {
                editor.delete(id).unwrap();
                editor.restore(id).unwrap();
            }
            _ => {}
        }
    }
    editor
        .create(NewNode {
            kind: Some(Kind::Task),
            title: "made last".into(),
            tags: ["late".to_owned()].into(),
            ..NewNode::default()
        })
        .unwrap();
    let all = editor.export_ops().unwrap();
    ops.extend(all.into_iter().skip(before));
    ops
}

/// Pulls `ops` (hub sequences `first..`) into `replica` in pages.
fn pull(replica: &mut Replica, ops: &[Op], first: i64) {
    for (n, chunk) in ops.chunks(97).enumerate() {
        let raws: Vec<RawOp> = chunk
            .iter()
            .enumerate()
            .map(|(i, o)| RawOp {
                seq: first + (n * 97 + i) as i64,
                raw: serde_json::to_string(o).unwrap(),
            })
            .collect();
        let last = raws.last().unwrap().seq;
        replica.apply_pulled(HUB, &raws, last, None).unwrap();
    }
}

fn replayed(ops: &[Op]) -> String {
    let mut device = Replica::open_in_memory().unwrap();
    for op in ops {
        device.apply_ops(std::slice::from_ref(op)).unwrap();
    }
    device.canonical_dump().unwrap()
}

fn snapshot_of(replica: &Replica) -> Vec<u8> {
    let mut out = Vec::new();
    replica.export_snapshot(HUB, &mut out).unwrap();
    out
}

#[test]
fn a_bootstrapped_device_equals_one_that_replayed_every_op() {
    for seed in [1, 2, 3] {
        let ops = hub_log(seed, 150);
        let split = ops.len() * 2 / 3;
        let dir = tempfile::tempdir().unwrap();
        let mut a = Replica::open(&dir.path().join("a.db")).unwrap();
        pull(&mut a, &ops[..split], 1);
        let mut bytes = Vec::new();
        let exported = a.export_snapshot(HUB, &mut bytes).unwrap();
        assert_eq!(exported.seq, split as i64);
        assert_eq!(exported.ops, split as u64);
        assert_eq!(exported.bytes, bytes.len() as u64);

        let mut b = Replica::open(&dir.path().join("b.db")).unwrap();
        assert!(b.can_bootstrap().unwrap());
        let imported = b
            .import_snapshot(HUB, &mut bytes.as_slice(), Some(split as i64))
            .unwrap();
        assert_eq!(imported.seq, split as i64);
        assert_eq!(b.sync_cursor(HUB).unwrap(), split as i64);
        assert_eq!(b.pending_count().unwrap(), 0);
        assert_eq!(
            b.canonical_dump().unwrap(),
            replayed(&ops[..split]),
            "seed {seed}"
        );
        assert!(!b.can_bootstrap().unwrap());

        // Then the ops after the snapshot, as sync pulls them.
        pull(&mut b, &ops[split..], split as i64 + 1);
        assert_eq!(b.canonical_dump().unwrap(), replayed(&ops), "seed {seed}");
        // Search reads the installed index, as on a device that replayed.
        let mut d = Replica::open_in_memory().unwrap();
        d.apply_ops(&ops).unwrap();
        let words: Vec<String> = ops
            .iter()
            .filter_map(|o| match &o.action {
                heph_core::Action::Set {
                    field: heph_core::Field::Title,
                    value: Some(t),
                } => t
                    .split_whitespace()
                    .find(|w| w.len() > 3)
                    .map(str::to_owned),
                _ => None,
            })
            .take(5)
            .collect();
        assert!(!words.is_empty());
        let mut hits = 0;
        for word in &words {
            let got: Vec<String> = b
                .search(word, 10)
                .unwrap()
                .into_iter()
                .map(|h| h.id)
                .collect();
            let want: Vec<String> = d
                .search(word, 10)
                .unwrap()
                .into_iter()
                .map(|h| h.id)
                .collect();
            assert_eq!(got, want, "{word}");
            hits += got.len();
        }
        assert!(hits > 0, "{words:?}");

        // Its own writes work and are pushed as its own.
        let mine = b
            .create(NewNode {
                title: "written after the bootstrap".into(),
                ..NewNode::default()
            })
            .unwrap();
        let pending = b.unpushed_ops(1 << 20).unwrap();
        assert!(pending.len() >= 2, "{pending:?}");
        assert!(pending
            .iter()
            .all(|o| o.node == mine.id && o.hlc.origin == b.origin()));
        assert_ne!(b.origin(), a.origin());
    }
}

#[test]
fn the_snapshot_leaves_device_state_behind() {
    let ops = hub_log(4, 40);
    let dir = tempfile::tempdir().unwrap();
    let mut a = Replica::open(&dir.path().join("a.db")).unwrap();
    pull(&mut a, &ops, 1);
    a.set_sync_value(HUB, "last_error", Some("x")).unwrap();
    a.set_sync_value("http://other:2", "last_sync", Some("y"))
        .unwrap();
    let bytes = snapshot_of(&a);
    let mut b = Replica::open(&dir.path().join("b.db")).unwrap();
    let other = "http://127.0.0.1:9";
    b.import_snapshot(other, &mut bytes.as_slice(), None)
        .unwrap();
    assert_eq!(b.sync_value(HUB, "last_error").unwrap(), None);
    assert_eq!(b.sync_value("http://other:2", "last_sync").unwrap(), None);
    assert_eq!(b.sync_cursor(HUB).unwrap(), 0);
    assert_eq!(b.sync_cursor(other).unwrap(), ops.len() as i64);
}

#[test]
fn quarantined_ops_come_along_under_the_new_hub() {
    let ops = hub_log(5, 30);
    let dir = tempfile::tempdir().unwrap();
    let mut a = Replica::open(&dir.path().join("a.db")).unwrap();
    pull(&mut a, &ops, 1);
    let bad = RawOp {
        seq: ops.len() as i64 + 1,
        raw: "{\"op_id\": \"broken\"}".into(),
    };
    a.apply_pulled(HUB, &[bad], ops.len() as i64 + 1, None)
        .unwrap();
    let bytes = snapshot_of(&a);
    let mut b = Replica::open(&dir.path().join("b.db")).unwrap();
    let url = "http://hub.example:7";
    b.import_snapshot(url, &mut bytes.as_slice(), None).unwrap();
    let q = b.quarantined().unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].hub, url);
    assert_eq!(q[0].seq, ops.len() as i64 + 1);
}

#[test]
fn no_snapshot_while_ops_are_unacknowledged() {
    let ops = hub_log(6, 30);
    let dir = tempfile::tempdir().unwrap();
    let mut a = Replica::open(&dir.path().join("a.db")).unwrap();
    let mut out = Vec::new();
    // Nothing pulled yet.
    assert!(matches!(
        a.export_snapshot(HUB, &mut out),
        Err(SnapshotError::NotApplicable(_))
    ));
    pull(&mut a, &ops, 1);
    let node = a
        .create(NewNode {
            title: "not pushed".into(),
            ..NewNode::default()
        })
        .unwrap();
    let err = a.export_snapshot(HUB, &mut out).unwrap_err();
    assert!(matches!(err, SnapshotError::NotApplicable(_)), "{err}");
    assert!(out.is_empty());
    // Refused by the hub: still not the hub's op set.
    let pending: Vec<String> = a
        .unpushed_ops(1 << 20)
        .unwrap()
        .into_iter()
        .map(|o| o.op_id)
        .collect();
    let refused: Vec<_> = pending
        .iter()
        .map(|id| (id.clone(), "invalid".to_owned(), "no".to_owned()))
        .collect();
    a.mark_refused(&refused).unwrap();
    assert!(matches!(
        a.export_snapshot(HUB, &mut out),
        Err(SnapshotError::NotApplicable(_))
    ));
    // Acknowledged: now it can.
    a.requeue_refused("invalid").unwrap();
    a.mark_pushed(&pending).unwrap();
    assert!(a.export_snapshot(HUB, &mut out).is_ok());
    assert!(a.get(&node.id).unwrap().is_some());
}

#[test]
fn no_bootstrap_into_a_replica_that_holds_ops() {
    let ops = hub_log(7, 30);
    let dir = tempfile::tempdir().unwrap();
    let mut a = Replica::open(&dir.path().join("a.db")).unwrap();
    pull(&mut a, &ops, 1);
    let bytes = snapshot_of(&a);
    let mut b = Replica::open(&dir.path().join("b.db")).unwrap();
    b.create(NewNode {
        title: "already here".into(),
        ..NewNode::default()
    })
    .unwrap();
    let before = b.canonical_dump().unwrap();
    assert!(!b.can_bootstrap().unwrap());
    let err = b
        .import_snapshot(HUB, &mut bytes.as_slice(), None)
        .unwrap_err();
    assert!(matches!(err, SnapshotError::NotApplicable(_)), "{err}");
    assert_eq!(b.canonical_dump().unwrap(), before);
    assert_eq!(b.sync_cursor(HUB).unwrap(), 0);
}

/// A snapshot of `database` under `header`, compressed as heph does.
fn with_checksum(header: &[u8], database: &[u8]) -> Vec<u8> {
    let mut out = header.to_vec();
    let mut encoder = zstd::stream::Encoder::new(&mut out, 3).unwrap();
    encoder.include_checksum(true).unwrap();
    std::io::Write::write_all(&mut encoder, database).unwrap();
    encoder.finish().unwrap();
    out
}

#[test]
fn unusable_snapshots_are_refused_with_nothing_changed() {
    let ops = hub_log(8, 60);
    let dir = tempfile::tempdir().unwrap();
    let mut a = Replica::open(&dir.path().join("a.db")).unwrap();
    pull(&mut a, &ops, 1);
    let good = snapshot_of(&a);
    let seq = ops.len() as i64;

    let mut bad_magic = good.clone();
    bad_magic[0] = b'X';
    let mut newer_schema = good.clone();
    newer_schema[12..16].copy_from_slice(&99u32.to_le_bytes());
    let mut newer_format = good.clone();
    newer_format[8..12].copy_from_slice(&2u32.to_le_bytes());
    let truncated = good[..good.len() / 2].to_vec();
    let mut flipped = good.clone();
    let at = 24 + (good.len() - 24) / 2;
    flipped[at] ^= 0x55;
    let garbage = b"<html>502 Bad Gateway</html>".to_vec();
    // The same database, compressed without the checksum that vouches
    // for it.
    let database = zstd::stream::decode_all(&good[24..]).unwrap();
    let mut unchecked = good[..24].to_vec();
    unchecked.extend(zstd::stream::encode_all(database.as_slice(), 3).unwrap());
    // A database longer than its header says: pages that do not belong.
    let mut longer = database.clone();
    longer.extend(vec![0u8; 4096]);
    let padded = with_checksum(&good[..24], &longer);
    // A database cut short, faithfully compressed.
    let cut = with_checksum(&good[..24], &database[..database.len() / 2]);
    let cases: Vec<(&str, Vec<u8>, Option<i64>)> = vec![
        ("bad magic", bad_magic, None),
        ("newer schema", newer_schema, None),
        ("newer format", newer_format, None),
        ("truncated", truncated, None),
        ("corrupt", flipped, None),
        ("garbage", garbage, None),
        ("no checksum", unchecked, None),
        ("longer than its header says", padded, None),
        ("database cut short", cut, None),
        ("empty", Vec::new(), None),
        ("beyond the announced seq", good.clone(), Some(seq - 1)),
    ];
    let path = dir.path().join("b.db");
    let mut b = Replica::open(&path).unwrap();
    let empty = b.canonical_dump().unwrap();
    for (what, bytes, max) in cases {
        let err = b
            .import_snapshot(HUB, &mut bytes.as_slice(), max)
            .unwrap_err();
        assert!(matches!(err, SnapshotError::Invalid(_)), "{what}: {err}");
        assert_eq!(b.canonical_dump().unwrap(), empty, "{what}");
        assert_eq!(b.sync_cursor(HUB).unwrap(), 0, "{what}");
        assert!(b.can_bootstrap().unwrap(), "{what}");
    }
    // No temporary files left beside the replica.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("snapshot"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
    // And the good one still installs.
    b.import_snapshot(HUB, &mut good.as_slice(), Some(seq))
        .unwrap();
    assert_eq!(b.canonical_dump().unwrap(), replayed(&ops));
}

/// Run by `a_crash_mid_bootstrap_leaves_nothing` in a child process,
/// which dies before the install commits.
#[test]
fn crash_child() {
    let (Ok(snapshot), Ok(replica)) = (
        std::env::var("SNAPSHOT_CHILD_FILE"),
        std::env::var("SNAPSHOT_CHILD_REPLICA"),
    ) else {
        return;
    };
    let bytes = std::fs::read(snapshot).unwrap();
    let mut b = Replica::open(std::path::Path::new(&replica)).unwrap();
    let _ = b.import_snapshot(HUB, &mut bytes.as_slice(), None);
}

#[test]
fn a_crash_mid_bootstrap_leaves_nothing() {
    let ops = hub_log(9, 60);
    let dir = tempfile::tempdir().unwrap();
    let mut a = Replica::open(&dir.path().join("a.db")).unwrap();
    pull(&mut a, &ops, 1);
    let good = snapshot_of(&a);
    let file = dir.path().join("snap.bin");
    std::fs::write(&file, &good).unwrap();
    let replica = dir.path().join("b.db");
    // The replica is open here (as in a sidecar) while another process
    // installs into it and dies.
    let mut b = Replica::open(&replica).unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env("SNAPSHOT_CHILD_FILE", &file)
        .env("SNAPSHOT_CHILD_REPLICA", &replica)
        .env("HEPH_TEST_SNAPSHOT_ABORT", "before-commit")
        .status()
        .unwrap();
    assert!(!status.success(), "the child was meant to die");
    assert_eq!(b.op_count().unwrap(), 0);
    assert!(b.can_bootstrap().unwrap());
    let reopened = Replica::open(&replica).unwrap();
    assert_eq!(reopened.op_count().unwrap(), 0);
    assert_eq!(reopened.sync_cursor(HUB).unwrap(), 0);
    drop(reopened);
    // The next start bootstraps whole.
    b.import_snapshot(HUB, &mut good.as_slice(), None).unwrap();
    assert_eq!(b.canonical_dump().unwrap(), replayed(&ops));
}

/// Names of files beside the replica that a snapshot install left.
fn leftovers(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".heph-"))
        .collect()
}

#[test]
fn a_replica_nobody_holds_gets_the_snapshot_moved_into_place() {
    let ops = hub_log(10, 120);
    let dir = tempfile::tempdir().unwrap();
    let mut a = Replica::open(&dir.path().join("a.db")).unwrap();
    pull(&mut a, &ops, 1);
    let bytes = snapshot_of(&a);
    let path = dir.path().join("b.db");
    {
        // This device's own state from before: it must survive the move.
        let mut b = Replica::open(&path).unwrap();
        b.set_sync_value(HUB, "last_error", Some("earlier"))
            .unwrap();
        b.set_sync_value("http://other:2", "last_sync", Some("y"))
            .unwrap();
    }
    let imported =
        Replica::bootstrap_from_snapshot(&path, HUB, &mut bytes.as_slice(), None).unwrap();
    assert!(imported.moved, "nothing else had the replica open");
    assert_eq!(imported.ops, ops.len() as u64);
    let mut b = Replica::open(&path).unwrap();
    assert_eq!(b.canonical_dump().unwrap(), replayed(&ops));
    assert_eq!(b.sync_cursor(HUB).unwrap(), ops.len() as i64);
    assert_eq!(
        b.sync_value(HUB, "last_error").unwrap().as_deref(),
        Some("earlier")
    );
    assert_eq!(
        b.sync_value("http://other:2", "last_sync")
            .unwrap()
            .as_deref(),
        Some("y")
    );
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
    // In WAL mode (file format bytes 18 and 19 are 2), as every replica.
    let header = std::fs::read(&path).unwrap();
    assert_eq!(&header[18..20], &[2, 2]);
    // Searchable as the device it came from, and writable.
    for word in ["a", "the", "notes"] {
        assert_eq!(
            b.search(word, 50).unwrap().len(),
            a.search(word, 50).unwrap().len(),
            "{word}"
        );
    }
    b.set_sync_value(HUB, "last_error", None).unwrap();
}

#[test]
fn a_replica_held_open_elsewhere_gets_the_snapshot_copied_in() {
    let ops = hub_log(11, 80);
    let dir = tempfile::tempdir().unwrap();
    let mut a = Replica::open(&dir.path().join("a.db")).unwrap();
    pull(&mut a, &ops, 1);
    let bytes = snapshot_of(&a);
    let path = dir.path().join("b.db");
    // As a sidecar holds it.
    let held = Replica::open(&path).unwrap();
    let imported =
        Replica::bootstrap_from_snapshot(&path, HUB, &mut bytes.as_slice(), None).unwrap();
    assert!(!imported.moved, "another connection had the replica open");
    assert_eq!(held.op_count().unwrap(), ops.len() as u64);
    assert_eq!(held.sync_cursor(HUB).unwrap(), ops.len() as i64);
    drop(held);
    assert_eq!(
        Replica::open(&path).unwrap().canonical_dump().unwrap(),
        replayed(&ops)
    );
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
}

#[test]
fn a_damaged_snapshot_never_replaces_the_replica() {
    let ops = hub_log(12, 40);
    let dir = tempfile::tempdir().unwrap();
    let mut a = Replica::open(&dir.path().join("a.db")).unwrap();
    pull(&mut a, &ops, 1);
    let mut bytes = snapshot_of(&a);
    let at = 24 + (bytes.len() - 24) / 2;
    bytes[at] ^= 0x55;
    let path = dir.path().join("b.db");
    let empty = Replica::open(&path).unwrap().canonical_dump().unwrap();
    let err =
        Replica::bootstrap_from_snapshot(&path, HUB, &mut bytes.as_slice(), None).unwrap_err();
    assert!(matches!(err, SnapshotError::Invalid(_)), "{err}");
    let b = Replica::open(&path).unwrap();
    assert_eq!(b.canonical_dump().unwrap(), empty);
    assert!(b.can_bootstrap().unwrap());
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
}

/// Run by `a_crash_before_the_move_leaves_the_empty_replica` in a child
/// process, which dies just before the rename.
#[test]
fn move_crash_child() {
    let (Ok(snapshot), Ok(replica)) = (
        std::env::var("SNAPSHOT_MOVE_CHILD_FILE"),
        std::env::var("SNAPSHOT_MOVE_CHILD_REPLICA"),
    ) else {
        return;
    };
    let bytes = std::fs::read(snapshot).unwrap();
    let _ = Replica::bootstrap_from_snapshot(
        std::path::Path::new(&replica),
        HUB,
        &mut bytes.as_slice(),
        None,
    );
}

#[test]
fn a_crash_before_the_move_leaves_the_empty_replica() {
    let ops = hub_log(13, 60);
    let dir = tempfile::tempdir().unwrap();
    let mut a = Replica::open(&dir.path().join("a.db")).unwrap();
    pull(&mut a, &ops, 1);
    let good = snapshot_of(&a);
    let file = dir.path().join("snap.bin");
    std::fs::write(&file, &good).unwrap();
    let replica = dir.path().join("b.db");
    drop(Replica::open(&replica).unwrap());
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "move_crash_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SNAPSHOT_MOVE_CHILD_FILE", &file)
        .env("SNAPSHOT_MOVE_CHILD_REPLICA", &replica)
        .env("HEPH_TEST_SNAPSHOT_ABORT", "before-rename")
        .status()
        .unwrap();
    assert!(!status.success(), "the child was meant to die");
    {
        let b = Replica::open(&replica).unwrap();
        assert_eq!(b.op_count().unwrap(), 0);
        assert_eq!(b.sync_cursor(HUB).unwrap(), 0);
        assert!(b.can_bootstrap().unwrap());
    }
    // The next pass bootstraps whole.
    let imported =
        Replica::bootstrap_from_snapshot(&replica, HUB, &mut good.as_slice(), None).unwrap();
    assert!(imported.moved);
    assert_eq!(
        Replica::open(&replica).unwrap().canonical_dump().unwrap(),
        replayed(&ops)
    );
}
