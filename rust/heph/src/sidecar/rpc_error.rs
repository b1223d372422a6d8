//! Typed error replies. Every failed request answers an object
//! `{code, message, line?, errors?}` (doc/rpc.md), so the editor can tell
//! bad input (show it on its line) from a stale base (reload) from a busy
//! replica (try again) without reading the message. It travels as JSON
//! text: Neovim hands a request's error to Lua only when it is a string.

use heph_core::model::FieldError;
use heph_core::text::ParseError;
use heph_store::StoreError;
use rmpv::Value;
use serde::Serialize;

/// What kind of failure a reply reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request itself is wrong (unknown method, malformed params): a
    /// bug in the caller, not in what the user typed.
    BadRequest,
    /// What the user typed or asked for is not acceptable; `line` (and
    /// `errors`, one per line) say where when it came from a buffer.
    Invalid,
    /// The node does not exist.
    NotFound,
    /// The buffer's base is unknown here: reload before saving.
    Stale,
    /// Another process holds the replica: try again.
    Busy,
    /// The replica file is damaged, or newer than this heph.
    Damaged,
    /// Anything else (sync, login, I/O); the message says what.
    Failed,
}

/// One failed request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RpcError {
    /// The kind of failure.
    pub code: ErrorCode,
    /// One line for the user.
    pub message: String,
    /// 1-based buffer line the error is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// Every error of a buffer that does not parse.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ParseError>,
}

impl RpcError {
    /// An error of `code`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            line: None,
            errors: Vec::new(),
        }
    }

    /// A malformed request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// A failure that is neither the caller's nor the store's.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Failed, message)
    }

    /// A request that panicked: a bug in heph, logged with what it said.
    /// A transaction it had open rolled back as it unwound.
    pub fn internal(method: &str, panic: &(dyn std::any::Any + Send)) -> Self {
        let said = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::error!(method, panic = %said, "a request panicked");
        Self::failed(format!(
            "{method} stopped on a bug in heph ({said}); \
             please report it with the sidecar log (:checkhealth heph names it)"
        ))
    }

    /// Buffer text that does not parse: the first error is the message.
    pub fn parse(errors: Vec<ParseError>) -> Self {
        let first = errors.first();
        Self {
            code: ErrorCode::Invalid,
            message: first.map_or_else(|| "the buffer does not parse".into(), |e| e.to_string()),
            line: first.map(|e| e.line),
            errors,
        }
    }

    /// The reply's wire form: the object as JSON text. A message that
    /// quotes a huge input (a 1 MiB id) is cut: it is read in a notice,
    /// and Neovim cuts a very long error reply where it no longer parses.
    pub fn to_value(&self) -> Value {
        const MAX_MESSAGE_CHARS: usize = 1000;
        let mut short;
        let this = if self.message.chars().count() > MAX_MESSAGE_CHARS {
            short = self.clone();
            short.message = self.message.chars().take(MAX_MESSAGE_CHARS).collect();
            short.message.push('…');
            &short
        } else {
            self
        };
        Value::from(serde_json::to_string(this).unwrap_or_else(|_| this.message.clone()))
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Messages written in the handlers are about what the user asked for.
impl From<String> for RpcError {
    fn from(message: String) -> Self {
        Self::new(ErrorCode::Invalid, message)
    }
}

impl From<&str> for RpcError {
    fn from(message: &str) -> Self {
        Self::new(ErrorCode::Invalid, message)
    }
}

impl From<FieldError> for RpcError {
    fn from(e: FieldError) -> Self {
        Self::new(ErrorCode::Invalid, e.0)
    }
}

impl From<StoreError> for RpcError {
    fn from(e: StoreError) -> Self {
        if let StoreError::Deleted(_) = e {
            // In the editor, the way back is a command, not the CLI's.
            return Self::new(
                ErrorCode::Invalid,
                "this node is deleted; :Heph restore brings it back",
            );
        }
        let code = match &e {
            _ if e.is_busy() => ErrorCode::Busy,
            StoreError::UnknownNode(_) => ErrorCode::NotFound,
            StoreError::Invalid(_) => ErrorCode::Invalid,
            StoreError::UnknownBase(_) => ErrorCode::Stale,
            StoreError::Corrupt(_) | StoreError::TooNew { .. } | StoreError::NotAReplica { .. } => {
                ErrorCode::Damaged
            }
            _ => ErrorCode::Failed,
        };
        Self::new(code, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message quoting a huge input is cut on the wire, keeping its
    /// code, so the editor still reads it as a typed error.
    #[test]
    fn a_huge_message_is_cut_on_the_wire() {
        let huge = RpcError::from(StoreError::UnknownNode("x".repeat(2 * 1024 * 1024)));
        let Value::String(wire) = huge.to_value() else {
            panic!("not a string");
        };
        let wire = wire.as_str().unwrap();
        assert!(wire.len() < 4096, "{} bytes", wire.len());
        let read: serde_json::Value = serde_json::from_str(wire).unwrap();
        assert_eq!(read["code"], "not_found");
        assert!(read["message"].as_str().unwrap().ends_with('…'));
        let small = RpcError::from(StoreError::UnknownNode("x".into()));
        assert_eq!(
            small.to_value(),
            Value::from(serde_json::to_string(&small).unwrap())
        );
    }

    #[test]
    fn store_errors_map_to_codes() {
        let missing = StoreError::UnknownNode("x".into());
        assert_eq!(RpcError::from(missing).code, ErrorCode::NotFound);
        let damaged = StoreError::Corrupt("bad".into());
        assert_eq!(RpcError::from(damaged).code, ErrorCode::Damaged);
        let deleted = RpcError::from(StoreError::Deleted("x".into()));
        assert_eq!(deleted.code, ErrorCode::Invalid);
        assert!(deleted.message.contains(":Heph restore"));
    }

    #[test]
    fn the_wire_form_names_code_message_and_line() {
        let e = RpcError::parse(vec![ParseError {
            line: 3,
            message: "due: not a date".into(),
        }]);
        let text = e.to_value();
        let v: serde_json::Value =
            serde_json::from_str(text.as_str().expect("a string")).expect("JSON");
        assert_eq!(v["code"], "invalid");
        assert_eq!(v["line"], 3);
        assert!(v["message"]
            .as_str()
            .is_some_and(|m| m.contains("not a date")));
        assert_eq!(v["errors"].as_array().map(Vec::len), Some(1));
        let plain = RpcError::failed("x").to_value();
        assert_eq!(plain.as_str(), Some(r#"{"code":"failed","message":"x"}"#));
    }
}
