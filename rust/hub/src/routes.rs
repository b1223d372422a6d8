//! HTTP routes: push, pull, health.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
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

/// Nesting depth of a JSON value, without recursion.
fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 1usize)];
    while let Some((v, d)) = stack.pop() {
        deepest = deepest.max(d);
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|i| (i, d + 1))),
            Value::Object(map) => stack.extend(map.values().map(|i| (i, d + 1))),
            _ => {}
        }
    }
    deepest
}

/// Why one pushed op is refused: (code, reason, how far ahead).
fn screen(op: &Value, text: &str, now: u64) -> Result<(), (&'static str, String, Option<u64>)> {
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
    if depth(op) > MAX_OP_DEPTH {
        return Err((
            "invalid",
            format!("the op is nested more than {MAX_OP_DEPTH} levels deep"),
            None,
        ));
    }
    let parsed = heph_core::Op::parse_json(text)
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
            let status = rejection.status();
            let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "request body too large: push fewer ops per request".to_owned()
            } else {
                rejection.body_text()
            };
            return error(status, &message);
        }
    };
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("malformed JSON: {e}")),
    };
    let Some(ops) = parsed.get("ops").and_then(Value::as_array) else {
        return error(StatusCode::BAD_REQUEST, "expected {\"ops\": [...]}");
    };
    let now = now_ms();
    let mut rows = Vec::with_capacity(ops.len());
    let mut accepted = Vec::with_capacity(ops.len());
    let mut refused = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let op_id = match op.get("op_id").and_then(Value::as_str) {
            Some(id) if !id.is_empty() && id.len() <= 128 => id.to_owned(),
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!(
                    "op {i}: every op must be an object with a string op_id of 1 to 128 characters"
                ),
                )
            }
        };
        let text = op.to_string();
        match screen(op, &text, now) {
            Ok(()) => {
                accepted.push(i);
                rows.push((op_id, text));
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

#[derive(Deserialize)]
struct PullParams {
    after: Option<i64>,
    limit: Option<usize>,
    max_bytes: Option<usize>,
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
    let result = tokio::task::spawn_blocking(move || {
        let (rows, more) = store.pull(after, limit, max_bytes)?;
        // Told on the last page: the pass that reads it is up to date.
        let hint = if more {
            None
        } else {
            Some(crate::snapshot::pull_hint(&store, snapshot_threshold)?)
        };
        Ok::<_, crate::HubError>((rows, more, hint))
    })
    .await;
    let (rows, more, hint) = match result {
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
    out.push_str(&format!("],\"more\":{more},\"now\":{}", now_ms()));
    if let Some(hint) = hint {
        out.push_str(&format!(",\"snapshot\":{hint}"));
    }
    out.push('}');
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        out,
    )
        .into_response()
}
