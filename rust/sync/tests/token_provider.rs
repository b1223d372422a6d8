//! Sync asks its token provider, never auth's files: a 401 asks once for a
//! fresh token, and a provider that says the device was removed puts the
//! service in the Removed state instead of a retry loop.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use heph_auth::AuthError;
use heph_core::NewNode;
use heph_store::Replica;
use heph_sync::{SyncService, SyncState, TokenProvider};

/// Hands out a device credential the hub does not know; counts refreshes.
struct Revoked {
    refreshes: AtomicUsize,
}

#[async_trait::async_trait]
impl TokenProvider for Revoked {
    async fn token(&self, _hub: &str) -> Result<Option<String>, AuthError> {
        Ok(Some("hd1_not-a-device-of-this-hub".into()))
    }

    async fn refresh(
        &self,
        _hub: &str,
        rejected: &str,
        message: &str,
    ) -> Result<String, AuthError> {
        assert_eq!(rejected, "hd1_not-a-device-of-this-hub");
        self.refreshes.fetch_add(1, Ordering::SeqCst);
        Err(AuthError::Removed(message.to_owned()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_device_stops_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let replica = dir.path().join("replica.db");
    Replica::open(&replica)
        .unwrap()
        .create(NewNode {
            title: "kept here".into(),
            ..NewNode::default()
        })
        .unwrap();
    let url = common::start_hub(&dir.path().join("hub.db")).await;
    let provider = Arc::new(Revoked {
        refreshes: AtomicUsize::new(0),
    });
    let service = SyncService::start_with_tokens(
        replica,
        url,
        Duration::from_secs(3600),
        Arc::clone(&provider) as Arc<dyn TokenProvider>,
    );
    let err = service.sync_now().await.unwrap_err();
    assert!(err.contains("removed from the hub"), "{err}");
    let status = service.status().borrow().clone();
    assert_eq!(status.state, SyncState::Removed, "{status:?}");
    assert!(status.pending > 0, "the edits stay on the device");
    // One refresh per pass: the provider is asked, not retried in a loop.
    let passes = provider.refreshes.load(Ordering::SeqCst);
    assert!(passes <= 2, "{passes} refreshes");
}
