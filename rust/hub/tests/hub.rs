//! The hub over real HTTP on loopback.

use std::sync::Arc;

use heph_hub::{BearerCheck, HubConfig, Rejection};
use serde_json::{json, Value};

struct Hub {
    url: String,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

async fn start(config: HubConfig) -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let db = dir.path().join("hub.db");
    let task = tokio::spawn(async move {
        heph_hub::serve(listener, &db, config, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Hub {
        url,
        _dir: dir,
        stop: Some(tx),
        task: Some(task),
    }
}

impl Hub {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap();
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap()
}

/// A valid op (a delete of node n1) with this id, stamped now.
fn op(id: &str) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    json!({"op_id": id, "hlc": format!("{now:012x}000000-aa"), "node": "n1", "action": "delete"})
}

async fn push(hub: &Hub, body: Value) -> (u16, Value) {
    let r = client()
        .post(format!("{}/v1/ops", hub.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn pull(hub: &Hub, after: i64, limit: usize) -> Value {
    client()
        .get(format!("{}/v1/ops?after={after}&limit={limit}", hub.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn push_dedupes_and_assigns_sequences() {
    let hub = start(HubConfig::default()).await;
    let a = op("a");
    let (status, reply) = push(&hub, json!({"ops": [a.clone(), op("b")]})).await;
    assert_eq!(status, 200);
    assert_eq!(reply["new"], 2);
    assert_eq!(reply["seqs"], json!([1, 2]));
    assert_eq!(reply["refused"], json!([]));
    let (_, reply) = push(&hub, json!({"ops": [op("b"), op("c"), op("a")]})).await;
    assert_eq!(reply["new"], 1);
    assert_eq!(reply["seqs"], json!([2, 3, 1]));
    let page = pull(&hub, 0, 2).await;
    assert_eq!(page["more"], true);
    assert_eq!(page["ops"][0], json!({"seq": 1, "op": a}));
    let page = pull(&hub, 2, 2).await;
    assert_eq!(page["more"], false);
    assert_eq!(page["ops"].as_array().unwrap().len(), 1);
    assert_eq!(page["ops"][0]["seq"], 3);
    hub.stop().await;
}

#[tokio::test]
async fn bad_input_gets_clear_errors() {
    let hub = start(HubConfig {
        max_body: 1024,
        ..HubConfig::default()
    })
    .await;
    let r = client()
        .post(format!("{}/v1/ops", hub.url))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("malformed JSON"));
    let (status, body) = push(&hub, json!({"ops": [{"no_id": 1}]})).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("op_id"));
    let (status, _) = push(&hub, json!({"ops": [{"op_id": "x".repeat(200)}]})).await;
    assert_eq!(status, 400);
    let (status, body) = push(
        &hub,
        json!({"ops": [{"op_id": "big", "body": "x".repeat(4096)}]}),
    )
    .await;
    assert_eq!(status, 413);
    assert!(body["error"].as_str().unwrap().contains("too large"));
    let r = client()
        .get(format!("{}/v1/ops?after=banana", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Nothing was stored by any of that.
    assert_eq!(pull(&hub, 0, 10).await["ops"].as_array().unwrap().len(), 0);
    hub.stop().await;
}

async fn push_text(hub: &Hub, body: String) -> (u16, Value) {
    let r = client()
        .post(format!("{}/v1/ops", hub.url))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// The hub stores each op as the text it came as: that text is strict
/// JSON of the shape it expects, keys it does not know included.
#[tokio::test]
async fn pushed_text_is_stored_only_when_strict() {
    let hub = start(HubConfig::default()).await;
    // The fields of the request in an array, which serde would read as
    // the request itself.
    let array = format!("[[{}]]", op("in-an-array"));
    let (status, body) = push_text(&hub, array).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("\"ops\""));
    // A key no op has (a newer client's) is kept, its value parsed.
    let with = |id: &str, extra: &str| {
        let text = op(id).to_string();
        format!("{},{extra}}}", &text[..text.len() - 1])
    };
    let (status, body) = push_text(
        &hub,
        format!(
            "{{\"ops\":[{},{},{}]}}",
            with("newer", r#""note":{"a":[1,"b"]}"#),
            with("surrogate", r#""note":"\ud800""#),
            with("huge", r#""note":1e400"#),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["new"], 1, "{body}");
    let refused: Vec<&str> = body["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["op_id"].as_str().unwrap())
        .collect();
    assert_eq!(refused, ["surrogate", "huge"]);
    assert!(body["refused"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("unreadable op"));
    let ops = pull(&hub, 0, 10).await;
    assert_eq!(ops["ops"].as_array().unwrap().len(), 1, "{ops}");
    hub.stop().await;
}

#[tokio::test]
async fn concurrent_pushers_leave_no_gaps() {
    let hub = start(HubConfig::default()).await;
    let mut tasks = Vec::new();
    for pusher in 0..8 {
        let url = hub.url.clone();
        tasks.push(tokio::spawn(async move {
            for batch in 0..10 {
                let ops: Vec<Value> = (0..20)
                    .map(|i| op(&format!("{pusher}-{batch}-{i}")))
                    .collect();
                let r = client()
                    .post(format!("{url}/v1/ops"))
                    .json(&json!({"ops": ops}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut seqs = Vec::new();
    let mut after = 0;
    loop {
        let page = pull(&hub, after, 300).await;
        for op in page["ops"].as_array().unwrap() {
            after = op["seq"].as_i64().unwrap();
            seqs.push(after);
        }
        if page["more"] == false {
            break;
        }
    }
    assert_eq!(seqs, (1..=1600).collect::<Vec<i64>>());
    hub.stop().await;
}

struct OnlyAlice;

#[async_trait::async_trait]
impl BearerCheck for OnlyAlice {
    async fn check(&self, bearer: Option<&str>) -> Result<(), Rejection> {
        match bearer {
            Some("alice") => Ok(()),
            Some("bob") => Err(Rejection::Forbidden("not the owner".into())),
            _ => Err(Rejection::Unauthorized("missing or invalid token".into())),
        }
    }
}

#[tokio::test]
async fn the_auth_seam_guards_ops_but_not_health() {
    let hub = start(HubConfig {
        auth: Some(Arc::new(OnlyAlice)),
        ..HubConfig::default()
    })
    .await;
    let ops = format!("{}/v1/ops", hub.url);
    let r = client().get(&ops).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("www-authenticate").is_some());
    let r = client().get(&ops).bearer_auth("bob").send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = client()
        .post(&ops)
        .bearer_auth("bob")
        .json(&json!({"ops": [op("x")]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client()
        .get(&ops)
        .bearer_auth("alice")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client()
        .get(format!("{}/v1/health", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    hub.stop().await;
}

async fn pull_snapshot_hint(hub: &Hub) -> Value {
    let r = client()
        .get(format!("{}/v1/ops?after=0", hub.url))
        .send()
        .await
        .unwrap();
    let page: Value = r.json().await.unwrap();
    page["snapshot"].clone()
}

async fn put_snapshot(hub: &Hub, query: &str, body: Vec<u8>) -> (u16, Value) {
    let r = client()
        .put(format!("{}/v1/snapshot{query}", hub.url))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn snapshots_are_stored_and_served_as_bytes() {
    let hub = start(HubConfig {
        snapshot_threshold: 3,
        max_snapshot_bytes: 1000,
        ..HubConfig::default()
    })
    .await;
    let r = client()
        .get(format!("{}/v1/snapshot", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(
        pull_snapshot_hint(&hub).await,
        json!({"seq": 0, "wanted": false})
    );
    let ops: Vec<Value> = (0..4).map(|i| op(&format!("s{i}"))).collect();
    assert_eq!(push(&hub, json!({ "ops": ops })).await.0, 200);
    // Four ops and no snapshot: the hub asks for one.
    assert_eq!(
        pull_snapshot_hint(&hub).await,
        json!({"seq": 0, "wanted": true})
    );

    // Beyond the newest op, without a sequence, or too large: refused.
    let (status, body) = put_snapshot(&hub, "?seq=5", b"x".to_vec()).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(put_snapshot(&hub, "", b"x".to_vec()).await.0, 400);
    assert_eq!(put_snapshot(&hub, "?seq=abc", b"x".to_vec()).await.0, 400);
    let (status, body) = put_snapshot(&hub, "?seq=3", vec![7; 1001]).await;
    assert_eq!(status, 413, "{body}");

    let bytes: Vec<u8> = (0..=255u8).cycle().take(900).collect();
    let (status, body) = put_snapshot(&hub, "?seq=3", bytes.clone()).await;
    assert_eq!(status, 201, "{body}");
    let r = client()
        .get(format!("{}/v1/snapshot", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()[heph_hub::SEQ_HEADER], "3");
    assert_eq!(r.bytes().await.unwrap().to_vec(), bytes);
    assert_eq!(
        pull_snapshot_hint(&hub).await,
        json!({"seq": 3, "wanted": false})
    );
    // Not older than the stored one.
    assert_eq!(put_snapshot(&hub, "?seq=3", b"y".to_vec()).await.0, 409);
    assert_eq!(put_snapshot(&hub, "?seq=2", b"y".to_vec()).await.0, 409);
    let (status, _) = put_snapshot(&hub, "?seq=4", b"newer".to_vec()).await;
    assert_eq!(status, 201);
    let r = client()
        .get(format!("{}/v1/snapshot", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()[heph_hub::SEQ_HEADER], "4");
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"newer");
    // One file kept: the older one is gone, no upload left behind.
    let files: Vec<String> = std::fs::read_dir(hub._dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("snapshot"))
        .collect();
    assert_eq!(files, vec!["hub.db.snapshot-4".to_owned()]);
    hub.stop().await;
}
