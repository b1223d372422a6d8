//! JWKS availability against a scripted issuer on loopback: a slow issuer
//! does not delay tokens with cached keys (single flight), an empty key set
//! never replaces a good one, an unreachable issuer means 503-style
//! `Unavailable` (not "log in again") and is retried soon after it returns,
//! trailing-slash issuers match exactly, and `crit` headers are refused.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::routing::get;
use axum::{Json, Router};
use heph_auth::{JwtVerifier, Rejection, VerifierConfig};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use p256::pkcs8::{EncodePrivateKey, LineEnding};
use serde_json::{json, Value};

struct Key {
    kid: String,
    private_pem: String,
    jwk: Value,
}

fn key(kid: &str) -> Key {
    let secret = p256::SecretKey::random(&mut rand_core::OsRng);
    let mut jwk: Value = serde_json::from_str(&secret.public_key().to_jwk_string()).unwrap();
    jwk["kid"] = json!(kid);
    jwk["alg"] = json!("ES256");
    Key {
        kid: kid.into(),
        private_pem: secret.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
        jwk,
    }
}

/// A scripted issuer: its key set, a delay before each JWKS answer, and
/// whether it is down (503 on every route).
struct Issuer {
    /// The issuer as its discovery document states it.
    iss: String,
    keys: Arc<Mutex<Vec<Value>>>,
    delay_ms: Arc<AtomicU64>,
    down: Arc<Mutex<bool>>,
    fetches: Arc<AtomicUsize>,
}

async fn issuer(trailing_slash: bool) -> Issuer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let iss = if trailing_slash {
        format!("{base}/")
    } else {
        base.clone()
    };
    let keys = Arc::new(Mutex::new(Vec::new()));
    let delay_ms = Arc::new(AtomicU64::new(0));
    let down = Arc::new(Mutex::new(false));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (d1, i1) = (down.clone(), iss.clone());
    let (k, dl, d2, f) = (
        keys.clone(),
        delay_ms.clone(),
        down.clone(),
        fetches.clone(),
    );
    let app = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || {
                let (d, iss, base) = (d1.clone(), i1.clone(), base.clone());
                async move {
                    if *d.lock().unwrap() {
                        return Err(axum::http::StatusCode::SERVICE_UNAVAILABLE);
                    }
                    Ok(Json(
                        json!({ "issuer": iss, "jwks_uri": format!("{base}/jwks") }),
                    ))
                }
            }),
        )
        .route(
            "/jwks",
            get(move || {
                let (k, dl, d, f) = (k.clone(), dl.clone(), d2.clone(), f.clone());
                async move {
                    f.fetch_add(1, Ordering::SeqCst);
                    let delay = dl.load(Ordering::SeqCst);
                    if delay > 0 {
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                    }
                    if *d.lock().unwrap() {
                        return Err(axum::http::StatusCode::SERVICE_UNAVAILABLE);
                    }
                    Ok(Json(json!({ "keys": *k.lock().unwrap() })))
                }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Issuer {
        iss,
        keys,
        delay_ms,
        down,
        fetches,
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(key: &Key, iss: &str, change: impl FnOnce(&mut Header)) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(key.kid.clone());
    change(&mut header);
    let claims = json!({ "iss": iss, "aud": "heph-hub", "sub": "alice", "exp": now() + 300 });
    encode(
        &header,
        &claims,
        &EncodingKey::from_ec_pem(key.private_pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn verifier(issuer_url: &str, cooldown: Duration) -> Arc<JwtVerifier> {
    let mut config = VerifierConfig::new(issuer_url, "heph-hub", "alice");
    config.refetch_cooldown = cooldown;
    config.unavailable_retry = Duration::from_millis(200);
    config.fetch_timeout = Duration::from_secs(5);
    Arc::new(JwtVerifier::new(config))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_issuer_does_not_delay_cached_keys_and_fetches_once() {
    let iss = issuer(false).await;
    let owner = key("k1");
    iss.keys.lock().unwrap().push(owner.jwk.clone());
    let v = verifier(&iss.iss, Duration::ZERO);
    let good = token(&owner, &iss.iss, |_| {});
    v.verify(Some(&good)).await.unwrap();
    assert_eq!(iss.fetches.load(Ordering::SeqCst), 1);

    // Unknown kids while the issuer takes 3 s to answer.
    iss.delay_ms.store(3000, Ordering::SeqCst);
    let mut unknown = Vec::new();
    for i in 0..10 {
        let v = Arc::clone(&v);
        let t = token(&key(&format!("stranger-{i}")), &iss.iss, |_| {});
        unknown.push(tokio::spawn(async move { v.verify(Some(&t)).await }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The owner's token with a cached key answers at once meanwhile.
    for _ in 0..5 {
        let started = Instant::now();
        v.verify(Some(&good)).await.unwrap();
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "owner waited {:?}",
            started.elapsed()
        );
    }
    for t in unknown {
        assert!(matches!(t.await.unwrap(), Err(Rejection::Unauthorized(_))));
    }
    // Single flight: the ten unknown kids did not each fetch.
    let fetches = iss.fetches.load(Ordering::SeqCst);
    assert!(
        fetches <= 3,
        "{fetches} fetches for 10 concurrent unknown kids"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_key_set_never_replaces_a_good_one() {
    let iss = issuer(false).await;
    let owner = key("k1");
    iss.keys.lock().unwrap().push(owner.jwk.clone());
    let v = verifier(&iss.iss, Duration::ZERO);
    let good = token(&owner, &iss.iss, |_| {});
    v.verify(Some(&good)).await.unwrap();
    // The issuer answers {"keys": []} for a while; an unknown kid makes the
    // hub fetch it.
    iss.keys.lock().unwrap().clear();
    let stranger = token(&key("k2"), &iss.iss, |_| {});
    assert!(matches!(
        v.verify(Some(&stranger)).await,
        Err(Rejection::Unauthorized(_))
    ));
    assert!(iss.fetches.load(Ordering::SeqCst) >= 2);
    assert_eq!(v.cached_kids().await.len(), 1);
    v.verify(Some(&good)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuer_down_at_the_first_request_means_unavailable_then_recovers() {
    let iss = issuer(false).await;
    let owner = key("k1");
    iss.keys.lock().unwrap().push(owner.jwk.clone());
    *iss.down.lock().unwrap() = true;
    let v = verifier(&iss.iss, Duration::from_secs(3600));
    let good = token(&owner, &iss.iss, |_| {});
    let r = v.verify(Some(&good)).await;
    assert!(matches!(r, Err(Rejection::Unavailable(_))), "{r:?}");
    // A down issuer answering an empty set is no better.
    *iss.down.lock().unwrap() = false;
    let saved = std::mem::take(&mut *iss.keys.lock().unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = v.verify(Some(&good)).await;
    assert!(matches!(r, Err(Rejection::Unavailable(_))), "{r:?}");
    // Back: the owner gets through soon, not after the hour-long cooldown.
    *iss.keys.lock().unwrap() = saved;
    tokio::time::sleep(Duration::from_millis(300)).await;
    v.verify(Some(&good)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trailing_slash_issuer_matches_exactly() {
    let iss = issuer(true).await;
    assert!(iss.iss.ends_with('/'));
    let owner = key("k1");
    iss.keys.lock().unwrap().push(owner.jwk.clone());
    let v = verifier(&iss.iss, Duration::from_secs(60));
    v.verify(Some(&token(&owner, &iss.iss, |_| {})))
        .await
        .unwrap();
    // The issuer without its slash is another issuer.
    let r = v
        .verify(Some(&token(&owner, iss.iss.trim_end_matches('/'), |_| {})))
        .await;
    assert!(matches!(r, Err(Rejection::Unauthorized(_))), "{r:?}");
    // Configured without the slash, the discovered form still rules.
    let v = verifier(iss.iss.trim_end_matches('/'), Duration::from_secs(60));
    v.verify(Some(&token(&owner, &iss.iss, |_| {})))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_with_crit_headers_are_refused() {
    let iss = issuer(false).await;
    let owner = key("k1");
    iss.keys.lock().unwrap().push(owner.jwk.clone());
    let v = verifier(&iss.iss, Duration::from_secs(60));
    v.verify(Some(&token(&owner, &iss.iss, |_| {})))
        .await
        .unwrap();
    for crit in [
        vec!["exp".to_owned()],
        vec!["urn:x:unknown".to_owned()],
        vec![],
    ] {
        let t = token(&owner, &iss.iss, |h| h.crit = Some(crit.clone()));
        let r = v.verify(Some(&t)).await;
        assert!(
            matches!(r, Err(Rejection::Unauthorized(_))),
            "{crit:?}: {r:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_requests_share_the_first_fetch() {
    let iss = issuer(false).await;
    let owner = key("k1");
    iss.keys.lock().unwrap().push(owner.jwk.clone());
    iss.delay_ms.store(500, Ordering::SeqCst);
    let v = verifier(&iss.iss, Duration::from_secs(60));
    let good = token(&owner, &iss.iss, |_| {});
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let (v, t) = (Arc::clone(&v), good.clone());
        tasks.push(tokio::spawn(async move { v.verify(Some(&t)).await }));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(iss.fetches.load(Ordering::SeqCst), 1);
}
