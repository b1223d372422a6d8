//! Pull pages are bounded in bytes as well as in ops, always hold at least
//! one op, and say correctly whether more follow.

use heph_hub::{HubStore, MAX_PULL_BYTES};

const MIB: usize = 1024 * 1024;

fn store_with(sizes: &[usize]) -> (tempfile::TempDir, HubStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = HubStore::open(&dir.path().join("hub.db")).unwrap();
    let rows: Vec<(String, String)> = sizes
        .iter()
        .enumerate()
        .map(|(i, n)| (format!("op{i}"), "x".repeat(*n)))
        .collect();
    store.push(&rows).unwrap();
    (dir, store)
}

#[test]
fn pages_stop_at_the_byte_budget() {
    let (_dir, store) = store_with(&[MIB; 10]);
    let (rows, more) = store.pull(0, 5000, MAX_PULL_BYTES).unwrap();
    assert_eq!(rows.len(), 4);
    assert!(more);
    let (rows, more) = store.pull(4, 5000, 2 * MIB + 1).unwrap();
    assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), vec![5, 6]);
    assert!(more);
    let (rows, more) = store.pull(8, 5000, MAX_PULL_BYTES).unwrap();
    assert_eq!(rows.len(), 2);
    assert!(!more);
}

#[test]
fn an_op_larger_than_the_budget_comes_alone() {
    let (_dir, store) = store_with(&[10, 5 * MIB, 10]);
    let (rows, more) = store.pull(0, 5000, MIB).unwrap();
    assert_eq!(rows.len(), 1);
    assert!(more);
    let (rows, more) = store.pull(1, 5000, MIB).unwrap();
    assert_eq!((rows.len(), rows[0].0), (1, 2));
    assert!(more);
    let (rows, more) = store.pull(2, 5000, MIB).unwrap();
    assert_eq!((rows.len(), rows[0].0), (1, 3));
    assert!(!more);
}

#[test]
fn more_is_exact_at_the_op_limit() {
    let (_dir, store) = store_with(&[10; 6]);
    let (rows, more) = store.pull(0, 3, MIB).unwrap();
    assert_eq!(rows.len(), 3);
    assert!(more);
    let (rows, more) = store.pull(3, 3, MIB).unwrap();
    assert_eq!(rows.len(), 3);
    assert!(!more);
}
