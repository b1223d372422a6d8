//! Join tokens against the real `heph hub` over loopback: one winner among
//! racing redeems, distinct refusals, idempotent retries, revocation,
//! the capture scope, and `kill -9` at any point of a redeem.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{Proc, BIN};
use heph_hub::join::{Claims, HubSecret, Scope};
use serde_json::{json, Value};

/// A hub database in its own directory, driven by the owner's CLI.
struct Owner {
    dir: tempfile::TempDir,
}

impl Owner {
    fn new() -> Self {
        Owner {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("hub.db")
    }

    /// Runs `heph hub ARGS --db DB`: (success, stdout, stderr).
    fn hub_cmd(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(BIN)
            .arg("--data-dir")
            .arg(self.dir.path())
            .arg("hub")
            .args(args)
            .arg("--db")
            .arg(self.db())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn token(&self, extra: &[&str]) -> String {
        let mut args = vec!["join-token", "create"];
        args.extend_from_slice(extra);
        let (ok, out, err) = self.hub_cmd(&args);
        assert!(ok, "{err}");
        assert!(
            !err.contains(out.trim()),
            "the token is printed once, on stdout"
        );
        out.trim().to_owned()
    }

    fn list(&self, what: &[&str]) -> Value {
        let mut args = what.to_vec();
        args.push("--json");
        let (ok, out, err) = self.hub_cmd(&args);
        assert!(ok, "{err}");
        serde_json::from_str(&out).unwrap()
    }

    fn token_state(&self, id: &str) -> String {
        let tokens = self.list(&["join-token", "list"]);
        tokens
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .map(|t| t["state"].as_str().unwrap().to_owned())
            .unwrap_or_default()
    }

    fn serve(&self, env: &[(&str, &str)]) -> (Proc, String) {
        let (child, url) = common::spawn_hub_with_env(&self.db(), "127.0.0.1:0", &[], env);
        (Proc(child), url)
    }
}

fn http() -> reqwest::Client {
    common::http::client(std::time::Duration::from_secs(30))
}

/// `POST /v1/join`: (status, reply); status 0 when the hub did not answer.
fn redeem(url: &str, token: &str, device_key: &str) -> (u16, Value) {
    match common::http::send(
        http()
            .post(format!("{url}/v1/join"))
            .json(&json!({ "token": token, "device_key": device_key, "device_name": "test" })),
    ) {
        Ok(r) => (r.status, r.json()),
        Err(_) => (0, Value::Null),
    }
}

fn key(n: usize) -> String {
    format!("device-key-{n:04}-0123456789abcdef")
}

fn op(n: u64) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let node = format!("0190f0f0-0000-7000-8000-{n:012x}");
    json!({
        "op_id": format!("0190f0f0-0000-7000-9000-{n:012x}"),
        "hlc": format!("{now:013}-0000-test0000"),
        "origin": "test0000",
        "node": node,
        "action": { "create": { "kind": "task", "title": format!("task {n}") } },
    })
}

fn push(url: &str, credential: Option<&str>, n: u64) -> (u16, String) {
    let mut request = http()
        .post(format!("{url}/v1/ops"))
        .json(&json!({ "ops": [op(n)] }));
    if let Some(c) = credential {
        request = request.bearer_auth(c);
    }
    let r = common::http::send(request).unwrap();
    (r.status, r.body)
}

fn pull(url: &str, credential: &str) -> (u16, String) {
    let r = common::http::send(
        http()
            .get(format!("{url}/v1/ops?after=0"))
            .bearer_auth(credential),
    )
    .unwrap();
    (r.status, r.body)
}

fn token_id(token: &str) -> String {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["id"].as_str().unwrap().to_owned()
}

#[test]
fn twenty_racing_redeems_make_one_credential_and_the_winner_may_retry() {
    let owner = Owner::new();
    let token = owner.token(&["--label", "phone"]);
    let (_hub, url) = owner.serve(&[]);
    let results: Vec<(usize, u16, Value)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|n| {
                let (url, token) = (&url, &token);
                s.spawn(move || {
                    let (status, reply) = redeem(url, token, &key(n));
                    (n, status, reply)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners: Vec<_> = results.iter().filter(|r| r.1 == 200).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for (_, status, reply) in results.iter().filter(|r| r.1 != 200) {
        assert_eq!(*status, 409, "{reply}");
        assert_eq!(reply["code"], "used");
        assert!(reply["error"].as_str().unwrap().contains("already used"));
    }
    let (winner, _, reply) = winners[0];
    assert_eq!(reply["label"], "phone");
    assert_eq!(reply["scope"], "full");
    let credential = reply["credential"].as_str().unwrap();

    // The winner's lost reply: the retry gets the same credential.
    let (status, again) = redeem(&url, &token, &key(*winner));
    assert_eq!(status, 200);
    assert_eq!(again["credential"], reply["credential"]);
    assert_eq!(push(&url, Some(credential), 1).0, 200);
    assert_eq!(pull(&url, credential).0, 200);

    assert_eq!(owner.token_state(&token_id(&token)), "consumed");
    let devices = owner.list(&["devices"]);
    assert_eq!(devices.as_array().unwrap().len(), 1, "{devices}");
    assert_eq!(devices[0]["label"], "phone");
    // Only hashes are kept: neither the token nor the credential is in
    // the database.
    let db = std::fs::read(owner.db()).unwrap_or_default();
    let wal = std::fs::read(owner.db().with_extension("db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(credential) && !text.contains(&token));
    }
}

#[test]
fn refused_tokens_say_why() {
    let owner = Owner::new();
    let aborted = owner.token(&[]);
    let (ok, _, err) = owner.hub_cmd(&["join-token", "abort", &token_id(&aborted)]);
    assert!(ok, "{err}");
    let good = owner.token(&[]);
    let secret = HubSecret::load(&HubSecret::path_for(&owner.db()))
        .unwrap()
        .unwrap();
    let expired = secret.sign(&Claims {
        hub: secret.hub_id(),
        id: "00000000dead".into(),
        exp: 1_000,
        label: "old".into(),
        scope: Scope::Full,
    });
    let other = HubSecret::from_key([9; 32]);
    let other_hubs = other.sign(&Claims {
        hub: other.hub_id(),
        id: "00000000beef".into(),
        exp: 4_000_000_000,
        label: "x".into(),
        scope: Scope::Full,
    });
    // Change the signature's first character: every bit of it is used (the
    // last one has padding bits a strict decoder refuses as malformed).
    let dot = good.rfind('.').expect("a token has a signature part") + 1;
    let first = &good[dot..=dot];
    let tampered = format!(
        "{}{}{}",
        &good[..dot],
        if first == "A" { "B" } else { "A" },
        &good[dot + 1..]
    );

    let (_hub, url) = owner.serve(&[]);
    let mut messages = Vec::new();
    for (token, status, code) in [
        (&expired, 410, "expired"),
        (&aborted, 410, "aborted"),
        (&tampered, 403, "bad_signature"),
        (&other_hubs, 403, "other_hub"),
        (&"not a token".to_owned(), 400, "malformed"),
    ] {
        let (got, reply) = redeem(&url, token, &key(1));
        assert_eq!(
            (got, reply["code"].as_str().unwrap()),
            (status, code),
            "{reply}"
        );
        messages.push(reply["error"].as_str().unwrap().to_owned());
    }
    let mut distinct = messages.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), messages.len(), "{messages:?}");
    // None of the refusals used up the good token.
    assert_eq!(redeem(&url, &good, &key(2)).0, 200);
    // An expired token registered on first sight is listed as expired.
    assert_eq!(owner.token_state("00000000dead"), "expired");
    assert_eq!(owner.token_state(&token_id(&aborted)), "aborted");
    // Cancelling them says what they were, not "cancelled".
    let (ok, _, err) = owner.hub_cmd(&["join-token", "abort", "00000000dead"]);
    assert!(ok && err.contains("had expired already"), "{err}");
    let (ok, _, err) = owner.hub_cmd(&["join-token", "abort", &token_id(&aborted)]);
    assert!(ok && err.contains("was cancelled already"), "{err}");
    let (ok, _, err) = owner.hub_cmd(&["join-token", "abort", &token_id(&good)]);
    assert!(!ok && err.contains("already used"), "{err}");
}

#[test]
fn revocation_and_the_capture_scope_take_effect_on_the_next_request() {
    let owner = Owner::new();
    let (_hub, url) = owner.serve(&[]);
    // No token yet: the loopback hub is open, as before.
    assert_eq!(push(&url, None, 1).0, 200);
    let full = owner.token(&["--label", "laptop"]);
    let capture = owner.token(&["--label", "shortcut", "--scope", "capture"]);
    // From the first token on, every device needs a credential.
    let (status, body) = push(&url, None, 2);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("heph join"), "{body}");

    let (_, laptop) = redeem(&url, &full, &key(1));
    let laptop = laptop["credential"].as_str().unwrap().to_owned();
    let (_, phone) = redeem(&url, &capture, &key(2));
    assert_eq!(phone["scope"], "capture");
    let phone = phone["credential"].as_str().unwrap().to_owned();

    assert_eq!(push(&url, Some(&phone), 3).0, 200);
    let (status, body) = pull(&url, &phone);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("capture"), "{body}");
    assert_eq!(pull(&url, &laptop).0, 200);

    // The one-line curl of doc/auth.md adds a task with the capture
    // credential; the laptop pulls it.
    let out = Command::new("curl")
        .args(["-fsS", "-H"])
        .arg(format!("Authorization: Bearer {phone}"))
        .args(["-H", "Content-Type: application/json"])
        .args(["-d", r#"{"title":"Buy milk"}"#])
        .arg(format!("{url}/v1/capture"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    let node = reply["id"].as_str().unwrap();
    let (_, pulled) = pull(&url, &laptop);
    let pulled: Value = serde_json::from_str(&pulled).unwrap();
    let ops: Vec<&Value> = pulled["ops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| &o["op"])
        .filter(|o| o["node"] == node)
        .collect();
    assert_eq!(ops.len(), 3, "{pulled}");
    assert!(ops.iter().any(|o| o["value"] == "Buy milk"), "{pulled}");
    for op in &ops {
        heph_core::Op::parse_json(&op.to_string())
            .unwrap()
            .validate()
            .unwrap();
    }

    let (ok, _, err) = owner.hub_cmd(&["revoke", "laptop"]);
    assert!(ok, "{err}");
    assert!(!err.contains(&laptop));
    assert!(err.contains("removed: its next request gets 401"), "{err}");
    // Twice: said as it is.
    let (ok, _, err) = owner.hub_cmd(&["revoke", "laptop"]);
    assert!(ok && err.contains("was removed already"), "{err}");
    let (status, body) = pull(&url, &laptop);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("removed from the hub"), "{body}");
    assert_eq!(push(&url, Some(&phone), 4).0, 200);
    let devices = owner.list(&["devices"]);
    assert!(devices[0]["revoked"].is_u64(), "{devices}");
    assert!(devices[1]["revoked"].is_null(), "{devices}");
    // A forged credential is refused, not mistaken for a device.
    assert_eq!(pull(&url, "hd1_AAAA").0, 401);
}

/// A small deterministic generator (the seed is printed on failure).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// After a restart: the token is Consumed with a credential that works, or
/// back to Issued; exactly one of several devices can then hold it.
fn check_after_restart(owner: &Owner, token: &str, devices: usize, context: &str) {
    let id = token_id(token);
    let state = owner.token_state(&id);
    eprintln!("{context}: token {state} after restart");
    assert!(
        state == "consumed" || state == "issued",
        "{context}: {state}"
    );
    let rows = owner.list(&["devices"]);
    let rows = rows.as_array().unwrap().len();
    if state == "consumed" {
        assert_eq!(rows, 1, "{context}: consumed without a credential");
    } else {
        assert_eq!(rows, 0, "{context}: a credential for an unused token");
    }
    let (_hub, url) = owner.serve(&[]);
    let mut winners = Vec::new();
    for n in 0..devices {
        let (status, reply) = redeem(&url, token, &key(n));
        match status {
            200 => winners.push(reply["credential"].as_str().unwrap().to_owned()),
            409 => {}
            other => panic!("{context}: device {n} got {other}: {reply}"),
        }
    }
    assert_eq!(winners.len(), 1, "{context}: {winners:?}");
    assert_eq!(push(&url, Some(&winners[0]), 7).0, 200, "{context}");
    assert_eq!(owner.token_state(&id), "consumed", "{context}");
}

#[test]
fn a_hub_killed_anywhere_in_a_redeem_comes_back_consistent() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("seed {seed}");
    let mut rng = Rng(seed);
    // Each step of the redeem, then kills at random moments of racing redeems.
    for point in ["begin", "credential", "consumed"] {
        let owner = Owner::new();
        let token = owner.token(&[]);
        let (mut hub, url) = owner.serve(&[("HEPH_TEST_JOIN_CRASH", point)]);
        let (status, _) = redeem(&url, &token, &key(0));
        assert_eq!(status, 0, "the hub should have died after {point}");
        let _ = hub.0.wait();
        let state = owner.token_state(&token_id(&token));
        let expected = if point == "begin" {
            "in_flight"
        } else {
            "consumed"
        };
        if point != "credential" {
            assert_eq!(state, expected, "before restart, crash after {point}");
        }
        // A restart settles the cut-off redeem.
        drop(owner.serve(&[]));
        check_after_restart(&owner, &token, 3, &format!("crash after {point}"));
        if point != "begin" {
            // The device whose reply was lost gets its credential.
            let (_hub, url) = owner.serve(&[]);
            assert_eq!(redeem(&url, &token, &key(0)).0, 200);
        }
    }
    for run in 0..10 {
        let owner = Owner::new();
        let token = owner.token(&[]);
        let (mut hub, url) = owner.serve(&[]);
        let delay = rng.below(30);
        let context = format!("run {run}, seed {seed}, kill after {delay} ms");
        // The clients are ready before the clock starts, so the kill lands
        // among the redeems, not before them.
        let start = std::sync::Barrier::new(6);
        std::thread::scope(|s| {
            for n in 0..5 {
                let (url, token, start) = (&url, &token, &start);
                s.spawn(move || {
                    let client = http();
                    let body = json!({ "token": token, "device_key": key(n), "device_name": "t" });
                    start.wait();
                    let request = client.post(format!("{url}/v1/join")).json(&body);
                    let _ = common::http::send(request);
                });
            }
            start.wait();
            std::thread::sleep(std::time::Duration::from_millis(delay));
            let _ = hub.0.kill();
        });
        let _ = hub.0.wait();
        drop(owner.serve(&[]));
        check_after_restart(&owner, &token, 5, &context);
    }
}
