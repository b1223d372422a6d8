//! Fixing a clock that ran ahead fixes the device: its ops the hub refused
//! for their future stamps, and the edits made after the fix, reach the hub
//! in the next pass instead of when real time catches up with the stamps.

use std::process::Child;

use serde_json::Value;

mod common;

use common::Device;

const DAY_MS: i64 = 24 * 3600 * 1000;

struct Hub {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Hub {
    fn fresh() -> Hub {
        let dir = tempfile::tempdir().unwrap();
        let (child, url) = common::spawn_hub(&dir.path().join("hub.db"), "127.0.0.1:0", &[]);
        Hub {
            child,
            url,
            _dir: dir,
        }
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
    fn sync(&self, hub: &Hub) -> (String, String) {
        let (ok, out, err) = self.run(&["sync", "--hub", &hub.url]);
        assert!(ok, "sync failed: {err}");
        (out, err)
    }

    fn status(&self, hub: &Hub) -> Value {
        serde_json::from_str(&self.ok(&["status", "--hub", &hub.url, "--json"])).unwrap()
    }

    fn show(&self, id: &str) -> Option<Value> {
        let (ok, out, _) = self.run(&["show", id, "--json"]);
        ok.then(|| serde_json::from_str(&out).unwrap())
    }

    fn export(&self) -> Vec<Value> {
        self.ok(&["export-ops"])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn millis(op: &Value) -> u64 {
    u64::from_str_radix(&op["hlc"].as_str().unwrap()[..12], 16).unwrap()
}

#[test]
fn fixing_the_clock_sends_everything_in_the_next_pass() {
    let hub = Hub::fresh();
    let mut a = Device::new();
    let b = Device::new();
    a.skew_ms = 3 * DAY_MS;
    let first = a
        .ok(&["add", "first", "--body", "one\ntwo"])
        .trim()
        .to_owned();
    let second = a.ok(&["add", "second"]).trim().to_owned();
    a.ok(&["set", &first, "body=one\ntwo\nthree"]);
    let (_, err) = a.sync(&hub);
    assert!(err.contains("this device's clock is wrong"), "{err}");
    let refused = a.status(&hub)["refused"].as_u64().unwrap();
    assert!(refused >= 6, "{refused}");
    let before = a.export().len();

    // The clock is fixed: a new edit, then one pass.
    a.skew_ms = 0;
    let third = a.ok(&["add", "third"]).trim().to_owned();
    let (_, err) = a.sync(&hub);
    assert!(!err.contains("clock is wrong"), "{err}");
    let status = a.status(&hub);
    assert_eq!(status["refused"], 0, "{status}");
    assert_eq!(status["pending"], 0, "{status}");

    // Nothing is stamped in the future any more, nothing was lost.
    let ops = a.export();
    assert!(ops.len() > before, "{} ops, {before} before", ops.len());
    let limit = now_ms() + 60_000;
    for op in &ops {
        assert!(millis(op) < limit, "still in the future: {op}");
    }

    // b gets it all in one pass, and both replicas are the same.
    b.sync(&hub);
    for (id, title) in [(&first, "first"), (&second, "second"), (&third, "third")] {
        let node = b.show(id).unwrap_or_else(|| panic!("{title} missing on b"));
        assert_eq!(node["title"], title);
    }
    assert_eq!(b.show(&first).unwrap()["body"], "one\ntwo\nthree");
    a.sync(&hub);
    assert_eq!(a.ok(&["dump"]), b.ok(&["dump"]));
    assert_eq!(a.show(&first).unwrap()["body"], "one\ntwo\nthree");

    // A later edit on a is stamped now and goes out too.
    a.ok(&["set", &first, "body=one\ntwo\nthree\nfour"]);
    a.sync(&hub);
    b.sync(&hub);
    assert_eq!(b.show(&first).unwrap()["body"], "one\ntwo\nthree\nfour");
    assert_eq!(a.ok(&["dump"]), b.ok(&["dump"]));
}
