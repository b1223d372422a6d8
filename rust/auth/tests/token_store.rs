//! Token stores against the real thing: a Secret Service (gnome-keyring on a
//! private D-Bus session) and the kernel keyring, both provided by
//! tests/keyring-session.sh; and the 0600 file fallback when no keyring is
//! reachable. With HEPH_REQUIRE_KEYRING=1 (CI) a missing keyring fails the
//! test; elsewhere it is skipped with a note.

use std::process::Command;

use heph_auth::{AuthError, LoginConfig, Session, StoreKind, TokenStore, Tokens};

fn require_or_skip(kind: &str, err: impl std::fmt::Display) -> bool {
    if std::env::var("HEPH_REQUIRE_KEYRING").as_deref() == Ok("1") {
        panic!("{kind} is required here but unusable: {err} (run under tests/keyring-session.sh)");
    }
    eprintln!("skipping: {kind} unusable here ({err}); run under tests/keyring-session.sh");
    false
}

/// A login at an issuer nobody listens on (port 9): nothing may reach it.
fn test_login() -> LoginConfig {
    LoginConfig {
        issuer: "http://127.0.0.1:9".into(),
        client_id: "heph-cli".into(),
        audience: None,
    }
}

/// Tokens that do not expire during a test.
fn tokens(access: &str, refresh: Option<&str>) -> Tokens {
    Tokens {
        access_token: access.into(),
        refresh_token: refresh.map(Into::into),
        expires_at: u64::MAX / 2,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn round_trip(store: &TokenStore) {
    let key = format!(
        "https://issuer.example|heph-cli|http://127.0.0.1:{}",
        std::process::id()
    );
    store.set("access", &key, "access-secret").unwrap();
    store.set("refresh", &key, "refresh-secret").unwrap();
    assert_eq!(
        store.get("access", &key).unwrap().as_deref(),
        Some("access-secret")
    );
    assert_eq!(
        store.get("refresh", &key).unwrap().as_deref(),
        Some("refresh-secret")
    );
    store.set("access", &key, "rotated").unwrap();
    assert_eq!(
        store.get("access", &key).unwrap().as_deref(),
        Some("rotated")
    );
    store.delete("access", &key).unwrap();
    store.delete("refresh", &key).unwrap();
    assert_eq!(store.get("access", &key).unwrap(), None);
    store.delete("access", &key).unwrap();
}

#[test]
fn secret_service_stores_tokens() {
    let dir = tempfile::tempdir().unwrap();
    match TokenStore::open_kind(dir.path(), StoreKind::SecretService) {
        Ok(store) => round_trip(&store),
        Err(e) => {
            require_or_skip("the Secret Service", e);
        }
    }
}

#[test]
fn kernel_keyring_stores_tokens() {
    let dir = tempfile::tempdir().unwrap();
    match TokenStore::open_kind(dir.path(), StoreKind::KernelKeyring) {
        Ok(store) => round_trip(&store),
        Err(e) => {
            require_or_skip("the kernel keyring", e);
        }
    }
}

#[test]
fn the_best_store_is_a_keyring_when_there_is_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = TokenStore::open(dir.path()).unwrap();
    if store.kind() == StoreKind::File {
        require_or_skip(
            "a keyring",
            store.fallback_reason.clone().unwrap_or_default(),
        );
        return;
    }
    assert!(store.fallback_reason.is_none());
}

/// Child side of the fallback tests; ignored in a normal run, the parents
/// run it by name.
#[test]
#[ignore = "child process of the store fallback tests"]
fn child_picks_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = TokenStore::open(dir.path()).unwrap();
    println!("kind={:?}", store.kind());
    println!("describe={}", store.describe());
    // What :checkhealth shows later for a login stored now.
    let session = Session::new(dir.path());
    let config = test_login();
    let tokens = tokens("a", None);
    session
        .store_login(&config, "http://127.0.0.1:9", tokens)
        .unwrap();
    println!("health={}", session.store_description().unwrap());
}

#[test]
fn no_reachable_keyring_falls_back_to_the_file_with_a_reason() {
    if Command::new("keyctl").arg("--version").output().is_err() {
        require_or_skip("keyctl", "not installed");
        return;
    }
    // No D-Bus session, and a session keyring the process may not write.
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("keyctl")
        .args([
            "session",
            "-",
            "sh",
            "-c",
            "keyctl setperm @s 0 && exec \"$0\" --ignored --exact child_picks_a_store --nocapture",
        ])
        .arg(&exe)
        .env("HEPH_TEST_STORE_CHILD", "1")
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/nonexistent/heph-test-bus",
        )
        .env_remove("HEPH_TOKEN_STORE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("kind=File"), "{stdout}");
    assert!(stdout.contains("no usable keyring"), "{stdout}");
    // The reason is kept for :checkhealth, not only said at login.
    let health = stdout.lines().find(|l| l.starts_with("health=")).unwrap();
    assert!(
        health.contains("(mode 0600): no usable keyring"),
        "{health}"
    );
}

#[test]
fn an_unknown_forced_store_is_refused_by_name() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "child_picks_a_store", "--nocapture"])
        .env("HEPH_TEST_STORE_CHILD", "1")
        .env("HEPH_TOKEN_STORE", "wallet")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("wallet"), "{stderr}");
    assert!(stderr.contains("is not a token store"), "{stderr}");
}

/// Child side of the cross-process test; ignored in a normal run.
#[test]
#[ignore = "child process of the cross-process token test"]
fn child_reads_a_token() {
    let kind = std::env::var("HEPH_TEST_READ_KIND").expect("run by its parent test");
    let key = std::env::var("HEPH_TEST_READ_KEY").expect("run by its parent test");
    let kind = if kind == "ss" {
        StoreKind::SecretService
    } else {
        StoreKind::KernelKeyring
    };
    let dir = tempfile::tempdir().unwrap();
    let store = TokenStore::open_kind(dir.path(), kind).unwrap();
    println!("read={:?}", store.get("access", &key).unwrap());
}

#[test]
fn another_process_reads_what_one_stored() {
    for (kind, name) in [
        (StoreKind::SecretService, "ss"),
        (StoreKind::KernelKeyring, "kk"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let store = match TokenStore::open_kind(dir.path(), kind) {
            Ok(store) => store,
            Err(e) => {
                require_or_skip(name, e);
                continue;
            }
        };
        let key = format!(
            "http://127.0.0.1:1|heph-cli|http://127.0.0.1:{}/{name}",
            std::process::id()
        );
        store.set("access", &key, "shared-secret").unwrap();
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "child_reads_a_token", "--nocapture"])
            .env("HEPH_TEST_READ_KIND", name)
            .env("HEPH_TEST_READ_KEY", &key)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        store.delete("access", &key).unwrap();
        assert!(
            stdout.contains("read=Some(\"shared-secret\")"),
            "{name}: {stdout}"
        );
    }
}

#[test]
fn tokens_removed_from_the_keyring_mean_login_needed() {
    let dir = tempfile::tempdir().unwrap();
    let session = Session::new(dir.path());
    let config = test_login();
    let hub = format!("http://127.0.0.1:{}/removed", std::process::id());
    let tokens = tokens("access-secret", Some("refresh-secret"));
    session.store_login(&config, &hub, tokens).unwrap();
    let stored = session.load().unwrap().unwrap();
    if stored.token_store == StoreKind::File {
        require_or_skip("a keyring", "the file store was chosen");
        return;
    }
    let runtime = runtime();
    let token = runtime.block_on(session.access_token(&hub)).unwrap();
    assert_eq!(token.as_deref(), Some("access-secret"));
    // The user clears them in their keyring manager.
    let store = TokenStore::attach(dir.path(), stored.token_store).unwrap();
    let data_dir = std::fs::canonicalize(dir.path()).unwrap();
    let key = format!("{}|heph-cli|{hub}|{}", config.issuer, data_dir.display());
    store.delete("access", &key).unwrap();
    store.delete("refresh", &key).unwrap();
    // No empty bearer and no refresh attempt (the issuer is a closed port):
    // log in again.
    let err = runtime.block_on(session.access_token(&hub)).unwrap_err();
    assert!(matches!(err, AuthError::LoginNeeded), "{err:?}");
    session.logout().unwrap();
}

/// Two replicas logged in to one hub keep their own tokens: each rotates
/// its own refresh token under its own lock, and logging out of one leaves
/// the other logged in.
#[test]
fn two_replicas_on_one_hub_keep_their_own_tokens() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (sa, sb) = (Session::new(a.path()), Session::new(b.path()));
    let config = test_login();
    let hub = format!("http://127.0.0.1:{}/shared", std::process::id());
    sa.store_login(&config, &hub, tokens("access-a", Some("refresh-a")))
        .unwrap();
    sb.store_login(&config, &hub, tokens("access-b", Some("refresh-b")))
        .unwrap();
    if sa.load().unwrap().unwrap().token_store == StoreKind::File {
        require_or_skip("a keyring", "the file store was chosen");
        return;
    }
    let runtime = runtime();
    assert_eq!(
        runtime.block_on(sa.access_token(&hub)).unwrap().as_deref(),
        Some("access-a")
    );
    assert_eq!(
        runtime.block_on(sb.access_token(&hub)).unwrap().as_deref(),
        Some("access-b")
    );
    sa.logout().unwrap();
    assert_eq!(
        runtime.block_on(sb.access_token(&hub)).unwrap().as_deref(),
        Some("access-b")
    );
    sb.logout().unwrap();
}

#[cfg(target_os = "linux")]
#[test]
fn another_platforms_store_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    for kind in [StoreKind::Keychain, StoreKind::CredentialManager] {
        let err = TokenStore::open_kind(dir.path(), kind)
            .err()
            .expect("not on Linux")
            .to_string();
        assert!(err.contains(kind.label()), "{err}");
        assert!(err.contains("on this platform"), "{err}");
    }
}

#[test]
fn a_login_matches_its_hub_however_the_url_was_spelled() {
    let dir = tempfile::tempdir().unwrap();
    let session = Session::new(dir.path());
    let config = test_login();
    let hub = format!("http://127.0.0.1:{}/spelled", std::process::id());
    let tokens = tokens("access-secret", None);
    // As typed on the command line, with a stray space and slash.
    session
        .store_login(&config, &format!(" {hub}/ "), tokens)
        .unwrap();
    let runtime = runtime();
    for asked in [hub.clone(), format!("{hub}/")] {
        let token = runtime.block_on(session.access_token(&asked)).unwrap();
        assert_eq!(token.as_deref(), Some("access-secret"), "{asked}");
    }
    // Another hub gets no token.
    let other = runtime
        .block_on(session.access_token("http://127.0.0.1:1"))
        .unwrap();
    assert_eq!(other, None);
    session.logout().unwrap();
}
