//! A device does not pull back the ops it just pushed: its cursor moves over
//! the hub sequences the push replies gave its own ops, but only over an
//! unbroken run right after the cursor, so another device's op between them
//! is still pulled; a push whose reply was lost is sent again without
//! duplicating anything. A byte-forwarding proxy in front of a real hub
//! records the `after` of every pull the pass made.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use heph_core::NewNode;
use heph_store::Replica;
use heph_sync::HubClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A hub on loopback behind a proxy; returns the proxy's URL and the
/// `after=` values of the pulls that went through it, in order.
async fn hub_behind_proxy(db: &Path) -> (String, Arc<Mutex<Vec<i64>>>) {
    let (url, pulls, _) = hub_behind_proxy_with(db, heph_hub::HubConfig::default()).await;
    (url, pulls)
}

/// [`hub_behind_proxy`] with a hub configured by `config`; also counts the
/// requests the hub refused as too large (413).
async fn hub_behind_proxy_with(
    db: &Path,
    config: heph_hub::HubConfig,
) -> (String, Arc<Mutex<Vec<i64>>>, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hub = listener.local_addr().unwrap();
    common::serve_hub(listener, db, config);
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", proxy.local_addr().unwrap());
    let pulls = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&pulls);
    let too_large = Arc::new(AtomicUsize::new(0));
    let refused = Arc::clone(&too_large);
    tokio::spawn(async move {
        loop {
            let (client, _) = proxy.accept().await.unwrap();
            let upstream = tokio::net::TcpStream::connect(hub).await.unwrap();
            let seen = Arc::clone(&seen);
            let refused = Arc::clone(&refused);
            tokio::spawn(async move {
                let (mut from_client, mut to_hub) = (client, upstream);
                let (hub_read, hub_write) = to_hub.split();
                let (client_read, client_write) = from_client.split();
                let requests = forward(client_read, hub_write, |bytes| record_pulls(bytes, &seen));
                let replies = forward(hub_read, client_write, |bytes| {
                    // Status lines are short and start a read.
                    if bytes.starts_with(b"HTTP/1.1 413") {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                });
                tokio::join!(requests, replies);
            });
        }
    });
    (url, pulls, too_large)
}

/// Copies bytes one way until either side closes, showing each read to
/// `observe` first.
async fn forward(
    mut from: impl AsyncReadExt + Unpin,
    mut to: impl AsyncWriteExt + Unpin,
    observe: impl Fn(&[u8]),
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = from.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        observe(&buf[..n]);
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// Notes the `after` of a pull's request line (requests here are small
/// enough that a request line never spans two reads).
fn record_pulls(bytes: &[u8], seen: &Mutex<Vec<i64>>) {
    let text = String::from_utf8_lossy(bytes);
    for part in text.split("GET /v1/ops?after=").skip(1) {
        let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(after) = digits.parse() {
            seen.lock().unwrap().push(after);
        }
    }
}

fn add_notes(replica: &Path, titles: &[&str]) {
    let mut r = Replica::open(replica).unwrap();
    for title in titles {
        r.create(NewNode {
            title: (*title).into(),
            ..NewNode::default()
        })
        .unwrap();
    }
}

fn titles(replica: &Path) -> Vec<String> {
    let r = Replica::open(replica).unwrap();
    let mut titles: Vec<String> = r
        .list(&Default::default())
        .unwrap()
        .into_iter()
        .map(|n| n.title)
        .collect();
    titles.sort();
    titles
}

fn hub_ops(db: &Path) -> i64 {
    heph_hub::HubStore::open(db).unwrap().count().unwrap()
}

async fn sync(replica: &Path, url: &str) -> heph_sync::SyncReport {
    let client = HubClient::new(url).unwrap();
    heph_sync::engine::sync_once(replica, &client)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_upload_does_not_pull_its_own_ops_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hub.db");
    let (url, pulls) = hub_behind_proxy(&db).await;
    let a = dir.path().join("a.db");
    add_notes(&a, &["one", "two", "three"]);
    let report = sync(&a, &url).await;
    let stored = hub_ops(&db);
    assert_eq!(report.pushed as i64, stored);
    // One pull, from after our own ops: nothing of ours came back.
    assert_eq!(*pulls.lock().unwrap(), vec![stored]);
    let r = Replica::open(&a).unwrap();
    assert_eq!(r.sync_cursor(&url).unwrap(), stored);
    assert_eq!(r.pending_count().unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_devices_op_between_ours_is_still_pulled() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hub.db");
    let (url, pulls) = hub_behind_proxy(&db).await;
    let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
    add_notes(&a, &["a1"]);
    sync(&a, &url).await;
    let cursor = hub_ops(&db);
    // B's op lands on the hub right after A's cursor, before A's next push.
    add_notes(&b, &["b1"]);
    sync(&b, &url).await;
    let b_ops = hub_ops(&db) - cursor;
    add_notes(&a, &["a2"]);
    pulls.lock().unwrap().clear();
    let report = sync(&a, &url).await;
    assert_eq!(report.pulled as i64, b_ops);
    // The gap at B's op keeps A's cursor where it was: A pulls from there.
    assert_eq!(pulls.lock().unwrap().first(), Some(&cursor));
    assert_eq!(titles(&a), vec!["a1", "a2", "b1"]);
    sync(&b, &url).await;
    assert_eq!(titles(&b), titles(&a));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_whose_reply_was_lost_is_not_duplicated() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hub.db");
    let (url, pulls) = hub_behind_proxy(&db).await;
    let a = dir.path().join("a.db");
    add_notes(&a, &["one", "two"]);
    // The hub stores A's ops but A never hears back (killed mid-push): they
    // are still unacknowledged here.
    let ops = Replica::open(&a).unwrap().unpushed_ops(usize::MAX).unwrap();
    let client = HubClient::new(&url).unwrap();
    let first = client.push(&ops).await.unwrap();
    assert_eq!(first.new, ops.len());
    add_notes(&a, &["three"]);
    let report = sync(&a, &url).await;
    let stored = hub_ops(&db);
    // Only "three" was new; the resent ops kept their sequences, and the
    // cursor moved over all of them.
    assert_eq!(stored as usize, report.pushed + ops.len());
    assert_eq!(*pulls.lock().unwrap(), vec![stored]);
    let b = dir.path().join("b.db");
    sync(&b, &url).await;
    assert_eq!(titles(&b), vec!["one", "three", "two"]);
    assert_eq!(titles(&b), titles(&a));
}

/// Creates `count` notes of about 64 KiB each in the replica at `path`.
fn create_large_notes(path: &Path, count: usize) {
    let mut r = Replica::open(path).unwrap();
    for i in 0..count {
        r.create(NewNode {
            title: format!("note {i:02}"),
            body: format!("line {i}\n").repeat(8000),
            ..NewNode::default()
        })
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_of_many_batches_goes_up_whole_and_is_not_pulled_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hub.db");
    let (url, pulls) = hub_behind_proxy(&db).await;
    let a = dir.path().join("a.db");
    // About 3 MiB of bodies: several push batches, read ahead of the one
    // on its way.
    create_large_notes(&a, 48);
    let total = Replica::open(&a).unwrap().op_seq().unwrap();
    let report = sync(&a, &url).await;
    let stored = hub_ops(&db);
    assert_eq!(report.pushed as i64, stored);
    assert_eq!(stored, total);
    assert_eq!(*pulls.lock().unwrap(), vec![stored]);
    assert_eq!(Replica::open(&a).unwrap().pending_count().unwrap(), 0);
    // Again: nothing to send, nothing new on the hub.
    let again = sync(&a, &url).await;
    assert_eq!((again.pushed, again.pulled), (0, 0));
    assert_eq!(hub_ops(&db), stored);
    let b = dir.path().join("b.db");
    sync(&b, &url).await;
    assert_eq!(titles(&b), titles(&a));
    assert_eq!(titles(&b).len(), 48);
}

/// A hub (or a proxy before it) that takes smaller requests than a push
/// batch: the first batch is refused and halved until it fits, and the
/// batches after it are sized to fit instead of each being refused first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_with_a_small_request_limit_refuses_one_batch_not_every_batch() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hub.db");
    let config = heph_hub::HubConfig {
        max_body: 256 * 1024,
        ..heph_hub::HubConfig::default()
    };
    let (url, _, too_large) = hub_behind_proxy_with(&db, config).await;
    let a = dir.path().join("a.db");
    // About 7 MiB of bodies: three push batches of 3 MiB.
    create_large_notes(&a, 96);
    let report = sync(&a, &url).await;
    assert_eq!(report.refused, 0, "{:?}", report.warnings);
    assert_eq!(hub_ops(&db), Replica::open(&a).unwrap().op_seq().unwrap());
    assert_eq!(Replica::open(&a).unwrap().pending_count().unwrap(), 0);
    // Halving one 3 MiB batch down to 256 KiB takes 4 levels: at most
    // 1 + 2 + 4 + 8 refusals. Every batch refused first would be three
    // times that.
    let refusals = too_large.load(Ordering::Relaxed);
    assert!(refusals > 0, "the limit was never hit");
    assert!(refusals <= 15, "{refusals} requests refused as too large");
    let b = dir.path().join("b.db");
    sync(&b, &url).await;
    assert_eq!(titles(&b).len(), 96);
}
