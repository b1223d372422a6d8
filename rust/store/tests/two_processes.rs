//! Two OS processes write the same replica file at once: every write lands.

use std::process::Command;

use heph_core::NewNode;
use heph_store::{ListFilter, Replica, StatusFilter};

const WRITES: usize = 300;

/// The child process of `concurrent_writers_lose_nothing`: writes WRITES
/// tasks and exits. Ignored in a normal run; the parent runs it by name.
#[test]
#[ignore = "child process of concurrent_writers_lose_nothing"]
fn child_writer() {
    let path = std::env::var("HEPH_TEST_REPLICA").expect("run by concurrent_writers_lose_nothing");
    let tag = std::env::var("HEPH_TEST_WRITER").expect("run by concurrent_writers_lose_nothing");
    let mut r = Replica::open(path.as_ref()).unwrap();
    for i in 0..WRITES {
        r.create(NewNode {
            title: format!("{tag} {i}"),
            ..NewNode::default()
        })
        .unwrap();
    }
}

#[test]
fn concurrent_writers_lose_nothing() {
    if std::env::var("HEPH_TEST_REPLICA").is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    // Create the schema first so both children race on writes, not migration.
    Replica::open(&path).unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = ["alpha", "beta"]
        .iter()
        .map(|tag| {
            Command::new(&exe)
                .args([
                    "--ignored",
                    "--exact",
                    "child_writer",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("HEPH_TEST_REPLICA", &path)
                .env("HEPH_TEST_WRITER", tag)
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success(), "a writer failed");
    }
    let r = Replica::open(&path).unwrap();
    let all = r
        .list(&ListFilter {
            status: StatusFilter::Any,
            ..ListFilter::default()
        })
        .unwrap();
    assert_eq!(all.len(), 2 * WRITES);
    for tag in ["alpha", "beta"] {
        assert_eq!(
            all.iter().filter(|n| n.title.starts_with(tag)).count(),
            WRITES
        );
    }
}
