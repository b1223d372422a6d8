//! `POST /v1/capture {"title": …, "kind"?: "task" | "note"}`: adds a node
//! for a client that has no replica — a phone shortcut or a one-line
//! `curl` with a capture credential. The hub writes the ops a device would
//! (create, title, status), stamped by its own clock, and stores them like
//! a push; every device gets the node on its next pull.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use heph_core::{Action, Clock, Field, Kind, Op};
use serde::Deserialize;
use serde_json::json;

use crate::routes::{error, internal};
use crate::HubStore;

/// The store and the clock captured ops are stamped with.
#[derive(Clone)]
pub(crate) struct CaptureState {
    pub store: Arc<HubStore>,
    pub clock: Arc<Mutex<Clock>>,
}

impl CaptureState {
    pub fn new(store: Arc<HubStore>) -> Self {
        Self {
            store,
            clock: Arc::new(Mutex::new(Clock::new(&heph_core::id::new_origin(), None))),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CaptureRequest {
    title: String,
    #[serde(default)]
    kind: Option<String>,
}

/// The ops that create a node titled `title`.
fn ops(clock: &Mutex<Clock>, kind: Kind, title: &str) -> Result<Vec<Op>, String> {
    let mut clock = clock.lock().unwrap_or_else(|e| e.into_inner());
    let node = heph_core::id::new_node_id();
    let mut actions = vec![
        Action::Create { kind },
        Action::Set {
            field: Field::Title,
            value: Some(title.to_owned()),
        },
    ];
    if kind == Kind::Task {
        actions.push(Action::Set {
            field: Field::Status,
            value: Some("todo".into()),
        });
    }
    actions
        .into_iter()
        .map(|action| {
            let hlc = clock.tick().map_err(|e| e.to_string())?;
            let op = Op {
                op_id: heph_core::id::new_op_id(),
                hlc,
                node: node.clone(),
                action,
            };
            op.validate().map_err(|e| e.reason)?;
            Ok(op)
        })
        .collect()
}

/// A captured title on one line: what a phone sends may hold line breaks
/// (a lone CR from iOS text) or tabs; each run of them and of spaces
/// is one space, and other control characters go.
fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split(|c: char| c.is_whitespace() || c.is_control()) {
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

pub(crate) async fn capture(
    State(state): State<CaptureState>,
    body: Result<Json<CaptureRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(request)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "expected {\"title\": \"…\"} (and optionally \"kind\": \"task\" or \"note\")",
        );
    };
    let kind = match request.kind.as_deref() {
        None | Some("task") => Kind::Task,
        Some("note") => Kind::Note,
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("kind {other:?}: capture adds a task or a note"),
            )
        }
    };
    let title = one_line(&request.title);
    if title.is_empty() {
        return error(StatusCode::BAD_REQUEST, "the title is empty");
    }
    let ops = match ops(&state.clock, kind, &title) {
        Ok(ops) => ops,
        Err(reason) => return error(StatusCode::BAD_REQUEST, &reason),
    };
    let node = ops[0].node.clone();
    let mut rows = Vec::with_capacity(ops.len());
    for op in &ops {
        match serde_json::to_string(op) {
            Ok(text) => rows.push((op.op_id.clone(), text)),
            Err(e) => return internal(e),
        }
    }
    let store = state.store;
    match tokio::task::spawn_blocking(move || store.push(&rows)).await {
        Ok(Ok(_)) => (StatusCode::CREATED, Json(json!({ "id": node }))).into_response(),
        Ok(Err(e)) => internal(e),
        Err(e) => internal(e),
    }
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn a_captured_title_is_one_line_an_editor_can_save() {
        assert_eq!(one_line("Buy milk\rand eggs"), "Buy milk and eggs");
        assert_eq!(one_line("  Call\r\n\tmom \u{7}now\u{0} "), "Call mom now");
        assert_eq!(one_line("\r\n"), "");
        let cx = heph_core::fields::Context {
            today: time::Date::MIN,
        };
        let title = one_line("a\u{1b}[31mred\u{85}line\u{2028}sep");
        assert!(
            heph_core::fields::parse_title(&title, &cx).is_ok(),
            "{title:?}"
        );
    }
}
