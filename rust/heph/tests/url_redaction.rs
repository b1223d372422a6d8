//! A hub URL with credentials (`http://alice:secret@…`, as behind an
//! authenticating proxy) connects, but its userinfo is never shown, logged
//! or stored.

use std::process::{Command, Output};

mod common;

use common::BIN;

fn heph(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("HEPH_CONFIG", dir.join("no-config.toml"))
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn userinfo_is_used_to_connect_and_shown_nowhere() {
    let hub_dir = tempfile::tempdir().unwrap();
    let (mut hub, url) = common::spawn_hub(&hub_dir.path().join("hub.db"), "127.0.0.1:0", &[]);
    let with_secret = url.replacen("http://", "http://alice:s3cr3t-pw@", 1);
    let device = tempfile::tempdir().unwrap();
    assert!(heph(device.path(), &["add", "hello"]).status.success());

    let synced = heph(device.path(), &["sync", "--hub", &with_secret, "--json"]);
    assert!(synced.status.success(), "{}", text(&synced));
    let status = heph(device.path(), &["status", "--hub", &with_secret, "--json"]);
    assert!(status.status.success(), "{}", text(&status));
    let shown = format!("{}{}", text(&synced), text(&status));
    assert!(!shown.contains("s3cr3t"), "{shown}");
    // The status is the hub's, under its one spelling.
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(json["hub"], url.as_str());
    assert_eq!(json["pending"], 0);

    // An error names the hub without the secret too.
    let _ = hub.kill();
    let _ = hub.wait();
    let failed = heph(device.path(), &["sync", "--hub", &with_secret]);
    assert!(!failed.status.success());
    assert!(!text(&failed).contains("s3cr3t"), "{}", text(&failed));
    let status = heph(device.path(), &["status", "--hub", &with_secret, "--json"]);
    assert!(!text(&status).contains("s3cr3t"), "{}", text(&status));

    // Nothing in the data dir holds it (replica, WAL, logs).
    for entry in std::fs::read_dir(device.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(6).any(|w| w == b"s3cr3t"),
                "{} holds the secret",
                path.display()
            );
        }
    }
}
