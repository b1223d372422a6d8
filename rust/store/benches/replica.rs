//! Replica benchmarks on a generated 100,000-node replica (DESIGN §11):
//! apply 100k ops into an empty replica, open, get one node, search.
//!
//! Run: `cargo bench -p heph-store --bench replica`. Besides criterion's
//! estimates it prints search latency percentiles over many distinct queries.

use std::path::{Path, PathBuf};
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use heph_core::{Action, Clock, Field, Kind, Op};
use heph_store::Replica;

const NODES: usize = 100_000;

/// Syllables for a synthetic vocabulary of pseudo-words.
const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pa", "qui", "bre", "dan", "fel", "gor",
    "hin", "jor", "kel", "lum", "mor", "nix", "pol", "ras", "sen", "tor", "ul", "vex", "wen",
    "yar", "zol",
];

/// Size of the vocabulary; words are drawn log-uniformly (Zipf-like), as
/// in real notes where a few words are everywhere and most are rare.
const VOCABULARY: u64 = 20_000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn word(&mut self) -> String {
        let u = (self.next() % 1_000_000) as f64 / 1_000_000.0;
        let mut rank = ((VOCABULARY as f64).powf(u) as u64).max(1) - 1;
        let mut word = String::new();
        loop {
            word.push_str(SYLLABLES[(rank % SYLLABLES.len() as u64) as usize]);
            rank /= SYLLABLES.len() as u64;
            if rank == 0 {
                break;
            }
        }
        word
    }
    fn sentence(&mut self, n: usize) -> String {
        (0..n).map(|_| self.word()).collect::<Vec<_>>().join(" ")
    }
}

/// Ops for `nodes` nodes: create, title and body for each (3 ops a node).
fn generate_ops(nodes: usize, seed: u64) -> Vec<Op> {
    let mut rng = Rng(seed | 1);
    let mut clock = Clock::new("bench", None);
    let mut ops = Vec::with_capacity(nodes * 3);
    for i in 0..nodes {
        let node = format!("node-{seed}-{i}");
        let kind = if i % 3 == 0 { Kind::Note } else { Kind::Task };
        let mut push = |action| {
            ops.push(Op {
                op_id: heph_core::id::new_op_id(),
                hlc: clock.tick().expect("clock"),
                node: node.clone(),
                action,
            })
        };
        push(Action::Create { kind });
        push(Action::Set {
            field: Field::Title,
            value: Some(format!("{} {i}", rng.sentence(4))),
        });
        let body = (0..4)
            .map(|_| rng.sentence(10))
            .collect::<Vec<_>>()
            .join("\n")
            + "\n";
        push(Action::SetBody {
            body,
            base: Vec::new(),
        });
    }
    ops
}

/// A 100,000-node replica file, generated once and reused.
fn replica_file() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-data");
    std::fs::create_dir_all(&dir).expect("bench dir");
    let path = dir.join("replica-100k.db");
    if !path.exists() {
        let tmp = dir.join("replica-100k.db.tmp");
        let _ = std::fs::remove_file(&tmp);
        let mut replica = Replica::open(&tmp).expect("open");
        for chunk in generate_ops(NODES, 7).chunks(30_000) {
            replica.apply_ops(chunk).expect("apply");
        }
        drop(replica);
        std::fs::rename(&tmp, &path).expect("rename");
        for ext in ["-wal", "-shm"] {
            let _ = std::fs::rename(
                dir.join(format!("replica-100k.db.tmp{ext}")),
                dir.join(format!("replica-100k.db{ext}")),
            );
        }
    }
    path
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn benches(c: &mut Criterion) {
    let ops = generate_ops(NODES / 3 + 1, 11);
    let ops = &ops[..NODES];
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
    c.bench_function("get one node (100k replica)", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = (i + 7919) % NODES;
            replica
                .get(&format!("node-7-{i}"))
                .expect("get")
                .expect("exists")
        })
    });
    c.bench_function("search two words (100k replica)", |b| {
        let mut rng = Rng(3);
        b.iter(|| {
            replica
                .search(&format!("{} {}", rng.word(), rng.word()), 20)
                .expect("search")
        })
    });

    // p50/p95 over many distinct one-, two- and prefix queries.
    let mut rng = Rng(5);
    let mut times = Vec::new();
    for i in 0..600 {
        let query = match i % 3 {
            0 => rng.word(),
            1 => format!("{} {}", rng.word(), rng.word()),
            _ => rng.word().chars().take(3).collect(),
        };
        let start = Instant::now();
        replica.search(&query, 20).expect("search");
        times.push((start.elapsed().as_secs_f64() * 1000.0, query));
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
