//! The real `heph hub` under slow and half-open clients (loopback, bounded
//! count): health and pulls keep answering within a second, the slow
//! clients are closed after the timeouts given by flags, and SIGTERM ends
//! the process within its grace period while they are connected. With an
//! issuer it cannot reach, the hub answers 503, not 401.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

fn slow_client(addr: &str, kind: usize) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    let start: &[u8] = match kind % 3 {
        0 => b"",
        1 => b"GET /v1/health HTTP/1.1\r\nHost: hub\r\nX-Dri",
        _ => b"POST /v1/ops HTTP/1.1\r\nHost: hub\r\nContent-Length: 50000\r\n\r\n{\"ops\":",
    };
    s.write_all(start).unwrap();
    s
}

fn timed_get(client: &reqwest::Client, url: &str) -> (u16, Duration) {
    let started = Instant::now();
    let status = common::http::send(client.get(url)).unwrap().status;
    (status, started.elapsed())
}

fn client() -> reqwest::Client {
    common::http::client(Duration::from_secs(5))
}

#[test]
fn slow_clients_do_not_stop_the_hub_and_sigterm_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let (child, url) = common::spawn_hub(
        &dir.path().join("hub.db"),
        "127.0.0.1:0",
        &[
            "--header-timeout",
            "2s",
            "--body-timeout",
            "2s",
            "--request-timeout",
            "5s",
            "--max-connections",
            "1000",
            "--shutdown-grace",
            "3s",
        ],
    );
    let mut hub = common::Proc(child);
    let addr = url.trim_start_matches("http://").to_owned();
    let mut slow: Vec<TcpStream> = (0..300).map(|i| slow_client(&addr, i)).collect();
    let http = client();
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        for path in ["/v1/health", "/v1/ops?after=0"] {
            let (status, took) = timed_get(&http, &format!("{url}{path}"));
            assert_eq!(status, 200, "{path}");
            worst = worst.max(took);
        }
    }
    assert!(
        worst < Duration::from_secs(1),
        "worst answer took {worst:?}"
    );
    // The slow clients are closed after their 2 s timeouts.
    let started = Instant::now();
    for (i, s) in slow.iter_mut().enumerate() {
        s.set_read_timeout(Some(Duration::from_secs(6))).unwrap();
        let mut buf = [0u8; 1024];
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!(
                    "slow client {i} still open after {:?}: {e}",
                    started.elapsed()
                ),
            }
        }
    }
    // New half-open clients, then SIGTERM: the hub exits within its 3 s
    // grace period (plus slack), successfully.
    let _more: Vec<TcpStream> = (0..300).map(|i| slow_client(&addr, i)).collect();
    std::thread::sleep(Duration::from_millis(200));
    let (status, _) = timed_get(&http, &format!("{url}/v1/health"));
    assert_eq!(status, 200);
    let pid = hub.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let sent = Instant::now();
    let status = loop {
        if let Some(status) = hub.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(6),
            "SIGTERM did not end the hub"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    eprintln!(
        "worst answer {worst:?} with 300 slow clients; exit {:?} after SIGTERM",
        sent.elapsed()
    );
}

#[test]
fn an_unreachable_issuer_means_503_not_401() {
    // Nothing listens on this issuer's port.
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://{}", unused.local_addr().unwrap());
    drop(unused);
    let dir = tempfile::tempdir().unwrap();
    let (child, url) = common::spawn_hub(
        &dir.path().join("hub.db"),
        "127.0.0.1:0",
        &[
            "--issuer",
            &issuer,
            "--audience",
            "heph-hub",
            "--owner-sub",
            "alice",
        ],
    );
    let _hub = common::Proc(child);
    let http = client();
    // A token-shaped bearer with a key id: its key cannot be fetched.
    let token = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJhbGljZSJ9.c2ln";
    let r =
        common::http::send(http.get(format!("{url}/v1/ops?after=0")).bearer_auth(token)).unwrap();
    assert_eq!(r.status, 503);
    assert!(r.headers.get("retry-after").is_some());
    let body = r.body;
    assert!(body.contains("cannot reach the issuer"), "{body}");
    // No token at all is still 401.
    let r = common::http::send(http.get(format!("{url}/v1/ops?after=0"))).unwrap();
    assert_eq!(r.status, 401);
}

/// A push whose body stops coming is answered 408 (send again, smaller),
/// not 400: a device sets an op aside only on the hub's verdict on it.
#[test]
fn a_push_body_that_stops_coming_is_a_timeout_not_a_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let (child, url) = common::spawn_hub(
        &dir.path().join("hub.db"),
        "127.0.0.1:0",
        &["--body-timeout", "1s"],
    );
    let _hub = common::Proc(child);
    let addr = url.trim_start_matches("http://").to_owned();
    let mut s = slow_client(&addr, 2);
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.contains("did not arrive in time"), "{reply}");
}
