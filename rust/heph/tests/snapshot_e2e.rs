//! Bootstrapping from the hub's snapshot, end to end: the real `heph hub`
//! on loopback and `heph` CLI processes as devices.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

mod common;

use common::{Device, Proc};

struct Hub {
    _proc: Proc,
    url: String,
    dir: tempfile::TempDir,
}

impl Hub {
    /// A hub that asks for a snapshot after `threshold` ops.
    fn start(threshold: u32) -> Hub {
        let dir = tempfile::tempdir().unwrap();
        let (child, url) = common::spawn_hub(
            &dir.path().join("hub.db"),
            "127.0.0.1:0",
            &["--snapshot-threshold", &threshold.to_string()],
        );
        Hub {
            _proc: Proc(child),
            url,
            dir,
        }
    }

    /// The stored snapshot file.
    fn snapshot_file(&self) -> Option<PathBuf> {
        std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("hub.db.snapshot-")
            })
    }
}

fn sync(d: &Device, hub: &Hub) -> Value {
    d.json(&["sync", "--hub", &hub.url, "--json"])
}

fn import(d: &Device, lines: &str) {
    let (ok, err) = d.import(lines);
    assert!(ok, "import-ops failed: {err}");
}

fn corpus_lines(seed: u64, nodes: usize) -> String {
    heph_corpus::Corpus::new(seed, nodes)
        .ops()
        .map(|op| serde_json::to_string(&op).unwrap() + "\n")
        .collect()
}

fn ops_of(d: &Device) -> Vec<Value> {
    d.ok(&["export-ops"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Random edits on a device: new tasks, renames, body edits, deletes.
fn edit_randomly(d: &Device, seed: u64, steps: usize) {
    let ids: Vec<String> = {
        let mut ids: Vec<String> = ops_of(d)
            .iter()
            .map(|o| o["node"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    };
    let mut state = seed * 7919 + 1;
    let mut below = |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    for step in 0..steps {
        let id = &ids[below(ids.len() as u64) as usize];
        let args: Vec<String> = match below(4) {
            0 => vec!["add".into(), format!("written after the snapshot {step}")],
            1 => vec![
                "set".into(),
                id.clone(),
                format!("title=renamed {seed} {step}"),
            ],
            2 => vec!["set".into(), id.clone(), format!("body=line {step}\nmore")],
            _ => vec!["rm".into(), id.clone()],
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // A node removed by an earlier step cannot be edited: fine.
        let _ = d.run(&args);
    }
}

#[test]
fn a_new_device_bootstraps_from_the_snapshot_and_converges() {
    for seed in [1u64, 2] {
        let hub = Hub::start(50);
        // A: a history, synced up; the hub wants a snapshot and gets one.
        let a = Device::new();
        import(&a, &corpus_lines(seed, 40));
        edit_randomly(&a, seed, 6);
        let report = sync(&a, &hub);
        let seq = report["snapshot_uploaded"]
            .as_i64()
            .unwrap_or_else(|| panic!("{report}"));
        assert!(seq >= 50, "{report}");
        assert!(hub.snapshot_file().is_some());

        // C writes more after the snapshot.
        let c = Device::new();
        let first = sync(&c, &hub);
        assert!(first["bootstrapped"].as_u64().unwrap() > 0, "{first}");
        edit_randomly(&c, seed + 100, 12);
        sync(&c, &hub);
        sync(&a, &hub);

        // B, empty, bootstraps from the snapshot then pulls the rest.
        let b = Device::new();
        let report = sync(&b, &hub);
        let snapshot_ops = ops_of(&a).len() as u64;
        assert!(report["bootstrapped"].as_u64().unwrap() > 0, "{report}");
        assert!(
            report["bootstrapped"].as_u64().unwrap() <= snapshot_ops,
            "{report}"
        );
        assert!(report["pulled"].as_u64().unwrap() > 0, "{report}");

        // Said in words too.
        let e = Device::new();
        let said = e.ok(&["sync", "--hub", &hub.url]);
        assert!(said.contains("installed from the hub's snapshot"), "{said}");

        // D replays every op.
        let d = Device::new();
        let everything = c.ok(&["export-ops"]);
        import(&d, &everything);
        assert_eq!(dump(&b), dump(&d), "seed {seed}");
        assert_eq!(dump(&a), dump(&d), "seed {seed}");

        // B writes as itself: its new ops carry an origin no snapshot op has.
        let before: std::collections::HashSet<String> = ops_of(&b)
            .iter()
            .map(|o| {
                o["hlc"]
                    .as_str()
                    .unwrap()
                    .rsplit('-')
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        let id = b.ok(&["add", "mine"]).trim().to_owned();
        let mine: Vec<Value> = ops_of(&b)
            .into_iter()
            .filter(|o| o["node"] == id.as_str())
            .collect();
        assert!(!mine.is_empty());
        for op in &mine {
            let origin = op["hlc"].as_str().unwrap().rsplit('-').next().unwrap();
            assert!(!before.contains(origin), "{op}");
        }
        let pushed = sync(&b, &hub);
        assert!(pushed["pushed"].as_u64().unwrap() >= 1, "{pushed}");
        sync(&a, &hub);
        assert!(a.ok(&["export-ops"]).contains(&id));
    }
}

#[test]
fn a_garbage_snapshot_falls_back_to_pulling_ops() {
    let hub = Hub::start(20);
    let a = Device::new();
    import(&a, &corpus_lines(5, 20));
    let report = sync(&a, &hub);
    assert!(report["snapshot_uploaded"].is_i64(), "{report}");
    // The hub serves bytes it cannot check: damage them, same length.
    let file = hub.snapshot_file().unwrap();
    let len = std::fs::metadata(&file).unwrap().len() as usize;
    std::fs::write(&file, vec![b'#'; len]).unwrap();

    let b = Device::new();
    let report = sync(&b, &hub);
    assert_eq!(report["bootstrapped"], 0, "{report}");
    assert_eq!(
        report["pulled"].as_u64().unwrap(),
        ops_of(&a).len() as u64,
        "{report}"
    );
    assert_eq!(dump(&b), dump(&a));
    // Nothing left behind beside the replica.
    let stray: Vec<_> = std::fs::read_dir(b.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("snapshot"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

fn credential(url: &str, token: &str, key: &str) -> String {
    let reply = common::http::send(
        common::http::client(Duration::from_secs(30))
            .post(format!("{url}/v1/join"))
            .json(&json!({ "token": token, "device_key": key, "device_name": "t" })),
    )
    .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()["credential"].as_str().unwrap().to_owned()
}

#[test]
fn a_capture_credential_cannot_use_snapshots() {
    let hub = Hub::start(1);
    let db = hub.dir.path().join("hub.db");
    let full = common::hub_ok(&db, &["join-token", "create", "--label", "laptop"]);
    let capture = common::capture_token(&db, "shortcut");
    let full = credential(&hub.url, &full, "device-key-0001-0123456789abcdef");
    let capture = credential(&hub.url, &capture, "device-key-0002-0123456789abcdef");
    let http = || common::http::client(Duration::from_secs(30));
    let get = |c: Option<&str>| {
        let mut r = http().get(format!("{}/v1/snapshot", hub.url));
        if let Some(c) = c {
            r = r.bearer_auth(c);
        }
        common::http::send(r).unwrap()
    };
    let put = |c: Option<&str>| {
        let mut r = http()
            .put(format!("{}/v1/snapshot?seq=1", hub.url))
            .body(b"bytes".to_vec());
        if let Some(c) = c {
            r = r.bearer_auth(c);
        }
        common::http::send(r).unwrap()
    };
    let reply = get(Some(&capture));
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert!(reply.body.contains("capture"), "{}", reply.body);
    assert_eq!(put(Some(&capture)).status, 403);
    assert_eq!(get(None).status, 401);
    assert_eq!(put(None).status, 401);
    // A full credential reaches the routes: none stored yet, and the hub
    // has no op 1 for a snapshot to be as of.
    assert_eq!(get(Some(&full)).status, 404);
    assert_eq!(put(Some(&full)).status, 409);
    assert!(hub.snapshot_file().is_none());
}

fn dump(d: &Device) -> String {
    d.ok(&["dump"])
}
