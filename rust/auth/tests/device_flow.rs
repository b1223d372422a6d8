//! The device flow's polling rules against a scripted token endpoint on
//! loopback (a real provider never sends `slow_down` on demand). The sleep
//! is injected, so no test waits real seconds.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use heph_auth::{device_login, AuthError, LoginConfig, LoginEvent};
use serde_json::{json, Value};

/// Discovery and device authorization for the issuer at `url`: codes live
/// `expires_in` seconds, and tokens come from `token_endpoint`.
fn issuer_app(url: &str, token_endpoint: String, expires_in: u64) -> Router {
    let u = url.to_owned();
    Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || {
                let (u, token_endpoint) = (u.clone(), token_endpoint.clone());
                async move {
                    Json(json!({
                        "issuer": u,
                        "device_authorization_endpoint": format!("{u}/device/auth"),
                        "token_endpoint": token_endpoint,
                    }))
                }
            }),
        )
        .route(
            "/device/auth",
            post(move || async move {
                Json(json!({
                    "device_code": "dc", "user_code": "ABCD-EFGH",
                    "verification_uri": "http://127.0.0.1/device", "expires_in": expires_in, "interval": 5,
                }))
            }),
        )
}

/// Serves discovery, device authorization and a token endpoint that answers
/// with `script` in order (then repeats the last answer).
async fn scripted(script: Vec<(u16, Value)>) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let (c, script) = (calls.clone(), Arc::new(script));
    let app = issuer_app(&url, format!("{url}/token"), 600).route(
        "/token",
        post(move || {
            let (c, script) = (c.clone(), script.clone());
            async move {
                let i = c.fetch_add(1, Ordering::SeqCst).min(script.len() - 1);
                let (status, body) = script[i].clone();
                (StatusCode::from_u16(status).unwrap(), Json(body))
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, calls)
}

fn config(issuer: &str) -> LoginConfig {
    LoginConfig {
        issuer: issuer.into(),
        client_id: "heph-cli".into(),
        audience: Some("urn:heph:hub".into()),
    }
}

fn error(code: &str) -> (u16, Value) {
    (400, json!({ "error": code }))
}

fn tokens() -> (u16, Value) {
    (
        200,
        json!({ "access_token": "at", "token_type": "Bearer", "expires_in": 300, "refresh_token": "rt" }),
    )
}

async fn run(
    issuer: &str,
) -> (
    Result<heph_auth::Tokens, AuthError>,
    Vec<Duration>,
    Vec<LoginEvent>,
) {
    let sleeps = Arc::new(Mutex::new(Vec::new()));
    let events = Arc::new(Mutex::new(Vec::new()));
    let (s, e) = (sleeps.clone(), events.clone());
    let result = device_login(
        &config(issuer),
        move |ev| e.lock().unwrap().push(ev),
        move |d| {
            s.lock().unwrap().push(d);
            async {}
        },
    )
    .await;
    let sleeps = sleeps.lock().unwrap().clone();
    let events = events.lock().unwrap().clone();
    (result, sleeps, events)
}

#[tokio::test]
async fn pending_and_slow_down_keep_polling_slower() {
    let (issuer, calls) = scripted(vec![
        error("authorization_pending"),
        error("slow_down"),
        error("authorization_pending"),
        tokens(),
    ])
    .await;
    let (result, sleeps, events) = run(&issuer).await;
    let tokens = result.unwrap();
    assert_eq!(tokens.access_token, "at");
    assert_eq!(tokens.refresh_token.as_deref(), Some("rt"));
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert!(matches!(&events[0], LoginEvent::Code { user_code, .. } if user_code == "ABCD-EFGH"));
    // The interval starts at 5 s and grows by 5 s after slow_down.
    assert_eq!(sleeps[0], Duration::from_secs(5));
    assert!(
        sleeps.last().unwrap() > &Duration::from_secs(5),
        "{sleeps:?}"
    );
    // Debug output never shows tokens.
    assert!(!format!("{tokens:?}").contains("at\""));
}

#[tokio::test]
async fn expired_and_denied_end_with_clear_messages() {
    let (issuer, _) = scripted(vec![error("authorization_pending"), error("expired_token")]).await;
    let err = run(&issuer).await.0.unwrap_err();
    assert!(matches!(err, AuthError::Denied(_)));
    assert!(err.to_string().contains("expired"), "{err}");

    let (issuer, _) = scripted(vec![error("access_denied")]).await;
    let err = run(&issuer).await.0.unwrap_err();
    assert!(err.to_string().contains("denied"), "{err}");
}

#[tokio::test]
async fn an_unreachable_issuer_is_a_network_error() {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let err = run(&format!("http://{addr}")).await.0.unwrap_err();
    assert!(matches!(err, AuthError::Network(_)), "{err:?}");
    assert!(err.to_string().contains("cannot reach the issuer"), "{err}");
}

#[tokio::test]
async fn redirects_are_not_followed() {
    // A discovery document elsewhere that counts who reads it.
    let followed = Arc::new(AtomicUsize::new(0));
    let counter = followed.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let elsewhere = format!("http://{}", listener.local_addr().unwrap());
    let doc_url = elsewhere.clone();
    let app = Router::new().route(
        "/.well-known/openid-configuration",
        get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let u = doc_url.clone();
            async move { Json(json!({ "issuer": u, "token_endpoint": format!("{u}/token") })) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    // The issuer only redirects there.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let target = format!("{elsewhere}/.well-known/openid-configuration");
    let app = Router::new().route(
        "/.well-known/openid-configuration",
        get(move || {
            let target = target.clone();
            async move { (StatusCode::FOUND, [("location", target)]) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let err = run(&issuer).await.0.unwrap_err();
    assert!(matches!(err, AuthError::Issuer(_)), "{err:?}");
    assert!(err.to_string().contains("302"), "{err}");
    assert_eq!(
        followed.load(Ordering::SeqCst),
        0,
        "the redirect was followed"
    );
}

fn outage() -> (u16, Value) {
    (503, json!({ "error": "temporarily_unavailable" }))
}

fn retrying(events: &[LoginEvent]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| match e {
            LoginEvent::Retrying { reason } => Some(reason.as_str()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn server_errors_mid_poll_are_retried_slower_with_one_notice() {
    let (issuer, calls) = scripted(vec![
        error("authorization_pending"),
        outage(),
        outage(),
        error("authorization_pending"),
        tokens(),
    ])
    .await;
    let (result, sleeps, events) = run(&issuer).await;
    assert_eq!(result.unwrap().access_token, "at");
    assert_eq!(calls.load(Ordering::SeqCst), 5);
    // The interval doubles on each failure and stays up afterwards.
    assert_eq!(sleeps, [5, 10, 20, 20].map(Duration::from_secs));
    let notices = retrying(&events);
    assert_eq!(notices.len(), 1, "{events:?}");
    assert!(notices[0].contains("503"), "{notices:?}");
    // Back to waiting for the user once the issuer answers.
    assert_eq!(events.last(), Some(&LoginEvent::Polling));
}

#[tokio::test]
async fn a_failure_never_polls_faster_than_slow_down_asked() {
    let (issuer, _) = scripted(vec![
        error("slow_down"),
        error("slow_down"),
        error("slow_down"),
        error("slow_down"),
        outage(),
        tokens(),
    ])
    .await;
    let (result, sleeps, _) = run(&issuer).await;
    result.unwrap();
    // 5 s + 4 × 5 s after the slow_downs; the failure must not lower it.
    assert_eq!(sleeps[3], Duration::from_secs(25));
    assert!(sleeps[4] >= Duration::from_secs(25), "{sleeps:?}");
}

#[tokio::test]
async fn a_token_endpoint_that_never_answers_ends_when_the_code_expires() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let app = issuer_app(&issuer, format!("http://{closed}/token"), 1);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let events = Arc::new(Mutex::new(Vec::new()));
    let e = events.clone();
    // The code lives 1 s; each wait is 50 ms whatever the interval.
    let result = tokio::time::timeout(
        Duration::from_secs(20),
        device_login(
            &config(&issuer),
            move |ev| e.lock().unwrap().push(ev),
            |_| tokio::time::sleep(Duration::from_millis(50)),
        ),
    )
    .await
    .expect("the login ends when the code expires");
    let err = result.unwrap_err();
    assert!(matches!(err, AuthError::Network(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("cannot reach the issuer"), "{text}");
    assert!(text.contains("expired"), "{text}");
    assert!(
        !text.contains("cannot reach the issuer: cannot reach"),
        "{text}"
    );
    let events = events.lock().unwrap().clone();
    assert_eq!(retrying(&events).len(), 1, "{events:?}");
}
