//! Reading request params: one msgpack map per request. Every accessor
//! fails with a one-line message naming the param, so a bad request gets a
//! clear error reply instead of a crash.

use rmpv::Value;

/// The params map of one request.
pub struct Params<'a> {
    method: &'a str,
    map: Vec<(String, &'a Value)>,
}

/// Shorthand for handler results: errors are one-line messages.
pub type Reply = Result<serde_json::Value, String>;

impl<'a> Params<'a> {
    /// Takes the first argument, which must be a map (or absent / nil).
    pub fn new(method: &'a str, args: &'a [Value]) -> Result<Self, String> {
        let map = match args.first() {
            None | Some(Value::Nil) => Vec::new(),
            Some(Value::Map(entries)) => entries
                .iter()
                .filter_map(|(k, v)| k.as_str().map(|k| (k.to_owned(), v)))
                .collect(),
            // An empty Lua table arrives as an array.
            Some(Value::Array(items)) if items.is_empty() => Vec::new(),
            Some(_) => return Err(format!("{method}: params must be a table")),
        };
        Ok(Self { method, map })
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| *v)
            .filter(|v| !v.is_nil())
    }

    fn bad(&self, key: &str, what: &str) -> String {
        format!("{}: param '{key}' must be {what}", self.method)
    }

    /// A required string.
    pub fn str(&self, key: &str) -> Result<String, String> {
        self.opt_str(key)?
            .ok_or_else(|| format!("{}: missing param '{key}'", self.method))
    }

    /// An optional string.
    pub fn opt_str(&self, key: &str) -> Result<Option<String>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(|s| Some(s.to_owned()))
                .ok_or_else(|| self.bad(key, "a string")),
        }
    }

    /// An optional non-negative integer.
    pub fn opt_usize(&self, key: &str) -> Result<Option<usize>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(|n| Some(n as usize))
                .ok_or_else(|| self.bad(key, "a non-negative integer")),
        }
    }

    /// A required list of strings (buffer lines, ids).
    pub fn strings(&self, key: &str) -> Result<Vec<String>, String> {
        match self.get(key) {
            None => Err(format!("{}: missing param '{key}'", self.method)),
            // An empty Lua table may arrive as a map.
            Some(Value::Map(m)) if m.is_empty() => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| self.bad(key, "a list of strings"))
                })
                .collect(),
            Some(_) => Err(self.bad(key, "a list of strings")),
        }
    }

    /// An optional list of strings.
    pub fn opt_strings(&self, key: &str) -> Result<Option<Vec<String>>, String> {
        if self.get(key).is_none() {
            return Ok(None);
        }
        self.strings(key).map(Some)
    }

    /// An optional map of string → string (e.g. `fields`).
    pub fn string_map(&self, key: &str) -> Result<Vec<(String, String)>, String> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Map(entries)) => entries
                .iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    (Some(k), Value::Nil) => Ok((k.to_owned(), String::new())),
                    (Some(k), v) => v
                        .as_str()
                        .map(|v| (k.to_owned(), v.to_owned()))
                        .ok_or_else(|| self.bad(key, "a table of strings")),
                    _ => Err(self.bad(key, "a table of strings")),
                })
                .collect(),
            Some(Value::Array(items)) if items.is_empty() => Ok(Vec::new()),
            Some(_) => Err(self.bad(key, "a table of strings")),
        }
    }
}

/// Converts a reply to msgpack.
pub fn to_msgpack(value: &serde_json::Value) -> Value {
    rmpv::ext::to_value(value).unwrap_or_else(|e| Value::from(format!("cannot encode reply: {e}")))
}
