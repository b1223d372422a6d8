//! The full-text index an import into an empty replica builds at its end
//! holds what a replay's index holds, token for token: every live node's
//! final text, and nothing of the texts nodes had before, even when old
//! notes are edited, deleted, restored and merged long after they were
//! written (import chunks later). Any way of building the index during the
//! import (tried: doc/benchmarks.md, round 8) must pass this.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use heph_core::{Kind, NewNode, NodePatch, Op};
use heph_store::Replica;

/// A history of two devices, long enough for several import chunks
/// (4,096 ops each), in which every round goes back to old notes.
fn history() -> Vec<Op> {
    let mut phone = Replica::open_in_memory().unwrap();
    let mut laptop = Replica::open_in_memory().unwrap();
    let mut ids = Vec::new();
    let mut deleted = HashSet::new();
    for round in 0..8 {
        for i in 0..200 {
            let n = round * 200 + i;
            let body: String = (0..(n % 9))
                .map(|l| format!("round{round} note{n} line{l} shared words\n"))
                .collect();
            let node = phone
                .create(NewNode {
                    kind: Some(if n % 3 == 0 { Kind::Task } else { Kind::Note }),
                    title: format!("title{n} first"),
                    body,
                    tags: [format!("t{}", n % 5)].into(),
                    ..NewNode::default()
                })
                .unwrap();
            ids.push(node.id);
        }
        laptop.apply_ops(&phone.export_ops().unwrap()).unwrap();
        // Back to older notes, on both devices while apart.
        for (k, id) in ids.iter().enumerate() {
            let pick = (k * 7 + round * 3) % 10;
            if deleted.contains(&k) && pick != 5 {
                continue;
            }
            match pick {
                0 => {
                    phone
                        .update(
                            id,
                            &NodePatch {
                                title: Some(format!("title{k} renamed{round}")),
                                ..NodePatch::default()
                            },
                        )
                        .unwrap();
                }
                1 | 2 => {
                    for (device, name) in [(&mut phone, "phone"), (&mut laptop, "laptop")] {
                        let body = device.get(id).unwrap().unwrap().body;
                        device
                            .update(
                                id,
                                &NodePatch {
                                    body: Some(format!("{body}edited{round} on {name}\n")),
                                    ..NodePatch::default()
                                },
                            )
                            .unwrap();
                    }
                }
                3 => {
                    // Not the text: tags only.
                    laptop
                        .update(
                            id,
                            &NodePatch {
                                tags: Some(BTreeSet::from([format!("moved{round}")])),
                                ..NodePatch::default()
                            },
                        )
                        .unwrap();
                }
                4 if round % 2 == 0 => {
                    phone.delete(id).unwrap();
                    deleted.insert(k);
                }
                5 if deleted.contains(&k) => {
                    phone.restore(id).unwrap();
                    deleted.remove(&k);
                }
                _ => {}
            }
        }
        phone.apply_ops(&laptop.export_ops().unwrap()).unwrap();
        laptop.apply_ops(&phone.export_ops().unwrap()).unwrap();
    }
    phone.export_ops().unwrap()
}

/// Every token of the index: node, column, position, term.
fn index_content(path: &Path) -> Vec<(String, String, i64, String)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "CREATE VIRTUAL TABLE temp.tokens USING fts5vocab(main, nodes_fts, instance)",
    )
    .unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT n.id, t.col, t.offset, t.term FROM temp.tokens t
             JOIN nodes n ON n.rowid = t.doc ORDER BY 1, 2, 3, 4",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn an_import_indexes_final_texts_only_across_chunks() {
    let ops = history();
    assert!(
        ops.len() > 2 * 4096,
        "{} ops: fewer than 3 chunks",
        ops.len()
    );
    let dir = tempfile::tempdir().unwrap();

    let replayed = dir.path().join("replayed.db");
    {
        let mut r = Replica::open(&replayed).unwrap();
        for chunk in ops.chunks(50) {
            r.apply_ops(chunk).unwrap();
        }
    }
    let imported = dir.path().join("imported.db");
    let report = {
        let mut r = Replica::open(&imported).unwrap();
        r.import_ops(ops.iter().cloned().map(Ok)).unwrap()
    };
    assert!(report.merged > 0, "the history has merged bodies");

    let (a, mut b) = (
        Replica::open(&replayed).unwrap(),
        Replica::open(&imported).unwrap(),
    );
    assert_eq!(a.canonical_dump().unwrap(), b.canonical_dump().unwrap());
    let expected = index_content(&replayed);
    assert!(expected.iter().any(|t| t.3 == "renamed2"));
    assert!(expected.iter().any(|t| t.3 == "edited5"));
    let got = index_content(&imported);
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "the indexes hold different tokens");
    // Words of texts replaced chunks later find what a replay finds.
    let hits = |r: &Replica, words: &str| {
        let mut ids: Vec<String> = r
            .search(words, 10_000)
            .unwrap()
            .into_iter()
            .map(|h| h.id)
            .collect();
        ids.sort();
        ids
    };
    for words in ["first", "renamed0", "edited1 phone", "round0 line3"] {
        assert_eq!(hits(&a, words), hits(&b, words), "{words}");
    }
    // The imported index takes writes as usual afterwards: an entry
    // leaves it by the text it was made from.
    let hit = b.search("first", 10).unwrap().remove(0).id;
    b.update(
        &hit,
        &NodePatch {
            title: Some("afterwards".into()),
            ..NodePatch::default()
        },
    )
    .unwrap();
    assert_eq!(b.search("afterwards", 10).unwrap()[0].id, hit);
    assert!(b
        .search("first", 10_000)
        .unwrap()
        .iter()
        .all(|h| h.id != hit));
    drop(b);
    let conn = rusqlite::Connection::open(&imported).unwrap();
    conn.execute(
        "INSERT INTO nodes_fts (nodes_fts, rank) VALUES ('integrity-check', 0)",
        [],
    )
    .unwrap();
}

/// The blocks of the full-text index's segments, by id (ids up to 10
/// are FTS5's own records, rewritten by every write).
fn segment_blocks(path: &Path) -> BTreeSet<(i64, Vec<u8>)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT id, block FROM nodes_fts_data WHERE id > 10")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn saves_after_an_import_leave_the_imported_index_alone() {
    // FTS5 merges a level's segments at once when it holds 16: the
    // import's segments must not be among them, or one save rewrites the
    // whole index (1.4 s for 100,000 notes).
    let ops = history();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    let mut r = Replica::open(&path).unwrap();
    r.import_ops(ops.iter().cloned().map(Ok)).unwrap();
    let imported = segment_blocks(&path);
    assert!(!imported.is_empty());
    let ids: Vec<String> = r
        .search("first", 40)
        .unwrap()
        .into_iter()
        .map(|h| h.id)
        .collect();
    assert!(ids.len() >= 24, "{} notes", ids.len());
    for (i, id) in ids.iter().take(24).enumerate() {
        r.update(
            id,
            &NodePatch {
                title: Some(format!("saved{i} afterwards")),
                ..NodePatch::default()
            },
        )
        .unwrap();
    }
    let now = segment_blocks(&path);
    let kept = imported.intersection(&now).count();
    assert_eq!(
        kept,
        imported.len(),
        "the saves rewrote {} of the import's {} index blocks",
        imported.len() - kept,
        imported.len()
    );
    // Everything is still found, old and new.
    assert_eq!(r.search("saved23", 10).unwrap()[0].id, ids[23]);
    assert!(!r.search("renamed0", 10).unwrap().is_empty());
    drop(r);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO nodes_fts (nodes_fts, rank) VALUES ('integrity-check', 0)",
        [],
    )
    .unwrap();
}
