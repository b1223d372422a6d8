//! The real `heph hub` with `--issuer`: every bad token gets 401 (with
//! WWW-Authenticate) and no data, another user's valid token gets 403, the
//! owner gets through, and /v1/health stays open.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use axum::routing::get;
use axum::{Json, Router};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use serde_json::{json, Value};

struct Key {
    private_pem: String,
    public_pem: String,
    jwk: Value,
}

fn key(kid: &str) -> Key {
    let secret = p256::SecretKey::random(&mut rand_core::OsRng);
    let mut jwk: Value = serde_json::from_str(&secret.public_key().to_jwk_string()).unwrap();
    jwk["kid"] = json!(kid);
    Key {
        private_pem: secret.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
        public_pem: secret
            .public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap(),
        jwk,
    }
}

fn token(key: &Key, kid: &str, alg: Algorithm, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.into());
    let encoding = match alg {
        Algorithm::HS256 => EncodingKey::from_secret(key.public_pem.as_bytes()),
        _ => EncodingKey::from_ec_pem(key.private_pem.as_bytes()).unwrap(),
    };
    encode(&header, claims, &encoding).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_checks_every_token() {
    let signing = key("k1");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let (iss, jwks) = (issuer.clone(), json!({ "keys": [signing.jwk.clone()] }));
    let app = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || {
                let iss = iss.clone();
                async move { Json(json!({ "issuer": iss, "jwks_uri": format!("{iss}/jwks") })) }
            }),
        )
        .route(
            "/jwks",
            get(move || {
                let jwks = jwks.clone();
                async move { Json(jwks) }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let (child, hub) = common::spawn_hub(
        &dir.path().join("hub.db"),
        "127.0.0.1:0",
        &[
            "--issuer",
            &issuer,
            "--audience",
            "heph-hub",
            "--owner-sub",
            "alice",
        ],
    );
    let _hub = common::Proc(child);

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = |change: &dyn Fn(&mut Value)| {
        let mut c = json!({ "iss": issuer, "aud": "heph-hub", "sub": "alice", "exp": now + 300, "nbf": now - 1 });
        change(&mut c);
        c
    };
    let owner = token(&signing, "k1", Algorithm::ES256, &claims(&|_| {}));
    let client = reqwest::Client::new();
    let ops = format!("{hub}/v1/ops");
    // The owner stores one op, so "no data" below means something.
    let r = client
        .post(&ops)
        .bearer_auth(&owner)
        // A valid op: the hub refuses ops it could not apply.
        .json(&json!({"ops": [{
            "op_id": "secret-op",
            "hlc": "000000000001000000-aa",
            "node": "n1",
            "action": "delete",
        }]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let forger = key("k1");
    let cases: Vec<(&str, Option<String>, u16)> = vec![
        ("no token", None, 401),
        ("malformed", Some("abc.def".into()), 401),
        (
            "alg none",
            Some(format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "kid": "k1"})),
                b64(&claims(&|_| {}))
            )),
            401,
        ),
        (
            "HS256 with the public key",
            Some(token(&signing, "k1", Algorithm::HS256, &claims(&|_| {}))),
            401,
        ),
        (
            "wrong signature",
            Some(token(&forger, "k1", Algorithm::ES256, &claims(&|_| {}))),
            401,
        ),
        (
            "wrong iss",
            Some(token(
                &signing,
                "k1",
                Algorithm::ES256,
                &claims(&|c| c["iss"] = json!("http://evil")),
            )),
            401,
        ),
        (
            "wrong aud",
            Some(token(
                &signing,
                "k1",
                Algorithm::ES256,
                &claims(&|c| c["aud"] = json!("other")),
            )),
            401,
        ),
        (
            "expired",
            Some(token(
                &signing,
                "k1",
                Algorithm::ES256,
                &claims(&|c| c["exp"] = json!(now - 60)),
            )),
            401,
        ),
        (
            "not yet valid",
            Some(token(
                &signing,
                "k1",
                Algorithm::ES256,
                &claims(&|c| c["nbf"] = json!(now + 60)),
            )),
            401,
        ),
        (
            "unknown kid",
            Some(token(&signing, "k9", Algorithm::ES256, &claims(&|_| {}))),
            401,
        ),
        (
            "another user",
            Some(token(
                &signing,
                "k1",
                Algorithm::ES256,
                &claims(&|c| c["sub"] = json!("bob")),
            )),
            403,
        ),
    ];
    for (name, bearer, status) in cases {
        for request in [
            client.get(format!("{ops}?after=0")),
            client
                .post(&ops)
                .json(&json!({"ops": [{"op_id": "intruder"}]})),
        ] {
            let request = match &bearer {
                Some(t) => request.bearer_auth(t),
                None => request,
            };
            let r = request.send().await.unwrap();
            assert_eq!(r.status().as_u16(), status, "{name}");
            if status == 401 {
                assert!(
                    r.headers().get("www-authenticate").is_some(),
                    "{name}: no WWW-Authenticate"
                );
            }
            let body = r.text().await.unwrap();
            assert!(!body.contains("secret-op"), "{name}: leaked data");
        }
    }
    // Nothing an intruder sent was stored, and the owner reads its data.
    let r = client
        .get(format!("{ops}?after=0"))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["ops"].as_array().unwrap().len(), 1);
    assert_eq!(body["ops"][0]["op"]["op_id"], "secret-op");
    let r = client.get(format!("{hub}/v1/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

fn b64(v: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}
