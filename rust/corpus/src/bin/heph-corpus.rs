//! `heph-corpus`: writes the benchmark corpus.
//!
//! ```text
//! heph-corpus ops [--seed S] [--nodes N] [--tasks-only] [--no-bodies] > ops.jsonl
//! heph-corpus markdown DIR [--seed S] [--nodes N]
//! heph-corpus queries [--seed S] [--nodes N] [--per-class K]   (class<TAB>text)
//! ```
//!
//! `ops` is what `heph import-ops` reads. Defaults: seed 7, 100,000 nodes.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use heph_corpus::{Corpus, Shape};

struct Options {
    command: String,
    dir: Option<PathBuf>,
    seed: u64,
    nodes: usize,
    per_class: usize,
    shape: Shape,
}

fn parse_args() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let command = args
        .next()
        .ok_or("give a command: ops, markdown DIR or queries")?;
    let mut options = Options {
        command,
        dir: None,
        seed: 7,
        nodes: 100_000,
        per_class: 50,
        shape: Shape::default(),
    };
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            let value = args.next().ok_or(format!("{name} needs a value"))?;
            value
                .parse()
                .map_err(|_| format!("{name}: not a number: {value:?}"))
        };
        match arg.as_str() {
            "--seed" => options.seed = number("--seed")?,
            "--nodes" => options.nodes = number("--nodes")? as usize,
            "--per-class" => options.per_class = number("--per-class")? as usize,
            "--tasks-only" => options.shape.tasks_only = true,
            "--no-bodies" => options.shape.bodies = false,
            other if options.dir.is_none() && !other.starts_with('-') => {
                options.dir = Some(PathBuf::from(other))
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(options)
}

fn run(options: Options) -> Result<(), String> {
    let corpus = Corpus::with_shape(options.seed, options.nodes, options.shape);
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let io = |e: std::io::Error| e.to_string();
    match options.command.as_str() {
        "ops" => {
            for op in corpus.ops() {
                serde_json::to_writer(&mut out, &op).map_err(|e| e.to_string())?;
                out.write_all(b"\n").map_err(io)?;
            }
        }
        "markdown" => {
            let dir = options.dir.ok_or("markdown needs a directory")?;
            for sub in ["tasks", "notes", "journal"] {
                std::fs::create_dir_all(dir.join(sub))
                    .map_err(|e| format!("cannot create {}: {e}", dir.join(sub).display()))?;
            }
            for node in corpus.nodes() {
                let path = dir.join(node.markdown_path());
                std::fs::write(&path, node.markdown())
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            }
        }
        "queries" => {
            for query in corpus.queries(options.per_class) {
                writeln!(out, "{}\t{}", query.class.name(), query.text).map_err(io)?;
            }
        }
        other => {
            return Err(format!(
                "unknown command {other:?}: ops, markdown or queries"
            ))
        }
    }
    out.flush().map_err(io)
}

fn main() -> ExitCode {
    match parse_args().and_then(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("heph-corpus: {e}");
            ExitCode::from(2)
        }
    }
}
