//! The buffer parsers never panic, whatever the text, and report errors on
//! lines that exist; rendering then parsing a node changes nothing.

use heph_core::fields::Context;
use heph_core::model::{Kind, Node, NodePatch, Status};
use heph_core::text::{list_buffer, node_buffer, promote};
use proptest::prelude::*;

fn node(title: String, body: String, tags: Vec<String>, kind: u8, status: u8) -> Node {
    Node {
        id: "n1".into(),
        kind: [Kind::Task, Kind::Note, Kind::Journal][kind as usize % 3],
        title,
        body,
        status: if kind.is_multiple_of(3) {
            Some(Status::ALL[status as usize % 4])
        } else {
            None
        },
        due: None,
        project: None,
        tags: tags.into_iter().collect(),
        created_ms: 0,
        updated_ms: 0,
        deleted: false,
        version: "1".into(),
    }
}

fn cx() -> Context {
    Context {
        today: time::macros::date!(2026 - 11 - 30),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn node_parser_never_panics(lines in prop::collection::vec(".{0,60}", 0..20), body in ".{0,80}") {
        let current = node("t".into(), body, vec![], 0, 0);
        if let Err(errors) = node_buffer::parse(&lines, &current, &cx()) {
            prop_assert!(!errors.is_empty());
            for e in errors {
                prop_assert!(e.line >= 1 && e.line <= lines.len().max(1), "{e:?}");
            }
        }
    }

    #[test]
    fn header_like_text_never_panics(fields in prop::collection::vec("(title|kind|status|due|tags|project|x)?:? ?[a-z0-9#, -]{0,20}", 0..8)) {
        let mut lines = vec!["---".to_string()];
        lines.extend(fields);
        lines.push("---".to_string());
        let current = node("t".into(), String::new(), vec![], 0, 0);
        let _ = node_buffer::parse(&lines, &current, &cx());
    }

    #[test]
    fn render_parse_round_trip(
        title in "[^\n\r:\\p{Cc}]{0,1}[a-zA-Z0-9 ]{1,30}",
        body in "[a-z \n]{0,80}",
        tags in prop::collection::vec("[a-z]{1,8}", 0..4),
        kind in 0u8..3,
        status in 0u8..4,
    ) {
        let title = title.trim().to_string();
        prop_assume!(!title.is_empty());
        let n = node(title, body, tags, kind, status);
        let lines = node_buffer::render(&n);
        prop_assert_eq!(node_buffer::parse(&lines, &n, &cx()).unwrap(), NodePatch::default());
    }

    #[test]
    fn list_parser_never_panics(lines in prop::collection::vec(".{0,60}", 0..20)) {
        let shown = vec![node("t".into(), String::new(), vec![], 0, 0)];
        let snapshot = list_buffer::snapshot(&list_buffer::render(&shown), cx().today);
        match list_buffer::plan(&lines, &snapshot, &|_| None, cx().today) {
            Ok(_) => {}
            Err(errors) => for e in errors {
                prop_assert!(e.line >= 1 && e.line <= lines.len());
            },
        }
        let _ = promote::promotions(&lines);
    }
}
