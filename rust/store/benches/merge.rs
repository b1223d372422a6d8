//! Body merge cost: a note saved 5,000 times in a line, then two devices
//! each save once more concurrently; measures applying the other device's
//! save (the merge) into a replica holding the whole history, next to one
//! plain linear save in the same setting.
//!
//! Run: `cargo bench -p heph-store --bench merge`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use heph_core::{Action, Clock, Op};
use heph_store::Replica;

const SAVES: usize = 5_000;

/// The history: `SAVES` linear versions of a 60-line note, then one head
/// from each device (an edit at the top, an append at the end).
fn history() -> (Vec<Op>, Op, Op) {
    let node = "merge-bench".to_owned();
    let mut clock = Clock::new("aaaaaaaa", None);
    let mut lines: Vec<String> = (0..60)
        .map(|i| format!("line {i} of a note that is edited again and again"))
        .collect();
    let mut ops = vec![Op {
        op_id: "create".into(),
        hlc: clock.tick_at(1).unwrap(),
        node: node.clone(),
        action: Action::Create {
            kind: heph_core::Kind::Note,
        },
    }];
    let mut base = Vec::new();
    for i in 0..SAVES {
        let at = i % lines.len();
        lines[at] = format!("line {at} edited in save {i}");
        let hlc = clock.tick_at(10 + i as u64).unwrap();
        ops.push(Op {
            op_id: format!("save-{i}"),
            hlc: hlc.clone(),
            node: node.clone(),
            action: Action::SetBody {
                body: lines.join("\n") + "\n",
                base: std::mem::take(&mut base),
            },
        });
        base = vec![hlc];
    }
    let mut other = Clock::new("bbbbbbbb", None);
    let top = Op {
        op_id: "head-a".into(),
        hlc: clock.tick_at(100_000).unwrap(),
        node: node.clone(),
        action: Action::SetBody {
            body: format!("top from a\n{}\n", lines.join("\n")),
            base: base.clone(),
        },
    };
    let end = Op {
        op_id: "head-b".into(),
        hlc: other.tick_at(100_001).unwrap(),
        node,
        action: Action::SetBody {
            body: format!("{}\nend from b\n", lines.join("\n")),
            base,
        },
    };
    (ops, top, end)
}

/// A first write elsewhere, so the measured one does not pay for creating
/// the write-ahead log and filling the page cache.
fn warm(mut replica: Replica) -> Replica {
    replica
        .create(heph_core::NewNode {
            title: "warm".into(),
            ..heph_core::NewNode::default()
        })
        .unwrap();
    replica
}

fn bench(c: &mut Criterion) {
    let (ops, top, end) = history();
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("template.db");
    {
        let mut replica = Replica::open(&template).unwrap();
        replica.apply_ops(&ops).unwrap();
        replica.apply_ops(std::slice::from_ref(&top)).unwrap();
    }
    let mut run = 0;
    let linear = Op {
        op_id: "linear".into(),
        hlc: end.hlc.clone(),
        node: end.node.clone(),
        action: Action::SetBody {
            body: "replaced\n".into(),
            base: vec![top.hlc.clone()],
        },
    };
    c.bench_function("one linear save after 5,000 linear saves", |b| {
        b.iter_batched(
            || {
                run += 1;
                let path = dir.path().join(format!("run-{run}.db"));
                std::fs::copy(&template, &path).unwrap();
                warm(Replica::open(&path).unwrap())
            },
            |mut replica| {
                let report = replica.apply_ops(std::slice::from_ref(&linear)).unwrap();
                assert_eq!(report.merged, 0);
                replica
            },
            BatchSize::PerIteration,
        )
    });
    c.bench_function("merge two heads after 5,000 linear saves", |b| {
        b.iter_batched(
            || {
                // Each run merges afresh, in a copy of the replica file.
                run += 1;
                let path = dir.path().join(format!("run-{run}.db"));
                std::fs::copy(&template, &path).unwrap();
                warm(Replica::open(&path).unwrap())
            },
            |mut replica| {
                let report = replica.apply_ops(std::slice::from_ref(&end)).unwrap();
                assert_eq!(report.merged, 1);
                replica
            },
            BatchSize::PerIteration,
        )
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = bench
}
criterion_main!(benches);
