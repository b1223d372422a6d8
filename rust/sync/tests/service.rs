//! The background service: offline with backoff while the hub is down,
//! catching up by itself when it returns.

mod common;

use std::time::Duration;

use heph_core::NewNode;
use heph_store::Replica;
use heph_sync::{SyncService, SyncState};

async fn wait_for(service: &SyncService, state: SyncState, secs: u64) -> heph_sync::SyncStatus {
    let mut rx = service.status();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let current = rx.borrow_and_update().clone();
        if current.state == state {
            return current;
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => {}
            _ => panic!("no {state:?} within {secs} s; last status {current:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_then_catches_up_when_the_hub_returns() {
    let dir = tempfile::tempdir().unwrap();
    let replica = dir.path().join("replica.db");
    Replica::open(&replica)
        .unwrap()
        .create(NewNode {
            title: "written offline".into(),
            ..NewNode::default()
        })
        .unwrap();
    // A port nobody listens on yet.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{addr}");
    let service = SyncService::start(replica.clone(), url.clone(), Duration::from_secs(3600));
    let offline = wait_for(&service, SyncState::Offline, 20).await;
    assert!(offline.offline_since.is_some());
    assert_eq!(offline.pending, 3);
    assert!(offline.last_error.unwrap().contains("unreachable"));
    // An explicit sync while offline fails with the reason, and stays offline.
    let err = service.sync_now().await.unwrap_err();
    assert!(err.contains("unreachable"), "{err}");

    // The hub comes up on that port; the service retries by itself.
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    common::serve_hub(
        listener,
        &dir.path().join("hub.db"),
        heph_hub::HubConfig::default(),
    );
    let synced = wait_for(&service, SyncState::Synced, 30).await;
    assert_eq!(synced.pending, 0);
    assert!(synced.last_sync.is_some());
    assert!(synced.offline_since.is_none());

    // A local write is pushed soon after, without asking.
    Replica::open(&replica)
        .unwrap()
        .create(NewNode {
            title: "later".into(),
            ..NewNode::default()
        })
        .unwrap();
    service.local_write();
    wait_for(&service, SyncState::Pending, 10).await;
    let synced = wait_for(&service, SyncState::Synced, 15).await;
    assert_eq!(synced.pending, 0);
    assert_eq!(Replica::open(&replica).unwrap().pending_count().unwrap(), 0);
}
