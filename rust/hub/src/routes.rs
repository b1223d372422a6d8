//! HTTP routes: push, pull, health.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::auth::Access;
use crate::{HubConfig, HubStore};

/// Most ops one pull returns.
pub const MAX_PULL_LIMIT: usize = 5000;
/// Most bytes of op JSON one pull returns (a client may ask for less with
/// `max_bytes`); a page always holds at least one op.
pub const MAX_PULL_BYTES: usize = 4 * 1024 * 1024;
/// How far ahead of the hub's clock a pushed op may be stamped.
pub const MAX_DRIFT_MS: u64 = heph_core::hlc::DEFAULT_MAX_DRIFT_MS;
/// Deepest JSON nesting an op may have (real ops have two levels).
pub const MAX_OP_DEPTH: usize = 32;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Nesting depth of a JSON text already known to be valid, counted as
/// for a parsed value (a container or scalar inside `k` open containers is
/// at depth `k + 1`), by one pass over the bytes: the pushed op is never
/// built into a tree.
fn depth(text: &str) -> usize {
    let (mut open, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in text.as_bytes() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'{' | b'[' => {
                open += 1;
                deepest = deepest.max(open);
            }
            b'}' | b']' => open = open.saturating_sub(1),
            b' ' | b'\t' | b'\n' | b'\r' | b',' | b':' => {}
            b'"' => {
                in_string = true;
                deepest = deepest.max(open + 1);
            }
            _ => deepest = deepest.max(open + 1),
        }
    }
    deepest
}

/// Why one pushed op is refused: (code, reason, how far ahead).
fn screen(text: &str, head: &OpHead, now: u64) -> Result<(), (&'static str, String, Option<u64>)> {
    use heph_core::op::MAX_OP_JSON_BYTES;
    if text.len() > MAX_OP_JSON_BYTES {
        return Err((
            "too_large",
            format!(
                "the op is {} KiB as JSON, more than the {} KiB the hub accepts",
                text.len() / 1024,
                MAX_OP_JSON_BYTES / 1024
            ),
            None,
        ));
    }
    if depth(text) > MAX_OP_DEPTH {
        return Err((
            "invalid",
            format!("the op is nested more than {MAX_OP_DEPTH} levels deep"),
            None,
        ));
    }
    let parsed = heph_core::Op::parse_json(text)
        .map_err(|e| ("invalid", format!("unreadable op: {e}"), None))?;
    strict_beyond_the_op(text, head)
        .map_err(|e| ("invalid", format!("unreadable op: {e}"), None))?;
    parsed.validate().map_err(|e| ("invalid", e.reason, None))?;
    let ahead = parsed.hlc.millis.saturating_sub(now);
    if ahead > MAX_DRIFT_MS {
        return Err((
            "clock_ahead",
            format!(
                "the op is stamped {} ahead of the hub's clock (limit {}): the sending \
                 device's clock is wrong",
                heph_core::hlc::human_ms(ahead),
                heph_core::hlc::human_ms(MAX_DRIFT_MS)
            ),
            Some(ahead),
        ));
    }
    Ok(())
}

/// A JSON error reply.
pub fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// The hub's routes.
pub fn router(store: Arc<HubStore>, config: HubConfig) -> Router {
    let auth = Arc::new(crate::auth::HubAuth::new(config.auth, Arc::clone(&store)));
    let ops = OpsState {
        store: Arc::clone(&store),
        snapshot_threshold: config.snapshot_threshold,
    };
    let api = Router::new()
        .route("/v1/ops", get(pull).post(push))
        .with_state(ops)
        .merge(
            Router::new()
                .route("/v1/capture", post(crate::capture::capture))
                .with_state(crate::capture::CaptureState::new(Arc::clone(&store))),
        )
        .layer(DefaultBodyLimit::max(config.max_body))
        // Streamed to a file with its own limit, not buffered.
        .merge(
            Router::new()
                .route(
                    "/v1/snapshot",
                    get(crate::snapshot::get_snapshot).put(crate::snapshot::put_snapshot),
                )
                .with_state(crate::snapshot::SnapshotState {
                    store: Arc::clone(&store),
                    max_bytes: config.max_snapshot_bytes,
                }),
        )
        .layer(axum::middleware::from_fn_with_state(
            auth,
            crate::auth::require_bearer,
        ));
    let mut open = Router::new().route("/v1/health", get(health));
    if let Some(secret) = config.join {
        // Open: the join token is the credential.
        open = open.merge(
            Router::new()
                .route("/v1/join", post(crate::join::redeem))
                .with_state(crate::join::JoinState { store, secret })
                .layer(DefaultBodyLimit::max(16 * 1024)),
        );
    }
    open.merge(api).fallback(|| async {
        error(
            StatusCode::NOT_FOUND,
            "no such route; the hub serves /v1/ops, /v1/snapshot, /v1/capture, /v1/join and /v1/health",
        )
    })
}

async fn health() -> Json<Value> {
    Json(json!({ "ok": true, "version": env!("CARGO_PKG_VERSION") }))
}

pub(crate) fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "request failed");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the hub failed to store or read ops; see its log",
    )
}

/// What the op routes need.
#[derive(Clone)]
struct OpsState {
    store: Arc<HubStore>,
    snapshot_threshold: i64,
}

async fn push(
    State(OpsState { store, .. }): State<OpsState>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "request body too large for this hub's limit (heph hub --max-body, or a \
                     proxy's): fewer ops per request, or a smaller op",
                );
            }
            // The body stopped coming (`--body-timeout`) or broke off: no
            // verdict on the ops, which the device sends again, in smaller
            // requests (a 400 would set them aside).
            return error(
                StatusCode::REQUEST_TIMEOUT,
                &format!(
                    "the request body did not arrive in time ({}): send fewer ops per request",
                    rejection.body_text()
                ),
            );
        }
    };
    // Each op stays the text it came as (checked, never rebuilt as a tree
    // and printed again): the hub stores and serves exactly those bytes.
    let top: &RawValue = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("malformed JSON: {e}")),
    };
    // An object: serde reads a struct from an array of its fields too.
    let push = if top.get().trim_start().starts_with('{') {
        serde_json::from_str::<PushBody<'_>>(top.get()).ok()
    } else {
        None
    };
    let Some(PushBody { ops }) = push else {
        return error(StatusCode::BAD_REQUEST, "expected {\"ops\": [...]}");
    };
    let now = now_ms();
    let mut rows = Vec::with_capacity(ops.len());
    let mut accepted = Vec::with_capacity(ops.len());
    let mut refused = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let text = op.get();
        let head = serde_json::from_str::<OpHead>(text).unwrap_or_default();
        let op_id = match &head.op_id {
            Some(id) if !id.is_empty() && id.len() <= 128 => id.clone(),
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!(
                    "op {i}: every op must be an object with a string op_id of 1 to 128 characters"
                ),
                )
            }
        };
        match screen(text, &head, now) {
            Ok(()) => {
                accepted.push(i);
                rows.push((op_id, text.to_owned()));
            }
            Err((code, reason, ahead_ms)) => refused.push(json!({
                "index": i,
                "op_id": op_id,
                "code": code,
                "reason": reason,
                "ahead_ms": ahead_ms,
            })),
        }
    }
    if !refused.is_empty() {
        tracing::warn!(refused = refused.len(), "refused pushed ops");
    }
    let count = ops.len();
    match tokio::task::spawn_blocking(move || store.push(&rows)).await {
        Ok(Ok(outcome)) => {
            // One entry per pushed op, in request order: null when refused.
            let mut seqs: Vec<Option<i64>> = vec![None; count];
            for (index, seq) in accepted.into_iter().zip(outcome.seqs) {
                seqs[index] = Some(seq);
            }
            Json(json!({
                "new": outcome.new,
                "seqs": seqs,
                "refused": refused,
                "now": now,
            }))
            .into_response()
        }
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}

/// The hub stores and serves each op as the text it came as, and reading
/// it as an op skips keys no op has (a newer client's). Their values are
/// then parsed here, strictly: a lone surrogate or a number out of range
/// would reach every device, and whatever else reads the hub's ops.
fn strict_beyond_the_op(text: &str, head: &OpHead) -> Result<(), serde_json::Error> {
    if !head.only_wire_keys {
        serde_json::from_str::<Value>(text)?;
    }
    Ok(())
}

/// What the hub reads of a pushed op before checking it, in one pass over
/// its keys (no key copied, no other value built): its `op_id` when that
/// is a string, and whether every key is one an op has. Only an object
/// reads as one, and one `op_id` at most.
#[derive(Debug)]
struct OpHead {
    op_id: Option<String>,
    only_wire_keys: bool,
}

impl Default for OpHead {
    fn default() -> Self {
        Self {
            op_id: None,
            only_wire_keys: true,
        }
    }
}

impl<'de> Deserialize<'de> for OpHead {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> serde::de::Visitor<'de> for Keys {
            type Value = OpHead;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an op object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<OpHead, A::Error> {
                let mut head = OpHead::default();
                let mut seen_id = false;
                while let Some(key) = map.next_key()? {
                    match key {
                        HeadKey::OpId if seen_id => {
                            return Err(serde::de::Error::duplicate_field("op_id"))
                        }
                        HeadKey::OpId => {
                            seen_id = true;
                            head.op_id = match map.next_value::<Value>()? {
                                Value::String(id) => Some(id),
                                _ => None,
                            };
                        }
                        HeadKey::Wire => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                        HeadKey::Other => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                            head.only_wire_keys = false;
                        }
                    }
                }
                Ok(head)
            }
        }
        d.deserialize_map(Keys)
    }
}

/// A key of a pushed op, as [`OpHead`] sorts it.
enum HeadKey {
    OpId,
    Wire,
    Other,
}

impl<'de> Deserialize<'de> for HeadKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Key;
        impl serde::de::Visitor<'_> for Key {
            type Value = HeadKey;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<HeadKey, E> {
                Ok(match key {
                    "op_id" => HeadKey::OpId,
                    _ if heph_core::op::WIRE_KEYS.contains(&key) => HeadKey::Wire,
                    _ => HeadKey::Other,
                })
            }
        }
        d.deserialize_str(Key)
    }
}

/// A push request: the ops as the text they came as.
#[derive(Deserialize)]
struct PushBody<'a> {
    #[serde(borrow)]
    ops: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct PullParams {
    after: Option<i64>,
    limit: Option<usize>,
    max_bytes: Option<usize>,
    /// A sequence whose op id the device asks for: a device checks that the
    /// hub still holds the last op it knows the hub acknowledged.
    at: Option<i64>,
}

async fn pull(
    State(OpsState {
        store,
        snapshot_threshold,
    }): State<OpsState>,
    access: Option<axum::Extension<Access>>,
    params: Result<Query<PullParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if access.is_some_and(|a| a.0 == Access::Capture) {
        return error(
            StatusCode::FORBIDDEN,
            "this device's credential has the capture scope: it may push but not pull",
        );
    }
    let Query(params) = match params {
        Ok(p) => p,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("bad query: {}", e.body_text()),
            )
        }
    };
    let after = params.after.unwrap_or(0).max(0);
    let limit = params.limit.unwrap_or(1000).clamp(1, MAX_PULL_LIMIT);
    let max_bytes = params
        .max_bytes
        .unwrap_or(MAX_PULL_BYTES)
        .clamp(1, MAX_PULL_BYTES);
    let instance = store.instance().to_owned();
    let at = params.at;
    let result = tokio::task::spawn_blocking(move || {
        let (rows, more) = store.pull(after, limit, max_bytes)?;
        // Told on the last page: the pass that reads it is up to date.
        let hint = if more {
            None
        } else {
            Some(crate::snapshot::pull_hint(&store, snapshot_threshold)?)
        };
        let held = match at {
            Some(seq) => Some((seq, store.op_id_at(seq)?)),
            None => None,
        };
        Ok::<_, crate::HubError>((rows, more, hint, held))
    })
    .await;
    let (rows, more, hint, held) = match result {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return internal(e),
        Err(e) => return internal(e),
    };
    // Ops are stored as JSON text: splice them in without re-parsing.
    let mut out =
        String::with_capacity(rows.iter().map(|(_, op)| op.len() + 24).sum::<usize>() + 32);
    out.push_str("{\"ops\":[");
    for (i, (seq, op)) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!("{{\"seq\":{seq},\"op\":{op}}}"));
    }
    out.push_str(&format!(
        "],\"more\":{more},\"now\":{},\"hub\":{}",
        now_ms(),
        serde_json::Value::from(instance)
    ));
    if let Some(hint) = hint {
        out.push_str(&format!(",\"snapshot\":{hint}"));
    }
    if let Some((seq, op_id)) = held {
        let held = serde_json::json!({ "seq": seq, "op_id": op_id });
        out.push_str(&format!(",\"at\":{held}"));
    }
    out.push('}');
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        out,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::{depth, strict_beyond_the_op, OpHead};
    use serde_json::Value;

    fn head(text: &str) -> Option<OpHead> {
        serde_json::from_str(text).ok()
    }

    /// The `op_id` the hub takes from a pushed op.
    fn op_id_of(text: &str) -> Option<String> {
        head(text)?.op_id
    }

    fn strict(text: &str) -> bool {
        strict_beyond_the_op(text, &head(text).unwrap()).is_ok()
    }

    /// Depth of a parsed value, the way the hub counted it before it
    /// stopped parsing pushed ops into trees.
    fn tree_depth(value: &Value) -> usize {
        match value {
            Value::Array(items) => 1 + items.iter().map(tree_depth).max().unwrap_or(0),
            Value::Object(map) => 1 + map.values().map(tree_depth).max().unwrap_or(0),
            _ => 1,
        }
    }

    #[test]
    fn keys_beyond_the_op_are_found_and_parsed_strictly() {
        let known = |text: &str| head(text).unwrap().only_wire_keys;
        assert!(known(r#"{"op_id":"a","node":"n","action":"delete"}"#));
        // An escaped key is read as what it spells.
        assert!(known(r#"{"op_\u0069d":"a"}"#));
        assert_eq!(op_id_of(r#"{"op_\u0069d":"a"}"#).as_deref(), Some("a"));
        assert!(!known(r#"{"op_id":"a","note":{"x":[1]}}"#));
        assert!(strict(r#"{"op_id":"a","note":"\ud83d\ude00"}"#));
        assert!(!strict(r#"{"op_id":"a","note":"\ud800"}"#));
        assert!(!strict(r#"{"op_id":"a","note":1e400}"#));
        // Known keys are left to the op reader, which reads them strictly.
        assert!(strict(r#"{"op_id":"a","value":"x"}"#));
    }

    #[test]
    fn depth_of_the_text_matches_depth_of_the_tree() {
        for text in [
            "1",
            "\"a\"",
            "{}",
            "[]",
            "{\"a\":1}",
            "{\"a\":{}}",
            "[[[]]]",
            "[1,[2,[3]]]",
            "{\"op_id\":\"x\",\"v\":\"{[\\\"]}\",\"w\":[{\"k\":null}]}",
            " { \"a\" : [ true , { \"b\" : -1.5e3 } ] } ",
            "{\"s\":\"\\\\\",\"t\":[[\"\\\\\\\"[\"]]}",
        ] {
            let value: Value = serde_json::from_str(text).unwrap();
            assert_eq!(depth(text), tree_depth(&value), "{text}");
        }
        let mut deep = String::from("1");
        for _ in 0..40 {
            deep = format!("{{\"x\":{deep}}}");
        }
        assert_eq!(depth(&deep), 41);
    }

    #[test]
    fn op_id_only_from_an_object_with_a_string_id() {
        assert_eq!(
            op_id_of("{\"op_id\":\"a\",\"x\":[1]}").as_deref(),
            Some("a")
        );
        assert_eq!(op_id_of("{\"op_id\":7}"), None);
        assert_eq!(op_id_of("{\"x\":1}"), None);
        assert_eq!(op_id_of("[\"a\"]"), None);
        assert_eq!(op_id_of("\"a\""), None);
        // Two ids: neither is taken.
        assert_eq!(op_id_of("{\"op_id\":\"a\",\"op_id\":\"b\"}"), None);
    }
}
