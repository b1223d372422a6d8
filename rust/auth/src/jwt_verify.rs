//! Hub-side verification of JWT access tokens against the issuer's JWKS.
//!
//! - keys come only from the issuer's `jwks_uri` (discovery), cached by
//!   `kid`; `jku`, `x5u` and `jwk` token headers are never followed;
//! - an unknown `kid` triggers at most one refetch per cooldown, so a burst
//!   of forged tokens cannot hammer the issuer; rotated keys are picked up
//!   that way without a restart, and cached keys keep working while the
//!   issuer is unreachable;
//! - fetches happen outside the key cache's lock and one at a time (single
//!   flight): a slow issuer delays only tokens whose key is unknown, never
//!   tokens signed with a cached key;
//! - a good key set is never replaced by an empty or unusable one;
//! - when no key set could be fetched at all, the answer is
//!   [`Rejection::Unavailable`] (503: "the hub cannot reach the issuer"),
//!   not 401 ("log in again"); until a key set is fetched, fetches are
//!   retried after [`VerifierConfig::unavailable_retry`], not the cooldown;
//! - `iss` is compared exactly with the issuer the discovery document states
//!   (Auth0-style `https://x/` issuers work);
//! - only asymmetric algorithms, and only the one family each key belongs
//!   to (an RSA key never verifies an HS256 token made with its public key);
//! - a token with a `crit` header is refused: the hub understands no
//!   extension (RFC 7515 §4.1.11);
//! - `exp`, `iss`, `aud` and `sub` are required, `nbf` is checked when
//!   present, with a few seconds of leeway; a `typ` header, when present,
//!   must be `JWT` or `at+jwt`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

/// Why a request was refused. The hub turns each into its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// No token, or one that is not valid: answer 401.
    Unauthorized(String),
    /// A valid token of someone who is not the owner: answer 403.
    Forbidden(String),
    /// The token cannot be checked now because the issuer's keys cannot be
    /// fetched: answer 503 (the client should not ask for a new login).
    Unavailable(String),
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
    /// The issuer URL, as configured (a trailing slash is kept: tokens are
    /// compared with the issuer the discovery document states).
    pub issuer: String,
    /// The audience the hub's tokens carry.
    pub audience: String,
    /// The only `sub` admitted.
    pub owner_sub: String,
    /// Clock leeway.
    pub leeway: Duration,
    /// Least time between two JWKS fetches caused by unknown keys.
    pub refetch_cooldown: Duration,
    /// Least time between two fetches while no key set could be fetched
    /// yet, so an issuer back from an outage is noticed soon.
    pub unavailable_retry: Duration,
    /// Timeout of one discovery or JWKS request.
    pub fetch_timeout: Duration,
}

impl VerifierConfig {
    /// Defaults: 5 s leeway, 60 s refetch cooldown, 5 s retry while the
    /// issuer is unreachable, 10 s per request to the issuer.
    pub fn new(issuer: &str, audience: &str, owner_sub: &str) -> Self {
        Self {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            owner_sub: owner_sub.to_owned(),
            leeway: Duration::from_secs(5),
            refetch_cooldown: Duration::from_secs(60),
            unavailable_retry: Duration::from_secs(5),
            fetch_timeout: Duration::from_secs(10),
        }
    }
}

type KeyMap = HashMap<String, (Jwk, DecodingKey)>;

/// What the last fetch learnt; read and written under a short lock that is
/// never held across an `await`.
#[derive(Default)]
struct FetchState {
    /// The issuer as the discovery document states it, and its JWKS URL.
    discovered: Option<(String, String)>,
    /// When the last fetch started.
    last_attempt: Option<Instant>,
    /// Why the last fetch failed, when it did.
    last_error: Option<String>,
    /// Fetches finished so far: a request that waited for another's fetch
    /// uses its outcome instead of fetching again.
    generation: u64,
}

/// Verifies bearer tokens for the hub.
pub struct JwtVerifier {
    config: VerifierConfig,
    http: reqwest::Client,
    /// The current key set, swapped whole.
    keys: RwLock<Arc<KeyMap>>,
    state: Mutex<FetchState>,
    /// Held by the one fetch in flight (single flight).
    fetching: tokio::sync::Mutex<()>,
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

fn unavailable(why: &str) -> Rejection {
    Rejection::Unavailable(format!(
        "the hub cannot reach the issuer to check tokens ({why}); try again later"
    ))
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
            .timeout(config.fetch_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            config,
            http,
            keys: RwLock::new(Arc::new(KeyMap::new())),
            state: Mutex::new(FetchState::default()),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// The `WWW-Authenticate` value for a 401.
    pub fn www_authenticate(&self, error: &str) -> String {
        format!(
            "Bearer realm=\"heph\", error=\"invalid_token\", error_description=\"{}\"",
            error.replace('"', "'")
        )
    }

    fn current_keys(&self) -> Arc<KeyMap> {
        Arc::clone(&self.keys.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, FetchState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a fetch may start now: once per cooldown, or once per
    /// `unavailable_retry` while there is no key set at all.
    fn may_fetch(&self, have_keys: bool) -> bool {
        let wait = if have_keys {
            self.config.refetch_cooldown
        } else {
            self.config
                .unavailable_retry
                .min(self.config.refetch_cooldown)
        };
        self.state()
            .last_attempt
            .is_none_or(|t| t.elapsed() >= wait)
    }

    /// Fetches the key set (discovering the issuer first when needed) and
    /// installs it unless it is empty. Runs with no lock held but the
    /// single-flight gate.
    async fn fetch_keys(&self) -> Result<(), String> {
        let discovered = {
            let mut state = self.state();
            state.last_attempt = Some(Instant::now());
            state.discovered.clone()
        };
        let jwks_uri = match discovered {
            Some((_, uri)) => uri,
            None => {
                let endpoints = crate::device_login::discover(&self.http, &self.config.issuer)
                    .await
                    .map_err(|e| e.to_string())?;
                let uri = endpoints
                    .jwks_uri
                    .ok_or("the discovery document has no jwks_uri")?;
                self.state().discovered = Some((endpoints.issuer, uri.clone()));
                uri
            }
        };
        let set: JwkSet = self
            .http
            .get(&jwks_uri)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| format!("JWKS unreachable: {}", e.without_url()))?
            .json()
            .await
            .map_err(|e| format!("bad JWKS: {}", e.without_url()))?;
        let mut keys = KeyMap::new();
        for jwk in set.keys {
            let (Some(kid), Ok(key)) = (jwk.common.key_id.clone(), DecodingKey::from_jwk(&jwk))
            else {
                continue;
            };
            keys.insert(kid, (jwk, key));
        }
        if keys.is_empty() {
            // A transient empty answer must not lock the owner out.
            return Err("the issuer's JWKS has no usable keys".into());
        }
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
        Ok(())
    }

    /// Finds the key `kid`, fetching the key set when it is unknown and a
    /// fetch is allowed.
    async fn key_for(&self, kid: &str) -> Result<(Jwk, DecodingKey), Rejection> {
        if let Some(found) = self.current_keys().get(kid) {
            return Ok(found.clone());
        }
        let seen = self.state().generation;
        // A fetch in flight is waited for whatever the cooldown says (it may
        // be the first one); otherwise a fetch starts when one is due.
        let in_flight = self.fetching.try_lock().is_err();
        if in_flight || self.may_fetch(!self.current_keys().is_empty()) {
            let _gate = self.fetching.lock().await;
            // Another request may have fetched while this one waited: its
            // outcome stands (single flight).
            if self.state().generation == seen && self.may_fetch(!self.current_keys().is_empty()) {
                let outcome = self.fetch_keys().await;
                if let Err(e) = &outcome {
                    // Cached keys stay usable; this token's key is unknown.
                    tracing::warn!(error = %e, "cannot refresh the issuer's keys");
                }
                let mut state = self.state();
                state.last_error = outcome.err();
                state.generation += 1;
            }
        }
        if let Some(found) = self.current_keys().get(kid) {
            return Ok(found.clone());
        }
        if self.current_keys().is_empty() {
            // No key set at all: the token cannot be judged, and asking the
            // user to log in again would not help.
            let why = self.state().last_error.clone();
            return Err(unavailable(
                why.as_deref()
                    .unwrap_or("the issuer's keys are not fetched yet"),
            ));
        }
        Err(unauthorized("token signed with an unknown key"))
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
        if header.crit.is_some() {
            // The hub implements no JWS extension, so every critical one is
            // unknown (and an empty list is invalid).
            return Err(unauthorized("token has critical header extensions"));
        }
        if !ASYMMETRIC.contains(&header.alg) {
            return Err(unauthorized("token algorithm not allowed"));
        }
        let kid = header
            .kid
            .clone()
            .ok_or_else(|| unauthorized("token has no key id"))?;
        let (jwk, key) = self.key_for(&kid).await?;
        if !key_fits(&jwk, header.alg) {
            return Err(unauthorized("token algorithm does not match its key"));
        }
        let issuer = match &self.state().discovered {
            Some((issuer, _)) => issuer.clone(),
            None => return Err(unavailable("no discovery document yet")),
        };
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.config.leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[&issuer]);
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
        self.current_keys().keys().cloned().collect()
    }
}
