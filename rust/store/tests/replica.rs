//! Local writes and reads on one replica.

use std::collections::BTreeSet;

use heph_core::{Kind, NewNode, NodePatch, Status};
use heph_store::{ListFilter, Replica, StatusFilter, StoreError};

fn task(r: &mut Replica, title: &str) -> String {
    r.create(NewNode {
        title: title.into(),
        ..NewNode::default()
    })
    .unwrap()
    .id
}

#[test]
fn create_get_and_defaults() {
    let mut r = Replica::open_in_memory().unwrap();
    let node = r
        .create(NewNode {
            title: " Buy milk ".into(),
            due: Some(time::macros::date!(2026 - 12 - 01)),
            tags: ["errand".to_string()].into(),
            body: "2 litres\n".into(),
            ..NewNode::default()
        })
        .unwrap();
    assert_eq!(node.title, "Buy milk");
    assert_eq!(node.kind, Kind::Task);
    assert_eq!(node.status, Some(Status::Todo));
    assert_eq!(node.body, "2 litres\n");
    assert_eq!(node.tags, BTreeSet::from(["errand".to_string()]));
    assert_eq!(r.get(&node.id).unwrap().unwrap(), node);
    assert!(r.get("nope").unwrap().is_none());
}

#[test]
fn update_records_only_changed_fields() {
    let mut r = Replica::open_in_memory().unwrap();
    let id = task(&mut r, "a");
    let before = r.op_count().unwrap();
    let changed = r
        .update(
            &id,
            &NodePatch {
                title: Some("a".into()),
                status: Some(Some(Status::Done)),
                ..NodePatch::default()
            },
        )
        .unwrap();
    assert_eq!(changed, vec!["status"]);
    assert_eq!(r.op_count().unwrap(), before + 1);
    let v1 = r.get(&id).unwrap().unwrap().version;
    assert!(r.update(&id, &NodePatch::default()).unwrap().is_empty());
    let changed = r
        .update(
            &id,
            &NodePatch {
                tags: Some(["x".into(), "y".into()].into()),
                ..NodePatch::default()
            },
        )
        .unwrap();
    assert_eq!(changed, vec!["tags"]);
    let node = r.get(&id).unwrap().unwrap();
    assert_ne!(node.version, v1);
    assert_eq!(node.tags.len(), 2);
}

#[test]
fn bad_values_are_refused_and_nothing_is_written() {
    let mut r = Replica::open_in_memory().unwrap();
    let id = task(&mut r, "a");
    let ops = r.op_count().unwrap();
    let err = r
        .update(
            &id,
            &NodePatch {
                title: Some("  ".into()),
                ..NodePatch::default()
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("title"), "{err}");
    let err = r
        .update(
            &id,
            &NodePatch {
                status: Some(Some(Status::Done)),
                tags: Some(["two words".into()].into()),
                ..NodePatch::default()
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("tag"), "{err}");
    // The status change in the same call rolled back with the bad tag.
    assert_eq!(r.op_count().unwrap(), ops);
    assert!(matches!(
        r.update("missing", &NodePatch::default()),
        Err(StoreError::UnknownNode(_))
    ));
}

#[test]
fn delete_and_restore() {
    let mut r = Replica::open_in_memory().unwrap();
    let id = task(&mut r, "gone soon");
    r.delete(&id).unwrap();
    assert!(r.get(&id).unwrap().unwrap().deleted);
    assert!(r.list(&ListFilter::default()).unwrap().is_empty());
    assert!(r
        .update(
            &id,
            &NodePatch {
                title: Some("x".into()),
                ..NodePatch::default()
            }
        )
        .is_err());
    r.restore(&id).unwrap();
    assert!(!r.get(&id).unwrap().unwrap().deleted);
}

#[test]
fn tags_typed_over_a_shown_set_keep_a_tag_added_meanwhile() {
    let mut r = Replica::open_in_memory().unwrap();
    let id = task(&mut r, "tagged");
    let set = |tags: &[&str]| -> BTreeSet<String> { tags.iter().map(|t| t.to_string()).collect() };
    r.update(
        &id,
        &NodePatch {
            tags: Some(set(&["a", "old"])),
            ..NodePatch::default()
        },
    )
    .unwrap();
    // Shown {a, old}; meanwhile another process adds b.
    r.update(
        &id,
        &NodePatch {
            tags: Some(set(&["a", "old", "b"])),
            ..NodePatch::default()
        },
    )
    .unwrap();
    // The buffer adds c and removes old.
    let typed = NodePatch {
        tags: Some(set(&["a", "c"])),
        tags_shown: Some(set(&["a", "old"])),
        ..NodePatch::default()
    };
    let heads = r.body_heads(&id).unwrap();
    r.update_from(&id, &typed, &heads).unwrap();
    assert_eq!(r.get(&id).unwrap().unwrap().tags, set(&["a", "b", "c"]));
    // Without what was shown, the set is the whole new set (the CLI's
    // `tags=`).
    r.update(
        &id,
        &NodePatch {
            tags: Some(set(&["z"])),
            ..NodePatch::default()
        },
    )
    .unwrap();
    assert_eq!(r.get(&id).unwrap().unwrap().tags, set(&["z"]));
}

#[test]
fn an_editor_save_brings_back_a_node_deleted_meanwhile() {
    let mut r = Replica::open_in_memory().unwrap();
    let id = task(&mut r, "open in a buffer");
    // The buffer was loaded from these heads; then the node was deleted.
    let heads = r.body_heads(&id).unwrap();
    r.delete(&id).unwrap();
    let edit = NodePatch {
        body: Some("typed meanwhile\n".into()),
        ..NodePatch::default()
    };
    let saved = r.update_from(&id, &edit, &heads).unwrap();
    assert!(saved.restored);
    let node = r.get(&id).unwrap().unwrap();
    assert!(!node.deleted);
    assert_eq!(node.body, "typed meanwhile\n");
    // A save that changes nothing leaves a deleted node deleted.
    r.delete(&id).unwrap();
    let heads = r.body_heads(&id).unwrap();
    let nothing = r.update_from(&id, &NodePatch::default(), &heads);
    assert!(
        matches!(nothing, Err(StoreError::Deleted(_))),
        "{nothing:?}"
    );
    assert!(r.get(&id).unwrap().unwrap().deleted);
    // The CLI's update still asks for a restore first.
    assert!(matches!(r.update(&id, &edit), Err(StoreError::Deleted(_))));
}

#[test]
fn journal_is_one_node_per_day() {
    let mut r = Replica::open_in_memory().unwrap();
    let day = time::macros::date!(2026 - 11 - 22);
    let a = r.journal(day).unwrap();
    let b = r.journal(day).unwrap();
    assert_eq!(a.id, b.id);
    assert_eq!(a.id, "journal-2026-11-22");
    assert_eq!(a.kind, Kind::Journal);
    assert_eq!(r.node_count().unwrap(), 1);
    // A deleted day's journal stays deleted: asking for it restores
    // nothing (a delete made elsewhere would be undone once synced).
    r.delete(&a.id).unwrap();
    let ops = r.export_ops().unwrap().len();
    assert!(r.journal(day).unwrap().deleted);
    assert_eq!(r.export_ops().unwrap().len(), ops);
}

/// A journal is its day's page: no node becomes one, and one stays one
/// (other kinds change freely); a refused change writes nothing.
#[test]
fn a_kind_change_to_or_from_journal_is_refused() {
    let mut r = Replica::open_in_memory().unwrap();
    let day = r.journal(time::macros::date!(2026 - 12 - 04)).unwrap();
    let id = task(&mut r, "a task");
    let ops = r.export_ops().unwrap().len();
    let to = |kind| NodePatch {
        kind: Some(kind),
        ..NodePatch::default()
    };
    let err = r.update(&id, &to(Kind::Journal)).unwrap_err();
    assert!(err.to_string().contains("cannot become a journal"), "{err}");
    let err = r.update(&day.id, &to(Kind::Task)).unwrap_err();
    assert!(err.to_string().contains("stays a journal"), "{err}");
    assert_eq!(r.export_ops().unwrap().len(), ops);
    assert_eq!(r.get(&id).unwrap().unwrap().kind, Kind::Task);
    assert_eq!(r.get(&day.id).unwrap().unwrap().kind, Kind::Journal);
    // Setting the kind it has, and task to note, are fine; the note has
    // no status left over.
    assert!(r.update(&day.id, &to(Kind::Journal)).unwrap().is_empty());
    assert_eq!(r.update(&id, &to(Kind::Note)).unwrap(), ["kind", "status"]);
    assert_eq!(r.get(&id).unwrap().unwrap().status, None);
}

/// Only tasks have a status, from the start too: a new note with one
/// (an RPC caller's `node_create`) is refused, and nothing is written.
#[test]
fn a_new_note_with_a_status_is_refused() {
    let mut r = Replica::open_in_memory().unwrap();
    let err = r
        .create(NewNode {
            kind: Some(Kind::Note),
            title: "Reading list".into(),
            status: Some(Status::Done),
            ..NewNode::default()
        })
        .unwrap_err();
    assert!(
        err.to_string().contains("only tasks have a status"),
        "{err}"
    );
    assert!(r.export_ops().unwrap().is_empty());
}

#[test]
fn list_filters_and_orders() {
    let mut r = Replica::open_in_memory().unwrap();
    let late = r
        .create(NewNode {
            title: "late".into(),
            due: Some(time::macros::date!(2027 - 01 - 01)),
            project: Some("home".into()),
            ..NewNode::default()
        })
        .unwrap();
    let soon = r
        .create(NewNode {
            title: "soon".into(),
            due: Some(time::macros::date!(2026 - 12 - 01)),
            ..NewNode::default()
        })
        .unwrap();
    let done = task(&mut r, "finished");
    r.update(
        &done,
        &NodePatch {
            status: Some(Some(Status::Done)),
            ..NodePatch::default()
        },
    )
    .unwrap();
    r.create(NewNode {
        kind: Some(Kind::Note),
        title: "a note".into(),
        ..NewNode::default()
    })
    .unwrap();
    let tasks = ListFilter {
        kinds: vec![Kind::Task],
        ..ListFilter::default()
    };
    let titles: Vec<_> = r
        .list(&tasks)
        .unwrap()
        .into_iter()
        .map(|n| n.title)
        .collect();
    assert_eq!(titles, vec!["soon", "late"]);
    let closed = ListFilter {
        kinds: vec![Kind::Task],
        status: StatusFilter::Closed,
        ..ListFilter::default()
    };
    assert_eq!(r.list(&closed).unwrap()[0].id, done);
    let home = ListFilter {
        project: Some("home".into()),
        ..ListFilter::default()
    };
    assert_eq!(r.list(&home).unwrap()[0].id, late.id);
    assert_ne!(soon.id, late.id);
}

#[test]
fn a_word_typed_with_decomposed_accents_finds_the_composed_one() {
    let mut r = Replica::open_in_memory().unwrap();
    let id = task(&mut r, "Send the résumé to Zürich");
    // `e` + U+0301, `u` + U+0308: as a keyboard or a file name may give it.
    for query in [
        "re\u{301}sume\u{301}",
        "Zu\u{308}rich",
        "re\u{301}sume\u{301} zu\u{308}r",
    ] {
        let hits = r.search(query, 10).unwrap();
        assert_eq!(hits.len(), 1, "{query:?}");
        assert_eq!(hits[0].id, id);
    }
}

#[test]
fn titles_match_ignoring_case_beyond_ascii() {
    let mut r = Replica::open_in_memory().unwrap();
    let summer = r
        .create(NewNode {
            kind: Some(Kind::Note),
            title: "ÉTÉ plans".into(),
            ..NewNode::default()
        })
        .unwrap()
        .id;
    let eclairs = task(&mut r, "ÉCLAIRS KAUFEN");
    let _ascii = task(&mut r, "buy milk");
    assert_eq!(r.find_by_title("été plans").unwrap(), Some(summer.clone()));
    assert_eq!(r.find_by_title("Été Plans").unwrap(), Some(summer.clone()));
    assert_eq!(r.ids_by_title("été PLANS").unwrap(), vec![summer.clone()]);
    assert_eq!(
        r.find_by_title("éclairs kaufen").unwrap(),
        Some(eclairs.clone())
    );
    // A promoted line asks for an open task as typed, ASCII case aside
    // (see `find_open_task_by_title`).
    assert_eq!(
        r.find_open_task_by_title("ÉCLAIRS kaufen").unwrap(),
        Some(eclairs.clone())
    );
    // Two titles that differ only in the case of an accented letter are
    // the same title: both are found, not whichever NOCASE matches.
    let other = r
        .create(NewNode {
            kind: Some(Kind::Note),
            title: "été plans".into(),
            ..NewNode::default()
        })
        .unwrap()
        .id;
    assert_eq!(
        r.ids_by_title("été plans").unwrap(),
        vec![summer.clone(), other.clone()]
    );
    // One to open: the one as typed.
    assert_eq!(r.find_by_title("été plans").unwrap(), Some(other.clone()));
    r.delete(&other).unwrap();
    // ASCII as before; a different word is no match; a deleted node none.
    assert!(r.find_by_title("BUY MILK").unwrap().is_some());
    assert_eq!(r.find_by_title("été plan").unwrap(), None);
    r.delete(&summer).unwrap();
    assert_eq!(r.find_by_title("été plans").unwrap(), None);
    assert!(r.ids_by_title("été plans").unwrap().is_empty());
    r.update(
        &eclairs,
        &NodePatch {
            status: Some(Some(Status::Done)),
            ..NodePatch::default()
        },
    )
    .unwrap();
    assert_eq!(r.find_open_task_by_title("éclairs kaufen").unwrap(), None);
}

#[test]
fn search_ranks_titles_and_snippets_bodies() {
    let mut r = Replica::open_in_memory().unwrap();
    let body_hit = r
        .create(NewNode {
            kind: Some(Kind::Note),
            title: "Groceries".into(),
            body: "remember the quarterly report\n".into(),
            ..NewNode::default()
        })
        .unwrap();
    let title_hit = task(&mut r, "Quarterly report draft");
    let hits = r.search("quarterly", 10).unwrap();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].id, title_hit, "title matches rank first");
    assert_eq!(hits[1].id, body_hit.id);
    assert!(
        hits[1].snippet.contains("[quarterly]"),
        "{}",
        hits[1].snippet
    );
    // Prefix of the last word, FTS syntax in input is harmless.
    assert_eq!(r.search("quart", 10).unwrap().len(), 2);
    assert!(r.search("\"(( OR", 10).unwrap().is_empty());
    // Edits reindex; deleted nodes drop out.
    r.update(
        &title_hit,
        &NodePatch {
            title: Some("Annual summary".into()),
            ..NodePatch::default()
        },
    )
    .unwrap();
    assert_eq!(r.search("quarterly", 10).unwrap().len(), 1);
    r.delete(&body_hit.id).unwrap();
    assert!(r.search("quarterly", 10).unwrap().is_empty());
    assert_eq!(r.find_by_title("annual SUMMARY").unwrap(), Some(title_hit));
}

/// A link names, of several nodes with its title, one that is not a closed
/// task first, then the oldest; a promoted line finds only open tasks.
#[test]
fn a_title_shared_by_several_names_the_open_one_first() {
    let mut r = Replica::open_in_memory().unwrap();
    let old_done = task(&mut r, "Buy stamps");
    r.update(
        &old_done,
        &NodePatch {
            status: Some(Some(Status::Done)),
            ..NodePatch::default()
        },
    )
    .unwrap();
    assert_eq!(
        r.find_by_title("buy stamps").unwrap(),
        Some(old_done.clone())
    );
    assert_eq!(r.find_open_task_by_title("buy stamps").unwrap(), None);
    let open = task(&mut r, "buy stamps");
    let later = task(&mut r, "BUY STAMPS");
    assert_eq!(r.find_by_title("Buy stamps").unwrap(), Some(open.clone()));
    assert_eq!(
        r.find_open_task_by_title("Buy stamps").unwrap(),
        Some(open.clone())
    );
    r.delete(&open).unwrap();
    assert_eq!(r.find_by_title("buy stamps").unwrap(), Some(later.clone()));
    assert_eq!(
        r.find_open_task_by_title("buy stamps").unwrap(),
        Some(later)
    );
}

#[test]
fn ids_with_a_prefix_come_from_the_id_index() {
    let mut r = Replica::open_in_memory().unwrap();
    let a = task(&mut r, "a");
    let b = task(&mut r, "b");
    r.delete(&b).unwrap();
    let common: String = a
        .chars()
        .zip(b.chars())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x)
        .collect();
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    assert_eq!(r.ids_with_prefix(&common, 10).unwrap(), both);
    assert_eq!(r.ids_with_prefix(&common, 1).unwrap().len(), 1);
    assert_eq!(r.ids_with_prefix(&a, 10).unwrap(), std::slice::from_ref(&a));
    assert!(r.ids_with_prefix("zz", 10).unwrap().is_empty());
    assert!(r.ids_with_prefix("", 10).unwrap().is_empty());
}

#[test]
fn far_future_ops_are_refused() {
    let mut a = Replica::open_in_memory().unwrap();
    a.clock_mut().set_offset_ms(3 * 24 * 3600 * 1000);
    task(&mut a, "from the future");
    let ops = a.export_ops().unwrap();
    let mut b = Replica::open_in_memory().unwrap();
    let err = b.apply_ops(&ops).unwrap_err();
    assert!(err.to_string().contains("future"), "{err}");
    assert_eq!(b.op_count().unwrap(), 0);
    // b's clock was not dragged forward.
    let id = task(&mut b, "now");
    let ms = b.get(&id).unwrap().unwrap().updated_ms;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(ms <= now + 1000);
}

#[test]
fn reopen_keeps_everything_and_migrations_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    let id = {
        let mut r = Replica::open(&path).unwrap();
        task(&mut r, "persist me")
    };
    let r = Replica::open(&path).unwrap();
    assert_eq!(r.get(&id).unwrap().unwrap().title, "persist me");
}

#[test]
fn a_new_replica_file_has_large_pages_and_an_old_one_keeps_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let page_size = |path: &std::path::Path| -> i64 {
        rusqlite::Connection::open(path)
            .unwrap()
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap()
    };
    let title_after_reopen = |path: &std::path::Path, id: &str| -> String {
        Replica::open(path).unwrap().get(id).unwrap().unwrap().title
    };
    let new = dir.path().join("new.db");
    let id = task(&mut Replica::open(&new).unwrap(), "in a new file");
    assert_eq!(page_size(&new), 16384);
    assert_eq!(title_after_reopen(&new, &id), "in a new file");
    // A replica made with SQLite's default pages opens and works as it is.
    let old = dir.path().join("old.db");
    rusqlite::Connection::open(&old)
        .unwrap()
        .execute_batch("PRAGMA page_size = 4096; CREATE TABLE t (x); DROP TABLE t;")
        .unwrap();
    let id = task(&mut Replica::open(&old).unwrap(), "in an old file");
    assert_eq!(page_size(&old), 4096);
    assert_eq!(title_after_reopen(&old, &id), "in an old file");
}

#[test]
fn batch_is_all_or_nothing() {
    use heph_store::Edit;
    let mut r = Replica::open_in_memory().unwrap();
    let a = task(&mut r, "a");
    let ops = r.op_count().unwrap();
    let err = r
        .batch(vec![
            Edit::Create(NewNode {
                title: "new".into(),
                ..NewNode::default()
            }),
            Edit::Update(
                a.clone(),
                NodePatch {
                    title: Some("renamed".into()),
                    ..NodePatch::default()
                },
            ),
            Edit::Delete("missing".into()),
        ])
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownNode(_)));
    assert_eq!(r.op_count().unwrap(), ops);
    let ids = r
        .batch(vec![
            Edit::Create(NewNode {
                title: "new".into(),
                ..NewNode::default()
            }),
            Edit::Delete(a.clone()),
        ])
        .unwrap();
    assert_eq!(ids[1], a);
    assert_eq!(r.get(&ids[0]).unwrap().unwrap().title, "new");
    assert!(r.get(&a).unwrap().unwrap().deleted);
}

/// A conflict block names a side's device by the first six characters of
/// its origin: every open of one replica (Neovim's sidecar at each start,
/// the CLI) shares them, and each open still has an origin of its own, so
/// no two mint the same stamp. Another replica is another device.
#[test]
fn every_open_of_a_replica_names_the_same_device() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.db");
    let first = Replica::open(&path).unwrap().origin().to_owned();
    let second = Replica::open(&path).unwrap().origin().to_owned();
    assert_ne!(first, second);
    assert_eq!(first[..6], second[..6]);
    let other = Replica::open(&dir.path().join("other.db")).unwrap();
    assert_ne!(other.origin()[..6], first[..6]);
}
