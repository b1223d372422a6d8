//! Hub token verification against a JWKS served on loopback: every kind of
//! bad token gets the right refusal, and key handling is safe.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::routing::get;
use axum::{Json, Router};
use heph_auth::{JwtVerifier, Rejection, VerifierConfig};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use serde_json::{json, Value};

struct Key {
    kid: String,
    private_pem: String,
    public_pem: String,
    jwk: Value,
}

fn key(kid: &str) -> Key {
    let secret = p256::SecretKey::random(&mut rand_core::OsRng);
    let private_pem = secret.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
    let public_pem = secret
        .public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let mut jwk: Value = serde_json::from_str(&secret.public_key().to_jwk_string()).unwrap();
    jwk["kid"] = json!(kid);
    jwk["alg"] = json!("ES256");
    jwk["use"] = json!("sig");
    Key {
        kid: kid.into(),
        private_pem,
        public_pem,
        jwk,
    }
}

struct Issuer {
    url: String,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
    down: Arc<Mutex<bool>>,
}

async fn issuer() -> Issuer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let keys = Arc::new(Mutex::new(Vec::new()));
    let fetches = Arc::new(AtomicUsize::new(0));
    let down = Arc::new(Mutex::new(false));
    let (k, f, d, u) = (keys.clone(), fetches.clone(), down.clone(), url.clone());
    let app = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || {
                let u = u.clone();
                async move { Json(json!({ "issuer": u, "jwks_uri": format!("{u}/jwks") })) }
            }),
        )
        .route(
            "/jwks",
            get(move || {
                let (k, f, d) = (k.clone(), f.clone(), d.clone());
                async move {
                    if *d.lock().unwrap() {
                        return Err(axum::http::StatusCode::SERVICE_UNAVAILABLE);
                    }
                    f.fetch_add(1, Ordering::SeqCst);
                    Ok(Json(json!({ "keys": *k.lock().unwrap() })))
                }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Issuer {
        url,
        keys,
        fetches,
        down,
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims(iss: &str) -> Value {
    json!({ "iss": iss, "aud": "heph-hub", "sub": "alice", "exp": now() + 300, "iat": now(), "nbf": now() - 1 })
}

fn sign(key: &Key, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(key.kid.clone());
    header.typ = Some("at+jwt".into());
    encode(
        &header,
        claims,
        &EncodingKey::from_ec_pem(key.private_pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn verifier(iss: &Issuer, cooldown: Duration) -> JwtVerifier {
    let mut config = VerifierConfig::new(&iss.url, "heph-hub", "alice");
    config.refetch_cooldown = cooldown;
    JwtVerifier::new(config)
}

fn is_401(r: Result<heph_auth::Claims, Rejection>) -> bool {
    matches!(r, Err(Rejection::Unauthorized(_)))
}

#[tokio::test]
async fn every_bad_token_is_refused() {
    let iss = issuer().await;
    let good = key("k1");
    iss.keys.lock().unwrap().push(good.jwk.clone());
    let v = verifier(&iss, Duration::from_secs(60));

    let ok = v
        .verify(Some(&sign(&good, &claims(&iss.url))))
        .await
        .unwrap();
    assert_eq!(ok.sub, "alice");

    assert!(is_401(v.verify(None).await), "no token");
    assert!(is_401(v.verify(Some("not.a.jwt")).await), "malformed");
    // alg: none, unsigned.
    let b64 = |v: &Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "kid": "k1"})),
        b64(&claims(&iss.url))
    );
    assert!(is_401(v.verify(Some(&none)).await), "alg none");
    // HS256 with the public key as the shared secret.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".into());
    let hs = encode(
        &header,
        &claims(&iss.url),
        &EncodingKey::from_secret(good.public_pem.as_bytes()),
    )
    .unwrap();
    assert!(is_401(v.verify(Some(&hs)).await), "HS256 with public key");
    // Right kid, wrong key.
    let mut forged = key("k1");
    forged.kid = "k1".into();
    assert!(
        is_401(v.verify(Some(&sign(&forged, &claims(&iss.url)))).await),
        "wrong signature"
    );
    let mut c = claims(&iss.url);
    c["iss"] = json!("http://127.0.0.1:1/evil");
    assert!(is_401(v.verify(Some(&sign(&good, &c))).await), "wrong iss");
    let mut c = claims(&iss.url);
    c["aud"] = json!("someone-else");
    assert!(is_401(v.verify(Some(&sign(&good, &c))).await), "wrong aud");
    let mut c = claims(&iss.url);
    c["exp"] = json!(now() - 60);
    let r = v.verify(Some(&sign(&good, &c))).await;
    assert_eq!(
        r.unwrap_err(),
        Rejection::Unauthorized("token expired".into())
    );
    let mut c = claims(&iss.url);
    c["nbf"] = json!(now() + 60);
    let r = v.verify(Some(&sign(&good, &c))).await;
    assert_eq!(
        r.unwrap_err(),
        Rejection::Unauthorized("token not yet valid".into())
    );
    let mut c = claims(&iss.url);
    c.as_object_mut().unwrap().remove("sub");
    assert!(is_401(v.verify(Some(&sign(&good, &c))).await), "no sub");
    let stranger = key("k-unknown");
    assert!(
        is_401(v.verify(Some(&sign(&stranger, &claims(&iss.url)))).await),
        "unknown kid"
    );
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("k1".into());
    header.typ = Some("JOSE+weird".into());
    let odd = encode(
        &header,
        &claims(&iss.url),
        &EncodingKey::from_ec_pem(good.private_pem.as_bytes()).unwrap(),
    )
    .unwrap();
    assert!(is_401(v.verify(Some(&odd)).await), "typ");
    // A valid token of someone else: 403.
    let mut c = claims(&iss.url);
    c["sub"] = json!("mallory");
    assert!(matches!(
        v.verify(Some(&sign(&good, &c))).await,
        Err(Rejection::Forbidden(_))
    ));
    // A jku header pointing elsewhere is not followed: the kid is unknown.
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("evil".into());
    header.jku = Some("http://127.0.0.1:1/evil-jwks".into());
    let jku = encode(
        &header,
        &claims(&iss.url),
        &EncodingKey::from_ec_pem(stranger.private_pem.as_bytes()).unwrap(),
    )
    .unwrap();
    assert!(is_401(v.verify(Some(&jku)).await), "jku");
}

#[tokio::test]
async fn unknown_kids_do_not_hammer_the_issuer() {
    let iss = issuer().await;
    let good = key("k1");
    iss.keys.lock().unwrap().push(good.jwk.clone());
    let v = verifier(&iss, Duration::from_secs(3600));
    v.verify(Some(&sign(&good, &claims(&iss.url))))
        .await
        .unwrap();
    assert_eq!(iss.fetches.load(Ordering::SeqCst), 1);
    for i in 0..50 {
        let k = key(&format!("bogus-{i}"));
        assert!(is_401(v.verify(Some(&sign(&k, &claims(&iss.url)))).await));
    }
    assert_eq!(
        iss.fetches.load(Ordering::SeqCst),
        1,
        "no refetch inside the cooldown"
    );
}

#[tokio::test]
async fn rotated_keys_are_picked_up_and_cached_keys_survive_an_outage() {
    let iss = issuer().await;
    let old = key("old");
    iss.keys.lock().unwrap().push(old.jwk.clone());
    let v = verifier(&iss, Duration::ZERO);
    v.verify(Some(&sign(&old, &claims(&iss.url))))
        .await
        .unwrap();
    // The issuer rotates: a token with the new kid triggers one refetch.
    let new = key("new");
    *iss.keys.lock().unwrap() = vec![old.jwk.clone(), new.jwk.clone()];
    v.verify(Some(&sign(&new, &claims(&iss.url))))
        .await
        .unwrap();
    // The issuer goes down: cached keys keep working.
    *iss.down.lock().unwrap() = true;
    v.verify(Some(&sign(&old, &claims(&iss.url))))
        .await
        .unwrap();
    v.verify(Some(&sign(&new, &claims(&iss.url))))
        .await
        .unwrap();
    let another = key("another");
    assert!(is_401(
        v.verify(Some(&sign(&another, &claims(&iss.url)))).await
    ));
    assert_eq!(v.cached_kids().await.len(), 2);
}
