//! heph vs TaskChampion, side by side in one run (issue 10; not in CI).
//!
//! The same tasks (`heph_corpus`, tasks only, no bodies) go into a
//! TaskChampion replica A synced to TaskChampion's local server (a SQLite
//! file), and into a heph replica A synced to a `heph hub` on loopback.
//! Then, for each: the initial sync of an empty replica B, listing B's open
//! tasks, and one edit in B followed by a sync. TaskChampion is timed in
//! process (opening the replica and the server included); heph through its
//! CLI (process start and replica open included).
//!
//! Usage: heph-peer-taskchampion --heph BIN --corpus BIN --work DIR
//!        [--nodes N] [--seed S] [--pull-runs K] [--runs K]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use heph_core::Status as HephStatus;
use heph_corpus::{Corpus, CorpusNode, Shape};
use taskchampion::chrono::{DateTime, Utc};
use taskchampion::storage::AccessMode;
use taskchampion::{Operations, Replica, ServerConfig, SqliteStorage, Tag, TaskData, Uuid};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

struct Options {
    heph: PathBuf,
    corpus: PathBuf,
    work: PathBuf,
    nodes: usize,
    seed: u64,
    pull_runs: usize,
    runs: usize,
}

fn options() -> Res<Options> {
    let mut o = Options {
        heph: PathBuf::new(),
        corpus: PathBuf::new(),
        work: PathBuf::new(),
        nodes: 100_000,
        seed: 7,
        pull_runs: 1,
        runs: 3,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut v = || args.next().ok_or_else(|| format!("{a} wants a value"));
        match a.as_str() {
            "--heph" => o.heph = v()?.into(),
            "--corpus" => o.corpus = v()?.into(),
            "--work" => o.work = v()?.into(),
            "--nodes" => o.nodes = v()?.parse()?,
            "--seed" => o.seed = v()?.parse()?,
            "--pull-runs" => o.pull_runs = v()?.parse()?,
            "--runs" => o.runs = v()?.parse()?,
            _ => return Err(format!("unknown argument {a}").into()),
        }
    }
    if o.heph.as_os_str().is_empty()
        || o.corpus.as_os_str().is_empty()
        || o.work.as_os_str().is_empty()
    {
        return Err("usage: --heph BIN --corpus BIN --work DIR [--nodes N] [--seed S] [--pull-runs K] [--runs K]".into());
    }
    Ok(o)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 10.0 {
        format!("{s:.1} s")
    } else if s >= 1.0 {
        format!("{s:.2} s")
    } else {
        format!("{:.1} ms", s * 1000.0)
    }
}

/// A ratio to two significant digits.
fn ratio(r: f64) -> String {
    let digits = if r >= 10.0 {
        0
    } else if r >= 1.0 {
        1
    } else if r >= 0.1 {
        2
    } else {
        3
    };
    format!("{r:.digits$}×")
}

fn fresh(dir: &Path) -> Res<PathBuf> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    Ok(dir.to_path_buf())
}

fn ts(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

// ---------------------------------------------------------------- TaskChampion

async fn tc_open(dir: &Path) -> Res<Replica<SqliteStorage>> {
    Ok(Replica::new(
        SqliteStorage::new(dir, AccessMode::ReadWrite, true).await?,
    ))
}

async fn tc_server(dir: &Path) -> Res<Box<dyn taskchampion::Server>> {
    Ok(ServerConfig::Local {
        server_dir: dir.to_path_buf(),
    }
    .into_server()
    .await?)
}

/// Adds the corpus task `n` to `ops`, as its heph ops set it, through
/// `TaskData` (the low-level API, which skips the dependency map that
/// `Task` needs: the bulk path).
fn tc_add(n: &CorpusNode, ops: &mut Operations) -> Res<()> {
    let uuid = Uuid::parse_str(&n.id)?;
    let mut task = TaskData::create(uuid, ops);
    let created = (n.created_ms / 1000).to_string();
    let mut set = |k: &str, v: &str| task.update(k, Some(v.to_owned()), ops);
    set("description", &n.title);
    set("entry", &created);
    set("modified", &created);
    match n.status.unwrap_or(HephStatus::Todo) {
        HephStatus::Todo => set("status", "pending"),
        HephStatus::Doing => {
            set("status", "pending");
            set("start", &created);
        }
        HephStatus::Done => {
            set("status", "completed");
            set("end", &created);
        }
        HephStatus::Cancelled => {
            set("status", "deleted");
            set("end", &created);
        }
    }
    if let Some(due) = n.due {
        set(
            "due",
            &due.midnight().assume_utc().unix_timestamp().to_string(),
        );
    }
    if let Some(project) = &n.project {
        set("project", project);
    }
    for tag in &n.tags {
        let tag = Tag::try_from(tag.as_str())?;
        set(&format!("tag_{tag}"), "");
    }
    Ok(())
}

struct Figures {
    load: Duration,
    push: Duration,
    pull: Vec<Duration>,
    list: Vec<Duration>,
    listed: usize,
    edit: Vec<Duration>,
}

async fn taskchampion(o: &Options, corpus: &Corpus, edit_id: &str) -> Res<Figures> {
    let root = fresh(&o.work.join("taskchampion"))?;
    let server_dir = fresh(&root.join("server"))?;
    let a_dir = fresh(&root.join("a"))?;

    // Replica A: every task, 10,000 to a commit.
    let start = Instant::now();
    {
        let mut a = tc_open(&a_dir).await?;
        let mut ops = Operations::new();
        // One undo point, as a replica's first commit carries.
        ops.push(taskchampion::Operation::UndoPoint);
        for (i, n) in corpus.nodes().enumerate() {
            tc_add(&n, &mut ops)?;
            if i % 10_000 == 9_999 {
                a.commit_operations(std::mem::take(&mut ops)).await?;
            }
        }
        a.commit_operations(ops).await?;
    }
    let load = start.elapsed();
    eprintln!(
        "taskchampion: {} tasks into replica A in {}",
        corpus.len(),
        secs(load)
    );

    let start = Instant::now();
    {
        let mut a = tc_open(&a_dir).await?;
        let mut server = tc_server(&server_dir).await?;
        a.sync(&mut server, false).await?;
    }
    let push = start.elapsed();
    eprintln!(
        "taskchampion: A synced to the local server in {}",
        secs(push)
    );

    let mut pull = Vec::new();
    let mut b_dir = PathBuf::new();
    for run in 0..o.pull_runs {
        b_dir = fresh(&root.join(format!("b{run}")))?;
        let start = Instant::now();
        {
            let mut b = tc_open(&b_dir).await?;
            let mut server = tc_server(&server_dir).await?;
            b.sync(&mut server, false).await?;
        }
        pull.push(start.elapsed());
        eprintln!("taskchampion: initial sync of B in {}", secs(pull[run]));
    }

    let mut list = Vec::new();
    let mut listed = 0;
    for _ in 0..o.runs {
        let start = Instant::now();
        {
            let mut b = tc_open(&b_dir).await?;
            let tasks = b.pending_task_data().await?;
            // One line per task, as a list view shows it.
            let mut out = String::with_capacity(tasks.len() * 80);
            for t in &tasks {
                use std::fmt::Write as _;
                let due = t
                    .get("due")
                    .and_then(|d| d.parse::<i64>().ok())
                    .map(|d| ts(d).format("%Y-%m-%d").to_string())
                    .unwrap_or_default();
                let tags: Vec<&str> = t
                    .properties()
                    .filter_map(|p| p.strip_prefix("tag_"))
                    .collect();
                let _ = writeln!(
                    out,
                    "{} {} {} {} {}",
                    &t.get_uuid().to_string()[..8],
                    t.get("description").unwrap_or(""),
                    t.get("project").unwrap_or(""),
                    due,
                    tags.join(",")
                );
            }
            std::io::sink().write_all(out.as_bytes())?;
            listed = tasks.len();
        }
        list.push(start.elapsed());
    }
    eprintln!(
        "taskchampion: {listed} pending tasks listed, median {}",
        secs(median(list.clone()))
    );

    let mut edit = Vec::new();
    let uuid = Uuid::parse_str(edit_id)?;
    for run in 0..o.runs {
        let start = Instant::now();
        {
            let mut b = tc_open(&b_dir).await?;
            let mut task = b
                .get_task_data(uuid)
                .await?
                .ok_or("the edited task is missing")?;
            let mut ops = Operations::new();
            task.update("description", Some(format!("edited title {run}")), &mut ops);
            task.update(
                "modified",
                Some(Utc::now().timestamp().to_string()),
                &mut ops,
            );
            b.commit_operations(ops).await?;
            let mut server = tc_server(&server_dir).await?;
            b.sync(&mut server, false).await?;
        }
        edit.push(start.elapsed());
    }
    eprintln!(
        "taskchampion: one edit + sync, median {}",
        secs(median(edit.clone()))
    );
    Ok(Figures {
        load,
        push,
        pull,
        list,
        listed,
        edit,
    })
}

// ---------------------------------------------------------------- heph

struct Heph<'a> {
    bin: &'a Path,
    config: PathBuf,
}

impl Heph<'_> {
    fn cmd(&self, data: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(self.bin);
        c.arg("--data-dir").arg(data).args(args);
        c.env("HEPH_CONFIG", &self.config).env("HEPH_LOG", "warn");
        c
    }

    /// Runs `heph --data-dir DATA ARGS`, returns its stdout and the time.
    fn run(&self, data: &Path, args: &[&str]) -> Res<(Vec<u8>, Duration)> {
        let start = Instant::now();
        let out = self.cmd(data, args).stderr(Stdio::piped()).output()?;
        let took = start.elapsed();
        if !out.status.success() {
            return Err(format!("heph {args:?}: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        Ok((out.stdout, took))
    }
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn heph(o: &Options, edit_id: &str) -> Res<Figures> {
    let root = fresh(&o.work.join("heph"))?;
    let heph = Heph {
        bin: &o.heph,
        config: root.join("no-config.toml"),
    };
    let a_dir = root.join("a");

    let start = Instant::now();
    let nodes = o.nodes.to_string();
    let seed = o.seed.to_string();
    let mut gen = Command::new(&o.corpus)
        .args([
            "ops",
            "--tasks-only",
            "--no-bodies",
            "--seed",
            &seed,
            "--nodes",
            &nodes,
        ])
        .stdout(Stdio::piped())
        .spawn()?;
    let ops = gen.stdout.take().ok_or("corpus stdout")?;
    let imported = heph.cmd(&a_dir, &["import-ops"]).stdin(ops).status()?;
    if !gen.wait()?.success() || !imported.success() {
        return Err("heph-corpus ops | heph import-ops failed".into());
    }
    let load = start.elapsed();
    eprintln!("heph: corpus ops imported into replica A in {}", secs(load));

    let mut hub = Kill(
        Command::new(&o.heph)
            .args(["hub", "--listen", "127.0.0.1:0", "--db"])
            .arg(root.join("hub.db"))
            .env("HEPH_CONFIG", &heph.config)
            .env("HEPH_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let mut line = String::new();
    BufReader::new(hub.0.stdout.take().ok_or("hub stdout")?).read_line(&mut line)?;
    let url = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_owned();
    if !url.starts_with("http://") {
        return Err(format!("the hub said {line:?}").into());
    }

    let (_, push) = heph.run(&a_dir, &["sync", "--hub", &url])?;
    eprintln!("heph: A synced to the hub in {}", secs(push));

    let mut pull = Vec::new();
    let mut b_dir = PathBuf::new();
    for run in 0..o.pull_runs {
        b_dir = root.join(format!("b{run}"));
        let (_, took) = heph.run(&b_dir, &["sync", "--hub", &url])?;
        pull.push(took);
        eprintln!("heph: initial sync of B in {}", secs(took));
    }

    let mut list = Vec::new();
    let mut listed = 0;
    for _ in 0..o.runs {
        let (out, took) = heph.run(&b_dir, &["list", "tasks"])?;
        listed = out.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count();
        list.push(took);
    }
    eprintln!(
        "heph: {listed} lines listed, median {}",
        secs(median(list.clone()))
    );

    let mut edit = Vec::new();
    for run in 0..o.runs {
        let title = format!("title=edited title {run}");
        let (_, set) = heph.run(&b_dir, &["set", edit_id, &title])?;
        let (_, sync) = heph.run(&b_dir, &["sync", "--hub", &url])?;
        edit.push(set + sync);
    }
    eprintln!(
        "heph: one edit + sync, median {}",
        secs(median(edit.clone()))
    );
    drop(hub);
    Ok(Figures {
        load,
        push,
        pull,
        list,
        listed,
        edit,
    })
}

// ---------------------------------------------------------------- main

#[tokio::main(flavor = "current_thread")]
async fn main() -> Res<()> {
    let o = options()?;
    let corpus = Corpus::with_shape(
        o.seed,
        o.nodes,
        Shape {
            tasks_only: true,
            bodies: false,
        },
    );
    // The edited task: the first one still open.
    let edit = corpus
        .nodes()
        .find(|n| matches!(n.status, Some(HephStatus::Todo)))
        .ok_or("no open task")?;
    eprintln!(
        "{} tasks (seed {}); the edit changes the title of {}",
        o.nodes, o.seed, edit.id
    );

    let tc = taskchampion(&o, &corpus, &edit.id).await?;
    let hp = heph(&o, &edit.id)?;

    let row = |what: &str, h: Duration, t: Duration| {
        println!(
            "| {what} | {} | {} | {} |",
            secs(h),
            secs(t),
            ratio(h.as_secs_f64() / t.as_secs_f64())
        )
    };
    println!();
    println!("| what | heph | TaskChampion | heph / TaskChampion |");
    println!("|---|---|---|---|");
    row("load replica A (import / create)", hp.load, tc.load);
    row("sync A to the server (upload)", hp.push, tc.push);
    row(
        &format!("initial sync of empty B (median of {})", o.pull_runs),
        median(hp.pull),
        median(tc.pull),
    );
    row(
        &format!(
            "list open tasks in B ({} / {} listed; median of {})",
            hp.listed, tc.listed, o.runs
        ),
        median(hp.list),
        median(tc.list),
    );
    row(
        &format!("one edit in B + sync (median of {})", o.runs),
        median(hp.edit),
        median(tc.edit),
    );
    Ok(())
}
