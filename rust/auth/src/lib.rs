//! heph-auth: who may sync. This crate holds the hub-side verification of
//! bearer tokens (JWT access tokens from an OIDC issuer).

pub mod jwt_verify;

pub use jwt_verify::{Claims, JwtVerifier, Rejection, VerifierConfig};
