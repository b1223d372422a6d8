//! The hub holds up against slow and half-open clients: they are cut off
//! after their timeouts, the owner's requests keep answering meanwhile, and
//! shutdown ends within its bound while they are connected. Loopback only;
//! every wait is bounded.

use std::time::{Duration, Instant};

use heph_hub::{HubConfig, ServeLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Hub {
    addr: std::net::SocketAddr,
    _dir: tempfile::TempDir,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(limits: ServeLimits) -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let db = dir.path().join("hub.db");
    let task = tokio::spawn(async move {
        heph_hub::serve_with_limits(listener, &db, HubConfig::default(), limits, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Hub {
        addr,
        _dir: dir,
        stop,
        task,
    }
}

fn limits() -> ServeLimits {
    ServeLimits {
        header_timeout: Duration::from_secs(1),
        body_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(3),
        max_connections: 512,
        shutdown_grace: Duration::from_secs(2),
    }
}

/// The three kinds of slow client: silent, headers cut short, body
/// promised but never sent.
async fn slow_client(addr: std::net::SocketAddr, kind: usize) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let start: &[u8] = match kind % 3 {
        0 => b"",
        1 => b"GET /v1/ops?after=0 HTTP/1.1\r\nHost: hub\r\nX-Slow: ",
        _ => b"POST /v1/ops HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"ops\": [",
    };
    s.write_all(start).await.unwrap();
    s
}

/// Reads until the server closes; `None` if it is still open after `within`.
async fn closed_within(s: &mut TcpStream, within: Duration) -> Option<String> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&seen).into_owned()),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

async fn timed_get(url: &str) -> (u16, Duration) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let started = Instant::now();
    let status = client.get(url).send().await.unwrap().status().as_u16();
    (status, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_do_not_starve_the_owner() {
    let hub = start(limits()).await;
    let mut slow = Vec::new();
    for i in 0..300 {
        slow.push(slow_client(hub.addr, i).await);
    }
    // While they hang, health and a pull answer promptly.
    for _ in 0..5 {
        for path in ["/v1/health", "/v1/ops?after=0"] {
            let (status, took) = timed_get(&format!("http://{}{path}", hub.addr)).await;
            assert_eq!(status, 200, "{path}");
            assert!(took < Duration::from_secs(1), "{path} took {took:?}");
        }
    }
    // Every slow client is closed after its timeout (1 s, plus slack).
    let mut bodies_cut = 0;
    for (i, s) in slow.iter_mut().enumerate() {
        let seen = closed_within(s, Duration::from_secs(6))
            .await
            .unwrap_or_else(|| panic!("slow client {i} (kind {}) still open", i % 3));
        if i % 3 == 2 {
            assert!(
                seen.is_empty() || seen.contains(" 408 ") || seen.contains(" 400 "),
                "{seen}"
            );
            bodies_cut += 1;
        }
    }
    assert_eq!(bodies_cut, 100);
    let _ = hub.stop.send(());
    tokio::time::timeout(Duration::from_secs(5), hub.task)
        .await
        .expect("shutdown took too long")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dripped_body_gets_408_at_the_request_timeout() {
    let hub = start(limits()).await;
    let mut s = TcpStream::connect(hub.addr).await.unwrap();
    s.write_all(b"POST /v1/ops HTTP/1.1\r\nHost: hub\r\nContent-Length: 100000\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    // One byte every 300 ms: never idle long enough for the body timeout.
    let mut seen = String::new();
    while started.elapsed() < Duration::from_secs(8) {
        if s.write_all(b" ").await.is_err() {
            break;
        }
        let mut buf = [0u8; 1024];
        match tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(_) => {}
        }
        if seen.contains("\r\n\r\n") {
            break;
        }
    }
    assert!(seen.starts_with("HTTP/1.1 408"), "got {seen:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let _ = hub.stop.send(());
    hub.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_holds_and_shutdown_is_bounded() {
    let mut l = limits();
    l.max_connections = 20;
    l.header_timeout = Duration::from_secs(30);
    l.body_timeout = Duration::from_secs(30);
    l.request_timeout = Duration::from_secs(60);
    let hub = start(l).await;
    let mut slow = Vec::new();
    for i in 0..20 {
        slow.push(slow_client(hub.addr, i).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The 21st client is not served while 20 are open...
    let url = format!("http://{}/v1/health", hub.addr);
    let waiting = tokio::spawn(async move { timed_get(&url).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "the cap was not applied");
    // ...and is as soon as one leaves.
    drop(slow.pop());
    let (status, _) = tokio::time::timeout(Duration::from_secs(3), waiting)
        .await
        .expect("a freed slot was not reused")
        .unwrap();
    assert_eq!(status, 200);
    // Shutdown with 19 half-open clients ends at the grace period (2 s).
    let started = Instant::now();
    let _ = hub.stop.send(());
    tokio::time::timeout(Duration::from_secs(5), hub.task)
        .await
        .expect("shutdown took too long")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(4));
    for s in slow.iter_mut() {
        assert!(closed_within(s, Duration::from_secs(2)).await.is_some());
    }
}
