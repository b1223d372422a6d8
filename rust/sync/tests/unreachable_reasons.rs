//! A failed request says why: a refused connection, a timeout and a reply
//! that is not HTTP each name their cause, and a URL that cannot be a
//! hub's is refused before any request.

use heph_sync::{ClientError, HubClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The reason of an unreachable-hub error.
fn reason<T: std::fmt::Debug>(outcome: Result<T, ClientError>) -> String {
    match outcome {
        Err(ClientError::Unreachable { reason, .. }) => reason,
        other => panic!("expected an unreachable hub, got {other:?}"),
    }
}

/// A loopback server that reads each request and answers `reply`, or
/// nothing at all (holding the connection) when `reply` is `None`.
async fn server(reply: Option<&'static [u8]>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let _ = socket.read(&mut buf).await;
                match reply {
                    Some(reply) => {
                        let _ = socket.write_all(reply).await;
                    }
                    None => std::future::pending::<()>().await,
                }
            });
        }
    });
    url
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
    let url = server(None).await;
    let client = HubClient::new(&url).unwrap();
    let reason = reason(client.push(&[]).await);
    assert!(reason.contains("timed out"), "{reason}");
    assert!(reason.contains("30 s"), "{reason}");
}

#[tokio::test]
async fn a_reply_that_is_not_http_says_so() {
    let url = server(Some(b"\x00\x01not http at all\r\n\r\n")).await;
    let client = HubClient::new(&url).unwrap();
    let reason = reason(client.push(&[]).await);
    assert!(reason.contains("HTTP"), "{reason}");
}

#[test]
fn a_url_with_a_bad_port_is_refused_at_once() {
    match HubClient::new("http://127.0.0.1:99999") {
        Err(ClientError::BadUrl(url)) => assert!(url.contains("invalid port"), "{url}"),
        Err(other) => panic!("expected a bad URL, got {other}"),
        Ok(_) => panic!("a port over 65535 was taken"),
    }
}
