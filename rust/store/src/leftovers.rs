//! Scratch files a killed process left beside the replica: a snapshot
//! being made or installed (`.heph-snapshot-export-PID-N`, `-import-`,
//! `-upload-`, with SQLite's `-journal`, `-wal`, `-shm`) or a replica
//! being created (`replica.db.new-PID`). Each holds a copy of the notes,
//! up to the replica's size; nothing else removes them, so each killed
//! sync would add another. Removed at the first open of the replica in a
//! process, when the process that made them is gone and nothing has
//! written them for a while.

use std::path::Path;
use std::time::Duration;

/// What a scratch file is made for, by its name's start.
const SNAPSHOT_PREFIXES: &[&str] = &[
    ".heph-snapshot-export-",
    ".heph-snapshot-import-",
    ".heph-snapshot-upload-",
];

/// A scratch file untouched for this long is not being written: a live
/// snapshot or creation writes its file all along. (Another PID namespace
/// — a containerised Neovim beside a host CLI — sees the other side's
/// processes as gone; the age keeps their live files.)
const STALE_AFTER: Duration = Duration::from_secs(15 * 60);

/// The process id in the name of a scratch file of the replica whose file
/// name is `replica`, when it is one.
fn owner_pid(name: &str, replica: &str) -> Option<u32> {
    let base = ["-journal", "-wal", "-shm"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name);
    if let Some(rest) = SNAPSHOT_PREFIXES.iter().find_map(|p| base.strip_prefix(p)) {
        // `{pid}-{n}`.
        let (pid, n) = rest.split_once('-')?;
        n.parse::<u64>().ok()?;
        return pid.parse().ok();
    }
    base.strip_prefix(replica)?
        .strip_prefix(".new-")?
        .parse()
        .ok()
}

/// Whether process `pid` is running (unknown: assumed so, nothing removed).
fn alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

/// Removes the scratch files beside the replica at `path` whose process
/// is gone and which nothing wrote for [`STALE_AFTER`]; returns how many.
/// Never fails: a file that cannot be removed stays.
pub(crate) fn sweep(path: &Path) -> usize {
    sweep_older_than(path, STALE_AFTER)
}

fn sweep_older_than(path: &Path, age: Duration) -> usize {
    let (Some(dir), Some(replica)) = (path.parent(), path.file_name().and_then(|n| n.to_str()))
    else {
        return 0;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| owner_pid(n, replica)) else {
            continue;
        };
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|elapsed| elapsed >= age);
        if stale && !alive(pid) && std::fs::remove_file(entry.path()).is_ok() {
            tracing::info!(file = %entry.path().display(), "removed a scratch file left by a process that is gone");
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_scratch_files_give_their_process() {
        let pid = |name| owner_pid(name, "replica.db");
        assert_eq!(pid(".heph-snapshot-import-32501-0"), Some(32501));
        assert_eq!(pid(".heph-snapshot-export-578-12-journal"), Some(578));
        assert_eq!(pid(".heph-snapshot-upload-578-0"), Some(578));
        assert_eq!(pid("replica.db.new-32336-wal"), Some(32336));
        for other in [
            "replica.db",
            "replica.db-wal",
            "notes.md",
            ".heph-x",
            ".heph-notes-12-3",
            "backup.db.new-2024",
            "replica.db.new-",
        ] {
            assert_eq!(pid(other), None, "{other}");
        }
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn only_old_files_of_processes_that_are_gone_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        // A pid past the kernel's maximum is never running.
        let gone = 4_194_305;
        let mine = std::process::id();
        for name in [
            format!(".heph-snapshot-import-{gone}-0"),
            format!(".heph-snapshot-import-{gone}-0-journal"),
            format!("replica.db.new-{gone}"),
            format!(".heph-snapshot-export-{mine}-0"),
            "replica.db".to_owned(),
            ".heph-notes".to_owned(),
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let replica = dir.path().join("replica.db");
        // Written just now: perhaps a live writer's, wherever it runs.
        assert_eq!(sweep(&replica), 0);
        assert_eq!(sweep_older_than(&replica, Duration::ZERO), 3);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".heph-notes".into(),
                format!(".heph-snapshot-export-{mine}-0"),
                "replica.db".into()
            ]
        );
    }
}
