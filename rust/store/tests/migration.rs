//! A replica written before body deltas (schema 2, every body op whole)
//! opens with this build, upgrades, reads, edits and syncs.

use heph_core::{Action, NodePatch, Op};
use heph_store::{RawOp, Replica, SCHEMA_VERSION};

const NOTE: &str = "01a22ce0-8fa6-7110-9e8e-92909fb4c45d";
const TASK: &str = "01a22ce0-8fc7-70eb-9006-e73a3983bcda";

fn old_replica(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let path = dir.path().join("replica.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(include_str!("fixtures/replica_v2.sql"))
        .unwrap();
    conn.close().unwrap();
    path
}

fn raw(ops: &[Op]) -> Vec<RawOp> {
    ops.iter()
        .enumerate()
        .map(|(i, o)| RawOp {
            seq: i as i64 + 1,
            raw: serde_json::to_string(o).unwrap(),
        })
        .collect()
}

#[test]
fn a_version_2_replica_upgrades_and_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let path = old_replica(&dir);
    let mut r = Replica::open(&path).unwrap();
    let version: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);

    // Everything reads as before.
    let note = r.get(NOTE).unwrap().unwrap();
    assert_eq!(note.body, "zero\none\nTWO\nthree\nfour");
    assert_eq!(note.tags.iter().collect::<Vec<_>>(), ["work"]);
    assert_eq!(
        r.get(TASK).unwrap().unwrap().project.as_deref(),
        Some("home")
    );
    assert_eq!(r.search("zero", 10).unwrap()[0].id, NOTE);
    let old_ops = r.export_ops().unwrap();
    assert_eq!(old_ops.len(), 17);

    // The old ops, replayed by this build, give the same state.
    let mut fresh = Replica::open_in_memory().unwrap();
    fresh.apply_ops(&old_ops).unwrap();
    assert_eq!(fresh.canonical_dump().unwrap(), r.canonical_dump().unwrap());

    // The merged note is edited on (whole: the change is as long as the
    // note), then made long and edited again: a delta.
    let long: String = (0..100)
        .map(|i| format!("line {i} of the note\n"))
        .collect();
    for body in [
        "zero\none\nTWO\nthree\nfour\nfive\n".to_owned(),
        long.clone(),
        long.replace("line 50 of", "line fifty of"),
    ] {
        r.update(
            NOTE,
            &NodePatch {
                body: Some(body),
                ..NodePatch::default()
            },
        )
        .unwrap();
    }
    let ops = r.export_ops().unwrap();
    assert!(matches!(
        ops.last().unwrap().action,
        Action::EditBody { .. }
    ));

    // A new device pulls old and new ops alike and ends in the same bytes.
    let mut device = Replica::open_in_memory().unwrap();
    device
        .apply_pulled("hub", &raw(&ops), ops.len() as i64, None)
        .unwrap();
    assert_eq!(
        device.canonical_dump().unwrap(),
        r.canonical_dump().unwrap()
    );
    assert_eq!(
        device.get(NOTE).unwrap().unwrap().body,
        long.replace("line 50 of", "line fifty of")
    );
    // Reopening an upgraded replica changes nothing.
    drop(r);
    let again = Replica::open(&path).unwrap();
    assert_eq!(
        again.canonical_dump().unwrap(),
        device.canonical_dump().unwrap()
    );
}
