//! Reading stamps and ops never panics, whatever the input: a peer or a hub
//! can send anything, and one bad op must not bring a device down.

use heph_core::{Hlc, Op};
use proptest::prelude::*;

/// Arbitrary JSON values, a few levels deep.
fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        ".{0,20}".prop_map(serde_json::Value::from),
        prop_oneof![
            Just("op_id"),
            Just("hlc"),
            Just("node"),
            Just("action"),
            Just("set"),
            Just("set_body"),
            Just("add_tag"),
            Just("create"),
            Just("title"),
            Just("000000000001000000-a"),
        ]
        .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("op_id".to_owned()),
                    Just("hlc".to_owned()),
                    Just("node".to_owned()),
                    Just("action".to_owned()),
                    Just("field".to_owned()),
                    Just("value".to_owned()),
                    Just("body".to_owned()),
                    Just("base".to_owned()),
                    Just("tag".to_owned()),
                    Just("kind".to_owned()),
                    ".{0,8}",
                ],
                inner,
                0..8
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, .. ProptestConfig::default() })]

    #[test]
    fn hlc_parse_never_panics(text in any::<String>()) {
        let _ = text.parse::<Hlc>();
    }

    #[test]
    fn hlc_parse_never_panics_on_near_misses(
        stamp in "[0-9a-fA-Fé+\\- ]{16,20}",
        origin in ".{0,70}",
    ) {
        let text = format!("{stamp}-{origin}");
        if let Ok(hlc) = text.parse::<Hlc>() {
            // Whatever parses prints back to the same text (canonical).
            prop_assert_eq!(hlc.to_string(), text);
        }
    }

    #[test]
    fn op_parse_never_panics_on_text(text in any::<String>()) {
        if let Ok(op) = Op::parse_json(&text) {
            let _ = op.validate();
        }
    }

    #[test]
    fn op_parse_never_panics_on_json(value in json()) {
        if let Ok(op) = Op::parse_json(&value.to_string()) {
            let _ = op.validate();
            let _ = op.check_json_size();
        }
    }

    #[test]
    fn op_parse_never_panics_on_op_like_json(
        hlc in ".{0,24}",
        node in ".{0,12}",
        action in prop_oneof![Just("set"), Just("set_body"), Just("add_tag"), Just("create"), Just("??")],
        extra in json(),
    ) {
        let value = serde_json::json!({
            "op_id": "x", "hlc": hlc, "node": node, "action": action,
            "field": "status", "value": extra.clone(), "body": extra.clone(),
            "base": [extra.clone()], "tag": extra, "kind": "task",
        });
        if let Ok(op) = Op::parse_json(&value.to_string()) {
            let _ = op.validate();
        }
    }
}

/// Deep nesting is a parse error (serde_json's recursion limit), never a
/// stack overflow.
#[test]
fn deeply_nested_unknown_fields_do_not_crash() {
    for depth in [100, 124, 127, 128, 129, 1000, 100_000] {
        let nested = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let text = format!(
            r#"{{"op_id":"x","hlc":"000000000001000000-a","node":"n1","action":"delete","junk":{nested}}}"#
        );
        let _ = Op::parse_json(&text);
    }
}
