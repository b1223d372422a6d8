//! Replica benchmarks on the 100,000-node benchmark corpus (heph-corpus,
//! DESIGN §11): apply the ops of 15,000 nodes into an empty replica, open,
//! get one node, search.
//!
//! Run: `cargo bench -p heph-store --bench replica`. Besides criterion's
//! estimates it prints search latency percentiles over many distinct queries.

use std::path::{Path, PathBuf};
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use heph_core::Op;
use heph_corpus::Corpus;
use heph_store::Replica;

const NODES: usize = 100_000;

/// A 100,000-node replica file, generated once and reused.
fn replica_file() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-data");
    std::fs::create_dir_all(&dir).expect("bench dir");
    let path = dir.join("corpus-7-100k.db");
    if !path.exists() {
        let tmp = dir.join("corpus-7-100k.db.tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut replica = Replica::open(&tmp).expect("open");
        let ops: Vec<Op> = Corpus::new(7, NODES).ops().collect();
        for chunk in ops.chunks(30_000) {
            replica.apply_ops(chunk).expect("apply");
        }
        drop(replica);
        std::fs::rename(&tmp, &path).expect("rename");
        for ext in ["-wal", "-shm"] {
            let _ = std::fs::rename(
                dir.join(format!("corpus-7-100k.db.tmp{ext}")),
                dir.join(format!("corpus-7-100k.db{ext}")),
            );
        }
    }
    path
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn benches(c: &mut Criterion) {
    // About 100,000 ops: the ops of 15,000 nodes of another corpus.
    let ops: Vec<Op> = Corpus::new(11, 15_000).ops().collect();
    let ops = &ops[..];
    let mut group = c.benchmark_group("apply");
    group.sample_size(10);
    group.bench_function("apply 100k ops into an empty replica", |b| {
        b.iter_batched(
            || Replica::open_in_memory().expect("open"),
            |mut r| r.apply_ops(ops).expect("apply"),
            BatchSize::PerIteration,
        )
    });
    group.finish();

    let path = replica_file();
    c.bench_function("open 100k-node replica", |b| {
        b.iter(|| Replica::open(&path).expect("open"))
    });

    let replica = Replica::open(&path).expect("open");
    let corpus = Corpus::new(7, NODES);
    let ids: Vec<String> = (0..200).map(|i| corpus.node(i * 499).node.id).collect();
    c.bench_function("get one node (100k replica)", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = (i + 1) % ids.len();
            replica.get(&ids[i]).expect("get").expect("exists")
        })
    });

    // p50/p95/max over the corpus's mixed query set, each query once.
    let mut times = Vec::new();
    for query in corpus.queries(150) {
        let start = Instant::now();
        replica.search(&query.text, 20).expect("search");
        times.push((start.elapsed().as_secs_f64() * 1000.0, query.text));
    }
    times.sort_by(|a, b| a.0.total_cmp(&b.0));
    let slowest: Vec<String> = times
        .iter()
        .rev()
        .take(5)
        .map(|(t, q)| format!("{q:?} {t:.1} ms"))
        .collect();
    println!("slowest queries: {}", slowest.join(", "));
    let times: Vec<f64> = times.into_iter().map(|(t, _)| t).collect();
    println!(
        "search latency over {} queries (100k nodes): p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        times.len(),
        percentile(&times, 0.5),
        percentile(&times, 0.95),
        times[times.len() - 1]
    );
}

criterion_group!(replica_benches, benches);
criterion_main!(replica_benches);
