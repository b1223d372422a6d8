//! Node commands: add, list, show, set, done, rm, restore, search, journal,
//! export-ops, import-ops.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use heph_core::{Kind, NewNode, Node, NodePatch, Op, Status};
use heph_store::{Columns, ListFilter, Replica, StatusFilter};

use crate::paths::Paths;

/// Options of `heph add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// task or note (a journal is a day's page: `heph journal DATE`).
    #[arg(long, default_value = "task", value_parser = parse_new_kind)]
    pub kind: Kind,
    /// Due date: YYYY-MM-DD, today, tomorrow, a weekday, +3d, -3d, +2w…
    #[arg(long, value_parser = parse_date_arg, allow_hyphen_values = true)]
    pub due: Option<time::Date>,
    /// Project name.
    #[arg(long)]
    pub project: Option<String>,
    /// A tag (repeat for several).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Body text (markdown).
    #[arg(long, conflicts_with = "body_file")]
    pub body: Option<String>,
    /// Read the body from this file (`-`: standard input), for bodies
    /// larger than a command line takes.
    #[arg(long, value_name = "PATH")]
    pub body_file: Option<std::path::PathBuf>,
    /// The title.
    #[arg(required = true, num_args = 1..)]
    pub title: Vec<String>,
}

/// Options of `heph list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// What to list, as in `:Heph list`: next, tasks, all, done, notes,
    /// project:NAME, tag:NAME, or words to search open tasks for (open
    /// tasks when absent).
    pub query: Vec<String>,
    /// Every live node, not only open tasks (alone: the query `all`; with
    /// project:NAME, tag:NAME or words: every node they match).
    #[arg(long)]
    pub all: bool,
    /// Print JSON (an array of nodes).
    #[arg(long)]
    pub json: bool,
}

/// Options of `heph show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Node id, or a unique prefix of one.
    #[arg(required_unless_present = "title")]
    pub id: Option<String>,
    /// Find the node by its title instead (case-insensitive).
    #[arg(long, conflicts_with = "id")]
    pub title: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Options of `heph set`.
#[derive(Debug, Args)]
pub struct SetArgs {
    /// Node id, or a unique prefix of one (leave it out with --title).
    pub id: Option<String>,
    /// Find the node by its title instead (case-insensitive).
    #[arg(long)]
    pub title: Option<String>,
    /// FIELD=VALUE pairs: title, kind, status, due, project, tags (comma separated), body. An empty value clears; a value is taken as written (body="$(cat note.md)")
    #[arg(num_args = 0..)]
    pub assignments: Vec<String>,
    /// The body heads (`body_heads` of `heph show --json`, comma separated)
    /// the new body was edited from: a body changed since is merged with
    /// this edit instead of being replaced by it.
    #[arg(long)]
    pub base: Option<String>,
    /// Set the body to the text of this file (`-`: standard input), for
    /// bodies larger than a command line takes.
    #[arg(long, value_name = "PATH")]
    pub body_file: Option<std::path::PathBuf>,
}

/// A single node: its id (or a unique prefix), or `--title`.
#[derive(Debug, Args)]
pub struct IdArg {
    /// Node id, or a unique prefix of one.
    #[arg(required_unless_present = "title")]
    pub id: Option<String>,
    /// Find the node by its title instead (case-insensitive).
    #[arg(long, conflicts_with = "id")]
    pub title: Option<String>,
}

/// Options of `heph search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Search terms.
    #[arg(required = true, num_args = 1..)]
    pub query: Vec<String>,
    /// At most this many results.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Options of `heph journal`.
#[derive(Debug, Args)]
pub struct JournalArgs {
    /// The day: YYYY-MM-DD, yesterday, a weekday, -3d… (today when absent).
    #[arg(value_parser = parse_date_arg, allow_hyphen_values = true)]
    pub date: Option<time::Date>,
}

/// A kind `heph add` makes. (A journal is refused by the store, which
/// says how to open one by its date.)
fn parse_new_kind(s: &str) -> Result<Kind, String> {
    s.parse()
        .map_err(|_| format!("unknown kind {s:?}: heph add makes a task or a note"))
}

fn parse_date_arg(s: &str) -> Result<time::Date, String> {
    heph_core::fields::parse_day(s, crate::local_day::today()).map_err(|e| e.0)
}

fn open(paths: &Paths) -> Result<Replica> {
    paths.ensure()?;
    let mut replica = Replica::open(&paths.replica())?;
    // Test hook: pretend this device's clock is off by this many ms.
    if let Some(skew) = std::env::var("HEPH_CLOCK_SKEW_MS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        replica.clock_mut().set_offset_ms(skew);
    }
    Ok(replica)
}

/// `heph dump` (hidden): the canonical dump, identical on converged replicas.
pub fn dump(paths: &Paths) -> Result<ExitCode> {
    std::io::stdout().write_all(open(paths)?.canonical_dump()?.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// JSON form of a node, shared by `list --json` and `show --json`.
pub fn node_json(node: &Node) -> serde_json::Value {
    let mut json = serde_json::Map::new();
    json.insert("id".into(), node.id.clone().into());
    // Every field of the field table, under its name.
    for field in heph_core::fields::FIELDS {
        let value = serde_json::to_value((field.get)(node)).unwrap_or_default();
        json.insert(field.name.into(), value);
    }
    json.insert("body".into(), node.body.clone().into());
    json.insert("created_ms".into(), node.created_ms.into());
    json.insert("updated_ms".into(), node.updated_ms.into());
    json.insert("deleted".into(), node.deleted.into());
    serde_json::Value::Object(json)
}

fn summary_line(node: &Node) -> String {
    let mut line = String::new();
    write_summary_line(node, &mut line);
    line
}

/// Appends a node's line of `heph list` to `out`.
fn write_summary_line(node: &Node, out: &mut String) {
    let mark = match (node.status, node.kind) {
        (None, Kind::Note) => "note",
        (None, Kind::Journal) => "jrnl",
        (status, _) => heph_core::text::list_buffer::checkbox(status),
    };
    out.push_str(&node.id);
    out.push_str("  ");
    out.push_str(mark);
    out.push(' ');
    heph_core::text::list_buffer::write_item_text(node, out);
}

/// `heph add`.
pub fn add(paths: &Paths, args: AddArgs) -> Result<ExitCode> {
    let body = match &args.body_file {
        Some(path) => read_body_file(path)?,
        None => args.body.unwrap_or_default(),
    };
    let mut replica = open(paths)?;
    let node = replica.create(NewNode {
        kind: Some(args.kind),
        title: args.title.join(" "),
        body,
        due: args.due,
        project: args.project,
        tags: args.tags.into_iter().collect(),
        status: None,
    })?;
    outln!("{}", node.id);
    Ok(ExitCode::SUCCESS)
}

/// `heph list`.
pub fn list(paths: &Paths, args: ListArgs) -> Result<ExitCode> {
    let replica = open(paths)?;
    let query = args.query.join(" ");
    let filter = if args.all && !query.trim().is_empty() {
        // A project, a tag or words, over every live node of any kind
        // and status; a named view (`done`, `notes`…) is its own scope.
        let mut filter = heph_store::list_query::parse(&query).filter;
        if filter.project.is_none() && filter.tag.is_none() && filter.text.is_none() {
            bail!("--all lists every node: give it with project:NAME, tag:NAME or words, or leave it out to list {query:?}");
        }
        filter.kinds.clear();
        filter.status = StatusFilter::Any;
        filter.limit = None;
        filter
    } else if args.all {
        heph_store::list_query::parse("all").filter
    } else if query.trim().is_empty() {
        ListFilter {
            kinds: vec![Kind::Task],
            ..ListFilter::default()
        }
    } else {
        heph_store::list_query::parse(&query).filter
    };
    // Streamed one node at a time: listing 30,000 tasks holds one node,
    // not the list; the text form reads no bodies.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.json {
        // The same bytes as the whole array pretty-printed at once.
        let mut first = true;
        replica.each_node(&filter, Columns::WithBody, |node| -> Result<()> {
            let text = serde_json::to_string_pretty(&node_json(&node))?;
            out.write_all(if first { b"[\n" } else { b",\n" })?;
            first = false;
            for (i, line) in text.lines().enumerate() {
                if i > 0 {
                    out.write_all(b"\n")?;
                }
                write!(out, "  {line}")?;
            }
            Ok(())
        })?;
        out.write_all(if first { b"[]\n" } else { b"\n]\n" })?;
    } else {
        // One line buffer for the whole list.
        let mut line = String::new();
        replica.each_node(&filter, Columns::Line, |node| -> Result<()> {
            line.clear();
            write_summary_line(&node, &mut line);
            line.push('\n');
            out.write_all(line.as_bytes())?;
            Ok(())
        })?;
    }
    out.flush()?;
    // A list cut at its limit (`next`) says so, as `:Heph next` does; on
    // stderr, so a script reading the lines gets only lines.
    if let Some(limit) = filter.limit {
        let total = replica.count(&filter)?;
        if total > limit {
            eprintln!("{limit} of {total} shown (heph list tasks for all)");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn require(replica: &Replica, id: &str) -> Result<Node> {
    if let Some(node) = replica.get(id)? {
        return Ok(node);
    }
    // A unique prefix, as git takes for commits.
    let mut matches: Vec<Node> = replica
        .ids_with_prefix(id, 6)?
        .iter()
        .filter_map(|id| replica.get(id).transpose())
        .collect::<Result<_, _>>()?;
    match matches.len() {
        0 => bail!("no node with id {id:?} (see `heph list --all`)"),
        1 => Ok(matches.remove(0)),
        n if n > 5 => bail!(
            "more than 5 nodes have ids starting with {id:?}; give more of it. Five of them:\n{}",
            shown(&matches)
        ),
        n => bail!(
            "{n} nodes have ids starting with {id:?}; give more of it:\n{}",
            shown(&matches)
        ),
    }
}

/// The first few of several matching nodes, one per line.
fn shown(matches: &[Node]) -> String {
    let lines: Vec<String> = matches
        .iter()
        .take(5)
        .map(|m| format!("  {}  {}", m.id, m.title))
        .collect();
    lines.join("\n")
}

/// The one node of `candidates` (ids of nodes titled `title`), or an
/// error that lists them: a command must not act on one of several nodes
/// picked silently.
fn only_titled(replica: &Replica, title: &str, candidates: Vec<String>) -> Result<Node> {
    match candidates.as_slice() {
        [] => bail!("no node titled {title:?} (see `heph list --all`)"),
        [id] => require(replica, id),
        _ => {
            let nodes = candidates
                .iter()
                .map(|id| require(replica, id))
                .collect::<Result<Vec<_>>>()?;
            bail!(
                "{} nodes are titled {title:?}; give the id of one:\n{}",
                nodes.len(),
                shown(&nodes)
            )
        }
    }
}

/// The node named by an id (or unique prefix) or by `--title`.
fn find(replica: &Replica, id: Option<&str>, title: Option<&str>) -> Result<Node> {
    match (id, title) {
        (_, Some(title)) => only_titled(replica, title, replica.ids_by_title(title)?),
        (Some(id), None) => require(replica, id),
        (None, None) => bail!("give a node id or --title"),
    }
}

/// `heph show`.
pub fn show(paths: &Paths, args: ShowArgs) -> Result<ExitCode> {
    let replica = open(paths)?;
    let node = find(&replica, args.id.as_deref(), args.title.as_deref())?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let mut json = node_json(&node);
        let heads: Vec<String> = replica
            .body_heads(&node.id)?
            .iter()
            .map(ToString::to_string)
            .collect();
        json["body_heads"] = serde_json::json!(heads);
        writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
    } else {
        writeln!(out, "{}", summary_line(&node))?;
        writeln!(out, "kind: {}", node.kind)?;
        if node.deleted {
            writeln!(out, "deleted: yes (heph restore {})", node.id)?;
        }
        if !node.body.is_empty() {
            writeln!(out)?;
            write!(out, "{}", node.body)?;
            if !node.body.ends_with('\n') {
                writeln!(out)?;
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Parses `FIELD=VALUE` pairs into a patch with the field table (the
/// grammar of node-buffer headers). A body is taken as written, as `add
/// --body` takes it: `body="$(cat note.md)"` must not turn the `\n` of a
/// code sample into a line break.
/// The text of a `--body-file` (`-`: standard input), which must be UTF-8.
fn read_body_file(path: &std::path::Path) -> Result<String> {
    let (bytes, name) = if path == std::path::Path::new("-") {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut bytes)
            .context("reading the body from standard input")?;
        (bytes, "standard input".to_owned())
    } else {
        let bytes = std::fs::read(path)
            .with_context(|| format!("reading the body from {}", path.display()))?;
        (bytes, path.display().to_string())
    };
    String::from_utf8(bytes).map_err(|e| {
        anyhow!(
            "the body in {name} is not UTF-8 text (a bad byte at offset {}); \
             convert it first, e.g. with iconv",
            e.utf8_error().valid_up_to()
        )
    })
}

fn parse_assignments(assignments: &[String]) -> Result<NodePatch> {
    let pairs = assignments
        .iter()
        .map(|a| {
            a.split_once('=')
                .with_context(|| format!("expected FIELD=VALUE, got {a:?}"))
        })
        .collect::<Result<Vec<_>>>()?;
    heph_core::fields::patch_from_pairs(pairs.iter().copied(), &crate::local_day::context())
        .map_err(|e| anyhow!(e.0))
}

/// `heph set`.
pub fn set(paths: &Paths, mut args: SetArgs) -> Result<ExitCode> {
    if args.title.is_some() {
        // With --title the first positional word is an assignment.
        if let Some(first) = args.id.take() {
            args.assignments.insert(0, first);
        }
    }
    if args.assignments.is_empty() && args.body_file.is_none() {
        bail!("nothing to set: give FIELD=VALUE pairs");
    }
    let mut patch = parse_assignments(&args.assignments)?;
    if let Some(path) = &args.body_file {
        if patch.body.is_some() {
            bail!("give the body once: body=… or --body-file, not both");
        }
        patch.body = Some(read_body_file(path)?);
    }
    let mut replica = open(paths)?;
    let id = find(&replica, args.id.as_deref(), args.title.as_deref())?.id;
    let changed = match &args.base {
        Some(base) => {
            let heads = base
                .split(',')
                .filter(|h| !h.trim().is_empty())
                .map(|h| h.trim().parse::<heph_core::Hlc>())
                .collect::<Result<Vec<_>, _>>()
                .context("--base takes the body_heads of `heph show --json`, comma separated")?;
            replica.update_from(&id, &patch, &heads)?.changed
        }
        None => replica.update(&id, &patch)?,
    };
    if changed.is_empty() {
        eprintln!("nothing changed");
    } else {
        eprintln!("changed: {}", changed.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

/// `heph done`.
pub fn done(paths: &Paths, args: IdArg) -> Result<ExitCode> {
    let mut replica = open(paths)?;
    let node = find(&replica, args.id.as_deref(), args.title.as_deref())?;
    if node.kind != Kind::Task {
        bail!("{} is a {}, not a task", node.id, node.kind);
    }
    replica.update(
        &node.id,
        &NodePatch {
            status: Some(Some(Status::Done)),
            ..NodePatch::default()
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `heph rm`.
pub fn rm(paths: &Paths, args: IdArg) -> Result<ExitCode> {
    let mut replica = open(paths)?;
    let node = find(&replica, args.id.as_deref(), args.title.as_deref())?;
    let id = node.id;
    // No second tombstone: it would win over a restore made elsewhere
    // meanwhile, deleting the node again once synced.
    if node.deleted {
        eprintln!("{id} is deleted already (undo with `heph restore {id}`)");
        return Ok(ExitCode::SUCCESS);
    }
    replica.delete(&id)?;
    eprintln!("deleted {id} (undo with `heph restore {id}`)");
    Ok(ExitCode::SUCCESS)
}

/// `heph restore`.
pub fn restore(paths: &Paths, args: IdArg) -> Result<ExitCode> {
    let mut replica = open(paths)?;
    let id = match (&args.id, &args.title) {
        // A deleted node has no live title: look among the deleted ones.
        (None, Some(title)) => {
            let deleted: Vec<String> = replica
                .list(&ListFilter {
                    status: StatusFilter::Any,
                    include_deleted: true,
                    ..ListFilter::default()
                })?
                .into_iter()
                .filter(|n| n.deleted && n.title.eq_ignore_ascii_case(title.trim()))
                .map(|n| n.id)
                .collect();
            if deleted.is_empty() {
                bail!("no deleted node titled {title:?}");
            }
            only_titled(&replica, title, deleted)?.id
        }
        _ => {
            let node = find(&replica, args.id.as_deref(), None)?;
            // A restore of a live node would still be an op, and it would
            // undo a delete made elsewhere meanwhile once synced.
            if !node.deleted {
                eprintln!("{} is not deleted: nothing to restore", node.id);
                return Ok(ExitCode::SUCCESS);
            }
            node.id
        }
    };
    replica.restore(&id)?;
    Ok(ExitCode::SUCCESS)
}

/// `heph search`.
pub fn search(paths: &Paths, args: SearchArgs) -> Result<ExitCode> {
    let replica = open(paths)?;
    if args.limit == 0 {
        bail!("--limit must be at least 1");
    }
    let hits = replica.search(&args.query.join(" "), args.limit)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&hits)?)?;
    } else {
        for hit in &hits {
            writeln!(
                out,
                "{}  {}  {}",
                hit.id,
                hit.title,
                hit.snippet.replace('\n', " ")
            )?;
        }
    }
    Ok(if hits.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `heph journal`.
pub fn journal(paths: &Paths, args: JournalArgs) -> Result<ExitCode> {
    let mut replica = open(paths)?;
    let node = replica.journal(args.date.unwrap_or_else(crate::local_day::today))?;
    outln!("{}", node.id);
    if node.deleted {
        eprintln!(
            "{} is deleted (heph restore {} brings it back)",
            node.id, node.id
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `heph export-ops`.
pub fn export_ops(paths: &Paths) -> Result<ExitCode> {
    let replica = open(paths)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    // Held body deltas (waiting for the version they apply to) last.
    for op in replica
        .export_ops()?
        .into_iter()
        .chain(replica.export_held_ops()?)
    {
        serde_json::to_writer(&mut out, &op)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `heph import-ops`: the lines are read, checked and applied as they come,
/// in one transaction, so a bad line leaves the replica untouched and a
/// large file is never held in memory whole. Reading, parsing and checking
/// run on a second thread, beside the apply (a bounded queue between them),
/// which also frees the ops once applied (they come back a chunk at a time,
/// at most a chunk or two waiting: it takes them before each batch it
/// sends).
pub fn import_ops(paths: &Paths) -> Result<ExitCode> {
    let mut replica = open(paths)?;
    let (send, receive) = std::sync::mpsc::sync_channel(IMPORT_QUEUE);
    // Applied ops go back to be freed by the thread that made them (see
    // `Replica::import_checked_ops`).
    let (give_back, spent) = std::sync::mpsc::channel::<Spent>();
    let reader = std::thread::spawn(move || {
        let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            read_ops(std::io::stdin().lock(), &send, &spent)
        }));
        if read.is_err() {
            // Not an end of input: the import must not commit.
            let stopped =
                heph_store::StoreError::Invalid("the thread reading stdin panicked".into());
            let _ = send.send(vec![Err(stopped)]);
        }
        // The input has ended: frees the rest until the apply ends (it
        // drops `give_back`).
        drop(send);
        spent.iter().for_each(drop);
        read
    });
    // On an error the reader is not waited for (it may be blocked on a
    // slow pipe): the process ends with it. `give_back` moves into the
    // closure, so it is dropped when the apply ends and the reader stops.
    let give_back = move |ops, payloads| {
        let _ = give_back.send((ops, payloads));
    };
    let report = replica.import_checked_ops(receive.into_iter().flatten(), give_back)?;
    reader
        .join()
        .ok()
        .and_then(std::result::Result::ok)
        .ok_or_else(|| anyhow!("the thread reading stdin panicked"))?;
    // Body edits whose version has not arrived are kept, not "present".
    let held = match report.held {
        0 => String::new(),
        n => {
            format!(", {n} body edit(s) kept until the version they edit arrives (see heph status)")
        }
    };
    eprintln!(
        "imported {} new ops ({} already present{held})",
        report.new_ops, report.duplicates
    );
    Ok(ExitCode::SUCCESS)
}

/// Ops per message and messages queued between the reader and the apply:
/// enough to keep both threads busy, little memory.
const IMPORT_BATCH: usize = 1024;
const IMPORT_QUEUE: usize = 4;

type OpBatch = Vec<std::result::Result<heph_store::CheckedOp, heph_store::StoreError>>;

/// A chunk of applied ops and their log texts, handed back to be freed.
type Spent = (Vec<Op>, Vec<String>);

/// Reads JSON lines from `input`, one op each, and sends them in batches;
/// stops after the first bad line (sent as an error) or when the receiver
/// is gone. Frees what comes back on `spent` as it goes. Returns how many
/// ops it read.
fn read_ops(
    input: impl BufRead,
    send: &std::sync::mpsc::SyncSender<OpBatch>,
    spent: &std::sync::mpsc::Receiver<Spent>,
) -> usize {
    let mut read = 0usize;
    let mut batch = Vec::with_capacity(IMPORT_BATCH);
    for (index, line) in input.lines().enumerate() {
        let parsed = match line {
            Err(e) => Err(heph_store::StoreError::Invalid(format!(
                "line {}: cannot read stdin: {e}",
                index + 1
            ))),
            Ok(line) if line.trim().is_empty() => continue,
            // A byte-order mark some editors put at the start of a file.
            Ok(line) => serde_json::from_str::<Op>(line.strip_prefix('\u{feff}').unwrap_or(&line))
                .map_err(|e| format!("not an op: {e}"))
                .and_then(|op| heph_store::CheckedOp::new(op).map_err(|e| e.to_string()))
                .map_err(|e| heph_store::StoreError::Invalid(format!("line {}: {e}", index + 1))),
        };
        let failed = parsed.is_err();
        read += usize::from(!failed);
        batch.push(parsed);
        if failed || batch.len() == IMPORT_BATCH {
            spent.try_iter().for_each(drop);
            let full = std::mem::replace(&mut batch, Vec::with_capacity(IMPORT_BATCH));
            if send.send(full).is_err() || failed {
                return read;
            }
        }
    }
    if !batch.is_empty() {
        let _ = send.send(batch);
    }
    read
}
