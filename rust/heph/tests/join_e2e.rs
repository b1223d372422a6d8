//! End to end without an identity provider: the owner creates join tokens
//! with the CLI, two devices join with `heph join`, sync, and see each
//! other's edits; a removed device is told so and stops.

mod common;

use std::process::Command;

use common::{Device, Proc, BIN};

fn owner_token(db: &std::path::Path, label: &str) -> String {
    common::hub_ok(db, &["join-token", "create", "--label", label])
}

fn device() -> Device {
    Device::new()
}

fn run(device: &Device, args: &[&str]) -> (bool, String, String) {
    let out = device
        .cmd(args)
        .env("HEPH_TOKEN_STORE", "file")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(device: &Device, args: &[&str]) -> String {
    let (ok, out, err) = run(device, args);
    assert!(ok, "{args:?}: {err}");
    out
}

#[test]
fn two_devices_join_with_tokens_and_sync() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hub.db");
    let laptop_token = owner_token(&db, "laptop");
    let phone_token = owner_token(&db, "phone");
    let (hub, url) = common::spawn_hub(&db, "127.0.0.1:0", &[]);
    let _hub = Proc(hub);

    let laptop = device();
    let phone = device();
    // Before joining, the hub refuses: it has join tokens, so it is closed.
    ok(&laptop, &["add", "from the laptop"]);
    let (synced, _, err) = run(&laptop, &["sync", "--hub", &url]);
    assert!(!synced);
    assert!(err.contains("401") && err.contains("heph join"), "{err}");

    let (joined, _, err) = run(&laptop, &["join", &url, &laptop_token, "--name", "laptop"]);
    assert!(joined, "{err}");
    assert!(!err.contains(&laptop_token));
    // The file that keeps it is named as it is.
    assert!(
        err.contains("device.json") && !err.contains("session.json"),
        "{err}"
    );
    ok(&phone, &["join", &url, &phone_token]);
    ok(&laptop, &["sync", "--hub", &url]);
    ok(&phone, &["sync", "--hub", &url]);
    let listed = ok(&phone, &["list"]);
    assert!(listed.contains("from the laptop"), "{listed}");

    // The phone's edit reaches the laptop.
    let id = ok(&phone, &["add", "from the phone"]).trim().to_owned();
    ok(&phone, &["sync", "--hub", &url]);
    ok(&laptop, &["sync", "--hub", &url]);
    let shown = ok(&laptop, &["show", &id]);
    assert!(shown.contains("from the phone"), "{shown}");

    // Each says how it authenticates, without its secret.
    let status: serde_json::Value =
        serde_json::from_str(&ok(&phone, &["status", "--hub", &url, "--json"])).unwrap();
    let auth = status["auth"].as_str().unwrap();
    assert!(
        auth.starts_with("device credential (label phone"),
        "{status}"
    );
    let human = ok(&phone, &["status", "--hub", &url]);
    assert!(
        human.contains("auth:       device credential (label phone"),
        "{human}"
    );
    let device_file = std::fs::read_to_string(phone.dir.path().join("auth/device.json")).unwrap();
    let credential: serde_json::Value = serde_json::from_str(&device_file).unwrap();
    let credential = credential["credential"].as_str().unwrap();
    assert!(!human.contains(credential) && !status.to_string().contains(credential));

    // The owner removes the phone: its next sync is refused with the reason.
    let out = Command::new(BIN)
        .args(["hub", "revoke", "phone", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success());
    let (synced, _, err) = run(&phone, &["sync", "--hub", &url]);
    assert!(!synced);
    assert!(err.contains("removed from the hub"), "{err}");
    ok(&laptop, &["sync", "--hub", &url]);
}

/// A join with something that is no URL says so, and makes nothing.
#[test]
fn a_join_with_no_url_says_so() {
    let d = device();
    for url in ["not a url", "ftp://hub.example", "http://"] {
        let (joined, _, err) = run(&d, &["join", url, "hj1_abc"]);
        assert!(!joined);
        assert!(err.contains("is not a hub URL"), "{url}: {err}");
    }
    assert!(!d.dir.path().join("auth/device.json").exists());
}

/// A device joined with a capture token may push but not pull: its sync
/// pushes, says so, and succeeds; a full device pulls what it wrote.
#[test]
fn a_capture_device_syncs_by_pushing_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hub.db");
    let full = owner_token(&db, "laptop");
    let capture = common::capture_token(&db, "shortcut");
    let (hub, url) = common::spawn_hub(&db, "127.0.0.1:0", &[]);
    let _hub = Proc(hub);
    let laptop = device();
    let phone = device();
    ok(&laptop, &["join", &url, &full]);
    ok(&phone, &["join", &url, &capture]);
    ok(&phone, &["add", "captured on the phone"]);
    let (synced, out, err) = run(&phone, &["sync", "--hub", &url]);
    assert!(synced, "{err}");
    assert!(out.contains("may only push"), "{out}");
    let status = ok(&phone, &["status", "--hub", &url]);
    assert!(!status.contains("last sync:  never"), "{status}");
    ok(&laptop, &["sync", "--hub", &url]);
    assert!(ok(&laptop, &["list"]).contains("captured on the phone"));
}

/// The credential goes to the OS keyring when one is usable (as under
/// tests/keyring-session.sh), and the file keeps no secret then; without a
/// keyring it goes to the 0600 file, with the reason said.
#[test]
fn the_credential_goes_to_the_token_store_login_uses() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hub.db");
    let token = owner_token(&db, "desk");
    let (hub, url) = common::spawn_hub(&db, "127.0.0.1:0", &[]);
    let _hub = Proc(hub);
    let desk = device();
    let out = desk.cmd(&["join", &url, &token]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    let stored: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(desk.dir.path().join("auth/device.json")).unwrap(),
    )
    .unwrap();
    let in_keyring = stored["token_store"] != "file";
    if std::env::var("HEPH_REQUIRE_KEYRING").as_deref() == Ok("1") {
        assert!(in_keyring, "a keyring is required here: {err}");
    }
    if in_keyring {
        assert!(stored.get("credential").is_none(), "{stored}");
    } else {
        assert!(err.contains("no usable keyring"), "{err}");
    }
    desk.ok(&["add", "at the desk"]);
    desk.ok(&["sync", "--hub", &url]);
    let status: serde_json::Value =
        serde_json::from_str(&desk.ok(&["status", "--hub", &url, "--json"])).unwrap();
    assert!(
        status["auth"].as_str().unwrap().contains("label desk"),
        "{status}"
    );
    desk.ok(&["logout"]);
    assert!(!desk.dir.path().join("auth/device.json").exists());
    let (synced, _, err) = desk.run(&["sync", "--hub", &url]);
    assert!(!synced && err.contains("401"), "{err}");
}
