//! What views read: list rows without bodies, counts, home's project
//! counts, and search relevance, checked against brute force over the
//! same replica.

use std::collections::BTreeMap;

use heph_core::{Kind, NewNode, NodePatch, Status};
use heph_corpus::Rng;
use heph_store::{Columns, Edit, ListFilter, ListOrder, Replica, StatusFilter};

const PROJECTS: [&str; 4] = ["home", "side project", "work", "x"];

/// A replica of random tasks and notes, some done, some deleted, some
/// without a project.
fn random_replica(seed: u64, nodes: usize) -> Replica {
    let mut r = Replica::open_in_memory().unwrap();
    let mut rng = Rng::new(seed, 0);
    let edits = (0..nodes)
        .map(|i| {
            let kind = *rng.pick(&[Kind::Task, Kind::Task, Kind::Note]);
            Edit::Create(NewNode {
                kind: Some(kind),
                title: format!("node {i}"),
                body: format!("body of node {i}\n"),
                status: (kind == Kind::Task).then(|| {
                    *rng.pick(&[Status::Todo, Status::Doing, Status::Done, Status::Cancelled])
                }),
                project: rng.chance(0.8).then(|| (*rng.pick(&PROJECTS)).to_owned()),
                due: rng.chance(0.5).then(|| {
                    time::macros::date!(2026 - 01 - 01)
                        + time::Duration::days(rng.below(400) as i64)
                }),
                ..NewNode::default()
            })
        })
        .collect();
    let ids = r.batch(edits).unwrap();
    // A task done and reopened: the open-task definition must hold for
    // every path to a state.
    let reopened = ids[0].clone();
    for status in [Status::Done, Status::Todo] {
        r.update(
            &reopened,
            &NodePatch {
                kind: Some(Kind::Task),
                status: Some(Some(status)),
                ..NodePatch::default()
            },
        )
        .unwrap();
    }
    // Tags added and removed later, so the rows' tag lists must follow.
    let retagged: Vec<&String> = ids.iter().filter(|_| rng.chance(0.2)).collect();
    for id in retagged {
        let mut tags: std::collections::BTreeSet<String> = ["a", "b", "c"]
            .iter()
            .filter(|_| rng.chance(0.5))
            .map(|t| (*t).to_owned())
            .collect();
        r.update(
            id,
            &NodePatch {
                tags: Some(tags.clone()),
                ..NodePatch::default()
            },
        )
        .unwrap();
        if rng.chance(0.5) {
            tags.pop_first();
            r.update(
                id,
                &NodePatch {
                    tags: Some(tags),
                    ..NodePatch::default()
                },
            )
            .unwrap();
        }
    }
    let deletes = ids
        .iter()
        .filter(|_| rng.chance(0.1))
        .map(|id| Edit::Delete(id.clone()))
        .collect();
    r.batch(deletes).unwrap();
    r
}

#[test]
fn home_project_counts_equal_a_brute_force_count() {
    for seed in 1..=4 {
        let r = random_replica(seed, 400);
        let everything = r
            .list(&ListFilter {
                status: StatusFilter::Any,
                include_deleted: true,
                ..ListFilter::default()
            })
            .unwrap();
        let mut expected: BTreeMap<String, usize> = BTreeMap::new();
        for node in &everything {
            let open = matches!(node.status, None | Some(Status::Todo | Status::Doing));
            if node.kind == Kind::Task && !node.deleted && open {
                if let Some(project) = &node.project {
                    *expected.entry(project.clone()).or_default() += 1;
                }
            }
        }
        let counted = r.open_tasks_by_project().unwrap();
        assert_eq!(
            counted,
            expected.into_iter().collect::<Vec<_>>(),
            "seed {seed}"
        );
    }
}

#[test]
fn list_rows_are_the_listed_nodes_without_bodies() {
    let r = random_replica(9, 300);
    let filters = [
        ListFilter {
            kinds: vec![Kind::Task],
            ..ListFilter::default()
        },
        ListFilter {
            kinds: vec![Kind::Task],
            project: Some("side project".into()),
            ..ListFilter::default()
        },
        ListFilter {
            kinds: vec![Kind::Task],
            limit: Some(7),
            ..ListFilter::default()
        },
        ListFilter {
            kinds: vec![Kind::Note],
            status: StatusFilter::Any,
            order: ListOrder::RecentlyUpdated,
            ..ListFilter::default()
        },
        ListFilter {
            status: StatusFilter::Closed,
            ..ListFilter::default()
        },
    ];
    for filter in filters {
        let full = r.list(&filter).unwrap();
        let rows = r.list_rows(&filter).unwrap();
        assert!(!full.is_empty(), "{filter:?}");
        assert!(full.iter().any(|n| !n.body.is_empty()));
        assert!(rows.iter().all(|n| n.body.is_empty()));
        let without_bodies: Vec<_> = full
            .into_iter()
            .map(|mut n| {
                n.body.clear();
                n
            })
            .collect();
        assert_eq!(rows, without_bodies, "{filter:?}");
        let all = ListFilter {
            limit: None,
            ..filter.clone()
        };
        assert_eq!(r.count(&filter).unwrap(), r.list(&all).unwrap().len());
    }
}

#[test]
fn matching_is_the_list_filter_applied_to_a_few_ids() {
    let r = random_replica(11, 300);
    let everything = r
        .list_rows(&ListFilter {
            status: StatusFilter::Any,
            include_deleted: true,
            ..ListFilter::default()
        })
        .unwrap();
    let ids: Vec<String> = everything.iter().map(|n| n.id.clone()).collect();
    let filters = [
        ListFilter {
            kinds: vec![Kind::Task],
            ..ListFilter::default()
        },
        ListFilter {
            kinds: vec![Kind::Task],
            project: Some("side project".into()),
            ..ListFilter::default()
        },
        ListFilter {
            kinds: vec![Kind::Task],
            tag: Some("a".into()),
            ..ListFilter::default()
        },
        ListFilter {
            kinds: vec![Kind::Note],
            status: StatusFilter::Any,
            order: ListOrder::RecentlyUpdated,
            limit: Some(3),
            ..ListFilter::default()
        },
        ListFilter {
            status: StatusFilter::Closed,
            ..ListFilter::default()
        },
    ];
    for filter in filters {
        let listed = r
            .list_rows(&ListFilter {
                limit: None,
                ..filter.clone()
            })
            .unwrap();
        let found = r.matching(&filter, &ids, Columns::Row).unwrap();
        assert_eq!(found.len(), listed.len(), "{filter:?}");
        for node in listed {
            assert_eq!(found.get(&node.id), Some(&node), "{filter:?}");
        }
        // Line columns: the same rows but for the times.
        let lines = r.matching(&filter, &ids[..20], Columns::Line).unwrap();
        for node in lines.values() {
            let row = &found[&node.id];
            assert_eq!((node.created_ms, node.updated_ms), (0, 0));
            assert_eq!(
                (
                    &node.title,
                    &node.tags,
                    &node.version,
                    node.status,
                    node.due
                ),
                (&row.title, &row.tags, &row.version, row.status, row.due)
            );
        }
    }
}

#[test]
fn a_node_changed_after_op_seq_was_read_has_a_greater_version() {
    let mut r = random_replica(12, 50);
    let seq = r.op_seq().unwrap();
    let rows = r.list_rows(&ListFilter::default()).unwrap();
    assert!(rows
        .iter()
        .all(|n| n.version.parse::<i64>().unwrap() <= seq));
    let id = rows[0].id.clone();
    r.update(
        &id,
        &NodePatch {
            title: Some("renamed".into()),
            ..NodePatch::default()
        },
    )
    .unwrap();
    let version: i64 = r.get(&id).unwrap().unwrap().version.parse().unwrap();
    assert!(version > seq);
    assert_eq!(r.op_seq().unwrap(), version);
}

#[test]
fn open_task_lists_follow_due_then_newest() {
    let r = random_replica(5, 300);
    let open = r
        .list_rows(&ListFilter {
            kinds: vec![Kind::Task],
            ..ListFilter::default()
        })
        .unwrap();
    let mut expected = r
        .list(&ListFilter {
            status: StatusFilter::Any,
            ..ListFilter::default()
        })
        .unwrap();
    expected.retain(|n| {
        n.kind == Kind::Task && matches!(n.status, None | Some(Status::Todo | Status::Doing))
    });
    // Due date first (soonest first, none last), then newest first.
    expected.sort_by(|a, b| {
        (a.due.is_none(), a.due)
            .cmp(&(b.due.is_none(), b.due))
            .then(b.created_ms.cmp(&a.created_ms))
    });
    let ids = |nodes: &[heph_core::Node]| nodes.iter().map(|n| n.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&open).len(), ids(&expected).len());
    // Nodes made in the same millisecond may be in either order; the due
    // dates must agree position by position.
    let dues = |nodes: &[heph_core::Node]| nodes.iter().map(|n| n.due).collect::<Vec<_>>();
    assert_eq!(dues(&open), dues(&expected));
}

/// A rare word in one title ranks that node first, also when the word is
/// in many bodies too and the query starts with a word every node holds
/// (more matches than a search ranks in full).
#[test]
fn a_rare_title_word_ranks_first() {
    let mut r = Replica::open_in_memory().unwrap();
    let mut edits: Vec<Edit> = (0..2_000)
        .map(|i| {
            Edit::Create(NewNode {
                kind: Some(Kind::Note),
                title: format!("plain note {i}"),
                body: if i % 400 == 7 {
                    "common words and a zanzibar in the body\n".into()
                } else {
                    format!("common words number {i}\n")
                },
                ..NewNode::default()
            })
        })
        .collect();
    // The title node is among the oldest: recency must not hide it.
    edits.insert(
        3,
        Edit::Create(NewNode {
            kind: Some(Kind::Note),
            title: "Trip to Zanzibar".into(),
            body: "common words\n".into(),
            ..NewNode::default()
        }),
    );
    r.batch(edits).unwrap();
    for query in ["zanzibar", "common zanzibar", "common zan", "Zanz"] {
        let hits = r.search(query, 10).unwrap();
        assert_eq!(
            hits[0].title, "Trip to Zanzibar",
            "query {query:?}: {hits:?}"
        );
        assert_eq!(hits.len(), 6, "query {query:?}");
    }
    // Every word common: the newest matches are ranked, and a search still
    // answers.
    let hits = r.search("common words", 20).unwrap();
    assert_eq!(hits.len(), 20);
    // A common complete word is searched as the word; a part of one is
    // still a prefix.
    assert_eq!(r.search("commo", 5).unwrap().len(), 5);
    assert_eq!(r.search("words numb", 5).unwrap().len(), 5);
    // Words left out of the ranking (in more than half of the nodes)
    // still show in the snippets.
    let hits = r.search("common zanzibar", 10).unwrap();
    assert!(
        hits[1..]
            .iter()
            .all(|h| h.snippet.contains("[common]") && h.snippet.contains("[zanzibar]")),
        "{hits:?}"
    );
    assert!(hits[0].snippet.contains("[Zanzibar]"), "{hits:?}");
    for hit in r.search("common words", 20).unwrap() {
        assert!(hit.snippet.contains("[common] [words]"), "{hit:?}");
    }
}

/// When every word is in nearly every node, bm25 weighs none of them:
/// nodes holding the words in their title come first, then the newest.
#[test]
fn common_words_rank_titles_then_newest() {
    let mut r = Replica::open_in_memory().unwrap();
    let mut edits: Vec<Edit> = (0..1_500)
        .map(|i| {
            Edit::Create(NewNode {
                kind: Some(Kind::Note),
                title: format!("plain note {i}"),
                body: format!("zoun and thai in body {i}\n"),
                ..NewNode::default()
            })
        })
        .collect();
    // Among the newest ranked matches, but not the newest.
    edits.insert(
        1_300,
        Edit::Create(NewNode {
            kind: Some(Kind::Note),
            title: "Zoun thai report".into(),
            body: "zoun\n".into(),
            ..NewNode::default()
        }),
    );
    r.batch(edits).unwrap();
    for query in ["zoun", "zoun thai", "thai zou"] {
        let hits = r.search(query, 10).unwrap();
        assert_eq!(hits.len(), 10, "query {query:?}");
        assert_eq!(
            hits[0].title, "Zoun thai report",
            "query {query:?}: {hits:?}"
        );
        // Then the newest first.
        assert_eq!(
            hits[1].title, "plain note 1499",
            "query {query:?}: {hits:?}"
        );
        assert_eq!(
            hits[2].title, "plain note 1498",
            "query {query:?}: {hits:?}"
        );
    }
    // Fewer matches than asked for: all of them.
    assert_eq!(r.search("zoun report", 10).unwrap().len(), 1);
}
