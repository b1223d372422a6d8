//! The replica files this process has open through SQLite.
//!
//! SQLite's locks on a database file are POSIX advisory locks, which
//! belong to the process, not to a descriptor: closing *any* descriptor of
//! the file drops them all. A second `Replica::open` in a process that has
//! the file open already (the sidecar opens one per sync pass beside the
//! editor's) must therefore not read the file's header or try it for
//! writing through a descriptor of its own. When one did, the sidecar lost
//! its locks; a CLI write beside it then believed itself the file's last
//! user, folded the WAL into the file and deleted it under the sidecar,
//! whose next open failed with "disk I/O error" (and whose writes could go
//! to the deleted WAL). What the first open found is kept here instead,
//! and a descriptor the process must open meanwhile is closed only once
//! no connection to the file is left ([`defer_close`]), as SQLite does
//! with its own.

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::sync::{Mutex, MutexGuard};

/// A file, by device and inode (what the locks are attached to).
type Key = (u64, u64);

#[derive(Default)]
struct Entry {
    /// Open replicas of the file in this process.
    count: usize,
    /// Whether the first open found it read-only for this process.
    read_only: bool,
    /// Descriptors to close once `count` is 0.
    to_close: Vec<File>,
}

static OPEN: Mutex<Option<HashMap<Key, Entry>>> = Mutex::new(None);

fn table() -> MutexGuard<'static, Option<HashMap<Key, Entry>>> {
    // A panic elsewhere while the lock was held leaves a table that is
    // still consistent (every change is one statement).
    OPEN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(unix)]
fn key(meta: &Metadata) -> Option<Key> {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn key(_: &Metadata) -> Option<Key> {
    // Other systems' locks are not POSIX locks: nothing to keep.
    None
}

/// Whether the file is read-only for this process, when the process has
/// it open already (`None`: it has not, check the file itself).
pub(crate) fn already_open(meta: &Metadata) -> Option<bool> {
    let key = key(meta)?;
    table()
        .as_ref()?
        .get(&key)
        .filter(|e| e.count > 0)
        .map(|e| e.read_only)
}

/// One open replica of a file; dropped after its connection is closed.
#[derive(Debug)]
pub(crate) struct Registration(Option<Key>);

/// Records an open replica of the file described by `meta`.
pub(crate) fn register(meta: &Metadata, read_only: bool) -> Registration {
    let key = key(meta);
    if let Some(key) = key {
        let mut table = table();
        let entry = table
            .get_or_insert_with(HashMap::new)
            .entry(key)
            .or_default();
        if entry.count == 0 {
            entry.read_only = read_only;
        }
        entry.count += 1;
    }
    Registration(key)
}

impl Drop for Registration {
    fn drop(&mut self) {
        let Some(key) = self.0 else { return };
        let mut table = table();
        let Some(files) = table.as_mut() else { return };
        if let Some(entry) = files.get_mut(&key) {
            entry.count = entry.count.saturating_sub(1);
            if entry.count == 0 {
                // Closes the deferred descriptors: no lock of this
                // process is left on the file to drop.
                files.remove(&key);
            }
        }
    }
}

/// Keeps `file` (a descriptor of a replica file the process has open)
/// until the last connection to it is closed; closes it now when there is
/// none.
pub(crate) fn defer_close(file: File) {
    let Ok(meta) = file.metadata() else { return };
    let Some(key) = key(&meta) else { return };
    let mut table = table();
    if let Some(entry) = table
        .as_mut()
        .and_then(|t| t.get_mut(&key))
        .filter(|e| e.count > 0)
    {
        entry.to_close.push(file);
    }
}
