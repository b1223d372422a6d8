//! One replica file open in several places at once: a long-lived
//! connection (the sidecar's), others the same process opens beside it
//! (each sync pass), and other processes (the CLI).

use std::process::Command;

use heph_core::NewNode;
use heph_store::Replica;

fn cli(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_heph"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn note(title: &str) -> NewNode {
    NewNode {
        title: title.into(),
        ..NewNode::default()
    }
}

/// A second open in the process must not drop the first one's locks:
/// when it did, the CLI's exit deleted the WAL under the long-lived
/// connection, whose next writes the CLI never saw, and the process's next
/// open failed with "disk I/O error".
#[test]
fn a_second_open_in_the_process_keeps_the_first_ones_locks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    let mut main = Replica::open(&path).unwrap();
    main.create(note("Before")).unwrap();
    for _ in 0..2 {
        // A sync pass's own connection, opened and closed.
        drop(Replica::open(&path).unwrap());
    }
    // Another process writes and exits.
    cli(dir.path(), &["add", "From the CLI"]);
    let wal = dir.path().join("replica.db-wal");
    assert!(wal.exists(), "the WAL was deleted under an open connection");
    main.create(note("After")).unwrap();
    // Every writer's node, in this process and in another.
    let mut third = Replica::open(&path).expect("a third open in the process");
    third.create(note("Third")).unwrap();
    let listed = cli(dir.path(), &["list", "--all"]);
    for title in ["Before", "From the CLI", "After", "Third"] {
        assert!(listed.contains(title), "{title} missing:\n{listed}");
    }
}
