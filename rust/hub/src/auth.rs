//! The bearer-token seam. Two kinds of credential are accepted side by
//! side: the owner's OIDC access tokens (a [`BearerCheck`], when an issuer
//! is configured) and device credentials from join tokens. Without either
//! the hub is open (and `heph hub` keeps it on loopback).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::join::{now_ms, Scope, CREDENTIAL_PREFIX};
use crate::HubStore;

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

/// What an accepted request may do; put in the request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Push and pull.
    Full,
    /// Push only (a capture credential).
    Capture,
}

/// The hub's two checks composed: device credentials (recognised by their
/// prefix) and, for everything else, the OIDC verifier.
pub(crate) struct HubAuth {
    pub oidc: Option<Arc<dyn BearerCheck>>,
    pub store: Arc<HubStore>,
    /// Once join tokens exist, every request needs a credential.
    join_active: AtomicBool,
}

impl HubAuth {
    pub fn new(oidc: Option<Arc<dyn BearerCheck>>, store: Arc<HubStore>) -> Self {
        Self {
            oidc,
            store,
            join_active: AtomicBool::new(false),
        }
    }

    fn join_active(&self) -> bool {
        if self.join_active.load(Ordering::Relaxed) {
            return true;
        }
        // Tokens may be created while the hub runs (by the CLI, on the
        // same database): the hub closes from then on, never reopens.
        let active = self.store.join_active().unwrap_or(true);
        if active {
            self.join_active.store(true, Ordering::Relaxed);
        }
        active
    }

    async fn check(&self, bearer: Option<&str>) -> Result<Access, Rejection> {
        if let Some(credential) = bearer.filter(|b| b.starts_with(CREDENTIAL_PREFIX)) {
            let store = Arc::clone(&self.store);
            let credential = credential.to_owned();
            let found =
                tokio::task::spawn_blocking(move || store.device_for(&credential, now_ms()))
                    .await
                    .map_err(|e| Rejection::Unavailable(format!("the hub failed: {e}")))?;
            return match found {
                Ok(Some((_, true))) => Err(Rejection::Unauthorized(
                    "this device was removed from the hub; ask its owner for a new join token"
                        .into(),
                )),
                Ok(Some((Scope::Full, false))) => Ok(Access::Full),
                Ok(Some((Scope::Capture, false))) => Ok(Access::Capture),
                Ok(None) => Err(Rejection::Unauthorized(
                    "unknown device credential: this device was removed from the hub, or the hub's \
                     secret changed; join again with a new token"
                        .into(),
                )),
                Err(e) => {
                    tracing::error!(error = %e, "device lookup failed");
                    Err(Rejection::Unavailable(
                        "the hub cannot read its devices".into(),
                    ))
                }
            };
        }
        match &self.oidc {
            Some(oidc) => oidc.check(bearer).await.map(|()| Access::Full),
            None if self.join_active() => Err(Rejection::Unauthorized(
                "a device credential is required: join this device with `heph join URL TOKEN`"
                    .into(),
            )),
            None => Ok(Access::Full),
        }
    }

    fn challenge(&self) -> String {
        self.oidc
            .as_ref()
            .map(|o| o.challenge())
            .unwrap_or_else(|| "Bearer realm=\"heph\"".to_owned())
    }
}

/// How long a client should wait before retrying when the issuer's keys
/// cannot be fetched.
const UNAVAILABLE_RETRY_SECS: &str = "30";

/// Middleware: refuses requests neither check accepts; records the access
/// of those it lets through.
pub(crate) async fn require_bearer(
    State(auth): State<Arc<HubAuth>>,
    mut request: Request,
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
    match auth.check(bearer).await {
        Ok(access) => {
            request.extensions_mut().insert(access);
            next.run(request).await
        }
        Err(Rejection::Unauthorized(msg)) => {
            let mut response = crate::routes::error(StatusCode::UNAUTHORIZED, &msg);
            if let Ok(value) = auth.challenge().parse() {
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
