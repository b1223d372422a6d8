//! Search latency on an existing replica over a query file (the lines of
//! `heph-corpus queries`: class, tab, text), each query run `RUNS` times
//! (the fastest counts: a busy machine only ever adds time). Prints
//! p50/p95/max per class and the slowest queries. Not part of the tests.
//!
//! Run: `cargo run --release -p heph-store --example search_times --
//! REPLICA QUERIES [RUNS]`.

use std::collections::BTreeMap;
use std::time::Instant;

use heph_store::Replica;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn report(name: &str, times: &mut [f64]) {
    times.sort_by(f64::total_cmp);
    println!(
        "{name}: p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        percentile(times, 0.5),
        percentile(times, 0.95),
        percentile(times, 1.0)
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, replica, queries, rest @ ..] = &args[..] else {
        return Err("usage: search_times REPLICA QUERIES [RUNS]".into());
    };
    let runs: usize = rest.first().map(|r| r.parse()).transpose()?.unwrap_or(3);
    let replica = Replica::open(std::path::Path::new(replica))?;
    let text = std::fs::read_to_string(queries)?;
    let mut by_class: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut all = Vec::new();
    for line in text.lines() {
        let Some((class, query)) = line.split_once('\t') else {
            continue;
        };
        let mut best = f64::MAX;
        for _ in 0..runs {
            let start = Instant::now();
            replica.search(query, 50)?;
            best = best.min(start.elapsed().as_secs_f64() * 1e3);
        }
        by_class.entry(class).or_default().push(best);
        all.push((best, query));
    }
    let mut times: Vec<f64> = all.iter().map(|a| a.0).collect();
    report(&format!("search ({} queries)", times.len()), &mut times);
    for (class, times) in &mut by_class {
        report(&format!("  {class}"), times);
    }
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    let slowest: Vec<String> = all[..all.len().min(8)]
        .iter()
        .map(|(t, q)| format!("{q:?} {t:.1} ms"))
        .collect();
    println!("  slowest: {}", slowest.join(", "));
    Ok(())
}
