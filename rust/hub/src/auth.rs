//! The bearer-token seam: with a verifier configured, every route but
//! `/v1/health` needs a token it accepts.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Why a request was refused (one type, shared with the JWT verifier).
pub use heph_auth::Rejection;

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

/// The hub accepts the owner's JWT access tokens.
#[async_trait::async_trait]
impl BearerCheck for heph_auth::JwtVerifier {
    async fn check(&self, bearer: Option<&str>) -> Result<(), Rejection> {
        self.verify(bearer).await.map(|_| ())
    }

    fn challenge(&self) -> String {
        self.www_authenticate("a valid access token is required")
    }
}

/// How long a client should wait before retrying when the issuer's keys
/// cannot be fetched.
const UNAVAILABLE_RETRY_SECS: &str = "30";

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
        Err(Rejection::Unavailable(msg)) => {
            let mut response = crate::routes::error(StatusCode::SERVICE_UNAVAILABLE, &msg);
            response.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from_static(UNAVAILABLE_RETRY_SECS),
            );
            response
        }
    }
}
