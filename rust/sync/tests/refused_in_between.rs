//! A push refused by something between the device and the hub: a 408 (too
//! slow to send) leaves the ops queued for the next pass; a proxy's 400 or
//! 413 page sets the first op refused alone aside, as the hub's own
//! refusal does, and stops the pass; neither for good: after an hour the op
//! is sent again.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use heph_core::NewNode;
use heph_store::Replica;
use heph_sync::engine::sync_once;
use heph_sync::HubClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the proxy does with the next push.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    Pass,
    Html400,
    Html413,
    Empty408,
}

/// Reads one HTTP/1.1 request: method, path and body (by content-length).
async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<(String, String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let header_end = loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
    let mut lines = head.lines();
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_owned(), first.next()?.to_owned());
    let length = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = buf[header_end..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((method, path, body))
}

/// A proxy to `hub` that answers pushes as `mode` says, one connection per
/// request.
async fn start_proxy(hub: String, mode: Arc<Mutex<Mode>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let http = reqwest::Client::new();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let (hub, mode, http) = (hub.clone(), Arc::clone(&mode), http.clone());
            tokio::spawn(async move {
                while let Some((method, path, body)) = read_request(&mut socket).await {
                    let now = *mode.lock().unwrap();
                    let canned: Option<(&str, &str)> = match (now, method.as_str()) {
                        (Mode::Html400, "POST") => Some((
                            "400 Bad Request",
                            "<html><title>400 Bad Request</title></html>",
                        )),
                        (Mode::Html413, "POST") => Some((
                            "413 Payload Too Large",
                            "<html><title>413 Request Entity Too Large</title></html>",
                        )),
                        (Mode::Empty408, "POST") => Some(("408 Request Timeout", "")),
                        _ => None,
                    };
                    let (status, text) = match canned {
                        Some((status, text)) => (status.to_owned(), text.as_bytes().to_vec()),
                        None => {
                            let request = if method == "POST" {
                                http.post(format!("{hub}{path}"))
                                    .header("content-type", "application/json")
                                    .body(body)
                            } else {
                                http.get(format!("{hub}{path}"))
                            };
                            let reply = request.send().await.unwrap();
                            let status = reply.status();
                            (
                                format!(
                                    "{} {}",
                                    status.as_u16(),
                                    status.canonical_reason().unwrap_or("")
                                ),
                                reply.bytes().await.unwrap().to_vec(),
                            )
                        }
                    };
                    let head = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                        text.len()
                    );
                    if socket.write_all(head.as_bytes()).await.is_err()
                        || socket.write_all(&text).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    url
}

/// How many of the replica's ops are set aside.
fn set_aside(replica: &std::path::Path) -> u64 {
    Replica::open(replica)
        .unwrap()
        .refused_summary()
        .unwrap()
        .count
}

/// Sets every set-aside op's time back two hours: due for another try.
fn age_set_aside(replica: &std::path::Path) {
    rusqlite::Connection::open(replica)
        .unwrap()
        .execute(
            "UPDATE ops SET refused_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-2 hours')
             WHERE refused IS NOT NULL",
            [],
        )
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_from_something_in_between_is_tried_again() {
    let dir = tempfile::tempdir().unwrap();
    let hub = common::start_hub(&dir.path().join("hub.db")).await;
    let mode = Arc::new(Mutex::new(Mode::Pass));
    let proxy = start_proxy(hub.clone(), Arc::clone(&mode)).await;
    let replica = dir.path().join("replica.db");
    {
        let mut r = Replica::open(&replica).unwrap();
        r.create(NewNode {
            title: "Pay rent".into(),
            ..NewNode::default()
        })
        .unwrap();
    }
    let client = HubClient::new(&proxy).unwrap();
    // Too slow to send (408): no verdict on the ops, which stay queued.
    *mode.lock().unwrap() = Mode::Empty408;
    let error = sync_once(&replica, &client)
        .await
        .expect_err("the push timed out");
    assert!(error.to_string().contains("too long to send"), "{error}");
    let r = Replica::open(&replica).unwrap();
    assert_eq!(r.refused_summary().unwrap().count, 0);
    assert!(r.pending_count().unwrap() > 0);
    drop(r);
    for refusal in [Mode::Html400, Mode::Html413] {
        // A proxy's page for every push: the first op refused alone is set
        // aside (said to come from on the way, so that the ops behind an
        // op a proxy refuses can go), then the pass stops: a proxy that
        // refuses everything costs a few requests, not one per op.
        *mode.lock().unwrap() = refusal;
        let before = set_aside(&replica);
        let error = sync_once(&replica, &client)
            .await
            .expect_err("the pass stops at the second refusal");
        assert!(error.to_string().contains("hub returned"), "{error}");
        let r = Replica::open(&replica).unwrap();
        let set_aside = r.refused_summary().unwrap();
        assert_eq!(set_aside.count, before + 1, "{refusal:?}");
        let reason = set_aside.newest_reason.unwrap_or_default();
        assert!(
            reason.contains("between this device and the hub"),
            "{reason}"
        );
        assert!(r.pending_count().unwrap() > 0, "{refusal:?}");
    }
    // An hour later the set-aside ops are queued again: refused again,
    // the first alone is set aside once more and the pass stops.
    age_set_aside(&replica);
    let outcome = sync_once(&replica, &client).await;
    assert!(outcome.is_err(), "{outcome:?}");
    assert_eq!(set_aside(&replica), 1);
    age_set_aside(&replica);
    // The proxy lets pushes through: every op lands, and another device
    // sees the task.
    *mode.lock().unwrap() = Mode::Pass;
    sync_once(&replica, &client).await.unwrap();
    let r = Replica::open(&replica).unwrap();
    assert_eq!(r.refused_summary().unwrap().count, 0);
    assert_eq!(r.pending_count().unwrap(), 0);
    let other = dir.path().join("other.db");
    sync_once(&other, &HubClient::new(&hub).unwrap())
        .await
        .unwrap();
    let o = Replica::open(&other).unwrap();
    assert!(o.find_by_title("Pay rent").unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_op_the_hub_set_aside_is_sent_again_an_hour_later() {
    let dir = tempfile::tempdir().unwrap();
    let hub = common::start_hub(&dir.path().join("hub.db")).await;
    let replica = dir.path().join("replica.db");
    let id = {
        let mut r = Replica::open(&replica).unwrap();
        r.create(NewNode {
            title: "kept".into(),
            ..NewNode::default()
        })
        .unwrap()
        .id
    };
    let ops = Replica::open(&replica).unwrap().export_ops().unwrap();
    let first = ops.iter().find(|op| op.node == id).unwrap().op_id.clone();
    // Set aside as a hub's 400 would, two hours ago.
    {
        let mut r = Replica::open(&replica).unwrap();
        r.mark_refused(&[(
            first.clone(),
            "invalid".into(),
            "the hub refused the op".into(),
        )])
        .unwrap();
    }
    age_set_aside(&replica);
    let client = HubClient::new(&hub).unwrap();
    sync_once(&replica, &client).await.unwrap();
    let r = Replica::open(&replica).unwrap();
    assert_eq!(r.refused_summary().unwrap().count, 0);
    assert_eq!(r.pending_count().unwrap(), 0);
    // One set aside a minute ago waits.
    drop(r);
    let mut r = Replica::open(&replica).unwrap();
    r.create(NewNode {
        title: "later".into(),
        ..NewNode::default()
    })
    .unwrap();
    let newest = r.export_ops().unwrap().last().unwrap().op_id.clone();
    r.mark_refused(&[(newest, "invalid".into(), "the hub refused the op".into())])
        .unwrap();
    drop(r);
    tokio::time::sleep(Duration::from_millis(10)).await;
    sync_once(&replica, &client).await.unwrap();
    assert_eq!(set_aside(&replica), 1);
}
