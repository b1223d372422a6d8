//! Scratch files a killed process left beside the replica: a snapshot
//! being made or installed (`.heph-snapshot-export-PID-N`, `-import-`,
//! `-upload-`, with SQLite's `-journal`, `-wal`, `-shm`) or a replica
//! being created (`replica.db.new-PID`). Each holds a copy of the notes,
//! up to the replica's size; nothing else removes them, so each killed
//! sync would add another. Removed at the first open of the replica in a
//! process, when the process that made them is gone.

use std::path::Path;

/// The process id in a scratch file's name, when it is one of ours.
fn owner_pid(name: &str) -> Option<u32> {
    let base = ["-journal", "-wal", "-shm"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name);
    if let Some(rest) = base.strip_prefix(".heph-") {
        // `.heph-{what}-{pid}-{n}`, where `what` may hold dashes.
        let mut parts = rest.rsplitn(3, '-');
        let n = parts.next()?;
        let pid = parts.next()?;
        parts.next()?;
        n.parse::<u64>().ok()?;
        return pid.parse().ok();
    }
    let (_, pid) = base.rsplit_once(".db.new-")?;
    pid.parse().ok()
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

/// Removes the scratch files in `dir` whose process is gone; returns how
/// many. Never fails: a file that cannot be removed stays.
pub(crate) fn sweep(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(owner_pid) else {
            continue;
        };
        if !alive(pid) && std::fs::remove_file(entry.path()).is_ok() {
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
        assert_eq!(owner_pid(".heph-snapshot-import-32501-0"), Some(32501));
        assert_eq!(owner_pid(".heph-snapshot-export-578-12-journal"), Some(578));
        assert_eq!(owner_pid(".heph-snapshot-upload-578-0"), Some(578));
        assert_eq!(owner_pid("replica.db.new-32336-wal"), Some(32336));
        for other in [
            "replica.db",
            "replica.db-wal",
            "notes.md",
            ".heph-x",
            ".heph-a-b-c",
            "x.db.new-",
        ] {
            assert_eq!(owner_pid(other), None, "{other}");
        }
    }

    #[test]
    fn only_files_of_processes_that_are_gone_are_removed() {
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
        assert_eq!(sweep(dir.path()), 3);
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
