//! End-to-end sync: the real `heph hub` on loopback, real `heph` CLI
//! processes as devices, each with its own replica.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod common;

use common::Device;

struct Hub {
    child: Child,
    url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Hub {
    fn start(db: &std::path::Path, listen: &str) -> Hub {
        let (child, url) = common::spawn_hub(db, listen, &[]);
        Hub {
            child,
            url,
            _dir: None,
        }
    }

    fn fresh() -> Hub {
        let dir = tempfile::tempdir().unwrap();
        let mut hub = Hub::start(&dir.path().join("hub.db"), "127.0.0.1:0");
        hub._dir = Some(dir);
        hub
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Device {
    fn sync(&self, hub: &Hub) -> String {
        self.ok(&["sync", "--hub", &hub.url])
    }

    fn dump(&self) -> String {
        self.ok(&["dump"])
    }

    /// The titles of every live node, sorted.
    fn titles(&self) -> Vec<String> {
        let mut titles: Vec<String> = self
            .json(&["list", "--all", "--json"])
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["title"].as_str().unwrap().to_owned())
            .collect();
        titles.sort();
        titles
    }
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Random edits on three devices with random online/offline schedules
/// converge to byte-identical state.
#[test]
fn random_schedules_converge() {
    for seed in [3u64, 17, 99] {
        let hub = Hub::fresh();
        let devices: Vec<Device> = (0..3).map(|_| Device::new()).collect();
        let mut rng = Rng(seed * 7919 + 1);
        let mut ids: Vec<String> = Vec::new();
        for step in 0..36 {
            let d = &devices[rng.below(3) as usize];
            match rng.below(7) {
                0 | 1 => ids.push(
                    d.ok(&["add", &format!("task {seed}-{step}")])
                        .trim()
                        .to_owned(),
                ),
                2 if !ids.is_empty() => {
                    let id = &ids[rng.below(ids.len() as u64) as usize];
                    edit(d, &["set", id, &format!("title=renamed {step}")]);
                }
                3 if !ids.is_empty() => {
                    let id = &ids[rng.below(ids.len() as u64) as usize];
                    let line = rng.below(3);
                    let body = (0..3)
                        .map(|i| {
                            if i == line {
                                format!("edit {step}")
                            } else {
                                format!("line {i}")
                            }
                        })
                        .collect::<Vec<_>>()
                        .join("\n");
                    edit(d, &["set", id, &format!("body={body}")]);
                }
                4 if !ids.is_empty() => {
                    let id = &ids[rng.below(ids.len() as u64) as usize];
                    edit(d, &["rm", id]);
                }
                _ => {
                    d.sync(&hub);
                }
            }
        }
        for _ in 0..2 {
            for d in &devices {
                d.sync(&hub);
            }
        }
        let first = devices[0].dump();
        assert!(
            first.lines().count() > 1,
            "nothing happened for seed {seed}"
        );
        for d in &devices[1..] {
            assert_eq!(d.dump(), first, "seed {seed} did not converge");
        }
        // Every op any device made is on every device, and each title is
        // the one its newest rename set (last writer wins): edits survived.
        let ops: Vec<serde_json::Value> = devices[0]
            .ok(&["export-ops"])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        for d in &devices {
            assert_eq!(d.ok(&["export-ops"]).lines().count(), ops.len());
        }
        for id in &ids {
            let newest = ops
                .iter()
                .filter(|o| o["node"] == id.as_str() && o["field"] == "title")
                .max_by_key(|o| (o["hlc"].as_str().unwrap(), o["op_id"].as_str().unwrap()))
                .unwrap();
            let shown = devices[1].json(&["show", id, "--json"]);
            assert_eq!(shown["title"], newest["value"], "seed {seed}, node {id}");
        }
    }
}

/// Runs an edit that may only fail because the device has not seen the
/// node yet (added elsewhere, not synced here) or has seen it deleted.
fn edit(d: &Device, args: &[&str]) {
    let (ok, _, err) = d.run(args);
    assert!(
        ok || err.contains("no node") || err.contains("is deleted"),
        "{args:?} failed: {err}"
    );
}

/// A device whose clock is an hour behind edits offline; its edits still
/// reach everyone, because cursors are hub sequence numbers.
#[test]
fn a_device_with_a_slow_clock_is_not_skipped() {
    let hub = Hub::fresh();
    let a = Device::new();
    let mut b = Device::new();
    b.skew_ms = -3_600_000;
    let c = Device::new();
    a.ok(&["add", "from a"]);
    a.sync(&hub);
    c.sync(&hub);
    // b was offline; its ops are stamped an hour in the past.
    let late = b.ok(&["add", "from slow b"]).trim().to_owned();
    a.ok(&["add", "a again"]);
    a.sync(&hub);
    c.sync(&hub);
    b.sync(&hub);
    a.sync(&hub);
    c.sync(&hub);
    for d in [&a, &c] {
        assert_eq!(d.json(&["show", &late, "--json"])["title"], "from slow b");
    }
    assert_eq!(a.dump(), b.dump());
    assert_eq!(a.dump(), c.dump());
}

/// Concurrent edits of one note body on two devices both survive.
#[test]
fn concurrent_body_edits_both_survive() {
    let hub = Hub::fresh();
    let a = Device::new();
    let b = Device::new();
    let c = Device::new();
    let id = a
        .ok(&[
            "add",
            "--kind",
            "note",
            "--body",
            "one\ntwo\nthree\n",
            "shared",
        ])
        .trim()
        .to_owned();
    a.sync(&hub);
    b.sync(&hub);
    a.ok(&["set", &id, "body=ONE\ntwo\nthree"]);
    b.ok(&["set", &id, "body=one\ntwo\nTHREE"]);
    a.sync(&hub);
    let report = b.sync(&hub);
    assert!(report.contains("merged 1"), "{report}");
    a.sync(&hub);
    c.sync(&hub);
    for d in [&a, &b, &c] {
        assert_eq!(d.json(&["show", &id, "--json"])["body"], "ONE\ntwo\nTHREE");
    }
}

/// A node deleted on one device and edited on another before they synced
/// comes back on the first (the edit is kept), and its sync says so.
#[test]
fn a_deleted_node_brought_back_by_an_edit_elsewhere_is_reported() {
    let hub = Hub::fresh();
    let a = Device::new();
    let b = Device::new();
    let id = a.ok(&["add", "--kind", "note", "Plans"]).trim().to_owned();
    a.sync(&hub);
    b.sync(&hub);
    a.ok(&["rm", &id]);
    a.sync(&hub);
    // B edits it before it hears of the delete (it has not synced since).
    b.ok(&["set", &id, "title=Plans, kept"]);
    let (ok, _, err) = b.run(&["sync", "--hub", &hub.url]);
    assert!(ok, "{err}");
    assert!(!err.contains("came back"), "B never deleted it: {err}");
    let (ok, _, err) = a.run(&["sync", "--hub", &hub.url]);
    assert!(ok, "{err}");
    assert!(
        err.contains(&format!("{id} \"Plans, kept\" came back")),
        "{err}"
    );
    assert_eq!(a.json(&["show", &id, "--json"])["deleted"], false);
    let report = a.json(&["sync", "--hub", &hub.url, "--json"]);
    assert_eq!(report["revived_nodes"], serde_json::json!([]), "said once");
}

/// kill -9 during syncs loses nothing and duplicates nothing.
#[test]
fn killing_sync_midway_loses_nothing() {
    let hub = Hub::fresh();
    let a = Device::new();
    let b = Device::new();
    // Large bodies make a push take several requests.
    let body = "x".repeat(100_000);
    for i in 0..25 {
        a.ok(&[
            "add",
            "--kind",
            "note",
            "--body",
            &body,
            &format!("note {i}"),
        ]);
    }
    let mut rng = Rng(42);
    for round in 0..12 {
        let d = if round % 2 == 0 { &a } else { &b };
        let mut child = d
            .cmd(&["sync", "--hub", &hub.url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.below(60)));
        let _ = child.kill();
        let _ = child.wait();
    }
    a.sync(&hub);
    b.sync(&hub);
    a.sync(&hub);
    let ops_a = a.ok(&["export-ops"]);
    let ops_b = b.ok(&["export-ops"]);
    assert_eq!(ops_a.lines().count(), 25 * 3);
    assert_eq!(
        ops_b.lines().count(),
        ops_a.lines().count(),
        "every committed op is on b, once"
    );
    assert_eq!(a.dump(), b.dump());
    let status = a.json(&["status", "--hub", &hub.url, "--json"]);
    assert_eq!(status["pending"], 0);
    // Without --hub or a configured one, status is of the hub the device
    // last synced with, and says so.
    let text = a.ok(&["status"]);
    assert!(text.contains(&format!("hub:        {}", hub.url)), "{text}");
    assert!(text.contains("none configured"), "{text}");
    assert!(!text.contains("last sync:  never"), "{text}");
    let json = a.json(&["status", "--json"]);
    assert_eq!(json["hub_configured"], false, "{json}");
    assert_eq!(json["hub"], hub.url.as_str(), "{json}");
}

/// The hub goes away: the device keeps working offline, sync fails with a
/// clear message, and catches up when the hub is back.
#[test]
fn hub_outage_and_return() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hub.db");
    let mut hub = Hub::start(&db, "127.0.0.1:0");
    let a = Device::new();
    let b = Device::new();
    a.ok(&["add", "before outage"]);
    a.sync(&hub);
    let url = hub.url.clone();
    hub.stop();
    let offline = a.ok(&["add", "during outage"]).trim().to_owned();
    let (ok, _, err) = a.run(&["sync", "--hub", &url]);
    assert!(!ok);
    assert!(err.contains("unreachable"), "{err}");
    let status = a.json(&["status", "--hub", &url, "--json"]);
    assert_eq!(status["pending"], 3);
    assert!(status["last_error"]
        .as_str()
        .unwrap()
        .contains("unreachable"));
    let hub = Hub::start(&db, url.trim_start_matches("http://"));
    a.sync(&hub);
    b.sync(&hub);
    assert_eq!(
        b.json(&["show", &offline, "--json"])["title"],
        "during outage"
    );
    let status = a.json(&["status", "--hub", &url, "--json"]);
    assert_eq!(status["pending"], 0);
    assert_eq!(status["last_error"], serde_json::Value::Null);
}

/// A hub that answers garbage gets a clear error, and nothing is lost.
#[test]
fn garbage_from_the_hub_is_refused() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten().take(4) {
            use std::io::{Read, Write};
            let mut stream = stream;
            let mut buf = [0u8; 65536];
            let _ = stream.read(&mut buf);
            let body = "this is not json";
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let a = Device::new();
    a.ok(&["add", "precious"]);
    let (ok, _, err) = a.run(&["sync", "--hub", &url]);
    assert!(!ok);
    assert!(err.contains("invalid reply"), "{err}");
    let status = a.json(&["status", "--hub", &url, "--json"]);
    assert_eq!(status["pending"], 3, "nothing was marked as pushed");
}

/// SIGTERM while devices push: every push the hub acknowledged is there
/// after a restart.
#[test]
fn hub_shutdown_keeps_acknowledged_pushes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hub.db");
    let mut hub = Hub::start(&db, "127.0.0.1:0");
    let url = hub.url.clone();
    let devices: Vec<Device> = (0..4).map(|_| Device::new()).collect();
    for (i, d) in devices.iter().enumerate() {
        for j in 0..20 {
            d.ok(&[
                "add",
                "--body",
                &"y".repeat(20_000),
                &format!("device {i} task {j}"),
            ]);
        }
    }
    let syncs: Vec<_> = devices
        .iter()
        .map(|d| {
            d.cmd(&["sync", "--hub", &url])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    // Stop the hub mid-stream, once it has acknowledged at least one push
    // (earlier, the test would prove nothing).
    let http = common::http::client(Duration::from_secs(30));
    let acknowledged = (0..500).any(|_| {
        let page =
            common::http::send(http.get(format!("{url}/v1/ops?after=0&limit=1"))).map(|r| r.json());
        if matches!(&page, Ok(p) if p["ops"].as_array().is_some_and(|o| !o.is_empty())) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
        false
    });
    assert!(acknowledged, "no push reached the hub");
    let _ = Command::new("kill")
        .args(["-TERM", &hub.child.id().to_string()])
        .status();
    let exited = hub.child.wait().unwrap();
    assert!(
        exited.success(),
        "hub should exit cleanly on SIGTERM: {exited:?}"
    );
    let outcomes: Vec<bool> = syncs
        .into_iter()
        .map(|mut c| c.wait().unwrap().success())
        .collect();
    let hub = Hub::start(&db, url.trim_start_matches("http://"));
    let reader = Device::new();
    reader.sync(&hub);
    let on_hub = reader.ok(&["export-ops"]);
    let mut acknowledged_total = 0;
    for (d, synced) in devices.iter().zip(&outcomes) {
        let pending = d.json(&["status", "--hub", &url, "--json"])["pending"]
            .as_u64()
            .unwrap();
        let ops = d.ok(&["export-ops"]);
        let acknowledged = ops.lines().count() as u64 - pending;
        acknowledged_total += acknowledged;
        let present = ops.lines().filter(|op| on_hub.contains(op.trim())).count() as u64;
        assert!(
            present >= acknowledged,
            "acknowledged ops missing after restart (synced: {synced})"
        );
        if *synced {
            assert_eq!(pending, 0);
        }
    }
    assert!(acknowledged_total > 0, "no device had an acknowledged op");
    for d in &devices {
        d.sync(&hub);
    }
    reader.sync(&hub);
    assert_eq!(reader.ok(&["export-ops"]).lines().count(), 4 * 20 * 4);
}

/// A new database behind the same hub URL (a hub set up again, or its file
/// wiped) holds none of the ops the old one acknowledged: the devices that
/// synced with the old one send it everything again, so a new device
/// still gets every note.
#[test]
fn a_hub_set_up_again_at_the_same_url_gets_every_op_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut old = Hub::start(&dir.path().join("old.db"), "127.0.0.1:0");
    let a = Device::new();
    let b = Device::new();
    a.ok(&["add", "written on a"]);
    b.ok(&["add", "written on b"]);
    a.sync(&old);
    b.sync(&old);
    a.sync(&old);
    old.stop();
    let listen = old.url.trim_start_matches("http://").to_owned();
    let new = Hub::start(&dir.path().join("new.db"), &listen);
    a.ok(&["add", "written after"]);
    let (ok, _, said) = a.run(&["sync", "--hub", &new.url]);
    assert!(ok, "{said}");
    assert!(said.contains("another hub database"), "{said}");
    // Told once: the next pass finds the hub it knows.
    let (_, _, said) = a.run(&["sync", "--hub", &new.url]);
    assert!(!said.contains("another hub database"), "{said}");
    let c = Device::new();
    c.sync(&new);
    assert_eq!(
        c.titles(),
        ["written after", "written on a", "written on b"]
    );
    assert_eq!(c.dump(), a.dump());
    // b, which knew the old hub too, gets the new one's start again and
    // sends what it has; nothing is doubled.
    b.sync(&new);
    assert_eq!(b.titles(), c.titles());
    assert_eq!(
        new_ops(&new),
        a.ok(&["export-ops"]).lines().count(),
        "every op once on the new hub"
    );
}

/// Copies a hub's database files (the hub stopped) from `from` to `to`,
/// as a file backup or its restore would.
fn copy_hub_db(from: &std::path::Path, to: &std::path::Path) {
    for suffix in ["", "-wal"] {
        let src = std::path::PathBuf::from(format!("{}{suffix}", from.display()));
        let dst = std::path::PathBuf::from(format!("{}{suffix}", to.display()));
        let _ = std::fs::remove_file(&dst);
        if src.exists() {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
    let _ = std::fs::remove_file(format!("{}-shm", to.display()));
}

/// A hub restored from an older copy of its own database has the same id
/// but has lost what it acknowledged after the copy, and gives the next
/// ops the sequence numbers the lost ones had. Devices that synced past
/// the copy notice (the op at the highest sequence they know is gone or
/// another) and send everything again, and read the hub from its start:
/// every device and a new one end with every note.
#[test]
fn a_hub_restored_from_an_older_copy_gets_back_what_it_lost() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hub.db");
    let backup = dir.path().join("backup.db");
    let mut hub = Hub::start(&db, "127.0.0.1:0");
    let listen = hub.url.trim_start_matches("http://").to_owned();
    let a = Device::new();
    let b = Device::new();
    a.ok(&["add", "before the copy"]);
    a.sync(&hub);
    b.sync(&hub);
    hub.stop();
    copy_hub_db(&db, &backup);
    let mut hub = Hub::start(&db, &listen);
    a.ok(&["add", "after the copy, on a"]);
    b.ok(&["add", "after the copy, on b"]);
    a.sync(&hub);
    b.sync(&hub);
    a.sync(&hub);
    hub.stop();
    copy_hub_db(&backup, &db);
    let hub = Hub::start(&db, &listen);
    // A device new to the restored hub writes first: its ops take the
    // sequence numbers the lost ones had, and more.
    let c = Device::new();
    c.ok(&["add", "on c, after the restore"]);
    c.sync(&hub);
    for n in 0..4 {
        c.ok(&["add", &format!("on c, more {n}")]);
    }
    c.sync(&hub);
    // a pushes before it pulls: the sequences the restored hub gives its
    // new ops must not pass for the ones it knew.
    a.ok(&["add", "on a, after the restore"]);
    let (ok, _, said) = a.run(&["sync", "--hub", &hub.url]);
    assert!(ok, "{said}");
    assert!(said.contains("restored from an older copy"), "{said}");
    // Told once: the next pass finds the hub as it left it.
    let (_, _, said) = a.run(&["sync", "--hub", &hub.url]);
    assert!(!said.contains("restored from an older copy"), "{said}");
    b.sync(&hub);
    a.sync(&hub);
    c.sync(&hub);
    let all = [
        "after the copy, on a",
        "after the copy, on b",
        "before the copy",
        "on a, after the restore",
        "on c, after the restore",
        "on c, more 0",
        "on c, more 1",
        "on c, more 2",
        "on c, more 3",
    ];
    assert_eq!(a.titles(), all);
    assert_eq!(b.titles(), all);
    assert_eq!(c.titles(), all);
    let d = Device::new();
    d.sync(&hub);
    assert_eq!(d.titles(), all);
    assert_eq!(d.dump(), a.dump());
    assert_eq!(d.dump(), b.dump());
    assert_eq!(
        d.ok(&["export-ops"]).lines().count(),
        a.ok(&["export-ops"]).lines().count(),
        "every op once on the restored hub"
    );
}

/// An op's pushed flag speaks of the hub it was pushed to: a device that
/// moves to a second hub sends it everything, and what it wrote while on
/// the second reaches the first when it comes back.
#[test]
fn a_device_moving_between_hubs_sends_each_every_op() {
    let one = Hub::fresh();
    let two = Hub::fresh();
    let x = Device::new();
    let y = Device::new();
    let id = x.ok(&["add", "--body", "first body", "original"]);
    let id = id.trim();
    x.sync(&one);
    x.ok(&["set", id, "title=edited while on two"]);
    let (ok, _, said) = x.run(&["sync", "--hub", &two.url]);
    assert!(ok && said.contains("sends"), "{said}");
    // Told once.
    let (_, _, said) = x.run(&["sync", "--hub", &two.url]);
    assert!(!said.contains("sends"), "{said}");
    x.sync(&one);
    y.sync(&one);
    let title = |d: &Device| d.json(&["show", id, "--json"])["title"].clone();
    assert_eq!(title(&y), "edited while on two");
    // The second hub has the whole node, not only what came after the move.
    let z = Device::new();
    z.sync(&two);
    assert_eq!(z.dump(), x.dump());
    assert_eq!(y.dump(), x.dump());
    assert_eq!(new_ops(&two), x.ok(&["export-ops"]).lines().count());
}

/// How many ops the hub holds (pulled from its start, as a new device).
fn new_ops(hub: &Hub) -> usize {
    let d = Device::new();
    d.sync(hub);
    d.ok(&["export-ops"]).lines().count()
}
