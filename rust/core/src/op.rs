//! Ops: the unit of change and of sync. A replica is the materialization of
//! the set of ops it holds.

use serde::{Deserialize, Serialize};

use crate::body_delta::BodyDelta;
use crate::hlc::Hlc;
use crate::id::{is_valid_node_id, NodeId};
use crate::model::{normalize_tag, parse_date, Field, Kind, Status};

/// Largest body an op may carry, in bytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Largest title or other scalar value, in bytes.
pub const MAX_VALUE_BYTES: usize = 4096;
/// Largest op as JSON, in bytes. Local writes past it are refused when they
/// are recorded (a body of control characters is six times larger as JSON
/// than as text), and the hub refuses larger ops; it stays well below the
/// hub's default request limit (4 MiB) so one op always fits in a push.
pub const MAX_OP_JSON_BYTES: usize = 2 * 1024 * 1024;
/// Most body versions a body op may name as its base.
pub const MAX_BASE_VERSIONS: usize = 1024;

/// One change to one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Op {
    /// Globally unique id (UUIDv7 text); duplicates are ignored on apply.
    pub op_id: String,
    /// When and where the op was made.
    pub hlc: Hlc,
    /// The node it changes.
    pub node: NodeId,
    /// What it does.
    #[serde(flatten)]
    pub action: Action,
}

/// The keys [`WireOp`] reads, in its field order (tested against it): every
/// key a serialized op has (tested too).
pub const WIRE_KEYS: [&str; 12] = [
    "op_id", "hlc", "node", "action", "kind", "field", "value", "body", "base", "from", "delta",
    "tag",
];

/// An op as JSON, read in one pass: `#[serde(flatten)]` over the
/// internally tagged [`Action`] would buffer every value (bodies too) into
/// an intermediate tree and copy it again, which dominated reading a large
/// history. Keys that belong to no field of the action are ignored, as
/// they were.
#[derive(Deserialize)]
struct WireOp {
    op_id: String,
    hlc: Hlc,
    node: NodeId,
    action: ActionName,
    kind: Option<Kind>,
    field: Option<Field>,
    value: Option<String>,
    body: Option<String>,
    base: Option<Vec<Hlc>>,
    from: Option<String>,
    delta: Option<BodyDelta>,
    tag: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum ActionName {
    Create,
    Set,
    SetBody,
    EditBody,
    AddTag,
    RemoveTag,
    Delete,
    Restore,
}

impl<'de> Deserialize<'de> for Op {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        fn need<T, E: serde::de::Error>(v: Option<T>, name: &'static str) -> Result<T, E> {
            v.ok_or_else(|| E::missing_field(name))
        }
        let w = WireOp::deserialize(d)?;
        let action = match w.action {
            ActionName::Create => Action::Create {
                kind: need(w.kind, "kind")?,
            },
            ActionName::Set => Action::Set {
                field: need(w.field, "field")?,
                value: w.value,
            },
            ActionName::SetBody => Action::SetBody {
                body: need(w.body, "body")?,
                base: need(w.base, "base")?,
            },
            ActionName::EditBody => Action::EditBody {
                base: need(w.base, "base")?,
                from: need(w.from, "from")?,
                delta: need(w.delta, "delta")?,
            },
            ActionName::AddTag => Action::AddTag {
                tag: need(w.tag, "tag")?,
            },
            ActionName::RemoveTag => Action::RemoveTag {
                tag: need(w.tag, "tag")?,
            },
            ActionName::Delete => Action::Delete,
            ActionName::Restore => Action::Restore,
        };
        Ok(Op {
            op_id: w.op_id,
            hlc: w.hlc,
            node: w.node,
            action,
        })
    }
}

/// What an op does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Creates the node with a kind.
    Create {
        /// The kind at creation.
        kind: Kind,
    },
    /// Sets a scalar field (last writer wins); `None` clears it.
    Set {
        /// Which field.
        field: Field,
        /// The new value as text, `None` to clear.
        value: Option<String>,
    },
    /// Replaces the body, recording which body versions it was edited from.
    SetBody {
        /// The new body.
        body: String,
        /// Clock stamps of the body versions the editor saw (the heads).
        base: Vec<Hlc>,
    },
    /// A body version written as its changes to an earlier version (the
    /// version `from`, whose stamp is in `base`), so an edit costs what it
    /// changed. Both body forms are body versions; a replica holds this one
    /// back until it holds `from`.
    EditBody {
        /// Clock stamps of the body versions the editor saw (the heads).
        base: Vec<Hlc>,
        /// Op id of the version the delta applies to.
        from: String,
        /// The changes to `from`'s text.
        delta: BodyDelta,
    },
    /// Adds a tag.
    AddTag {
        /// The tag.
        tag: String,
    },
    /// Removes a tag.
    RemoveTag {
        /// The tag.
        tag: String,
    },
    /// Deletes the node (a tombstone).
    Delete,
    /// Undoes a delete.
    Restore,
}

/// Why an op was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid op {op_id}: {reason}")]
pub struct InvalidOp {
    /// The op's id (possibly truncated).
    pub op_id: String,
    /// What is wrong.
    pub reason: String,
}

impl Op {
    /// Checks that the op is well formed, so a bad op from a peer or a file
    /// is refused with a clear reason instead of corrupting the replica.
    pub fn validate(&self) -> Result<(), InvalidOp> {
        let fail = |reason: String| InvalidOp {
            op_id: self.op_id.chars().take(64).collect(),
            reason,
        };
        if self.op_id.is_empty() || self.op_id.len() > 128 {
            return Err(fail("op_id must be 1 to 128 characters".into()));
        }
        if !is_valid_node_id(&self.node) {
            return Err(fail(format!("invalid node id {:?}", self.node)));
        }
        match &self.action {
            Action::Create { .. } | Action::Delete | Action::Restore => {}
            Action::Set { field, value } => {
                if let Some(value) = value {
                    if value.len() > MAX_VALUE_BYTES {
                        return Err(fail(format!(
                            "{field} is longer than {MAX_VALUE_BYTES} bytes"
                        )));
                    }
                    if value.trim() != value || value.is_empty() {
                        return Err(fail(format!(
                            "{field} value {:?} is not in canonical form (empty, or \
                             spaces around it)",
                            value.chars().take(40).collect::<String>()
                        )));
                    }
                    check_field_value(*field, value).map_err(|e| fail(e.0))?;
                } else if !field.can_be_cleared() {
                    return Err(fail(format!("{field} cannot be cleared")));
                }
            }
            Action::SetBody { body, base } => {
                if body.len() > MAX_BODY_BYTES {
                    return Err(fail(format!("body is larger than {MAX_BODY_BYTES} bytes")));
                }
                if base.len() > MAX_BASE_VERSIONS {
                    return Err(fail("body base lists too many versions".into()));
                }
            }
            Action::EditBody { base, from, delta } => {
                if base.len() > MAX_BASE_VERSIONS {
                    return Err(fail("body base lists too many versions".into()));
                }
                if from.is_empty() || from.len() > 128 || *from == self.op_id {
                    return Err(fail(
                        "a body delta needs the op id of its base version".into(),
                    ));
                }
                delta.check().map_err(fail)?;
            }
            Action::AddTag { tag } | Action::RemoveTag { tag } => {
                let normal = normalize_tag(tag).map_err(|e| fail(e.0))?;
                if &normal != tag {
                    return Err(fail(format!("tag {tag:?} is not normalized")));
                }
            }
        }
        Ok(())
    }

    /// Reads one op from JSON text: never panics, whatever the input; the
    /// error says why it cannot be read. Does not validate (see
    /// [`Op::validate`]).
    pub fn parse_json(text: &str) -> Result<Op, String> {
        serde_json::from_str::<Op>(text).map_err(|e| e.to_string())
    }

    /// Whether the op writes a body version (either form).
    pub fn is_body_version(&self) -> bool {
        matches!(
            self.action,
            Action::SetBody { .. } | Action::EditBody { .. }
        )
    }

    /// Size of the op as JSON, in bytes.
    pub fn json_len(&self) -> usize {
        serde_json::to_vec(self)
            .map(|v| v.len())
            .unwrap_or(usize::MAX)
    }

    /// Refuses an op whose JSON is larger than [`MAX_OP_JSON_BYTES`].
    pub fn check_json_size(&self) -> Result<(), InvalidOp> {
        // Cheap bound first (no character takes more than six bytes in
        // JSON), so ordinary writes are not serialized twice.
        let text = match &self.action {
            Action::Set { value, .. } => value.as_deref().map_or(0, str::len),
            Action::SetBody { body, .. } => body.len(),
            Action::EditBody { from, delta, .. } => {
                from.len() + delta.inserted_len() + 12 * delta.0.len()
            }
            Action::AddTag { tag } | Action::RemoveTag { tag } => tag.len(),
            Action::Create { .. } | Action::Delete | Action::Restore => 0,
        };
        let bases: usize = match &self.action {
            Action::SetBody { base, .. } | Action::EditBody { base, .. } => {
                base.iter().map(|h| h.origin.len() + 24).sum()
            }
            _ => 0,
        };
        let bound =
            6 * (text + self.op_id.len() + self.node.len() + self.hlc.origin.len()) + bases + 256;
        if bound <= MAX_OP_JSON_BYTES {
            return Ok(());
        }
        let len = self.json_len();
        if len > MAX_OP_JSON_BYTES {
            return Err(InvalidOp {
                op_id: self.op_id.chars().take(64).collect(),
                reason: format!(
                    "the op is {} KiB as JSON, more than the {} KiB a hub accepts",
                    len / 1024,
                    MAX_OP_JSON_BYTES / 1024
                ),
            });
        }
        Ok(())
    }
}

/// Checks a scalar field's text value.
pub fn check_field_value(field: Field, value: &str) -> Result<(), crate::model::FieldError> {
    match field {
        Field::Title | Field::Project => {
            if value.contains('\n') {
                return Err(crate::model::FieldError(format!(
                    "{field} must be one line"
                )));
            }
        }
        Field::Kind => {
            value.parse::<Kind>()?;
        }
        Field::Status => {
            value.parse::<Status>()?;
        }
        Field::Due => {
            parse_date(value)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(action: Action) -> Op {
        Op {
            op_id: "op1".into(),
            hlc: "000000000001000000-aa".parse().unwrap(),
            node: "n1".into(),
            action,
        }
    }

    #[test]
    fn json_round_trip_is_flat() {
        let o = op(Action::Set {
            field: Field::Title,
            value: Some("x".into()),
        });
        let json = serde_json::to_string(&o).unwrap();
        assert!(json.contains("\"action\":\"set\""), "{json}");
        assert_eq!(serde_json::from_str::<Op>(&json).unwrap(), o);
    }

    #[test]
    fn wire_keys_are_the_fields_the_op_reader_reads() {
        use serde::de::{Error as _, Visitor};
        /// A deserializer that only notes the fields a struct asks for.
        struct Fields(Option<&'static [&'static str]>);
        impl<'de> serde::Deserializer<'de> for &mut Fields {
            type Error = serde::de::value::Error;
            fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
                Err(Self::Error::custom("only a struct's fields"))
            }
            fn deserialize_struct<V: Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Self::Error> {
                self.0 = Some(fields);
                Err(Self::Error::custom("only a struct's fields"))
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
                bytes byte_buf option unit unit_struct newtype_struct seq tuple
                tuple_struct map enum identifier ignored_any
            }
        }
        let mut fields = Fields(None);
        assert!(WireOp::deserialize(&mut fields).is_err());
        assert_eq!(fields.0, Some(&WIRE_KEYS[..]));
    }

    #[test]
    fn every_key_of_a_serialized_op_is_a_wire_key() {
        let base: Vec<Hlc> = vec!["000000000001000000-aa".parse().unwrap()];
        for action in [
            Action::Create { kind: Kind::Task },
            Action::Set {
                field: Field::Title,
                value: Some("x".into()),
            },
            Action::SetBody {
                body: "x\n".into(),
                base: base.clone(),
            },
            Action::EditBody {
                base,
                from: "o".into(),
                delta: BodyDelta(Vec::new()),
            },
            Action::AddTag { tag: "t".into() },
            Action::RemoveTag { tag: "t".into() },
            Action::Delete,
            Action::Restore,
        ] {
            let value = serde_json::to_value(op(action)).unwrap();
            for key in value.as_object().unwrap().keys() {
                assert!(WIRE_KEYS.contains(&key.as_str()), "{key} in {value}");
            }
        }
    }

    #[test]
    fn validation_refuses_bad_values() {
        assert!(op(Action::Set {
            field: Field::Due,
            value: Some("tomorrow".into())
        })
        .validate()
        .is_err());
        assert!(op(Action::Set {
            field: Field::Status,
            value: Some("maybe".into())
        })
        .validate()
        .is_err());
        assert!(op(Action::Set {
            field: Field::Title,
            value: None
        })
        .validate()
        .is_err());
        assert!(op(Action::AddTag {
            tag: "two words".into()
        })
        .validate()
        .is_err());
        assert!(op(Action::Set {
            field: Field::Due,
            value: Some("2026-01-31".into())
        })
        .validate()
        .is_ok());
    }

    #[test]
    fn padded_values_are_not_canonical() {
        for (field, value) in [
            (Field::Status, " done "),
            (Field::Title, " x "),
            (Field::Title, ""),
            (Field::Project, "p "),
        ] {
            assert!(
                op(Action::Set {
                    field,
                    value: Some(value.into())
                })
                .validate()
                .is_err(),
                "{field} {value:?}"
            );
        }
    }

    #[test]
    fn both_body_forms_read() {
        // The full form written by earlier replicas stays valid.
        let old = r#"{"op_id":"o","hlc":"000000000001000000-aa","node":"n1","action":"set_body","body":"x\n","base":[]}"#;
        let o: Op = serde_json::from_str(old).unwrap();
        assert!(matches!(o.action, Action::SetBody { .. }));
        assert!(o.validate().is_ok());
        let edit = r#"{"op_id":"p","hlc":"000000000002000000-aa","node":"n1","action":"edit_body","base":["000000000001000000-aa"],"from":"o","delta":[-1,"y\n"]}"#;
        let e: Op = serde_json::from_str(edit).unwrap();
        assert!(e.validate().is_ok());
        assert_eq!(serde_json::to_string(&e).unwrap(), edit);
        let own = r#"{"op_id":"p","hlc":"000000000002000000-aa","node":"n1","action":"edit_body","base":[],"from":"p","delta":[]}"#;
        assert!(serde_json::from_str::<Op>(own).unwrap().validate().is_err());
        let bad = r#"{"op_id":"p","hlc":"000000000002000000-aa","node":"n1","action":"edit_body","base":[],"from":"o","delta":[0]}"#;
        assert!(Op::parse_json(bad).is_err());
    }

    #[test]
    fn oversized_json_is_refused() {
        let big = op(Action::SetBody {
            body: "\u{1}".repeat(MAX_BODY_BYTES),
            base: Vec::new(),
        });
        assert!(big.validate().is_ok());
        assert!(big.check_json_size().is_err());
    }
}
