//! Sync never wedges: hostile ops on an open hub, wrong clocks, ops too
//! large for the hub, and a slow link. The real `heph hub` on loopback and
//! real `heph` CLI processes as devices, each with its own replica.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod common;

use common::Device;

const DAY_MS: i64 = 24 * 3600 * 1000;

struct Hub {
    child: Child,
    url: String,
    db: PathBuf,
    _dir: tempfile::TempDir,
}

impl Hub {
    fn fresh(extra: &[&str]) -> Hub {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("hub.db");
        let (child, url) = common::spawn_hub(&db, "127.0.0.1:0", extra);
        Hub {
            child,
            url,
            db,
            _dir: dir,
        }
    }

    /// Pushes raw JSON to the hub over HTTP.
    fn push_raw(&self, ops: &[Value]) -> (u16, Value) {
        let client = common::http::client(Duration::from_secs(60));
        let r = common::http::send(
            client
                .post(format!("{}/v1/ops", self.url))
                .json(&json!({ "ops": ops })),
        )
        .unwrap();
        (r.status, r.json())
    }

    /// Stores ops in the hub's database without its checks, as a hub of an
    /// older heph (which stored any op with an op_id) would have.
    fn inject(&self, ops: &[(String, String)]) {
        let store = heph_hub::HubStore::open(&self.db).unwrap();
        store.push(ops).unwrap();
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Device {
    /// One sync pass that must succeed; returns (stdout, stderr).
    fn sync_url(&self, url: &str) -> (String, String) {
        let (ok, out, err) = self.run(&["sync", "--hub", url]);
        assert!(ok, "sync failed: {err}");
        (out, err)
    }

    fn sync(&self, hub: &Hub) -> (String, String) {
        self.sync_url(&hub.url)
    }

    fn status(&self, hub: &Hub) -> Value {
        serde_json::from_str(&self.ok(&["status", "--hub", &hub.url, "--json"])).unwrap()
    }

    fn title(&self, id: &str) -> Option<String> {
        let (ok, out, _) = self.run(&["show", id, "--json"]);
        if !ok {
            return None;
        }
        let v: Value = serde_json::from_str(&out).ok()?;
        v["title"].as_str().map(str::to_owned)
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn stamp(ms: u64, counter: u32) -> String {
    format!("{ms:012x}{counter:06x}-hostile")
}

/// Every hostile-but-JSON op of the issue, by name.
fn hostile_ops() -> Vec<(&'static str, Value)> {
    let now = now_ms();
    let hlc = stamp(now, 0);
    let deep = {
        let mut v = json!(1);
        for _ in 0..124 {
            v = json!({ "x": v });
        }
        v
    };
    vec![
        (
            "clock +3 days",
            json!({"op_id":"h-future","hlc":stamp(now + 3 * DAY_MS as u64, 0),"node":"n1","action":"create","kind":"task"}),
        ),
        (
            "unknown action",
            json!({"op_id":"h-action","hlc":hlc,"node":"n1","action":"explode"}),
        ),
        (
            "non-ASCII stamp",
            json!({"op_id":"h-ascii","hlc":"ééééééééé-aa","node":"n1","action":"delete"}),
        ),
        (
            "missing hlc",
            json!({"op_id":"h-nohlc","node":"n1","action":"delete"}),
        ),
        (
            "node a/b",
            json!({"op_id":"h-node","hlc":hlc,"node":"a/b","action":"delete"}),
        ),
        (
            "tag #x",
            json!({"op_id":"h-tag","hlc":hlc,"node":"n1","action":"add_tag","tag":"#x"}),
        ),
        (
            "due tomorrow",
            json!({"op_id":"h-due","hlc":hlc,"node":"n1","action":"set","field":"due","value":"tomorrow"}),
        ),
        (
            "status maybe",
            json!({"op_id":"h-status","hlc":hlc,"node":"n1","action":"set","field":"status","value":"maybe"}),
        ),
        (
            "status padded",
            json!({"op_id":"h-padded","hlc":hlc,"node":"n1","action":"set","field":"status","value":" done "}),
        ),
        (
            "2 MiB body",
            json!({"op_id":"h-body","hlc":hlc,"node":"n1","action":"set_body","body":"x".repeat(2 * 1024 * 1024),"base":[]}),
        ),
        (
            "2000 base versions",
            json!({"op_id":"h-base","hlc":hlc,"node":"n1","action":"set_body","body":"b",
                   "base":(0..2000).map(|i| stamp(now - 10_000, i)).collect::<Vec<_>>()}),
        ),
        (
            "nested 124 levels",
            json!({"op_id":"h-deep","hlc":hlc,"node":"n1","action":"delete","unknown":deep}),
        ),
    ]
}

/// Every hostile op pushed raw to an open hub is refused, each with its
/// reason, and nothing of it is stored; healthy devices keep syncing.
#[test]
fn hostile_pushes_are_refused_per_op() {
    let hub = Hub::fresh(&[]);
    let ops = hostile_ops();
    let values: Vec<Value> = ops.iter().map(|(_, v)| v.clone()).collect();
    let (status, reply) = hub.push_raw(&values);
    assert_eq!(status, 200, "{reply}");
    let refused = reply["refused"].as_array().unwrap();
    for (i, (name, _)) in ops.iter().enumerate() {
        let r = refused
            .iter()
            .find(|r| r["index"] == i)
            .unwrap_or_else(|| panic!("{name} was not refused: {reply}"));
        assert!(!r["reason"].as_str().unwrap().is_empty(), "{name}");
        assert_eq!(reply["seqs"][i], Value::Null, "{name}");
    }
    let future = refused.iter().find(|r| r["index"] == 0).unwrap();
    assert_eq!(future["code"], "clock_ahead");
    assert!(future["ahead_ms"].as_u64().unwrap() > 2 * DAY_MS as u64);
    assert_eq!(reply["new"], 0);
    let (b, c) = (Device::new(), Device::new());
    let id = b.ok(&["add", "from b"]).trim().to_owned();
    b.sync(&hub);
    c.sync(&hub);
    assert_eq!(c.title(&id).as_deref(), Some("from b"));
}

/// Hostile ops already on a hub (stored by an older hub): every device
/// quarantines them, the cursor moves on, and healthy devices keep syncing
/// with each other; status shows the count and the newest reason.
#[test]
fn hostile_ops_on_the_hub_are_quarantined_and_sync_goes_on() {
    let hub = Hub::fresh(&[]);
    let (a, b, c) = (Device::new(), Device::new(), Device::new());
    let before = a.ok(&["add", "before"]).trim().to_owned();
    a.sync(&hub);
    let ops = hostile_ops();
    hub.inject(
        &ops.iter()
            .map(|(_, v)| (v["op_id"].as_str().unwrap().to_owned(), v.to_string()))
            .collect::<Vec<_>>(),
    );
    let id = b.ok(&["add", "from b"]).trim().to_owned();
    b.sync(&hub);
    let (_, err) = c.sync(&hub);
    assert!(err.contains("set aside"), "{err}");
    assert_eq!(c.title(&id).as_deref(), Some("from b"));
    assert_eq!(c.title(&before).as_deref(), Some("before"));
    // The op nested 124 levels deep is valid once read (an unknown field
    // is ignored); every other one is quarantined.
    for d in [&b, &c] {
        let status = d.status(&hub);
        let n = status["quarantined"].as_u64().unwrap();
        assert!(
            n == ops.len() as u64 - 1 || n == ops.len() as u64,
            "{status}"
        );
        assert!(status["quarantine_reason"].as_str().is_some(), "{status}");
        assert_eq!(status["last_error"], Value::Null, "{status}");
    }
    // And it goes on: c writes, a and b receive; the quarantine is retried
    // on each pass and stays.
    let later = c.ok(&["add", "from c"]).trim().to_owned();
    c.sync(&hub);
    a.sync(&hub);
    b.sync(&hub);
    assert_eq!(a.title(&later).as_deref(), Some("from c"));
    assert_eq!(b.title(&later).as_deref(), Some("from c"));
    let n = c.status(&hub)["quarantined"].as_u64().unwrap();
    assert!(n >= ops.len() as u64 - 1);
}

/// A device whose clock is three days ahead: the hub refuses its ops and it
/// is told its clock is wrong; its ops stay on it, set aside; it still
/// pulls; every other device keeps syncing.
#[test]
fn a_device_three_days_ahead_is_refused_and_told() {
    let hub = Hub::fresh(&[]);
    let mut a = Device::new();
    a.skew_ms = 3 * DAY_MS;
    let (b, c) = (Device::new(), Device::new());
    let mine = a.ok(&["add", "from the future"]).trim().to_owned();
    let (_, err) = a.sync(&hub);
    assert!(
        err.contains("this device's clock is wrong (ahead by"),
        "{err}"
    );
    let status = a.status(&hub);
    assert_eq!(status["refused"], 3, "{status}");
    assert_eq!(status["pending"], 0, "{status}");
    assert!(status["refused_reason"]
        .as_str()
        .unwrap()
        .contains("clock is wrong"));
    let id = b.ok(&["add", "from b"]).trim().to_owned();
    b.sync(&hub);
    c.sync(&hub);
    assert_eq!(c.title(&id).as_deref(), Some("from b"));
    assert_eq!(c.title(&mine), None, "the future ops never left a");
    // a still pulls, and still has its own op.
    a.sync(&hub);
    assert_eq!(a.title(&id).as_deref(), Some("from b"));
    assert_eq!(a.title(&mine).as_deref(), Some("from the future"));
}

/// A device whose clock is two days behind: what it pulls is quarantined
/// (blaming this device's clock, not the sender), everything else goes on,
/// and the ops apply once the clock catches up.
#[test]
fn a_device_two_days_behind_quarantines_then_catches_up() {
    let hub = Hub::fresh(&[]);
    let b = Device::new();
    let mut c = Device::new();
    c.skew_ms = -2 * DAY_MS;
    let id = b.ok(&["add", "from b"]).trim().to_owned();
    b.sync(&hub);
    let (_, err) = c.sync(&hub);
    assert!(err.contains("set aside"), "{err}");
    let status = c.status(&hub);
    assert_eq!(status["quarantined"], 3, "{status}");
    let reason = status["quarantine_reason"].as_str().unwrap();
    assert!(
        reason.contains("this device's clock seems to be behind"),
        "{reason}"
    );
    assert!(!reason.contains("sending device"), "{reason}");
    assert_eq!(c.title(&id), None);
    // c's own writes still reach b.
    let from_c = c.ok(&["add", "from slow c"]).trim().to_owned();
    c.sync(&hub);
    b.sync(&hub);
    assert_eq!(b.title(&from_c).as_deref(), Some("from slow c"));
    // The clock is fixed: the next pass applies what was set aside.
    c.skew_ms = 0;
    let (out, _) = c.sync(&hub);
    assert!(out.contains("3 applied from quarantine"), "{out}");
    assert_eq!(c.title(&id).as_deref(), Some("from b"));
    assert_eq!(c.status(&hub)["quarantined"], 0);
}

/// An op the hub answers 413 to is set aside; the device still pulls and
/// its other ops still go out.
#[test]
fn an_op_too_large_for_the_hub_is_set_aside_and_the_device_still_pulls() {
    // A hub with a small request limit: a body of 100,000 control
    // characters is 600 KB as JSON.
    let hub = Hub::fresh(&["--max-body", "300000"]);
    let (a, b) = (Device::new(), Device::new());
    let big = a
        .ok(&[
            "add",
            "--kind",
            "note",
            "--body",
            &"\u{1}".repeat(100_000),
            "big",
        ])
        .trim()
        .to_owned();
    let small = a.ok(&["add", "small"]).trim().to_owned();
    let (_, err) = a.sync(&hub);
    assert!(err.contains("too large"), "{err}");
    let status = a.status(&hub);
    assert_eq!(status["refused"], 1, "{status}");
    assert_eq!(status["pending"], 0, "{status}");
    let id = b.ok(&["add", "from b"]).trim().to_owned();
    b.sync(&hub);
    a.sync(&hub);
    assert_eq!(a.title(&id).as_deref(), Some("from b"));
    assert_eq!(b.title(&small).as_deref(), Some("small"));
    assert_eq!(
        b.title(&big).as_deref(),
        Some("big"),
        "the node's other ops went out"
    );
}

/// `import-ops` is all or nothing: 5,001 lines whose last is refused import
/// nothing.
#[test]
fn import_ops_is_all_or_nothing() {
    let d = Device::new();
    let now = now_ms();
    let mut lines = String::new();
    for i in 0..5000 {
        lines.push_str(
            &json!({"op_id": format!("imp-{i}"), "hlc": stamp(now, i), "node": format!("n{i}"),
                    "action": "create", "kind": "note"})
            .to_string(),
        );
        lines.push('\n');
    }
    lines.push_str(
        &json!({"op_id": "imp-future", "hlc": stamp(now + 3 * DAY_MS as u64, 0), "node": "n1",
                "action": "delete"})
        .to_string(),
    );
    lines.push('\n');
    let (ok, err) = d.import(&lines);
    assert!(!ok, "{err}");
    assert_eq!(d.ok(&["export-ops"]).lines().count(), 0, "{err}");
}

/// Forwards 127.0.0.1 connections to `target`, sending replies at about
/// `bytes_per_sec`.
fn throttling_proxy(target: String, bytes_per_sec: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(&target) else {
                continue;
            };
            let (mut c_read, mut s_write) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c_read, &mut s_write);
                let _ = s_write.shutdown(std::net::Shutdown::Write);
            });
            let (mut s_read, mut c_write) = (server, client);
            std::thread::spawn(move || {
                let chunk = bytes_per_sec / 20;
                let mut buf = vec![0u8; chunk];
                let start = Instant::now();
                let mut sent = 0usize;
                loop {
                    let n = match s_read.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if c_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    sent += n;
                    let due = Duration::from_secs_f64(sent as f64 / bytes_per_sec as f64);
                    if let Some(wait) = due.checked_sub(start.elapsed()) {
                        std::thread::sleep(wait);
                    }
                }
                let _ = c_write.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    url
}

/// A first sync of a replica with large notes over a slow link (~200 KB/s)
/// completes, page by page, though the whole takes longer than one
/// request's old 60 s cap.
#[test]
fn first_sync_over_a_slow_link_completes() {
    let hub = Hub::fresh(&[]);
    let a = Device::new();
    // One 8 KB note saved 1,700 times: about 14 MB of ops.
    let now = now_ms() - 60_000;
    let mut lines = String::new();
    lines.push_str(
        &json!({"op_id":"slow-create","hlc":stamp(now, 0),"node":"slow1","action":"create","kind":"note"})
            .to_string(),
    );
    lines.push('\n');
    lines.push_str(
        &json!({"op_id":"slow-title","hlc":stamp(now, 1),"node":"slow1","action":"set","field":"title","value":"big note"})
            .to_string(),
    );
    lines.push('\n');
    let mut base: Vec<String> = Vec::new();
    for i in 0..1700u32 {
        let hlc = stamp(now, 2 + i);
        let body = format!("{i:08}\n").repeat(8 * 1024 / 9);
        lines.push_str(
            &json!({"op_id": format!("slow-{i}"), "hlc": hlc, "node": "slow1",
                    "action": "set_body", "body": body, "base": base})
            .to_string(),
        );
        lines.push('\n');
        base = vec![hlc];
    }
    assert!(lines.len() > 13_000_000);
    let (ok, err) = a.import(&lines);
    assert!(ok, "{err}");
    a.sync(&hub);
    let target = hub.url.trim_start_matches("http://").to_owned();
    let slow = throttling_proxy(target, 200 * 1024);
    let c = Device::new();
    let start = Instant::now();
    let (out, _) = c.sync_url(&slow);
    assert!(out.contains("pulled 1702"), "{out}");
    assert_eq!(c.title("slow1").as_deref(), Some("big note"));
    eprintln!(
        "slow first sync took {:.1} s",
        start.elapsed().as_secs_f64()
    );
}
