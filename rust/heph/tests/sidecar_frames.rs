//! Malformed msgpack-RPC frames sent to the real sidecar over stdin: frames
//! whose end is known are answered (requests with a readable msgid) or
//! dropped, and the sidecar keeps serving; bytes it cannot resynchronise
//! on make it log why and exit non-zero; a clean close exits 0.

mod common;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use rmpv::Value;

struct Sidecar {
    child: Child,
    replies: Receiver<Value>,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn start() -> Sidecar {
    start_with(&[])
}

fn start_with(env: &[(&str, &str)]) -> Sidecar {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("sidecar.log");
    let mut child = Command::new(common::BIN)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["sidecar", "--log-file"])
        .arg(&log)
        .env("HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .env("HEPH_LOG", "info")
        .env_remove("HEPH_HUB_URL")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, replies) = channel();
    std::thread::spawn(move || {
        while let Ok(v) = rmpv::decode::read_value(&mut stdout) {
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    Sidecar {
        child,
        replies,
        log,
        _dir: dir,
    }
}

fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, v).unwrap();
    out
}

fn arr(items: Vec<Value>) -> Value {
    Value::Array(items)
}

fn request(id: u64, method: &str) -> Vec<u8> {
    encode(&arr(vec![0.into(), id.into(), method.into(), arr(vec![])]))
}

/// A request whose params are the map of `params`.
fn request_with(id: u64, method: &str, params: &[(&str, &str)]) -> Vec<u8> {
    let params = params
        .iter()
        .map(|(k, v)| (Value::from(*k), Value::from(*v)))
        .collect();
    encode(&arr(vec![
        0.into(),
        id.into(),
        method.into(),
        arr(vec![Value::Map(params)]),
    ]))
}

fn nested(depth: usize) -> Vec<u8> {
    let mut out = vec![0x91; depth];
    out.push(0xc0);
    out
}

impl Sidecar {
    fn send(&mut self, bytes: &[u8]) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(bytes).unwrap();
        stdin.flush().unwrap();
    }

    /// The reply to `id`: `(error, result)`.
    fn reply(&self, id: u64) -> (Value, Value) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("no reply to {id}"));
            let v = self
                .replies
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no reply to {id}: {}", self.log_text()));
            let items = v.as_array().unwrap().clone();
            if items[0].as_u64() == Some(1) && items[1].as_u64() == Some(id) {
                return (items[2].clone(), items[3].clone());
            }
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn exit_within(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the sidecar did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn assert_serving(s: &Sidecar, id: u64, what: &str) {
    let (error, result) = s.reply(id);
    assert_eq!(error, Value::Nil, "{what}: hello failed");
    assert!(result.is_map(), "{what}: {result}");
}

#[test]
fn malformed_frames_are_answered_or_dropped_and_serving_goes_on() {
    let mut s = start();
    s.send(&request(1, "hello"));
    assert_serving(&s, 1, "start");
    let bad_utf8 = {
        // [0, 12, <str "\xff\xfe">, []]
        let mut f = vec![0x94, 0x00, 12, 0xa2, 0xff, 0xfe, 0x90];
        f.truncate(7);
        f
    };
    let mut deep_params = vec![0x94, 0x00, 16, 0xa5];
    deep_params.extend_from_slice(b"hello");
    deep_params.push(0x91);
    deep_params.extend_from_slice(&nested(1500));
    // (frame, what, msgid answered with an error)
    let cases: Vec<(Vec<u8>, &str, Option<u64>)> = vec![
        (encode(&42.into()), "an integer", None),
        (encode(&"hello".into()), "a string", None),
        (encode(&Value::Map(vec![])), "a map", None),
        (encode(&Value::Nil), "nil", None),
        (encode(&arr(vec![])), "an empty array", None),
        (
            encode(&arr(vec![7.into(), 1.into(), "hello".into(), arr(vec![])])),
            "unknown message type 7",
            None,
        ),
        (
            encode(&arr(vec![
                "x".into(),
                1.into(),
                "hello".into(),
                arr(vec![]),
            ])),
            "a string message type",
            None,
        ),
        (
            encode(&arr(vec![
                0.into(),
                "a".into(),
                "hello".into(),
                arr(vec![]),
            ])),
            "a string msgid",
            None,
        ),
        (
            encode(&arr(vec![
                0.into(),
                (-1).into(),
                "hello".into(),
                arr(vec![]),
            ])),
            "a negative msgid",
            None,
        ),
        (
            encode(&arr(vec![0.into(), 11.into(), 42.into(), arr(vec![])])),
            "an integer method",
            Some(11),
        ),
        (bad_utf8, "a method that is not UTF-8", Some(12)),
        (
            encode(&arr(vec![0.into(), 13.into(), "hello".into(), 5.into()])),
            "parameters that are not an array",
            Some(13),
        ),
        (
            encode(&arr(vec![0.into(), 14.into(), "hello".into()])),
            "a request of 3 items",
            Some(14),
        ),
        (
            encode(&arr(vec![
                0.into(),
                15.into(),
                "hello".into(),
                arr(vec![]),
                1.into(),
            ])),
            "a request of 5 items",
            Some(15),
        ),
        (deep_params, "parameters nested 1500 deep", Some(16)),
        (nested(1000), "a frame nested 1000 deep", None),
        (nested(100_000), "a frame nested 100000 deep", None),
        (
            encode(&arr(vec![2.into(), 5.into(), arr(vec![])])),
            "a notification with an integer name",
            None,
        ),
        (
            encode(&arr(vec![2.into(), "x".into()])),
            "a notification without parameters",
            None,
        ),
        (
            encode(&arr(vec![1.into(), "x".into(), Value::Nil, Value::Nil])),
            "a response with a string msgid",
            None,
        ),
        (
            encode(&arr(vec![
                0.into(),
                17.into(),
                "node_get".into(),
                arr(vec![Value::Ext(5, vec![1, 2, 3])]),
            ])),
            "an ext value as a parameter",
            Some(17),
        ),
        (
            encode(&arr(vec![
                0.into(),
                18.into(),
                "\u{0}malformed".into(),
                arr(vec![]),
            ])),
            "the guard's own method name",
            Some(18),
        ),
    ];
    for (i, (frame, what, answered)) in cases.into_iter().enumerate() {
        s.send(&frame);
        if let Some(id) = answered {
            let (error, _) = s.reply(id);
            // A typed error (doc/rpc.md): JSON text naming the code.
            let typed: serde_json::Value =
                serde_json::from_str(error.as_str().unwrap_or("")).unwrap_or_default();
            assert_eq!(typed["code"], "bad_request", "{what}: error {error}");
            assert!(
                typed["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{what}: error {error}"
            );
        }
        // Frames split across writes still work afterwards.
        let hello = request(1000 + i as u64, "hello");
        let (a, b) = hello.split_at(3);
        s.send(a);
        std::thread::sleep(Duration::from_millis(5));
        s.send(b);
        assert_serving(&s, 1000 + i as u64, what);
    }
    // A large msgid is answered as sent.
    s.send(&request(1 << 40, "hello"));
    assert_serving(&s, 1 << 40, "a large msgid");
    drop(s.child.stdin.take());
    assert!(s.exit_within(Duration::from_secs(10)).success());
    assert!(s.log_text().contains("malformed"), "{}", s.log_text());
}

#[test]
fn unrecoverable_streams_exit_non_zero_with_a_reason() {
    let huge_bin = vec![0xc6, 0xff, 0xff, 0xff, 0xff, 0x00];
    let huge_array = vec![0xdd, 0xff, 0xff, 0xff, 0xff, 0x00];
    let mut truncated = request(5, "hello");
    truncated.truncate(truncated.len() - 2);
    let cases: Vec<(Vec<u8>, &str, &str)> = vec![
        (vec![0xc1], "the reserved byte 0xc1", "0xc1"),
        (huge_bin, "a 4 GiB binary", "more than"),
        (huge_array, "a 4-billion-item array", "more than"),
        (truncated, "stdin closed inside a frame", "inside a frame"),
    ];
    for (bytes, what, reason) in cases {
        let mut s = start();
        s.send(&request(1, "hello"));
        assert_serving(&s, 1, what);
        s.send(&bytes);
        if what.contains("closed") {
            drop(s.child.stdin.take());
        }
        let status = s.exit_within(Duration::from_secs(10));
        assert!(!status.success(), "{what}: exited 0");
        let log = s.log_text();
        assert!(
            log.contains("cannot be resynchronised") && log.contains(reason),
            "{what}: {log}"
        );
    }
}

#[test]
fn only_answers_to_the_sidecars_own_requests_pass() {
    // With a hub configured the sidecar asks Neovim to show its status
    // (nvim_exec_lua requests); the hub is unreachable, which is fine.
    let mut s = start_with(&[("HEPH_HUB_URL", "http://127.0.0.1:9")]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let asked = loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .expect("the sidecar sent no request");
        let v = s.replies.recv_timeout(left).expect("no request");
        if v[0].as_u64() == Some(0) {
            break v;
        }
    };
    assert_eq!(asked[2].as_str(), Some("nvim_exec_lua"));
    let id = asked[1].as_u64().unwrap();
    let answer = encode(&arr(vec![1.into(), id.into(), Value::Nil, Value::Nil]));
    s.send(&answer);
    // The same answer again, and answers to requests never made: dropped.
    s.send(&answer);
    s.send(&encode(&arr(vec![
        1.into(),
        999_999.into(),
        Value::Nil,
        Value::Nil,
    ])));
    s.send(&request(1, "hello"));
    assert_serving(&s, 1, "after stray responses");
    assert!(
        s.log_text()
            .contains("a response to no request (msgid 999999)"),
        "{}",
        s.log_text()
    );
    drop(s.child.stdin.take());
    assert!(s.exit_within(Duration::from_secs(10)).success());
}

#[test]
fn a_clean_close_exits_zero() {
    let mut s = start();
    s.send(&request(1, "hello"));
    assert_serving(&s, 1, "start");
    drop(s.child.stdin.take());
    assert!(s.exit_within(Duration::from_secs(10)).success());
}

/// `:HephLogin` as the first command of a session is the sidecar's first
/// request: it is answered with the login under way, never refused as
/// "still starting" (the handle its events go out on was set after the
/// first request could be read).
#[test]
fn a_login_as_the_first_request_is_not_refused() {
    for attempt in 0..50 {
        let mut s = start_with(&[
            // Nothing listens there: the login fails later, by an event.
            ("HEPH_HUB_URL", "http://127.0.0.1:9"),
            ("HEPH_ISSUER", "http://127.0.0.1:9"),
            ("HEPH_CLIENT_ID", "heph-cli"),
            ("HEPH_TOKEN_STORE", "file"),
        ]);
        s.send(&request(1, "login"));
        let (error, result) = s.reply(1);
        assert_eq!(error, Value::Nil, "attempt {attempt}: {error}");
        assert!(result.is_map(), "attempt {attempt}: {result}");
    }
}

/// Neovim waits for every reply: a save while another process holds the
/// replica's write lock (a long import) is refused as `busy` after a few
/// seconds instead of freezing the editor for the store's 30 s, and the
/// same save goes through once the lock is free.
#[test]
fn a_write_blocked_by_another_writer_is_refused_as_busy_soon() {
    let mut s = start();
    s.send(&request(1, "hello"));
    assert_serving(&s, 1, "start");
    let replica = s._dir.path().join("data").join("replica.db");
    let other = rusqlite::Connection::open(&replica).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();

    let create = |id: u64| {
        request_with(
            id,
            "node_create",
            &[("kind", "note"), ("title", "Saved after the import")],
        )
    };
    s.send(&create(2));
    // `reply` waits 10 s: the old 30 s wait would miss it.
    let (error, result) = s.reply(2);
    assert_eq!(
        result,
        Value::Nil,
        "saved while another writer held the lock"
    );
    let error = error.as_str().unwrap_or_default().to_owned();
    assert!(error.contains(r#""code":"busy""#), "{error}");
    assert!(error.contains("nothing was saved"), "{error}");

    other.execute_batch("COMMIT").unwrap();
    s.send(&create(3));
    let (error, result) = s.reply(3);
    assert_eq!(error, Value::Nil, "{error}");
    assert!(result.is_map(), "{result}");
}

#[test]
fn a_request_that_panics_is_answered_and_later_saves_still_land() {
    let mut s = start_with(&[("HEPH_TEST_PANIC_IN", "list_get")]);
    s.send(&request(1, "hello"));
    assert_serving(&s, 1, "start");
    s.send(&request_with(2, "list_get", &[("query", "tasks")]));
    let (error, _) = s.reply(2);
    let error = error.as_str().unwrap_or_default().to_owned();
    assert!(
        error.contains("list_get stopped on a bug in heph"),
        "{error}"
    );
    assert!(error.contains(r#""code":"failed""#), "{error}");
    // The replica handle is not lost with it: a save lands, twice.
    for id in [3, 4] {
        s.send(&request_with(
            id,
            "node_create",
            &[("kind", "note"), ("title", "Saved after a bug")],
        ));
        let (error, result) = s.reply(id);
        assert_eq!(error, Value::Nil, "{error}");
        assert!(result.is_map(), "{result}");
    }
    assert!(
        s.log_text().contains("a request panicked"),
        "{}",
        s.log_text()
    );
}

#[test]
fn a_date_offset_with_two_signs_is_refused_not_a_crash() {
    let mut s = start();
    for (id, line) in [
        (1u64, "T @+-1000000000000000d"),
        (2, "T @--9223372036854775808d"),
    ] {
        s.send(&request_with(id, "node_create", &[("line", line)]));
        let (error, result) = s.reply(id);
        assert_eq!(result, Value::Nil, "{line}");
        let error = error.as_str().unwrap_or_default().to_owned();
        assert!(error.contains(r#""code":"invalid""#), "{line}: {error}");
        assert!(error.contains("invalid date"), "{line}: {error}");
    }
}
