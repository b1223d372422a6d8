//! HTTP routes: push, pull, health.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{HubConfig, HubStore};

/// Most ops one pull returns.
pub const MAX_PULL_LIMIT: usize = 5000;

/// A JSON error reply.
pub fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// The hub's routes.
pub fn router(store: Arc<HubStore>, config: HubConfig) -> Router {
    let mut api = Router::new()
        .route("/v1/ops", get(pull).post(push))
        .with_state(store)
        .layer(DefaultBodyLimit::max(config.max_body));
    if let Some(check) = config.auth {
        api = api.layer(axum::middleware::from_fn_with_state(
            check,
            crate::auth::require_bearer,
        ));
    }
    Router::new()
        .route("/v1/health", get(health))
        .merge(api)
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "no such route; the hub serves /v1/ops and /v1/health",
            )
        })
}

async fn health() -> Json<Value> {
    Json(json!({ "ok": true, "version": env!("CARGO_PKG_VERSION") }))
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "request failed");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the hub failed to store or read ops; see its log",
    )
}

async fn push(
    State(store): State<Arc<HubStore>>,
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
    let mut rows = Vec::with_capacity(ops.len());
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
        rows.push((op_id, op.to_string()));
    }
    match tokio::task::spawn_blocking(move || store.push(&rows)).await {
        Ok(Ok(outcome)) => {
            Json(json!({ "new": outcome.new, "seqs": outcome.seqs })).into_response()
        }
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
struct PullParams {
    after: Option<i64>,
    limit: Option<usize>,
}

async fn pull(
    State(store): State<Arc<HubStore>>,
    params: Result<Query<PullParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
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
    let result = tokio::task::spawn_blocking(move || store.pull(after, limit)).await;
    let (rows, more) = match result {
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
    out.push_str(&format!("],\"more\":{more}}}"));
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        out,
    )
        .into_response()
}
