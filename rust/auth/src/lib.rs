//! heph-auth: who may sync. Device-code login against an OIDC issuer, the
//! stored session with its rotating refresh tokens, and the hub-side
//! verification of JWT access tokens.

pub mod device_credential;
pub mod device_login;
mod http_client;
pub mod jwt_verify;
pub mod session;
pub mod token_store;

pub use device_credential::{DeviceCredential, StoredDevice};
pub use device_login::{device_login, LoginConfig, LoginEvent, Tokens};
pub use jwt_verify::{Claims, JwtVerifier, Rejection, VerifierConfig};
pub use session::{normalize_hub_url, Revocation, Session, SessionState};
pub use token_store::{StoreKind, TokenStore};

/// Errors of login and token handling. Messages never contain tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The issuer cannot be reached.
    #[error("{0}")]
    Network(String),
    /// The issuer answered with an error or something unexpected.
    #[error("{0}")]
    Issuer(String),
    /// The user denied the request or let the code expire.
    #[error("{0}")]
    Denied(String),
    /// The session is over: log in again.
    #[error("login needed: run :HephLogin or `heph login`")]
    LoginNeeded,
    /// The token store failed.
    #[error("token store: {0}")]
    Store(String),
    /// The hub's owner removed this device: join again with a new token.
    #[error("{0}")]
    Removed(String),
}
