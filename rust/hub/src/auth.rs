//! The bearer-token seam: with a verifier configured, every route but
//! `/v1/health` needs a token it accepts.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// No token, or a token that is not valid: 401.
    Unauthorized(String),
    /// A valid token of someone who is not the owner: 403.
    Forbidden(String),
}

/// Checks the bearer token of a request.
#[async_trait::async_trait]
pub trait BearerCheck: Send + Sync {
    /// Accepts or refuses the token (`None` when the request had none).
    async fn check(&self, bearer: Option<&str>) -> Result<(), Rejection>;

    /// The `WWW-Authenticate` header value for a 401.
    fn challenge(&self) -> String {
        "Bearer realm=\"heph\"".to_owned()
    }
}

/// Middleware: refuses requests the verifier does not accept.
pub async fn require_bearer(
    State(check): State<Arc<dyn BearerCheck>>,
    request: Request,
    next: Next,
) -> Response {
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    match check.check(bearer).await {
        Ok(()) => next.run(request).await,
        Err(Rejection::Unauthorized(msg)) => {
            let mut response = crate::routes::error(StatusCode::UNAUTHORIZED, &msg);
            if let Ok(value) = check.challenge().parse() {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, value);
            }
            response
        }
        Err(Rejection::Forbidden(msg)) => {
            crate::routes::error(StatusCode::FORBIDDEN, &msg).into_response()
        }
    }
}
