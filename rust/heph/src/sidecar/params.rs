//! Request params: one msgpack map per request, decoded with serde into the
//! struct of its method. A bad request gets a `bad_request` reply naming
//! the method and what is wrong, never a crash.

use std::collections::BTreeMap;

use rmpv::Value;
use serde::de::{DeserializeOwned, Deserializer};
use serde::Deserialize;

use super::rpc_error::RpcError;

/// Shorthand for handler results.
pub type Reply = Result<Value, RpcError>;

/// Decodes the first argument of a request (a map; absent or nil means no
/// params) into `T`.
pub fn decode<T: DeserializeOwned>(method: &str, args: &[Value]) -> Result<T, RpcError> {
    let map = match args.first() {
        None | Some(Value::Nil) => Value::Map(Vec::new()),
        // An empty Lua table arrives as an array.
        Some(Value::Array(items)) if items.is_empty() => Value::Map(Vec::new()),
        Some(map @ Value::Map(_)) => map.clone(),
        Some(_) => {
            return Err(RpcError::bad_request(format!(
                "{method}: params must be a table"
            )))
        }
    };
    rmpv::ext::from_value(map).map_err(|e| {
        // Neovim sends a Lua string that is not UTF-8 as bytes: what the
        // user typed or pasted, not a caller's bug.
        if e.to_string().contains("byte array, expected a string") {
            return RpcError::new(
                super::rpc_error::ErrorCode::Invalid,
                "the text is not valid UTF-8 (a Latin-1 byte such as \\xe9?); heph keeps \
                 text as UTF-8: convert it first (:set fileencoding, iconv)",
            );
        }
        RpcError::bad_request(format!("{method}: bad params: {e}"))
    })
}

/// Serializes a reply straight to msgpack, structs as maps of their field
/// names (rmpv's own serializer writes structs and enums as arrays).
pub fn reply<T: serde::Serialize + ?Sized>(value: &T) -> Reply {
    encode(value).map_err(|e| RpcError::failed(format!("cannot encode reply: {e}")))
}

fn encode<T: serde::Serialize + ?Sized>(value: &T) -> Result<Value, String> {
    let bytes = rmp_serde::to_vec_named(value).map_err(|e| e.to_string())?;
    rmpv::decode::read_value(&mut bytes.as_slice()).map_err(|e| e.to_string())
}

/// Builds a msgpack map reply from `key => value` pairs, each value
/// serialized directly (no JSON in between).
macro_rules! map {
    ($($key:literal => $value:expr),* $(,)?) => {
        $crate::sidecar::params::Map::new()$(.with($key, &$value))*.done()
    };
}
pub(crate) use map;

/// A reply map under construction (see [`map!`]).
#[derive(Default)]
pub struct Map {
    entries: Vec<(Value, Value)>,
    error: Option<String>,
}

impl Map {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `key`, serializing `value`.
    pub fn with<T: serde::Serialize + ?Sized>(mut self, key: &str, value: &T) -> Self {
        match encode(value) {
            Ok(v) => self.entries.push((Value::from(key), v)),
            Err(e) => self.error = Some(format!("cannot encode {key}: {e}")),
        }
        self
    }

    /// The map, or the first encoding error.
    pub fn done(self) -> Reply {
        match self.error {
            Some(e) => Err(RpcError::failed(e)),
            None => Ok(Value::Map(self.entries)),
        }
    }
}

/// Sets `key` in a map reply (replacing it).
pub fn set<T: serde::Serialize + ?Sized>(reply: &mut Value, key: &str, value: &T) {
    if let Ok(v) = encode(value) {
        put(reply, key, v);
    }
}

/// Sets `key` in a map reply to a value already in msgpack form (a large
/// list built row by row is moved in, not encoded again).
pub fn put(reply: &mut Value, key: &str, value: Value) {
    if let Value::Map(entries) = reply {
        match entries.iter_mut().find(|(k, _)| k.as_str() == Some(key)) {
            Some(entry) => entry.1 = value,
            None => entries.push((Value::from(key), value)),
        }
    }
}

/// A list that Lua may send as an empty map (`{}` has no type there).
pub fn lua_list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrEmpty<T> {
        List(Vec<T>),
        Empty(BTreeMap<String, ()>),
    }
    match ListOrEmpty::deserialize(d)? {
        ListOrEmpty::List(items) => Ok(items),
        ListOrEmpty::Empty(m) if m.is_empty() => Ok(Vec::new()),
        ListOrEmpty::Empty(_) => Err(serde::de::Error::custom("expected a list")),
    }
}

/// An optional [`lua_list`].
pub fn opt_lua_list<'de, D, T>(d: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    lua_list(d).map(Some)
}

/// A string map that Lua may send as an empty array; nil values are empty
/// strings (clearing a field).
pub fn lua_map<'de, D>(d: D) -> Result<Vec<(String, String)>, D::Error>
where
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum MapOrEmpty {
        Map(BTreeMap<String, Option<String>>),
        Empty(Vec<()>),
    }
    match MapOrEmpty::deserialize(d)? {
        MapOrEmpty::Map(m) => Ok(m
            .into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect()),
        MapOrEmpty::Empty(items) if items.is_empty() => Ok(Vec::new()),
        MapOrEmpty::Empty(_) => Err(serde::de::Error::custom("expected a table of strings")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Sample {
        id: String,
        #[serde(default, deserialize_with = "lua_list")]
        lines: Vec<String>,
        #[serde(default, deserialize_with = "lua_map")]
        fields: Vec<(String, String)>,
        #[serde(default)]
        limit: Option<usize>,
    }

    fn args(pairs: Vec<(&str, Value)>) -> Vec<Value> {
        vec![Value::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (Value::from(k), v))
                .collect(),
        )]
    }

    #[test]
    fn empty_lua_tables_decode_as_empty_lists_and_maps() {
        let s: Sample = decode(
            "m",
            &args(vec![
                ("id", Value::from("a")),
                ("lines", Value::Map(vec![])),
                ("fields", Value::Array(vec![])),
            ]),
        )
        .expect("decodes");
        assert_eq!(s.id, "a");
        assert!(s.lines.is_empty() && s.fields.is_empty() && s.limit.is_none());
    }

    #[test]
    fn text_that_is_not_utf8_is_invalid_input_said_as_such() {
        let e = decode::<Sample>(
            "node_create",
            &args(vec![("id", Value::Binary(b"caf\xe9".to_vec()))]),
        )
        .expect_err("refused");
        assert_eq!(e.code, super::super::rpc_error::ErrorCode::Invalid);
        assert!(e.message.contains("not valid UTF-8"), "{}", e.message);
    }

    #[test]
    fn a_wrong_type_is_a_bad_request_naming_the_method() {
        let e = decode::<Sample>("node_get", &args(vec![("id", Value::from(42))]))
            .expect_err("refused");
        assert_eq!(e.code, super::super::rpc_error::ErrorCode::BadRequest);
        assert!(
            e.message.starts_with("node_get: bad params"),
            "{}",
            e.message
        );
        assert!(e.message.contains("string"), "{}", e.message);
        let e = decode::<Sample>("m", &[Value::from(1)]).expect_err("refused");
        assert!(e.message.contains("must be a table"));
        let e = decode::<Sample>("m", &[]).expect_err("refused");
        assert!(e.message.contains("id"), "{}", e.message);
    }

    #[test]
    fn map_builds_msgpack_directly() {
        let v = map! { "a" => 1, "b" => vec!["x"], "c" => None::<String> }.expect("encodes");
        let mut v2 = v.clone();
        set(&mut v2, "a", &2);
        set(&mut v2, "d", &true);
        assert_eq!(v.as_map().map(Vec::len), Some(3));
        assert_eq!(v2.as_map().map(Vec::len), Some(4));
        assert_eq!(v2.as_map().and_then(|m| m[0].1.as_i64()), Some(2));
        // Model enums are their names and structs are maps, as in JSON.
        #[derive(serde::Serialize)]
        struct Hit {
            id: &'static str,
            kind: heph_core::Kind,
        }
        let v = map! { "hit" => Hit { id: "a", kind: heph_core::Kind::Task } }.expect("encodes");
        let hit = v.as_map().and_then(|m| m[0].1.as_map()).expect("a map");
        assert_eq!(hit[0], (Value::from("id"), Value::from("a")));
        assert_eq!(hit[1], (Value::from("kind"), Value::from("task")));
    }
}
