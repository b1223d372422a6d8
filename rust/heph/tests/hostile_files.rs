//! Files on a shared or damaged disk: the data dir is 0700 and every
//! replica, log and hub file 0600 under umask 022 (existing ones are fixed);
//! files that are not heph replicas are refused with a message naming them;
//! damaged data gives errors, not panics; a read-only replica can be read.
#![cfg(unix)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `heph --data-dir DIR ARGS...` under umask 022.
fn heph(dir: &Path, args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg("umask 022; exec \"$0\" \"$@\"")
        .arg(common::BIN)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("HEPH_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = heph(dir, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn with_suffix(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

#[test]
fn heph_add_makes_a_private_data_dir_and_replica() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    ok(&data, &["add", "a", "secret", "note"]);
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("replica.db")), 0o600);
    // The WAL and shared memory, kept while a second process holds the file.
    let replica = data.join("replica.db");
    for suffix in ["-wal", "-shm"] {
        let companion = with_suffix(&replica, suffix);
        if companion.exists() {
            assert_eq!(mode(&companion), 0o600, "{suffix}");
        }
    }
    // Files from before (0644 in a 0755 dir) are made private on open.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&replica, std::fs::Permissions::from_mode(0o644)).unwrap();
    ok(&data, &["list"]);
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&replica), 0o600);
}

#[test]
fn a_sidecar_start_makes_private_files() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let log = root.path().join("state").join("heph").join("sidecar.log");
    // A log from before, readable by all, is made private.
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    std::fs::write(&log, b"old line\n").unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(
        log.parent().unwrap(),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("umask 022; exec \"$0\" \"$@\"")
        .arg(common::BIN)
        .arg("--data-dir")
        .arg(&data)
        .args(["sidecar", "--log-file"])
        .arg(&log)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !(log.exists() && data.join("replica.db").exists()) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no sidecar files"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    let replica = data.join("replica.db");
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&replica), 0o600);
    assert_eq!(mode(&log), 0o600);
    for suffix in ["-wal", "-shm"] {
        let companion = with_suffix(&replica, suffix);
        if companion.exists() {
            assert_eq!(mode(&companion), 0o600, "{suffix}");
        }
    }
    drop(child.stdin.take());
    let _ = child.wait();
}

#[test]
fn a_hub_start_makes_private_files() {
    let root = tempfile::tempdir().unwrap();
    let db = root.path().join("hub.db");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("umask 022; exec \"$0\" \"$@\"")
        .arg(common::BIN)
        .args(["hub", "--listen", "127.0.0.1:0", "--db"])
        .arg(&db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(line.contains("listening"), "{line}");
    let _hub = common::Proc(child);
    wait_for(&db);
    assert_eq!(mode(&db), 0o600);
    for suffix in ["-wal", "-shm"] {
        let companion = with_suffix(&db, suffix);
        if companion.exists() {
            assert_eq!(mode(&companion), 0o600, "{suffix}");
        }
    }
    // `heph hub` with the default database: a private data dir too.
    let data = root.path().join("data");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("umask 022; exec \"$0\" \"$@\"")
        .arg(common::BIN)
        .arg("--data-dir")
        .arg(&data)
        .args(["hub", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let _hub2 = common::Proc(child);
    wait_for(&data.join("hub.db"));
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("hub.db")), 0o600);
    drop(_hub2);
    // A hub database from before, readable by all, is made private.
    let old = root.path().join("old-hub.db");
    std::fs::write(&old, b"").unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (child, _) = common::spawn_hub(&old, "127.0.0.1:0", &[]);
    let _hub3 = common::Proc(child);
    let started = Instant::now();
    while mode(&old) != 0o600 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still {:o}",
            mode(&old)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_for(path: &Path) {
    let started = Instant::now();
    while !path.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
}

#[test]
fn a_data_dir_that_is_a_file_is_refused_and_left_alone() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("notes.md");
    std::fs::write(&data, "# my notes\n").unwrap();
    for args in [&["list"][..], &["add", "x"]] {
        let out = heph(&data, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}: accepted");
        assert!(
            stderr.contains(&format!("the data dir {} is a file", data.display())),
            "{args:?}: {stderr}"
        );
    }
    assert_eq!(std::fs::read_to_string(&data).unwrap(), "# my notes\n");
}

#[test]
fn files_that_are_not_replicas_are_refused_by_name() {
    let cases: &[(&str, &[u8])] = &[
        ("empty", b""),
        ("one byte", b"S"),
        ("garbage", &[0xAB; 8192]),
        ("truncated header", b"SQLite format 3\0\x10\0"),
    ];
    for (name, bytes) in cases {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let replica = data.join("replica.db");
        std::fs::write(&replica, bytes).unwrap();
        for args in [&["list"][..], &["add", "x"], &["dump"], &["search", "x"]] {
            let out = heph(&data, args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{name} {args:?}: accepted");
            assert!(
                stderr.contains(&replica.display().to_string())
                    && stderr.contains("not a heph replica"),
                "{name} {args:?}: {stderr}"
            );
            assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        }
        // Untouched.
        assert_eq!(&std::fs::read(&replica).unwrap(), bytes, "{name}");
    }
}

#[test]
fn another_sqlite_database_is_refused_and_damaged_text_is_an_error() {
    if Command::new("sqlite3").arg("-version").output().is_err() {
        eprintln!("sqlite3 not installed; skipped");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let replica = data.join("replica.db");
    let sql = |sql: &str| {
        let out = Command::new("sqlite3")
            .arg(&replica)
            .arg(sql)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    sql("CREATE TABLE photos (id INTEGER PRIMARY KEY);");
    let out = heph(&data, &["list"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("not a heph replica"), "{stderr}");
    std::fs::remove_file(&replica).unwrap();

    // A real replica whose text was damaged on disk.
    ok(&data, &["add", "fine"]);
    sql("UPDATE nodes SET title = CAST(x'fffe41' AS TEXT);");
    let out = heph(&data, &["dump"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("UTF-8"), "{stderr}");
}

/// Makes `data` read-only for the user the returned runner runs `heph`
/// as: nobody (setpriv) when running as root, which may write anything,
/// else this user. The bool: whether that is root's way.
fn read_only_runner(root: &Path, data: &Path) -> (impl Fn(&[&str]) -> Output, bool) {
    let replica = data.join("replica.db");
    std::fs::set_permissions(&replica, std::fs::Permissions::from_mode(0o444)).unwrap();
    let as_root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    if as_root {
        for dir in [root, data] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        for entry in std::fs::read_dir(data).unwrap() {
            let path = entry.unwrap().path();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
        }
    } else {
        std::fs::set_permissions(data, std::fs::Permissions::from_mode(0o500)).unwrap();
    }
    let (root, data) = (root.to_owned(), data.to_owned());
    let run = move |args: &[&str]| -> Output {
        let mut cmd = if as_root {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(common::BIN);
            c
        } else {
            Command::new(common::BIN)
        };
        cmd.arg("--data-dir")
            .arg(&data)
            .args(args)
            .env("HEPH_LOG", "warn")
            .env("HOME", &root)
            .output()
            .unwrap()
    };
    (run, as_root)
}

#[test]
fn a_read_only_replica_can_be_listed_searched_and_shown() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let id = ok(&data, &["add", "readable", "groceries"])
        .trim()
        .to_owned();
    let (run, as_root) = read_only_runner(root.path(), &data);
    for args in [
        &["list"][..],
        &["list", "--json"],
        &["search", "groceries"],
        &["show", &id],
    ] {
        let out = run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("readable"),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    // Writing says why it cannot.
    let out = run(&["add", "more"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("readonly")
            || String::from_utf8_lossy(&out.stderr).contains("read-only"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if !as_root {
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
}

/// A read-only replica whose latest changes are still in its WAL (its
/// writer was killed) is not shown without them: the reader is told how
/// to fold them in.
#[test]
fn a_read_only_replica_with_changes_in_its_wal_says_so_instead_of_hiding_them() {
    let root = tempfile::tempdir().unwrap();
    let live = root.path().join("live");
    ok(&live, &["add", "first"]);
    // An open connection keeps the CLI from folding the WAL into the file
    // when it exits, as a killed sidecar would have left it.
    let holder = heph_store::Replica::open(&live.join("replica.db")).unwrap();
    ok(&live, &["add", "second"]);
    let data = root.path().join("data");
    std::fs::create_dir(&data).unwrap();
    for name in ["replica.db", "replica.db-wal"] {
        std::fs::copy(live.join(name), data.join(name)).unwrap();
    }
    drop(holder);
    assert!(
        std::fs::metadata(data.join("replica.db-wal"))
            .unwrap()
            .len()
            > 0
    );
    let (run, as_root) = read_only_runner(root.path(), &data);
    let out = run(&["list"]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        stdout.contains("second") || stderr.contains("recent changes not yet folded"),
        "a stale list without a word: {stdout}{stderr}"
    );
    if !as_root {
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
}

#[test]
fn an_error_says_its_cause_once() {
    // A config path that is a directory: the message names the file and
    // its cause, without the cause repeated after it.
    let device = common::Device::new();
    let config = device.dir.path().join("config-dir");
    std::fs::create_dir(&config).unwrap();
    let out = device
        .cmd(&["status"])
        .env("HEPH_CONFIG", &config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("config-dir"), "{err}");
    assert_eq!(err.matches("os error 21").count(), 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}
