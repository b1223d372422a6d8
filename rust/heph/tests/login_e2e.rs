//! Login end to end: a real OIDC provider (oidc-provider on Node, from
//! tests/e2e/oidc), the real hub verifying its JWT access tokens, and the
//! real `heph` CLI doing the device flow, refreshing rotated tokens, and
//! syncing.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod common;

use common::{Proc, BIN};
const AUDIENCE: &str = "urn:heph:hub";

fn oidc_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/oidc")
}

/// Starts the provider; returns it and its issuer URL.
fn provider(access_ttl: u32) -> (Proc, String) {
    let dir = oidc_dir();
    assert!(
        dir.join("node_modules/oidc-provider").exists(),
        "oidc-provider is not installed: run `npm ci` in tests/e2e/oidc (tests/all.sh does)"
    );
    let mut child = Command::new("node")
        .arg("provider.js")
        .args(["--access-ttl", &access_ttl.to_string()])
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let issuer = line
        .trim()
        .strip_prefix("issuer ")
        .expect("provider did not start")
        .to_owned();
    (Proc(child), issuer)
}

fn hub(issuer: &str, dir: &Path) -> (Proc, String) {
    let (child, url) = common::spawn_hub(
        &dir.join("hub.db"),
        "127.0.0.1:0",
        &[
            "--issuer",
            issuer,
            "--audience",
            AUDIENCE,
            "--owner-sub",
            "alice",
        ],
    );
    (Proc(child), url)
}

fn http() -> reqwest::Client {
    common::http::client(Duration::from_secs(10))
}

fn stats(issuer: &str) -> serde_json::Value {
    let reply = common::http::send(http().get(format!("{issuer}/test/stats"))).unwrap();
    serde_json::from_str(&reply.body).unwrap()
}

struct Device {
    dir: tempfile::TempDir,
    /// Force the file token store (tests that tamper with stored tokens).
    file_store: bool,
}

impl Device {
    /// A device using the best token store available (a keyring under
    /// tests/keyring-session.sh).
    fn new() -> Self {
        Device {
            dir: tempfile::tempdir().unwrap(),
            file_store: false,
        }
    }

    fn with_file_store() -> Self {
        Device {
            dir: tempfile::tempdir().unwrap(),
            file_store: true,
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--data-dir")
            .arg(self.dir.path())
            .args(args)
            .env("HEPH_CONFIG", self.dir.path().join("none.toml"));
        if self.file_store {
            cmd.env("HEPH_TOKEN_STORE", "file");
        } else {
            cmd.env_remove("HEPH_TOKEN_STORE");
        }
        cmd
    }

    /// `heph status --json`.
    fn status(&self) -> serde_json::Value {
        let out = self.cmd(&["status", "--json"]).output().unwrap();
        assert!(out.status.success());
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn run(&self, args: &[&str]) -> (bool, String) {
        let out = self.cmd(args).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `heph login`, approving the code at the provider as `sub`.
    fn login(&self, issuer: &str, hub: &str, sub: &str) {
        self.login_output(issuer, hub, sub);
    }

    /// `heph login` as in [`Device::login`]; returns all it printed.
    fn login_output(&self, issuer: &str, hub: &str, sub: &str) -> String {
        let mut child = self
            .cmd(&[
                "login",
                "--issuer",
                issuer,
                "--client-id",
                "heph-cli",
                "--audience",
                AUDIENCE,
                "--hub",
                hub,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let code = line
            .trim()
            .strip_prefix("user_code ")
            .expect("no user code printed")
            .to_owned();
        let r = common::http::send(
            http()
                .post(format!("{issuer}/test/approve"))
                .body(serde_json::json!({ "user_code": code, "sub": sub }).to_string()),
        )
        .unwrap();
        assert_eq!(r.status, 204);
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "login failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        format!(
            "{line}{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// The session file.
    fn session_path(&self) -> PathBuf {
        self.dir.path().join("auth/session.json")
    }

    /// The session file's contents.
    fn session_json(&self) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(self.session_path()).unwrap()).unwrap()
    }

    /// Sets `field` of the stored session, as another process or a revoked
    /// grant would leave it (file store only, for the tokens).
    fn set_session_field(&self, field: &str, value: serde_json::Value) {
        let mut stored = self.session_json();
        stored[field] = value;
        std::fs::write(self.session_path(), stored.to_string()).unwrap();
    }

    /// Marks the stored access token expired.
    fn expire_access_token(&self) {
        self.set_session_field("expires_at", serde_json::json!(0));
    }

    /// The tokens in the session file (file store only).
    fn stored_tokens(&self) -> Vec<String> {
        let stored = self.session_json();
        ["access_token", "refresh_token"]
            .iter()
            .map(|k| stored[k].as_str().expect("a token in the file").to_owned())
            .collect()
    }
}

#[test]
fn login_sync_refresh_logout() {
    let (_provider, issuer) = provider(300);
    let dir = tempfile::tempdir().unwrap();
    let (_hub, hub_url) = hub(&issuer, dir.path());

    let alice = Device::new();
    alice.run(&["add", "before login"]);
    let (ok, err) = alice.run(&["sync", "--hub", &hub_url]);
    assert!(!ok);
    assert!(err.contains("401") && err.contains("login"), "{err}");

    alice.login(&issuer, &hub_url, "alice");
    let (ok, err) = alice.run(&["sync", "--hub", &hub_url]);
    assert!(ok, "{err}");
    // Tokens are in a file only the user can read, and nowhere in output.
    let session = alice.session_path();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&session).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let stored = alice.session_json();
    if stored["token_store"] != "file" {
        // In a keyring, the file keeps no secrets.
        assert!(stored.get("access_token").is_none() && stored.get("refresh_token").is_none());
    }
    let status = alice.status();
    assert_eq!(status["login"], "logged in");
    assert!(status["token_store"].is_string(), "{status}");

    // Bob is a valid user of the provider, but not the hub's owner.
    let bob = Device::new();
    bob.login(&issuer, &hub_url, "bob");
    let (ok, err) = bob.run(&["sync", "--hub", &hub_url]);
    assert!(!ok);
    assert!(err.contains("403"), "{err}");
    assert!(err.contains("log in as the owner"), "{err}");

    let (ok, _) = alice.run(&["logout"]);
    assert!(ok);
    assert!(!session.exists());
    let status = alice.status();
    assert_eq!(status["login"], "not logged in");
    assert!(status["token_store"].is_null(), "{status}");
    let (ok, err) = alice.run(&["sync", "--hub", &hub_url]);
    assert!(!ok && err.contains("401"), "{err}");
}

#[test]
fn concurrent_refreshes_use_the_rotated_token_once() {
    let (_provider, issuer) = provider(300);
    let dir = tempfile::tempdir().unwrap();
    let (_hub, hub_url) = hub(&issuer, dir.path());
    let alice = Device::with_file_store();
    alice.login(&issuer, &hub_url, "alice");
    // The stored access token has expired: every sync below must refresh
    // first, and the new token lives long enough for all of them.
    alice.expire_access_token();
    let before = stats(&issuer);
    let syncs: Vec<Child> = (0..5)
        .map(|_| {
            alice
                .cmd(&["sync", "--hub", &hub_url])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in syncs {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let after = stats(&issuer);
    assert_eq!(
        after["refresh_failed"], before["refresh_failed"],
        "a rotated refresh token was reused"
    );
    let refreshes =
        after["refresh_token"].as_u64().unwrap() - before["refresh_token"].as_u64().unwrap();
    assert_eq!(
        refreshes, 1,
        "one process refreshes, the others use its token"
    );
    // The grant was never revoked: the rotated refresh token works next time.
    alice.expire_access_token();
    let (ok, err) = alice.run(&["sync", "--hub", &hub_url]);
    assert!(ok, "{err}");
    assert_eq!(
        stats(&issuer)["refresh_token"].as_u64().unwrap(),
        after["refresh_token"].as_u64().unwrap() + 1
    );
}

#[test]
fn a_rejected_refresh_means_login_needed() {
    let (_provider, issuer) = provider(2);
    let dir = tempfile::tempdir().unwrap();
    let (_hub, hub_url) = hub(&issuer, dir.path());
    let alice = Device::with_file_store();
    alice.login(&issuer, &hub_url, "alice");
    // Break the stored refresh token, as a revoked grant would.
    alice.set_session_field("refresh_token", serde_json::json!("revoked-or-reused"));
    std::thread::sleep(Duration::from_millis(2100));
    let (ok, err) = alice.run(&["sync", "--hub", &hub_url]);
    assert!(!ok);
    assert!(err.contains("login needed"), "{err}");
    let failed_before = stats(&issuer)["refresh_failed"].as_u64().unwrap();
    // No retry loop: the next sync does not ask the provider again.
    let (ok, err) = alice.run(&["sync", "--hub", &hub_url]);
    assert!(!ok && err.contains("login needed"), "{err}");
    let status = alice.status();
    assert_eq!(status["login"], "login needed");
    assert!(
        status["token_store"].as_str().unwrap().starts_with("file "),
        "{status}"
    );
    assert_eq!(
        stats(&issuer)["refresh_failed"].as_u64().unwrap(),
        failed_before
    );
}

#[test]
fn a_process_killed_mid_refresh_does_not_wedge_the_others() {
    let (_provider, issuer) = provider(2);
    let dir = tempfile::tempdir().unwrap();
    let (_hub, hub_url) = hub(&issuer, dir.path());
    let alice = Device::with_file_store();
    alice.login(&issuer, &hub_url, "alice");
    // A process died holding the refresh lock, after marking the refresh
    // in flight (its request never reached the provider).
    let lock = alice.dir.path().join("auth/refresh.lock");
    let mut holder = Command::new("python3")
        .args(["-c", "import fcntl,sys,time; f=open(sys.argv[1],'w'); fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)"])
        .arg(&lock)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    alice.set_session_field("state", serde_json::json!("refreshing"));
    std::thread::sleep(Duration::from_millis(2100));
    let waiting = alice
        .cmd(&["sync", "--hub", &hub_url])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    holder.kill().unwrap();
    holder.wait().unwrap();
    let out = waiting.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ok, err) = alice.run(&["sync", "--hub", &hub_url]);
    assert!(ok, "{err}");
}

#[test]
fn tokens_appear_in_no_output() {
    let (_provider, issuer) = provider(300);
    let dir = tempfile::tempdir().unwrap();
    let (_hub, hub_url) = hub(&issuer, dir.path());
    // The file store, so the test can read what the tokens are.
    let alice = Device::with_file_store();
    let mut printed = alice.login_output(&issuer, &hub_url, "alice");
    alice.run(&["add", "a note"]);
    for args in [
        vec!["sync", "--hub", hub_url.as_str()],
        vec!["status"],
        vec!["status", "--json"],
    ] {
        let out = alice.cmd(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        printed.push_str(&String::from_utf8_lossy(&out.stdout));
        printed.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    // Refused by the hub (another subject): the error names no token.
    let bob = Device::with_file_store();
    printed.push_str(&bob.login_output(&issuer, &hub_url, "bob"));
    let (ok, err) = bob.run(&["sync", "--hub", &hub_url]);
    assert!(!ok && err.contains("403"), "{err}");
    printed.push_str(&err);
    assert!(printed.contains("Logged in"), "{printed}");
    for token in alice.stored_tokens().iter().chain(&bob.stored_tokens()) {
        assert!(token.len() > 20, "not a real token: {token}");
        assert!(
            !printed.contains(token.as_str()),
            "a token was printed:\n{printed}"
        );
    }
}

/// Uses `refresh_token` at the issuer's token endpoint, as a copy of it
/// left anywhere could: the reply's status and body.
fn redeem(issuer: &str, refresh_token: &str) -> (u16, String) {
    let discovery =
        common::http::send(http().get(format!("{issuer}/.well-known/openid-configuration")))
            .unwrap()
            .json();
    let token_url = discovery["token_endpoint"].as_str().unwrap().to_owned();
    let encode = |v: &str| {
        v.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    let form = format!(
        "grant_type=refresh_token&refresh_token={}&client_id=heph-cli",
        encode(refresh_token)
    );
    let reply = common::http::send(
        http()
            .post(token_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form),
    )
    .unwrap();
    (reply.status, reply.body)
}

/// A logout revokes the refresh token at the issuer (RFC 7009): a copy of
/// it kept elsewhere (a keyring backup, an old disk) gets no more tokens.
#[test]
fn a_logout_revokes_the_refresh_token_at_the_issuer() {
    let (_provider, issuer) = provider(300);
    let dir = tempfile::tempdir().unwrap();
    let (_hub, hub_url) = hub(&issuer, dir.path());
    let alice = Device::with_file_store();
    alice.login(&issuer, &hub_url, "alice");
    let copy = alice.stored_tokens()[1].clone();

    let (ok, err) = alice.run(&["logout"]);
    assert!(ok, "{err}");
    assert!(err.contains("Logged out."), "{err}");
    assert!(!err.contains("not revoked"), "{err}");
    // (The reply is not printed: it would hold tokens when the copy works.)
    let (status, body) = redeem(&issuer, &copy);
    assert_eq!(status, 400, "the copy still works");
    assert!(
        body.contains("invalid_grant"),
        "not refused as invalid_grant"
    );
}

/// A logout while a refresh waits for the issuer stays a logout: the
/// refresh's answer is for a session that is gone, and is not saved.
#[test]
fn a_logout_during_a_refresh_stays_a_logout() {
    let (provider, issuer) = provider(300);
    let dir = tempfile::tempdir().unwrap();
    let (_hub, hub_url) = hub(&issuer, dir.path());
    let alice = Device::with_file_store();
    alice.login(&issuer, &hub_url, "alice");
    alice.expire_access_token();
    // The issuer stops answering: the refresh waits for it.
    let pid = provider.0.id().to_string();
    let signal = |sig: &str| {
        assert!(Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success())
    };
    signal("-STOP");
    let sync = alice
        .cmd(&["sync", "--hub", &hub_url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let refreshing = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        alice.session_path().exists() && alice.session_json()["state"] == "refreshing"
    });
    let (ok, err) = alice.run(&["logout"]);
    signal("-CONT");
    let sync = sync.wait_with_output().unwrap();
    assert!(refreshing, "the refresh never started");
    assert!(ok, "{err}");
    // The issuer did not answer the revocation either: the logout went on
    // without it, and says what that leaves.
    assert!(
        err.contains("not revoked at the issuer") && err.contains("did not answer"),
        "{err}"
    );
    assert!(
        !alice.session_path().exists(),
        "the refresh brought the session back; sync said: {}",
        String::from_utf8_lossy(&sync.stderr)
    );
    assert_eq!(alice.status()["login"], "not logged in");
}

/// A hub that refuses even a freshly refreshed token (it wants another
/// audience, trusts another issuer) gets one refresh, not one per pass:
/// the login is marked as needing the user, and later syncs say so
/// without asking the issuer again.
#[test]
fn a_hub_refusing_a_fresh_token_costs_one_refresh_not_one_per_pass() {
    let (_provider, issuer) = provider(300);
    let dir = tempfile::tempdir().unwrap();
    let (child, hub_url) = common::spawn_hub(
        &dir.path().join("hub.db"),
        "127.0.0.1:0",
        &[
            "--issuer",
            &issuer,
            "--audience",
            "urn:another:hub",
            "--owner-sub",
            "alice",
        ],
    );
    let _hub = Proc(child);
    let alice = Device::with_file_store();
    alice.login(&issuer, &hub_url, "alice");
    let before = stats(&issuer)["refresh_token"].as_u64().unwrap();
    let (ok, err) = alice.run(&["sync", "--hub", &hub_url]);
    assert!(!ok && err.contains("401"), "{err}");
    assert_eq!(
        stats(&issuer)["refresh_token"].as_u64().unwrap(),
        before + 1
    );
    for _ in 0..3 {
        let (ok, err) = alice.run(&["sync", "--hub", &hub_url]);
        assert!(!ok && err.contains("login needed"), "{err}");
    }
    assert_eq!(
        stats(&issuer)["refresh_token"].as_u64().unwrap(),
        before + 1,
        "every pass refreshed again"
    );
    assert_eq!(alice.status()["login"], "login needed");
    // The cause may pass (a key rotation the hub had not caught up with):
    // once the wait is over, one more refresh, then waiting again.
    let refused_at = alice.session_json()["refused_at"].as_u64().unwrap();
    alice.set_session_field("refused_at", serde_json::json!(refused_at - 15 * 60));
    for _ in 0..2 {
        let (ok, _) = alice.run(&["sync", "--hub", &hub_url]);
        assert!(!ok);
    }
    assert_eq!(
        stats(&issuer)["refresh_token"].as_u64().unwrap(),
        before + 2
    );
    // A new login starts over.
    alice.login(&issuer, &hub_url, "alice");
    assert_eq!(alice.status()["login"], "logged in");
    assert!(alice.session_json().get("refused_at").is_none());
}

/// A logout that cannot reach the keyring holding the tokens changes
/// nothing and says so; where the keyring is reachable it forgets them.
#[test]
fn a_logout_without_the_keyring_forgets_nothing_and_says_so() {
    let alice = Device::new();
    let session = heph_auth::Session::new(alice.dir.path());
    let config = heph_auth::LoginConfig {
        issuer: "http://127.0.0.1:9".into(),
        client_id: "heph-cli".into(),
        audience: Some(AUDIENCE.into()),
    };
    let tokens = heph_auth::Tokens {
        access_token: "access-secret".into(),
        refresh_token: Some("refresh-secret".into()),
        expires_at: 4_000_000_000,
    };
    let store = session
        .store_login(&config, "http://127.0.0.1:9", tokens)
        .unwrap();
    if store.kind() == heph_auth::StoreKind::File {
        eprintln!("no keyring in this session (run under tests/keyring-session.sh): skipped");
        return;
    }
    let out = alice
        .cmd(&["logout"])
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env("HEPH_TOKEN_STORE", "secret-service")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if store.kind() == heph_auth::StoreKind::SecretService {
        assert!(!out.status.success(), "{err}");
        assert!(err.contains("nothing was changed"), "{err}");
        assert!(session.load().unwrap().is_some(), "the login is kept");
    }
    let (ok, err) = alice.run(&["logout"]);
    assert!(ok, "{err}");
    assert!(session.load().unwrap().is_none());
}

/// A login is for one hub: `heph status` of another says so instead of
/// "logged in", and a login for another hub forgets the first one's tokens
/// in the keyring (nothing would name them again).
#[test]
fn a_login_is_for_its_hub_and_a_new_one_forgets_the_old_tokens() {
    let (_provider, issuer) = provider(300);
    let dir = tempfile::tempdir().unwrap();
    let (_hub, hub_url) = hub(&issuer, dir.path());
    let alice = Device::new();
    alice.login(&issuer, &hub_url, "alice");
    let first = std::fs::read(alice.session_path()).unwrap();
    let other = "http://127.0.0.1:9";
    let status = alice
        .cmd(&["status", "--hub", other, "--json"])
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(
        status["login"],
        format!("not logged in to this hub (the login is for {hub_url})"),
        "{status}"
    );
    alice.login(&issuer, other, "alice");
    let keyring = alice.session_json()["token_store"] != "file";
    // The first login's session file put back: its tokens are gone.
    std::fs::write(alice.session_path(), first).unwrap();
    if keyring {
        assert_eq!(alice.status()["login"], "login needed");
    }
}

/// A token store forced by `HEPH_TOKEN_STORE` that cannot be used here is
/// refused before the login asks the user anything (found out after the
/// approval, the tokens would be lost).
#[test]
fn a_forced_token_store_that_cannot_work_is_refused_before_the_code() {
    let alice = Device::new();
    let out = alice
        .cmd(&[
            "login",
            "--issuer",
            "http://127.0.0.1:9",
            "--client-id",
            "heph-cli",
            "--hub",
            "http://127.0.0.1:9",
        ])
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env("HEPH_TOKEN_STORE", "secret-service")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("Secret Service"), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("user_code"));
}
