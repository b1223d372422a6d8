//! The background service's status (the sidecar's status map, shown by
//! `:HephSync status`) counts quarantined and refused ops, with the newest
//! reason, and a pass with set-aside ops is still a successful pass.

mod common;

use std::time::Duration;

use heph_core::NewNode;
use heph_store::Replica;
use heph_sync::{SyncService, SyncState};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_counts_quarantined_and_refused_ops() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hub.db");
    let url = common::start_hub(&db).await;
    // An op an older hub let through: unknown action.
    let store = heph_hub::HubStore::open(&db).unwrap();
    store
        .push(&[(
            "bad".into(),
            r#"{"op_id":"bad","hlc":"000000000001000000-aa","node":"n1","action":"explode"}"#
                .into(),
        )])
        .unwrap();
    let replica = dir.path().join("replica.db");
    // This device's clock is three days ahead, for the pass too (the only
    // test of this binary: nothing else reads the environment): the hub
    // refuses its ops. A fixed clock would re-stamp them instead.
    let skew = 3 * 24 * 3600 * 1000;
    std::env::set_var("HEPH_CLOCK_SKEW_MS", skew.to_string());
    {
        let mut r = Replica::open(&replica).unwrap();
        r.clock_mut().set_offset_ms(skew);
        r.create(NewNode {
            title: "from the future".into(),
            ..NewNode::default()
        })
        .unwrap();
    }
    let service = SyncService::start(replica.clone(), url, Duration::from_secs(3600));
    // The service's first pass starts by itself; wait for it rather than
    // race it with `sync_now` (whichever pass pulls the op counts it).
    let mut rx = service.status();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        let s = rx.borrow_and_update().clone();
        if s.last_sync.is_some() && s.state != SyncState::Syncing {
            break s;
        }
        tokio::time::timeout_at(deadline, rx.changed())
            .await
            .expect("status")
            .unwrap();
    };
    assert_eq!(status.state, SyncState::Synced, "{status:?}");
    assert_eq!(status.pending, 0);
    assert_eq!(status.quarantined, 1);
    assert_eq!(status.refused, 3);
    assert!(status
        .refused_reason
        .unwrap()
        .contains("this device's clock is wrong"));
    assert!(status.quarantine_reason.unwrap().contains("unreadable op"));
    // A second pass refuses the ops again and says why, but the op set
    // aside on the first pass is not pulled or counted again.
    let report = service.sync_now().await.unwrap();
    assert_eq!(report.refused, 3);
    assert_eq!(report.quarantined, 0);
    assert!(report
        .warnings
        .iter()
        .any(|w| w.contains("this device's clock is wrong (ahead by")));
    let status = service.status().borrow().clone();
    assert_eq!(status.state, SyncState::Synced, "{status:?}");
    assert_eq!(status.quarantined, 1);
    let json = serde_json::to_value(service.status().borrow().clone()).unwrap();
    for key in [
        "quarantined",
        "quarantine_reason",
        "refused",
        "refused_reason",
    ] {
        assert!(json.get(key).is_some(), "{key} missing from {json}");
    }
}
