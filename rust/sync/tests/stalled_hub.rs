//! A hub that stalls (answers nothing, or stops mid-page) ends the request
//! at its timeout instead of hanging the pass. Tokio's paused clock jumps
//! ahead whenever nothing else can run, so the timeouts pass in no real time.

use std::time::Duration;

use heph_sync::client::timeout_for;
use heph_sync::engine::PULL_PAGE_BYTES;
use heph_sync::{ClientError, HubClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A hub that reads each request, writes `reply` and then goes silent,
/// holding the connection open.
async fn stalled_hub(reply: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(reply.as_bytes()).await;
                std::future::pending::<()>().await;
                drop(socket);
            });
        }
    });
    url
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
    let url = stalled_hub("HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n{\"ops\":[").await;
    let client = HubClient::new(&url).unwrap();
    ends_within(
        timeout_for(PULL_PAGE_BYTES),
        client.pull(0, 10, PULL_PAGE_BYTES),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_push_without_an_answer_times_out() {
    let url = stalled_hub("").await;
    let client = HubClient::new(&url).unwrap();
    ends_within(timeout_for(1024), client.push(&[])).await;
}
