//! Hub-side verification of JWT access tokens against the issuer's JWKS.
//!
//! - keys come only from the issuer's `jwks_uri` (discovery), cached by
//!   `kid`; `jku`, `x5u` and `jwk` token headers are never followed;
//! - an unknown `kid` triggers at most one refetch per cooldown, so a burst
//!   of forged tokens cannot hammer the issuer; rotated keys are picked up
//!   that way without a restart, and cached keys keep working while the
//!   issuer is unreachable;
//! - only asymmetric algorithms, and only the one family each key belongs
//!   to (an RSA key never verifies an HS256 token made with its public key);
//! - `exp`, `iss`, `aud` and `sub` are required, `nbf` is checked when
//!   present, with a few seconds of leeway; a `typ` header, when present,
//!   must be `JWT` or `at+jwt`.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::Mutex;

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// No token, or one that is not valid: answer 401.
    Unauthorized(String),
    /// A valid token of someone who is not the owner: answer 403.
    Forbidden(String),
}

/// The claims heph uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    /// Subject: the user.
    pub sub: String,
    /// Expiry (seconds since the epoch).
    pub exp: u64,
}

/// How a verifier is configured.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// The issuer URL (as in the tokens' `iss`).
    pub issuer: String,
    /// The audience the hub's tokens carry.
    pub audience: String,
    /// The only `sub` admitted.
    pub owner_sub: String,
    /// Clock leeway.
    pub leeway: Duration,
    /// Least time between two JWKS fetches caused by unknown keys.
    pub refetch_cooldown: Duration,
}

impl VerifierConfig {
    /// Defaults: 5 s leeway, 60 s refetch cooldown.
    pub fn new(issuer: &str, audience: &str, owner_sub: &str) -> Self {
        Self {
            issuer: issuer.trim_end_matches('/').to_owned(),
            audience: audience.to_owned(),
            owner_sub: owner_sub.to_owned(),
            leeway: Duration::from_secs(5),
            refetch_cooldown: Duration::from_secs(60),
        }
    }
}

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, (Jwk, DecodingKey)>,
    jwks_uri: Option<String>,
    last_fetch: Option<Instant>,
}

/// Verifies bearer tokens for the hub.
pub struct JwtVerifier {
    config: VerifierConfig,
    http: reqwest::Client,
    cache: Mutex<KeyCache>,
}

const ASYMMETRIC: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

fn unauthorized(msg: &str) -> Rejection {
    Rejection::Unauthorized(msg.to_owned())
}

/// Whether `key` may verify a token signed with `alg`.
fn key_fits(jwk: &Jwk, alg: Algorithm) -> bool {
    use jsonwebtoken::jwk::EllipticCurve;
    if let Some(key_alg) = jwk.common.key_algorithm {
        if key_alg.to_string() != format!("{alg:?}") {
            return false;
        }
    }
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => matches!(
            alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
        ),
        AlgorithmParameters::EllipticCurve(ec) => matches!(
            (&ec.curve, alg),
            (EllipticCurve::P256, Algorithm::ES256) | (EllipticCurve::P384, Algorithm::ES384)
        ),
        AlgorithmParameters::OctetKeyPair(_) => alg == Algorithm::EdDSA,
        // Shared secrets never verify hub tokens.
        AlgorithmParameters::OctetKey(_) => false,
        _ => false,
    }
}

impl JwtVerifier {
    /// A verifier; keys are fetched on first use.
    pub fn new(config: VerifierConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            config,
            http,
            cache: Mutex::new(KeyCache::default()),
        }
    }

    /// The `WWW-Authenticate` value for a 401.
    pub fn www_authenticate(&self, error: &str) -> String {
        format!(
            "Bearer realm=\"heph\", error=\"invalid_token\", error_description=\"{}\"",
            error.replace('"', "'")
        )
    }

    async fn fetch_keys(&self, cache: &mut KeyCache) -> Result<(), String> {
        cache.last_fetch = Some(Instant::now());
        let jwks_uri = match &cache.jwks_uri {
            Some(uri) => uri.clone(),
            None => {
                let endpoints = crate::device_login::discover(&self.http, &self.config.issuer)
                    .await
                    .map_err(|e| e.to_string())?;
                let uri = endpoints
                    .jwks_uri
                    .ok_or("the discovery document has no jwks_uri")?;
                cache.jwks_uri = Some(uri.clone());
                uri
            }
        };
        let set: JwkSet = self
            .http
            .get(&jwks_uri)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| format!("JWKS unreachable: {e}"))?
            .json()
            .await
            .map_err(|e| format!("bad JWKS: {e}"))?;
        let mut keys = HashMap::new();
        for jwk in set.keys {
            let (Some(kid), Ok(key)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(&jwk))
            else {
                continue;
            };
            keys.insert(kid, (jwk, key));
        }
        cache.keys = keys;
        Ok(())
    }

    /// Checks a bearer token.
    pub async fn verify(&self, bearer: Option<&str>) -> Result<Claims, Rejection> {
        let token = bearer
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthorized("missing bearer token"))?;
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| unauthorized("malformed token"))?;
        if let Some(typ) = &header.typ {
            let typ = typ.to_ascii_lowercase();
            if !["jwt", "at+jwt", "application/at+jwt"].contains(&typ.as_str()) {
                return Err(unauthorized("wrong token type"));
            }
        }
        if !ASYMMETRIC.contains(&header.alg) {
            return Err(unauthorized("token algorithm not allowed"));
        }
        let kid = header
            .kid
            .clone()
            .ok_or_else(|| unauthorized("token has no key id"))?;
        let (jwk, key) = {
            let mut cache = self.cache.lock().await;
            if !cache.keys.contains_key(&kid) {
                let may_fetch = cache
                    .last_fetch
                    .is_none_or(|t| t.elapsed() >= self.config.refetch_cooldown);
                if may_fetch {
                    if let Err(e) = self.fetch_keys(&mut cache).await {
                        // Cached keys stay usable; this token's key is unknown.
                        tracing::warn!(error = %e, "cannot refresh the issuer's keys");
                    }
                }
            }
            cache
                .keys
                .get(&kid)
                .cloned()
                .ok_or_else(|| unauthorized("token signed with an unknown key"))?
        };
        if !key_fits(&jwk, header.alg) {
            return Err(unauthorized("token algorithm does not match its key"));
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.config.leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            unauthorized(match e.kind() {
                ErrorKind::ExpiredSignature => "token expired",
                ErrorKind::ImmatureSignature => "token not yet valid",
                ErrorKind::InvalidIssuer => "token from another issuer",
                ErrorKind::InvalidAudience => "token for another audience",
                ErrorKind::InvalidSignature => "bad token signature",
                ErrorKind::MissingRequiredClaim(_) => "token lacks a required claim",
                _ => "invalid token",
            })
        })?;
        if data.claims.sub != self.config.owner_sub {
            return Err(Rejection::Forbidden(
                "this hub belongs to someone else".into(),
            ));
        }
        Ok(data.claims)
    }

    /// Keys currently cached (for tests and diagnostics).
    pub async fn cached_kids(&self) -> HashSet<String> {
        self.cache.lock().await.keys.keys().cloned().collect()
    }
}
