//! The scripting CLI, run as a real process on a temporary replica.

use std::io::Write;
use std::process::{Command, Output, Stdio};

struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_heph"))
            .arg("--data-dir")
            .arg(self.dir.path())
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn err(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "{args:?} should fail");
        String::from_utf8(out.stderr).unwrap()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    /// `heph import-ops`, started with a pipe for its stdin.
    fn start_import(&self) -> std::process::Child {
        self.start(&["import-ops"])
    }

    /// `heph ARGS`, started with a pipe for its stdin.
    fn start(&self, args: &[&str]) -> std::process::Child {
        Command::new(env!("CARGO_BIN_EXE_heph"))
            .arg("--data-dir")
            .arg(self.dir.path())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Runs `heph ARGS` with `input` on its stdin.
    fn with_stdin(&self, args: &[&str], input: impl AsRef<[u8]>) -> Output {
        let mut child = self.start(args);
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_ref()).unwrap();
        drop(stdin);
        child.wait_with_output().unwrap()
    }

    /// Feeds `input` to `heph import-ops` and waits for it.
    fn import(&self, input: impl AsRef<[u8]>) -> Output {
        self.with_stdin(&["import-ops"], input)
    }

    /// [`Cli::import`] that must succeed, as [`Cli::ok`] runs a command.
    fn import_ok(&self, input: &str) {
        let out = self.import(input);
        assert!(
            out.status.success(),
            "import-ops: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn add_show_set_done_rm() {
    let cli = Cli::new();
    let id = cli.ok(&[
        "add",
        "--due",
        "2026-12-24",
        "--project",
        "home",
        "--tag",
        "gift",
        "Wrap",
        "presents",
    ]);
    let id = id.trim();
    let node = cli.json(&["show", id, "--json"]);
    assert_eq!(node["title"], "Wrap presents");
    assert_eq!(node["due"], "2026-12-24");
    assert_eq!(node["project"], "home");
    assert_eq!(node["tags"][0], "gift");
    assert_eq!(node["status"], "todo");

    cli.ok(&["set", id, "title=Wrap gifts", "tags=gift,family", "due="]);
    let node = cli.json(&["show", id, "--json"]);
    assert_eq!(node["title"], "Wrap gifts");
    assert_eq!(node["due"], serde_json::Value::Null);
    assert_eq!(node["tags"].as_array().unwrap().len(), 2);

    cli.ok(&["done", id]);
    assert_eq!(cli.json(&["show", id, "--json"])["status"], "done");
    assert!(cli.json(&["list", "--json"]).as_array().unwrap().is_empty());
    assert_eq!(
        cli.json(&["list", "--all", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    cli.ok(&["rm", id]);
    assert_eq!(cli.json(&["show", id, "--json"])["deleted"], true);
    assert!(cli
        .json(&["list", "--all", "--json"])
        .as_array()
        .unwrap()
        .is_empty());
    cli.ok(&["restore", id]);
    assert_eq!(cli.json(&["show", id, "--json"])["deleted"], false);
}

#[test]
fn bad_input_fails_clearly() {
    let cli = Cli::new();
    let id = cli.ok(&["add", "x"]);
    let id = id.trim();
    assert!(cli.err(&["show", "nope"]).contains("no node with id"));
    assert!(cli
        .err(&["add", "--due", "someday", "x"])
        .contains("YYYY-MM-DD"));
    assert!(cli
        .err(&["set", id, "colour=red"])
        .contains("unknown field"));
    assert!(cli
        .err(&["set", id, "status=maybe"])
        .contains("unknown status"));
    assert!(cli.err(&["set", id, "no-equals"]).contains("FIELD=VALUE"));
    assert!(cli.err(&["journal", "2026-02-30"]).contains("invalid date"));
    // Offsets with two signs, too large to count in days: refused, no
    // panic (they overflowed).
    for due in ["--due=+-1000000000000000d", "--due=--3d"] {
        assert!(
            cli.err(&["add", due, "x"]).contains("invalid date"),
            "{due}"
        );
    }
    assert!(cli
        .err(&["journal", "--", "--9223372036854775808d"])
        .contains("invalid date"));
    // `due=@fri`, as a list line writes it, is a day.
    cli.ok(&["set", id, "due=@tomorrow"]);
    assert!(cli.json(&["show", id, "--json"])["due"].is_string());
    cli.ok(&["set", id, "due="]);
    assert!(cli
        .err(&["add", "--kind", "poem", "x"])
        .contains("unknown kind"));
    assert!(cli
        .err(&["status", "--hub", "notaurl"])
        .contains("invalid hub URL"));
    // Nothing above changed the node.
    assert_eq!(cli.json(&["show", id, "--json"])["title"], "x");
}

#[test]
fn today_is_the_day_date_prints_in_every_time_zone() {
    let cli = Cli::new();
    // Far east and west of UTC, and POSIX rules with change times outside
    // 0–24 h as tzdata writes them (Jerusalem, Nuuk), which were UTC.
    for tz in [
        "UTC",
        "Pacific/Kiritimati",
        "Pacific/Pago_Pago",
        "XST12XDT,M3.4.4/26,M10.5.0",
        "IST-14IDT,M3.4.4/26,M10.5.0",
        "<-02>2<-01>,M3.5.0/-1,M10.5.0/0",
    ] {
        let date = |()| {
            let out = Command::new("date")
                .arg("+%Y-%m-%d")
                .env("TZ", tz)
                .output()
                .unwrap();
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        };
        let before = date(());
        let out = Command::new(env!("CARGO_BIN_EXE_heph"))
            .arg("--data-dir")
            .arg(cli.dir.path())
            .arg("journal")
            .env("TZ", tz)
            .output()
            .unwrap();
        let id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        let after = date(());
        assert!(
            id == format!("journal-{before}") || id == format!("journal-{after}"),
            "TZ={tz}: {id}, date says {before}"
        );
    }
}

#[test]
fn journal_is_stable_per_day() {
    let cli = Cli::new();
    let a = cli.ok(&["journal", "2026-11-22"]);
    let b = cli.ok(&["journal", "2026-11-22"]);
    assert_eq!(a, b);
    assert_eq!(a.trim(), "journal-2026-11-22");
    let today = cli.ok(&["journal"]);
    assert_eq!(today, cli.ok(&["journal"]));
}

#[test]
fn search_finds_bodies() {
    let cli = Cli::new();
    let id = cli.ok(&[
        "add",
        "--kind",
        "note",
        "--body",
        "the zebra crossing",
        "Walk",
    ]);
    let hits = cli.json(&["search", "zebra", "--json"]);
    assert_eq!(hits[0]["id"], id.trim());
    assert!(hits[0]["snippet"].as_str().unwrap().contains("[zebra]"));
    assert!(!cli.run(&["search", "giraffe"]).status.success());
    // No results asked for is a mistake, not "nothing matches".
    let zero = cli.run(&["search", "zebra", "--limit", "0"]);
    assert!(!zero.status.success());
    assert!(String::from_utf8_lossy(&zero.stderr).contains("--limit must be at least 1"));
}

#[test]
fn export_import_round_trip() {
    let a = Cli::new();
    a.ok(&["add", "one"]);
    a.ok(&["add", "--kind", "note", "--body", "text", "two"]);
    let ops = a.ok(&["export-ops"]);
    let b = Cli::new();
    b.import_ok(&ops);
    // Importing twice is harmless.
    b.import_ok(&ops);
    // A file saved with a byte-order mark imports as well.
    let c = Cli::new();
    c.import_ok(&format!("\u{feff}{ops}"));
    assert_eq!(c.ok(&["export-ops"]), ops);
    assert_eq!(b.ok(&["export-ops"]).lines().count(), ops.lines().count());
    assert_eq!(
        a.json(&["list", "--all", "--json"]),
        b.json(&["list", "--all", "--json"])
    );
    // A bad line refuses the whole import.
    let out = b.import("{\"op_id\":\"x\"}\n");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 1"));
}

/// A body delta whose base never came is held, and an export (a backup)
/// keeps it: imported again, it waits again, and its base makes it apply.
#[test]
fn an_export_keeps_held_body_deltas() {
    let a = Cli::new();
    // Long enough that an edit is stored as a delta.
    let body: String = (0..200)
        .map(|i| format!("line {i} of the note\n"))
        .collect();
    let id = a.ok(&["add", "--kind", "note", "--body", &body, "Held"]);
    a.ok(&["set", id.trim(), &format!("body={body}one more line\n")]);
    let ops = a.ok(&["export-ops"]);
    let (deltas, rest): (Vec<&str>, Vec<&str>) =
        ops.lines().partition(|l| l.contains("\"edit_body\""));
    assert_eq!(deltas.len(), 1, "{ops}");
    let b = Cli::new();
    let out = b.import(format!("{}\n", deltas[0]));
    assert!(out.status.success());
    // Kept, and said so: not "already present" (it was nowhere).
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("imported 0 new ops (0 already present, 1 body edit(s) kept until the version they edit arrives"),
        "{said}"
    );
    let exported = b.ok(&["export-ops"]);
    assert_eq!(exported.trim(), deltas[0]);
    // Status tells of it.
    assert_eq!(b.json(&["status", "--json"])["held"], 1);
    assert!(b.ok(&["status"]).contains("held:       1 body edit(s)"));
    let c = Cli::new();
    c.import_ok(&exported);
    c.import_ok(&format!("{}\n", rest.join("\n")));
    assert_eq!(c.ok(&["dump"]), a.ok(&["dump"]));
}

#[test]
fn an_import_refused_names_the_line_or_the_op() {
    let a = Cli::new();
    a.ok(&["add", "one"]);
    let ops = a.ok(&["export-ops"]);
    let b = Cli::new();
    // A line that is not UTF-8.
    let mut bytes = ops.clone().into_bytes();
    bytes.extend_from_slice(b"\xff\xfe\n");
    let err = String::from_utf8_lossy(&b.import(&bytes).stderr).into_owned();
    let line = ops.lines().count() + 1;
    assert!(
        err.contains(&format!("line {line}: cannot read stdin")),
        "{err}"
    );
    // An op stamped far in the future of this device's clock.
    let mut op: serde_json::Value = serde_json::from_str(ops.lines().next().unwrap()).unwrap();
    op["op_id"] = "future-op".into();
    op["hlc"] = "7fffffffff00000000-dev".into();
    let err = String::from_utf8_lossy(&b.import(format!("{op}\n")).stderr).into_owned();
    assert!(err.contains("op future-op: op stamped"), "{err}");
    assert_eq!(b.ok(&["export-ops"]), "");
}

/// The ops of a corpus of `nodes` notes, tasks and journals, as
/// `heph import-ops` reads them.
fn corpus_ops(nodes: usize) -> String {
    heph_corpus::Corpus::new(7, nodes)
        .ops()
        .map(|op| serde_json::to_string(&op).unwrap() + "\n")
        .collect()
}

/// More ops than the import applies in one chunk (4,096): the bulk path
/// (indexes dropped, each applied chunk handed back to the reading thread
/// to be freed) ends where imports of small pieces into a replica that is
/// not empty (indexes kept) end.
#[test]
fn an_import_of_many_chunks_equals_one_of_small_pieces() {
    let ops = corpus_ops(1500);
    let count = ops.lines().count();
    assert!(count > 2 * 4096, "more than two chunks: {count}");
    let whole = Cli::new();
    whole.import_ok(&ops);
    let pieces = Cli::new();
    let lines: Vec<&str> = ops.lines().collect();
    for piece in lines.chunks(1000) {
        pieces.import_ok(&(piece.join("\n") + "\n"));
    }
    assert_eq!(whole.ok(&["export-ops"]).lines().count(), count);
    let listed = |cli: &Cli| cli.json(&["list", "--all", "--json"]);
    assert_eq!(listed(&whole), listed(&pieces));
    let tagged = |cli: &Cli| cli.ok(&["list", "--all", "tag:idea"]);
    assert!(!tagged(&whole).is_empty());
    assert_eq!(tagged(&whole), tagged(&pieces));
}

/// An op larger than a hub accepts is refused on the reading thread, with
/// its line.
#[test]
fn an_import_names_the_line_of_a_too_large_op() {
    let ops = corpus_ops(1);
    let first = ops.lines().next().unwrap();
    let mut op: serde_json::Value = serde_json::from_str(first).unwrap();
    // Each quote takes two bytes in JSON: a body at the size limit makes
    // an op over the 2 MiB a hub takes.
    op["action"] = "set_body".into();
    op["op_id"] = "018fd118-9400-769e-8170-8e2b7f73fa30".into();
    op["body"] = "\"".repeat(1024 * 1024).into();
    op["base"] = serde_json::json!([]);
    op.as_object_mut().unwrap().remove("kind");
    let input = format!("{first}\n{op}\n");
    let cli = Cli::new();
    let out = cli.import(&input);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("line 2"), "{stderr}");
    assert!(stderr.contains("KiB"), "{stderr}");
    assert_eq!(cli.ok(&["export-ops"]).lines().count(), 0);
}

/// Lines are read on their own thread, a batch at a time: a bad line after
/// several batches, and after whole chunks were applied and handed back,
/// still refuses the whole import and names its line, and the command
/// ends at once without waiting for the rest of its input.
#[test]
fn import_stops_at_a_bad_line_without_waiting_for_the_rest() {
    let ops = corpus_ops(1500);
    let good = ops.lines().count();
    assert!(good > 2 * 4096, "more ops than two chunks: {good}");
    let b = Cli::new();
    let mut child = b.start_import();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(ops.as_bytes()).unwrap();
    stdin.write_all(b"not json\n").unwrap();
    stdin.flush().unwrap();
    // stdin stays open: the import must not wait for its end.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "import-ops still waits for input after a bad line"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!status.success());
    assert!(
        stderr.contains(&format!("line {}", good + 1)),
        "names the bad line: {stderr}"
    );
    assert_eq!(b.ok(&["export-ops"]).lines().count(), 0, "nothing imported");
}

#[test]
fn a_mistyped_token_store_stops_login_before_it_starts() {
    let cli = Cli::new();
    // Port 9 (discard) is closed: a login that reached the issuer would fail
    // with a network error instead.
    let out = Command::new(env!("CARGO_BIN_EXE_heph"))
        .arg("--data-dir")
        .arg(cli.dir.path())
        .args(["login", "--issuer", "http://127.0.0.1:9"])
        .args(["--client-id", "heph-cli", "--hub", "http://127.0.0.1:9"])
        .env("HEPH_TOKEN_STORE", "wallet")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("is not a token store"), "{stderr}");
}

#[test]
fn add_makes_no_journal_without_a_date() {
    let cli = Cli::new();
    let err = cli.err(&["add", "--kind", "journal", "Dear diary"]);
    assert!(err.contains("heph journal DATE"), "{err}");
    assert_eq!(
        cli.json(&["list", "--all", "--json"]),
        serde_json::json!([])
    );
}

#[test]
fn a_body_is_set_as_written_backslashes_and_all() {
    let cli = Cli::new();
    let id = cli.ok(&["add", "--kind", "note", "Snippets"]);
    let id = id.trim();
    // What `body="$(cat note.md)"` passes for a note with code in it.
    let body = "```c\nprintf(\"done\\n\");\n```\nC:\\new\\notes\n";
    cli.ok(&["set", id, &format!("body={body}")]);
    assert_eq!(cli.json(&["show", id, "--json"])["body"], body);
    assert_eq!(
        cli.json(&["show", id, "--json"])["body"],
        cli.json(&[
            "show",
            cli.ok(&["add", "--body", body, "Same"]).trim(),
            "--json"
        ])["body"]
    );
}

/// Only tasks have a status, from the CLI as from a buffer header; a
/// node that becomes a task starts as todo, as its header shows it.
#[test]
fn only_a_task_takes_a_status_and_a_new_task_is_todo() {
    let cli = Cli::new();
    let note = cli.ok(&["add", "--kind", "note", "Reading list"]);
    let note = note.trim();
    let err = cli.err(&["set", note, "status=done"]);
    assert!(err.contains("is a note; only tasks have a status"), "{err}");
    let journal = cli.ok(&["journal", "2026-12-01"]);
    let err = cli.err(&["set", journal.trim(), "status=done"]);
    assert!(
        err.contains("is a journal; only tasks have a status"),
        "{err}"
    );
    assert_eq!(
        cli.json(&["show", note, "--json"])["status"],
        serde_json::Value::Null
    );
    // Kind and status together: the status is for the task it becomes.
    cli.ok(&["set", note, "kind=task"]);
    assert_eq!(cli.json(&["show", note, "--json"])["status"], "todo");
    let other = cli.ok(&["add", "--kind", "note", "Other"]);
    cli.ok(&["set", other.trim(), "kind=task", "status=doing"]);
    assert_eq!(
        cli.json(&["show", other.trim(), "--json"])["status"],
        "doing"
    );
    // And back: a note has no status left over.
    cli.ok(&["set", other.trim(), "kind=note"]);
    assert_eq!(
        cli.json(&["show", other.trim(), "--json"])["status"],
        serde_json::Value::Null
    );
}

/// `--all` with a project, a tag or words lists every node they match,
/// done tasks and notes too; with a named view it is refused, not
/// silently preferred.
#[test]
fn list_all_with_a_query_widens_it_or_is_refused() {
    let cli = Cli::new();
    cli.ok(&["add", "--project", "home", "Paint"]);
    let done = cli.ok(&["add", "--project", "home", "Sweep"]);
    cli.ok(&["done", done.trim()]);
    cli.ok(&["add", "--project", "work", "Report"]);
    let open = cli.ok(&["list", "project:home"]);
    assert!(open.contains("Paint") && !open.contains("Sweep"), "{open}");
    let all = cli.ok(&["list", "project:home", "--all"]);
    assert!(all.contains("Paint") && all.contains("Sweep"), "{all}");
    assert!(!all.contains("Report"), "{all}");
    let err = cli.err(&["list", "done", "--all"]);
    assert!(err.contains("--all lists every node"), "{err}");
}

/// A reader that stops early (`heph dump | head -1`) ends the command
/// quietly, as it ends `cat`: no panic, no backtrace.
#[test]
fn a_reader_that_leaves_early_ends_every_command_quietly() {
    let cli = Cli::new();
    let lines: String = (0..3000)
        .map(|i| format!("[ ] Task number {i} with a long title to fill the pipe quickly\n"))
        .collect();
    let file = cli.dir.path().join("big.md");
    std::fs::write(&file, lines).unwrap();
    let id = cli.ok(&[
        "add",
        "--kind",
        "note",
        "--body-file",
        file.to_str().unwrap(),
        "Big",
    ]);
    // Each prints the long body, far more than a pipe holds.
    for args in [&["dump"][..], &["show", id.trim()], &["export-ops"]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_heph"))
            .arg("--data-dir")
            .arg(cli.dir.path())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A few bytes, then the pipe is closed with most still to come.
        let mut first = [0u8; 100];
        let read = std::io::Read::read(&mut child.stdout.take().unwrap(), &mut first).unwrap();
        assert!(read > 0, "{args:?} printed nothing");
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_ne!(out.status.code(), Some(101), "{args:?}: {err}");
    }
}

/// A misspelt `HEPH_TOKEN_STORE` is an error for sync and status too, not
/// only for a login.
#[test]
fn a_misspelt_token_store_is_an_error_everywhere() {
    let cli = Cli::new();
    for args in [&["status"][..], &["sync", "--hub", "http://127.0.0.1:9"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_heph"))
            .arg("--data-dir")
            .arg(cli.dir.path())
            .args(args)
            .env("HEPH_TOKEN_STORE", "secret-servise")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(err.contains("is not a token store"), "{args:?}: {err}");
    }
}

/// A body larger than the OS takes as one argument (about 128 KiB) goes
/// in through a file or standard input.
#[test]
fn a_body_too_large_for_a_command_line_comes_from_a_file_or_stdin() {
    let cli = Cli::new();
    let body: String = (0..20_000)
        .map(|i| format!("line {i} of a long note\n"))
        .collect();
    assert!(body.len() > 400 * 1024);
    let file = cli.dir.path().join("long.md");
    std::fs::write(&file, &body).unwrap();
    let file = file.to_str().unwrap();
    let id = cli.ok(&["add", "--kind", "note", "--body-file", file, "Long"]);
    let id = id.trim();
    assert_eq!(cli.json(&["show", id, "--json"])["body"], body.as_str());

    let changed = format!("{body}one more\n");
    let out = cli.with_stdin(&["set", id, "--body-file", "-"], &changed);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("changed: body"));
    assert_eq!(cli.json(&["show", id, "--json"])["body"], changed.as_str());

    // Given twice, or not text: refused, nothing changed.
    let err = cli.err(&["set", id, "body=short", "--body-file", file]);
    assert!(err.contains("give the body once"), "{err}");
    let latin1 = cli.dir.path().join("latin1.md");
    std::fs::write(&latin1, b"caf\xe9\n").unwrap();
    let err = cli.err(&["set", id, "--body-file", latin1.to_str().unwrap()]);
    assert!(err.contains("is not UTF-8 text"), "{err}");
    let err = cli.err(&["set", id, "--body-file", "/no/such/file.md"]);
    assert!(
        err.contains("reading the body from /no/such/file.md"),
        "{err}"
    );
    assert_eq!(cli.json(&["show", id, "--json"])["body"], changed.as_str());
}

#[test]
fn set_with_a_base_merges_a_body_changed_since() {
    let cli = Cli::new();
    let id = cli.ok(&[
        "add",
        "--kind",
        "note",
        "--body",
        "alpha\nbravo\ncharlie\n",
        "Shared",
    ]);
    let id = id.trim();
    let shown = cli.json(&["show", id, "--json"]);
    let heads: Vec<&str> = shown["body_heads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    assert_eq!(heads.len(), 1);
    // Another process changes the last line; this script then edits the
    // first line of the text it read.
    cli.ok(&["set", id, "body=alpha\nbravo\nCHARLIE\n"]);
    cli.ok(&[
        "set",
        id,
        "--base",
        &heads.join(","),
        "body=ALPHA\nbravo\ncharlie\n",
    ]);
    let body = cli.json(&["show", id, "--json"])["body"].clone();
    assert_eq!(body, "ALPHA\nbravo\nCHARLIE\n");
    // A base that is not a version of this node is refused, writing nothing.
    let err = cli.err(&["set", id, "--base", "000000000001000000-zz", "body=lost"]);
    assert!(err.contains("reload"), "{err}");
    assert_eq!(cli.json(&["show", id, "--json"])["body"], body);
    // Nor is one of another node's versions, which this replica has: the
    // message names the stamp and where the right ones are.
    let other = cli.ok(&["add", "--kind", "note", "--body", "x", "Other"]);
    let heads = cli.json(&["show", other.trim(), "--json"])["body_heads"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let err = cli.err(&["set", id, "--base", &heads, "body=lost"]);
    assert!(
        err.contains(&heads) && err.contains("another node"),
        "{err}"
    );
    assert!(err.contains("heph show"), "{err}");
    assert_eq!(cli.json(&["show", id, "--json"])["body"], body);
}

#[test]
fn fields_use_one_grammar() {
    let cli = Cli::new();
    let id = cli.ok(&["add", "--due", "tomorrow", "Call", "Bob"]);
    let id = id.trim();
    let node = cli.json(&["show", id, "--json"]);
    assert!(node["due"].as_str().unwrap().len() == 10, "{node}");
    cli.ok(&["set", id, "tags=#a, b c", "project=my big project"]);
    let node = cli.json(&["show", id, "--json"]);
    assert_eq!(node["tags"], serde_json::json!(["a", "b", "c"]));
    assert_eq!(node["project"], "my big project");
    // The same rules as a node buffer's header: an empty title is refused
    // before the store sees it, and a padded value is stored trimmed.
    assert!(cli.err(&["set", id, "title= "]).contains("title"));
    cli.ok(&["set", id, "status= done "]);
    assert_eq!(cli.json(&["show", id, "--json"])["status"], "done");
}

#[test]
fn an_empty_token_store_variable_means_unset() {
    let cli = Cli::new();
    let out = Command::new(env!("CARGO_BIN_EXE_heph"))
        .arg("--data-dir")
        .arg(cli.dir.path())
        .args(["login", "--issuer", "http://127.0.0.1:9"])
        .args(["--client-id", "heph-cli", "--hub", "http://127.0.0.1:9"])
        .env("HEPH_TOKEN_STORE", "")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("is not a token store"), "{stderr}");
}

#[test]
fn show_into_a_closed_pipe_exits_quietly() {
    let cli = Cli::new();
    let body = "line of a long body\n".repeat(5_000);
    let id = cli.ok(&["add", "--kind", "note", "--body", &body, "Long"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_heph"))
        .arg("--data-dir")
        .arg(cli.dir.path())
        .args(["show", id.trim()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `| head -1`: read one line, then close the pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.trim().is_empty(), "{stderr}");
}

#[test]
fn ids_take_a_unique_prefix_or_a_title() {
    let cli = Cli::new();
    let a = cli.ok(&["add", "Water plants"]).trim().to_owned();
    let b = cli.ok(&["add", "Feed cat"]).trim().to_owned();
    // The shortest prefix that tells them apart.
    let common = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    let short_a = &a[..common + 1];
    assert_eq!(cli.json(&["show", short_a, "--json"])["id"], a.as_str());
    if common > 0 {
        let err = cli.err(&["show", &a[..common]]);
        assert!(err.contains("give more of it"), "{err}");
    }
    assert_eq!(
        cli.json(&["show", "--title", "feed CAT", "--json"])["id"],
        b.as_str()
    );
    cli.ok(&["set", "--title", "Feed cat", "due=2026-12-01"]);
    assert_eq!(cli.json(&["show", &b, "--json"])["due"], "2026-12-01");
    cli.ok(&["done", "--title", "Water plants"]);
    assert_eq!(cli.json(&["show", &a, "--json"])["status"], "done");
    cli.ok(&["rm", &b[..common + 1]]);
    cli.ok(&["restore", "--title", "Feed cat"]);
    assert_eq!(cli.json(&["show", &b, "--json"])["deleted"], false);
    let err = cli.err(&["show", "--title", "Nothing like it"]);
    assert!(err.contains("no node titled"), "{err}");
}

#[test]
fn a_title_shared_by_several_nodes_picks_none() {
    let cli = Cli::new();
    let first = cli.ok(&["add", "Call mum"]).trim().to_owned();
    let second = cli.ok(&["add", "call MUM"]).trim().to_owned();
    for args in [
        &["show", "--title", "Call mum"][..],
        &["set", "--title", "Call mum", "due=2026-12-01"],
        &["done", "--title", "Call mum"],
        &["rm", "--title", "Call mum"],
    ] {
        let err = cli.err(args);
        assert!(err.contains("2 nodes are titled"), "{args:?}: {err}");
        assert!(err.contains(&first) && err.contains(&second), "{err}");
    }
    // Neither was touched.
    for id in [&first, &second] {
        let node = cli.json(&["show", id, "--json"]);
        assert_eq!(node["status"], "todo");
        assert_eq!(node["due"], serde_json::Value::Null);
        assert_eq!(node["deleted"], false);
    }
    // The same among deleted nodes, for restore.
    cli.ok(&["rm", &first]);
    cli.ok(&["rm", &second]);
    let err = cli.err(&["restore", "--title", "call mum"]);
    assert!(err.contains("2 nodes are titled"), "{err}");
    for id in [&first, &second] {
        assert_eq!(cli.json(&["show", id, "--json"])["deleted"], true);
    }
}

#[test]
fn restoring_a_live_node_or_deleting_a_deleted_one_writes_nothing() {
    let phone = Cli::new();
    let laptop = Cli::new();
    // `args` succeeds on `device`, says `says`, and writes no op.
    let writes_nothing = |device: &Cli, args: &[&str], says: &str| {
        let ops = device.ok(&["export-ops"]);
        let out = device.run(args);
        assert!(out.status.success());
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains(says), "{said}");
        assert_eq!(device.ok(&["export-ops"]), ops, "{args:?} wrote an op");
    };
    let id = phone.ok(&["add", "Renew passport"]).trim().to_owned();
    laptop.import_ok(&phone.ok(&["export-ops"]));
    // The laptop deletes it; the phone, not synced yet, still shows it
    // live and is told to restore it: there is nothing to restore there.
    laptop.ok(&["rm", &id]);
    writes_nothing(&phone, &["restore", &id], "not deleted");
    // Once they exchange ops, the laptop's delete holds on both.
    phone.import_ok(&laptop.ok(&["export-ops"]));
    laptop.import_ok(&phone.ok(&["export-ops"]));
    for device in [&phone, &laptop] {
        assert_eq!(device.json(&["show", &id, "--json"])["deleted"], true);
    }
    // A second rm is no op either, and says the node is deleted already.
    writes_nothing(&laptop, &["rm", &id], "deleted already");
}

#[test]
fn list_takes_the_query_language_of_list_buffers() {
    let cli = Cli::new();
    cli.ok(&[
        "add",
        "--project",
        "home",
        "--due",
        "2026-12-01",
        "Fix sink",
    ]);
    cli.ok(&[
        "add",
        "--project",
        "work",
        "--tag",
        "urgent",
        "Write report",
    ]);
    cli.ok(&["add", "--kind", "note", "Ideas"]);
    let titles = |args: &[&str]| -> Vec<String> {
        cli.json(&[&["list", "--json"][..], args].concat())
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["title"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(titles(&["project:home"]), ["Fix sink"]);
    assert_eq!(titles(&["tag:urgent"]), ["Write report"]);
    assert_eq!(titles(&["notes"]), ["Ideas"]);
    assert_eq!(titles(&["next"]).len(), 2);
    assert_eq!(titles(&["all"]).len(), titles(&["--all"]).len());
    assert_eq!(titles(&["report"]), ["Write report"]);
}
