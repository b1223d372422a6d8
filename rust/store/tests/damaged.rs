//! Damaged and foreign replica files: refused with an error naming the
//! file (never reinitialised), damaged text is an error (never a panic),
//! and a missing file is the only way to a new replica.

use heph_core::NewNode;
use heph_store::{Replica, StoreError};

fn refused(bytes: &[u8]) -> StoreError {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    std::fs::write(&path, bytes).unwrap();
    let err = Replica::open(&path).unwrap_err();
    assert!(
        matches!(&err, StoreError::NotAReplica { path: p, .. } if p == &path),
        "{err}"
    );
    assert!(err.to_string().contains(&path.display().to_string()));
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "the file was changed");
    err
}

#[test]
fn truncated_and_foreign_files_are_refused() {
    refused(b"");
    refused(b"S");
    refused(&[0x5a; 4096]);
    // A valid header, then damage.
    let mut header = b"SQLite format 3\0".to_vec();
    header.resize(4096, 0xee);
    refused(&header);
    // Another application's SQLite database.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE photos (id INTEGER PRIMARY KEY);")
        .unwrap();
    drop(conn);
    let err = Replica::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::NotAReplica { .. }), "{err}");
}

#[test]
fn a_missing_file_is_a_new_replica_and_a_half_made_one_is_finished() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    let mut r = Replica::open(&path).unwrap();
    r.create(NewNode {
        title: "kept".into(),
        ..NewNode::default()
    })
    .unwrap();
    let ops = r.op_count().unwrap();
    assert!(ops > 0);
    drop(r);
    assert_eq!(Replica::open(&path).unwrap().op_count().unwrap(), ops);
    // An SQLite file with nothing in it (a first open interrupted before
    // its first transaction) has nothing to lose.
    let empty = dir.path().join("empty.db");
    let conn = rusqlite::Connection::open(&empty).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    drop(conn);
    assert_eq!(Replica::open(&empty).unwrap().op_count().unwrap(), 0);
    // No temporary files are left behind.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".new-"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn damaged_text_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    let mut r = Replica::open(&path).unwrap();
    r.create(NewNode {
        title: "fine".into(),
        ..NewNode::default()
    })
    .unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "UPDATE nodes SET title = CAST(x'fffe41' AS TEXT);
         UPDATE ops SET payload = CAST(x'fffe41' AS TEXT);",
    )
    .unwrap();
    drop(conn);
    let err = r.canonical_dump().unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt(m) if m.contains("UTF-8")),
        "{err}"
    );
    let err = r.export_ops().unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
}

#[cfg(unix)]
#[test]
fn new_replicas_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    let r = Replica::open(&path).unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    let wal = dir.path().join("replica.db-wal");
    if wal.exists() {
        assert_eq!(mode(&wal), 0o600);
    }
    drop(r);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o664)).unwrap();
    let _r = Replica::open(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
}
