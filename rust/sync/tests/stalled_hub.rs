//! A hub that stalls (answers nothing, or stops mid-page) ends the request
//! at its timeout instead of hanging the pass. Tokio's paused clock jumps
//! ahead whenever nothing else can run, so the timeouts pass in no real time.
//! A failed request says why: a refused connection, a timeout and a reply
//! that is not HTTP each name their cause, and a URL that cannot be a
//! hub's is refused before any request.

use std::time::Duration;

use heph_sync::client::{timeout_for, BASE_TIMEOUT};
use heph_sync::engine::PULL_PAGE_BYTES;
use heph_sync::{ClientError, HubClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A hub that reads each request and writes `reply`; then, when `hold`,
/// goes silent, holding the connection open, or else closes it.
async fn fake_hub(reply: &'static [u8], hold: bool) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(reply).await;
                if hold {
                    std::future::pending::<()>().await;
                }
                drop(socket);
            });
        }
    });
    url
}

/// The reason of an unreachable-hub error.
fn reason<T: std::fmt::Debug>(outcome: Result<T, ClientError>) -> String {
    match outcome {
        Err(ClientError::Unreachable { reason, .. }) => reason,
        other => panic!("expected an unreachable hub, got {other:?}"),
    }
}

/// Runs `request` against the paused clock: it must end by itself, in an
/// unreachable-hub error, no later than `bound` after it started.
async fn ends_within<T: std::fmt::Debug>(
    bound: Duration,
    request: impl std::future::Future<Output = Result<T, ClientError>>,
) {
    let started = tokio::time::Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(3600), request)
        .await
        .expect("the request never ended");
    let took = started.elapsed();
    assert!(
        matches!(outcome, Err(ClientError::Unreachable { .. })),
        "{outcome:?}"
    );
    assert!(outcome.unwrap_err().is_transient());
    assert!(took <= bound + Duration::from_secs(1), "took {took:?}");
}

#[tokio::test(start_paused = true)]
async fn a_pull_that_stops_mid_page_times_out() {
    let url = fake_hub(
        b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n{\"ops\":[",
        true,
    )
    .await;
    let client = HubClient::new(&url).unwrap();
    ends_within(
        timeout_for(PULL_PAGE_BYTES),
        client.pull(0, 10, PULL_PAGE_BYTES),
    )
    .await;
}

/// A hub that takes the request and never answers is given up on after
/// the base timeout, not after the whole allowance a page's 4 MiB would
/// get at the slowest rate (about five minutes of "syncing…").
#[tokio::test(start_paused = true)]
async fn a_pull_without_any_answer_times_out_at_the_base_timeout() {
    let url = fake_hub(b"", true).await;
    let client = HubClient::new(&url).unwrap();
    ends_within(BASE_TIMEOUT, client.pull(0, 10, PULL_PAGE_BYTES)).await;
}

#[tokio::test(start_paused = true)]
async fn a_push_without_an_answer_times_out() {
    let url = fake_hub(b"", true).await;
    let client = HubClient::new(&url).unwrap();
    ends_within(timeout_for(1024), client.push(&[])).await;
}

#[tokio::test]
async fn a_refused_connection_says_so() {
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = HubClient::new(&format!("http://127.0.0.1:{port}")).unwrap();
    let reason = reason(client.push(&[]).await);
    assert!(reason.to_lowercase().contains("refused"), "{reason}");
}

#[tokio::test(start_paused = true)]
async fn a_hub_that_never_answers_times_out_and_says_so() {
    let url = fake_hub(b"", true).await;
    let client = HubClient::new(&url).unwrap();
    let reason = reason(client.push(&[]).await);
    assert!(reason.contains("timed out"), "{reason}");
    assert!(reason.contains("30 s"), "{reason}");
}

#[tokio::test]
async fn a_reply_that_is_not_http_says_so() {
    let url = fake_hub(b"\x00\x01not http at all\r\n\r\n", false).await;
    let client = HubClient::new(&url).unwrap();
    let reason = reason(client.push(&[]).await);
    assert!(reason.contains("HTTP"), "{reason}");
}

#[test]
fn a_url_with_a_bad_port_is_refused_at_once() {
    match HubClient::new("http://127.0.0.1:99999") {
        Err(ClientError::BadUrl { url, reason }) => {
            assert_eq!(url, "http://127.0.0.1:99999");
            assert!(reason.contains("invalid port"), "{reason}");
        }
        Err(other) => panic!("expected a bad URL, got {other}"),
        Ok(_) => panic!("a port over 65535 was taken"),
    }
}

/// A reply far larger than the page asked for (a broken proxy's endless
/// stream) is given up on once past a bound, not read whole into memory.
#[tokio::test]
async fn a_pull_reply_far_larger_than_asked_is_refused_without_reading_it_all() {
    let size: usize = 64 << 20;
    let mut reply = format!("HTTP/1.1 200 OK\r\ncontent-length: {size}\r\n\r\n").into_bytes();
    reply.resize(reply.len() + size, b' ');
    let url = fake_hub(Box::leak(reply.into_boxed_slice()), false).await;
    let client = HubClient::new(&url).unwrap();
    match client.pull(0, 10, PULL_PAGE_BYTES).await {
        Err(ClientError::Garbage(why)) => {
            assert!(why.contains("larger than"), "{why}");
            assert!(why.contains("nothing of it was applied"), "{why}");
        }
        other => panic!("expected a refused reply, got {other:?}"),
    }
}

/// A captive portal answering a pull with its login page: named as a page,
/// not as a parser's position.
#[tokio::test]
async fn an_html_page_for_a_pull_is_named_as_one() {
    let url = fake_hub(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 57\r\n\r\n<html><title>Hotel WiFi login</title><body></body></html>",
        false,
    )
    .await;
    let client = HubClient::new(&url).unwrap();
    match client.pull(0, 10, PULL_PAGE_BYTES).await {
        Err(ClientError::Garbage(why)) => {
            assert!(why.contains("an HTML page \"Hotel WiFi login\""), "{why}");
        }
        other => panic!("expected an invalid reply, got {other:?}"),
    }
}
