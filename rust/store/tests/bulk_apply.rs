//! A device that pulls in pages, or imports a stream, ends byte-identical
//! to one that applied every op on its own.

use heph_core::{Kind, NewNode, NodePatch, Op};
use heph_store::{RawOp, Replica};

/// Two devices' worth of history: notes and tasks made on one, edited on
/// both while apart (bodies as deltas, concurrent edits merged), some
/// deleted and restored, tags moved.
fn history() -> Vec<Op> {
    let mut phone = Replica::open_in_memory().unwrap();
    let mut laptop = Replica::open_in_memory().unwrap();
    let mut ids = Vec::new();
    for i in 0..120 {
        let body: String = (0..(i % 7) * 6)
            .map(|l| format!("note {i} line {l} with words\n"))
            .collect();
        let node = phone
            .create(NewNode {
                kind: Some(if i % 3 == 0 { Kind::Task } else { Kind::Note }),
                title: format!("title {i}"),
                body,
                project: (i % 4 == 0).then(|| format!("p{}", i % 8)),
                tags: [format!("t{}", i % 5)].into(),
                ..NewNode::default()
            })
            .unwrap();
        ids.push(node.id);
    }
    laptop.apply_ops(&phone.export_ops().unwrap()).unwrap();
    for (i, id) in ids.iter().enumerate() {
        for (n, device) in [&mut phone, &mut laptop].into_iter().enumerate() {
            if (i + n) % 3 == 0 {
                continue;
            }
            let body = device.get(id).unwrap().unwrap().body;
            let mut lines: Vec<String> = body.lines().map(str::to_owned).collect();
            let at = (i * 7 + n * 13) % (lines.len() + 1);
            lines.insert(at, format!("added on device {n}"));
            if i % 5 == n {
                lines.retain(|l| !l.contains("line 2 "));
            }
            let patch = NodePatch {
                body: Some(lines.join("\n") + "\n"),
                title: (i % 6 == n).then(|| format!("renamed {i} on {n}")),
                ..NodePatch::default()
            };
            device.update(id, &patch).unwrap();
        }
        if i % 11 == 0 {
            phone.delete(id).unwrap();
        }
        if i % 22 == 0 {
            laptop.delete(id).unwrap();
            laptop.restore(id).unwrap();
        }
    }
    let mut ops = phone.export_ops().unwrap();
    let known: std::collections::HashSet<String> = ops.iter().map(|o| o.op_id.clone()).collect();
    ops.extend(
        laptop
            .export_ops()
            .unwrap()
            .into_iter()
            .filter(|o| !known.contains(&o.op_id)),
    );
    ops
}

/// A replica that applied `ops` one at a time, in their order.
fn replayed(ops: &[Op]) -> Replica {
    let mut replica = Replica::open_in_memory().unwrap();
    for op in ops {
        replica.apply_ops(std::slice::from_ref(op)).unwrap();
    }
    replica
}

#[test]
fn pulled_imported_and_replayed_devices_are_identical() {
    let ops = history();
    assert!(ops.len() > 600, "{}", ops.len());

    let one_by_one = replayed(&ops);
    let expected = one_by_one.canonical_dump().unwrap();
    assert!(expected.contains("<<<<<<<") || expected.contains("added on device 1"));

    for page in [1, 7, 500, 5000] {
        let mut pulled = Replica::open_in_memory().unwrap();
        // As sync does: an initial pull indexes once, at its end.
        assert!(pulled.begin_bulk_load().unwrap());
        for (n, chunk) in ops.chunks(page).enumerate() {
            let raws: Vec<RawOp> = chunk
                .iter()
                .enumerate()
                .map(|(i, o)| RawOp {
                    seq: (n * page + i + 1) as i64,
                    raw: serde_json::to_string(o).unwrap(),
                })
                .collect();
            let last = raws.last().unwrap().seq;
            let outcome = pulled.apply_pulled("hub", &raws, last, None).unwrap();
            assert_eq!(outcome.quarantined, 0);
        }
        assert_ne!(
            pulled.canonical_dump().unwrap(),
            expected,
            "not indexed yet"
        );
        pulled.finish_bulk_load().unwrap();
        let got = pulled.canonical_dump().unwrap();
        assert_eq!(got, expected, "pages of {page}");
    }

    let mut imported = Replica::open_in_memory().unwrap();
    imported.import_ops(ops.iter().cloned().map(Ok)).unwrap();
    assert_eq!(imported.canonical_dump().unwrap(), expected);

    // Newest first: every delta waits for its base, and still the same.
    let mut reversed = Replica::open_in_memory().unwrap();
    for op in ops.iter().rev() {
        reversed.apply_ops(std::slice::from_ref(op)).unwrap();
    }
    assert_eq!(reversed.canonical_dump().unwrap(), expected);
}

#[test]
fn an_import_with_a_bad_line_changes_nothing() {
    let ops = history();
    let mut r = Replica::open_in_memory().unwrap();
    let before = r.canonical_dump().unwrap();
    let stream =
        ops.iter()
            .cloned()
            .map(Ok)
            .chain(std::iter::once(Err(heph_store::StoreError::Invalid(
                "line 9999: not an op".into(),
            ))));
    assert!(r.import_ops(stream).is_err());
    assert_eq!(r.canonical_dump().unwrap(), before);
    assert_eq!(r.op_count().unwrap(), 0);
}

/// The indexes (and any trigger) of a replica file, by name, with the SQL
/// that made them.
fn indexes(path: &std::path::Path) -> Vec<(String, Option<String>)> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT name, sql FROM sqlite_schema WHERE type IN ('index', 'trigger') ORDER BY name",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The journal mode a new connection to the file finds.
fn journal_mode(path: &std::path::Path) -> String {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn an_import_into_an_empty_replica_keeps_every_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    let ops = history();
    let before = {
        Replica::open(&path).unwrap();
        indexes(&path)
    };
    assert!(before.iter().any(|(name, _)| name == "nodes_open_tasks"));
    assert!(before.iter().any(|(name, _)| name == "tags_tag"));

    // Cut short by a bad line: nothing changes, the indexes neither.
    let mut r = Replica::open(&path).unwrap();
    let bad =
        ops.iter()
            .cloned()
            .map(Ok)
            .chain(std::iter::once(Err(heph_store::StoreError::Invalid(
                "line 9999: not an op".into(),
            ))));
    assert!(r.import_ops(bad).is_err());
    assert_eq!(indexes(&path), before);
    assert_eq!(r.op_count().unwrap(), 0);
    // It loaded with a rollback journal, and the file is back in WAL mode.
    assert_eq!(journal_mode(&path), "wal");

    r.import_ops(ops.iter().cloned().map(Ok)).unwrap();
    assert_eq!(indexes(&path), before);
    assert_eq!(journal_mode(&path), "wal");
    let mut one_by_one = Replica::open_in_memory().unwrap();
    one_by_one.apply_ops(&ops).unwrap();
    assert_eq!(
        r.canonical_dump().unwrap(),
        one_by_one.canonical_dump().unwrap()
    );
    // The open-task lists read the rebuilt index.
    let open = heph_store::ListFilter {
        kinds: vec![heph_core::Kind::Task],
        status: heph_store::StatusFilter::Open,
        ..heph_store::ListFilter::default()
    };
    let rows = |r: &Replica| -> Vec<(String, Vec<String>)> {
        r.list_rows(&open)
            .unwrap()
            .into_iter()
            .map(|n| (n.id, n.tags.into_iter().collect()))
            .collect()
    };
    assert!(rows(&r).iter().any(|(_, tags)| !tags.is_empty()));
    assert_eq!(rows(&r), rows(&one_by_one));
}

/// A node's tag list is set by each write of its row: a node whose tags
/// change chunks after its row was written lists them as a replay does,
/// and so do the writes after the import.
#[test]
fn an_import_keeps_tag_lists_across_chunks() {
    let mut source = Replica::open_in_memory().unwrap();
    let tagged = |tags: &[&str]| NewNode {
        kind: Some(Kind::Task),
        title: "early".into(),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        ..NewNode::default()
    };
    let early = source.create(tagged(&["old", "kept"])).unwrap().id;
    // More ops than an import applies in one chunk (4,096).
    for i in 0..1500 {
        source
            .create(NewNode {
                title: format!("filler {i}"),
                ..NewNode::default()
            })
            .unwrap();
    }
    source
        .update(
            &early,
            &NodePatch {
                tags: Some(["kept".to_owned(), "new".to_owned()].into()),
                ..NodePatch::default()
            },
        )
        .unwrap();
    let ops = source.export_ops().unwrap();
    assert!(ops.len() > 4096, "{}", ops.len());

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    let mut imported = Replica::open(&path).unwrap();
    imported.import_ops(ops.iter().cloned().map(Ok)).unwrap();
    let one_by_one = replayed(&ops);
    assert_eq!(
        imported.canonical_dump().unwrap(),
        one_by_one.canonical_dump().unwrap()
    );
    let tag_list = |r: &Replica| {
        let open = heph_store::ListFilter {
            kinds: vec![Kind::Task],
            status: heph_store::StatusFilter::Open,
            ..heph_store::ListFilter::default()
        };
        let rows = r.list_rows(&open).unwrap();
        let row = rows.into_iter().find(|n| n.id == early).unwrap();
        row.tags.into_iter().collect::<Vec<_>>()
    };
    assert_eq!(tag_list(&imported), ["kept", "new"]);

    // A tag edit after the import reaches the list.
    imported
        .update(
            &early,
            &NodePatch {
                tags: Some(["kept", "later", "new"].map(str::to_owned).into()),
                ..NodePatch::default()
            },
        )
        .unwrap();
    assert_eq!(tag_list(&imported), ["kept", "later", "new"]);
}

/// An import into a replica whose initial pull is under way (another
/// process began it) leaves the deferred full-text index alone, as the
/// pull does: nothing is written to it until the load finishes, and then
/// it is a replay's.
#[test]
fn an_import_during_an_initial_pull_leaves_the_deferred_index_alone() {
    let ops = history();
    let (pulled, imported) = ops.split_at(ops.len() / 2);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    let mut r = Replica::open(&path).unwrap();
    assert!(r.begin_bulk_load().unwrap());
    let raws: Vec<RawOp> = pulled
        .iter()
        .enumerate()
        .map(|(i, o)| RawOp {
            seq: i as i64 + 1,
            raw: serde_json::to_string(o).unwrap(),
        })
        .collect();
    r.apply_pulled("hub", &raws, raws.len() as i64, None)
        .unwrap();
    let index_rows = || -> i64 {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.query_row("SELECT count(*) FROM nodes_fts_data", [], |r| r.get(0))
            .unwrap()
    };
    let before = index_rows();
    r.import_ops(imported.iter().cloned().map(Ok)).unwrap();
    assert_eq!(index_rows(), before, "nothing written to a deferred index");
    r.finish_bulk_load().unwrap();
    let one_by_one = replayed(&ops);
    assert_eq!(
        r.canonical_dump().unwrap(),
        one_by_one.canonical_dump().unwrap()
    );
}

/// Run by `an_import_killed_midway_leaves_an_empty_replica` in a child
/// process, which dies after its last op, before the import commits.
#[test]
fn import_kill_child() {
    let Ok(replica) = std::env::var("IMPORT_CHILD_REPLICA") else {
        return;
    };
    let mut r = Replica::open(std::path::Path::new(&replica)).unwrap();
    let corpus = heph_corpus::Corpus::new(7, 2000);
    let ops = corpus.ops();
    let _ = r.import_ops(ops.map(Ok).chain(std::iter::from_fn(
        || -> Option<heph_store::Result<Op>> { std::process::abort() },
    )));
}

#[test]
fn an_import_killed_midway_leaves_an_empty_replica() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    drop(Replica::open(&path).unwrap());
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "import_kill_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("IMPORT_CHILD_REPLICA", &path)
        .status()
        .unwrap();
    assert!(!status.success(), "the child was meant to die");
    // The child imported with a rollback journal; the next open rolls the
    // file back to the empty replica.
    let mut r = Replica::open(&path).unwrap();
    assert_eq!(r.op_count().unwrap(), 0);
    assert_eq!(
        r.list_rows(&heph_store::ListFilter::default())
            .unwrap()
            .len(),
        0
    );
    assert_eq!(journal_mode(&path), "wal");
    let ops: Vec<Op> = heph_corpus::Corpus::new(7, 300).ops().collect();
    r.import_ops(ops.iter().cloned().map(Ok)).unwrap();
    let mut replayed = Replica::open_in_memory().unwrap();
    replayed.apply_ops(&ops).unwrap();
    assert_eq!(
        r.canonical_dump().unwrap(),
        replayed.canonical_dump().unwrap()
    );
}

#[test]
fn an_import_while_another_process_has_the_replica_open_keeps_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    let ops = history();
    let mut r = Replica::open(&path).unwrap();
    // A sidecar holding the file: the import cannot leave WAL mode, and
    // the other connection reads the result once it commits.
    let other = Replica::open(&path).unwrap();
    assert_eq!(other.op_count().unwrap(), 0);
    r.import_ops(ops.iter().cloned().map(Ok)).unwrap();
    assert_eq!(journal_mode(&path), "wal");
    assert_eq!(other.op_count().unwrap(), ops.len() as u64);
    let mut one_by_one = Replica::open_in_memory().unwrap();
    one_by_one.apply_ops(&ops).unwrap();
    assert_eq!(
        other.canonical_dump().unwrap(),
        one_by_one.canonical_dump().unwrap()
    );
}

/// The full-text index's stored pages, as one text.
fn index_pages(path: &std::path::Path) -> String {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row(
        "SELECT count(*) || ':' || coalesce(group_concat(hex(block), ','), '')
         FROM (SELECT block FROM nodes_fts_data ORDER BY id)",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

/// Ops a replica already has (a device pulling back what it pushed, a
/// second import of one file) change nothing: not the rows, and not the
/// full-text index, which once took each of their nodes out and put it
/// back (a new segment per page of duplicates).
#[test]
fn ops_already_present_leave_the_rows_and_the_index_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    let ops = history();
    let mut r = Replica::open(&path).unwrap();
    // Not a bulk load (the index is kept op by op): one op in first.
    r.apply_ops(&ops[..1]).unwrap();
    r.apply_ops(&ops).unwrap();
    let dump = r.canonical_dump().unwrap();
    let pages = index_pages(&path);
    for chunk in ops.chunks(97) {
        let report = r.apply_ops(chunk).unwrap();
        assert_eq!(report.new_ops, 0);
        assert_eq!(report.duplicates, chunk.len());
    }
    assert_eq!(r.canonical_dump().unwrap(), dump);
    assert_eq!(
        index_pages(&path),
        pages,
        "the full-text index was rewritten"
    );
    assert!(!r.search("words", 5).unwrap().is_empty());
}
