//! Sync benchmarks on loopback (DESIGN §11): initial pull of 100,000 ops,
//! a sync with nothing new, one edit's round trip to another spoke, and hub
//! throughput with several pushers. Run: `cargo bench -p heph-sync --bench sync`.

use std::time::{Duration, Instant};

use heph_core::{Action, Clock, Field, Kind, NewNode, NodePatch, Op};
use heph_store::Replica;
use heph_sync::{sync_once, HubClient};

const OPS: usize = 100_000;

fn ops(n: usize, prefix: &str) -> Vec<Op> {
    let mut clock = Clock::new("benchorigin", None);
    let mut out = Vec::with_capacity(n);
    let mut i = 0;
    while out.len() < n {
        let node = format!("{prefix}-{i}");
        for action in [
            Action::Create { kind: Kind::Task },
            Action::Set {
                field: Field::Title,
                value: Some(format!("task number {i} of the benchmark")),
            },
            Action::SetBody {
                body: format!("some body text for task {i}\nwith two lines\n"),
                base: Vec::new(),
            },
        ] {
            out.push(Op {
                op_id: heph_core::id::new_op_id(),
                hlc: clock.tick().expect("clock"),
                node: node.clone(),
                action,
            });
        }
        i += 1;
    }
    out.truncate(n);
    out
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let db = dir.path().join("hub.db");
    runtime.spawn(async move {
        heph_hub::serve(
            listener,
            &db,
            heph_hub::HubConfig::default(),
            std::future::pending(),
        )
        .await
        .expect("hub");
    });
    let client = HubClient::new(&url).expect("client");

    // Seed the hub with 100k ops, as pushes of ~2,000 ops.
    let seed = ops(OPS, "seed");
    let start = Instant::now();
    for batch in seed.chunks(2000) {
        runtime.block_on(client.push(batch)).expect("push");
    }
    let push_time = start.elapsed();

    // Initial pull into an empty replica.
    let fresh = dir.path().join("fresh.db");
    let start = Instant::now();
    let report = runtime.block_on(sync_once(&fresh, &client)).expect("sync");
    let pull_time = start.elapsed();
    assert_eq!(report.pulled, OPS);

    // Nothing new.
    let mut idle = Vec::new();
    for _ in 0..20 {
        let start = Instant::now();
        runtime.block_on(sync_once(&fresh, &client)).expect("sync");
        idle.push(start.elapsed());
    }

    // One edit's round trip: A edits and syncs, B syncs and has it.
    let a = dir.path().join("a.db");
    let b = dir.path().join("b.db");
    runtime.block_on(sync_once(&a, &client)).expect("sync");
    runtime.block_on(sync_once(&b, &client)).expect("sync");
    let id = Replica::open(&a)
        .expect("open")
        .create(NewNode {
            title: "round trip".into(),
            ..NewNode::default()
        })
        .expect("create")
        .id;
    let mut trips = Vec::new();
    for i in 0..20 {
        let start = Instant::now();
        Replica::open(&a)
            .expect("open")
            .update(
                &id,
                &NodePatch {
                    title: Some(format!("round trip {i}")),
                    ..NodePatch::default()
                },
            )
            .expect("update");
        runtime.block_on(sync_once(&a, &client)).expect("sync a");
        runtime.block_on(sync_once(&b, &client)).expect("sync b");
        trips.push(start.elapsed());
        assert_eq!(
            Replica::open(&b)
                .expect("open")
                .get(&id)
                .expect("get")
                .expect("node")
                .title,
            format!("round trip {i}")
        );
    }

    // Hub throughput: 4 pushers, 10,000 ops each, 500 per request.
    let start = Instant::now();
    let handles: Vec<_> = (0..4)
        .map(|p| {
            let url = url.clone();
            runtime.spawn(async move {
                let client = HubClient::new(&url).expect("client");
                for batch in ops(10_000, &format!("pusher{p}")).chunks(500) {
                    client.push(batch).await.expect("push");
                }
            })
        })
        .collect();
    for h in handles {
        runtime.block_on(h).expect("pusher");
    }
    let throughput = 40_000.0 / start.elapsed().as_secs_f64();

    println!(
        "seed push of {OPS} ops (2,000 per request): {:.2} s",
        push_time.as_secs_f64()
    );
    println!(
        "initial pull of {OPS} ops into an empty replica: {:.2} s",
        pull_time.as_secs_f64()
    );
    println!(
        "sync with nothing new: median {:.1} ms",
        median(idle).as_secs_f64() * 1e3
    );
    println!(
        "one edit's round trip to another spoke: median {:.1} ms",
        median(trips).as_secs_f64() * 1e3
    );
    println!("hub throughput, 4 concurrent pushers: {throughput:.0} ops/s");
}
