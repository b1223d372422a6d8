//! Pairing a device without an identity provider: the owner creates a
//! single-use join token (`heph hub join-token create`), the device redeems
//! it once at `POST /v1/join` and gets its own revocable credential.
//! See `doc/auth.md`, "without an identity provider".

pub mod lifecycle;
mod registry;
pub mod token;

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

pub(crate) use registry::SCHEMA;
pub use registry::{Aborted, DeviceRow, RedeemError, Redeemed, TokenRow, STALE_IN_FLIGHT_MS};
pub use token::{new_token_id, Claims, HubSecret, Scope, TokenError, CREDENTIAL_PREFIX};

use crate::routes::error;
use crate::HubStore;

/// What the join route needs.
#[derive(Clone)]
pub(crate) struct JoinState {
    pub store: Arc<HubStore>,
    pub secret: Arc<HubSecret>,
}

#[derive(Deserialize)]
pub(crate) struct RedeemRequest {
    token: String,
    device_key: String,
    #[serde(default)]
    device_name: String,
}

/// Unix time in ms.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `POST /v1/join {token, device_key, device_name}` →
/// `{credential, device_id, scope, label}`.
pub(crate) async fn redeem(
    State(join): State<JoinState>,
    body: Result<Json<RedeemRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(request)) = body else {
        return error(
            StatusCode::BAD_REQUEST,
            "expected {\"token\": ..., \"device_key\": ..., \"device_name\": ...}",
        );
    };
    let outcome = tokio::task::spawn_blocking(move || {
        join.store.redeem(
            &join.secret,
            &request.token,
            &request.device_key,
            &request.device_name,
            now_ms(),
        )
    })
    .await;
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(e) => return crate::routes::internal(e),
    };
    match outcome {
        Ok(redeemed) => Json(redeemed).into_response(),
        Err(e) => {
            let (status, code) = match &e {
                RedeemError::Token(TokenError::Malformed) | RedeemError::BadRequest(_) => {
                    (StatusCode::BAD_REQUEST, "malformed")
                }
                RedeemError::Token(TokenError::OtherHub) => (StatusCode::FORBIDDEN, "other_hub"),
                RedeemError::Token(TokenError::BadSignature) => {
                    (StatusCode::FORBIDDEN, "bad_signature")
                }
                RedeemError::Expired => (StatusCode::GONE, "expired"),
                RedeemError::Aborted => (StatusCode::GONE, "aborted"),
                RedeemError::Used => (StatusCode::CONFLICT, "used"),
                RedeemError::Revoked => (StatusCode::FORBIDDEN, "revoked"),
                RedeemError::Hub(e) => return crate::routes::internal(e),
            };
            tracing::info!(code, "join refused");
            (
                status,
                Json(serde_json::json!({ "error": e.to_string(), "code": code })),
            )
                .into_response()
        }
    }
}
