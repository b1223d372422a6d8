//! The journal of an import into a new replica file. In WAL mode every
//! page of the import is written twice (to the WAL, then by the checkpoint
//! into the file), and every page the one long transaction reads back looks
//! the WAL up first. A rollback journal keeps a copy of only the pages the
//! file had before, which for an empty replica is a handful: the new pages
//! are written once, into the file. A load cut short still leaves nothing:
//! the next open finds the journal and rolls the file back.
//!
//! Leaving WAL needs the only connection to the file, so while another
//! process has the replica open the import keeps WAL (slower, same result).
//! Meanwhile the import holds the file alone: another process that opens
//! it waits for the import (the busy timeout), as it would for any writer.

use std::path::Path;
use std::thread::JoinHandle;

use rusqlite::Connection;

use crate::Result;

/// Switches `conn` to a rollback journal for a bulk load. Returns whether
/// it did; [`back_to_wal`] undoes it.
pub(crate) fn switch_to_rollback(conn: &Connection) -> Result<bool> {
    if !leave_wal(conn)? {
        return Ok(false);
    }
    // A rollback journal is only safe against power loss with a sync at
    // every step (the replica's setting, see `Replica::init`).
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(true)
}

/// Switches `conn` from WAL to a rollback journal if it is the only
/// connection to the file (SQLite refuses while another one has it open:
/// this is also the proof of sole access). Returns whether it did.
pub(crate) fn leave_wal(conn: &Connection) -> Result<bool> {
    match conn.query_row("PRAGMA journal_mode = DELETE", [], |r| {
        r.get::<_, String>(0)
    }) {
        Ok(mode) => Ok(mode.eq_ignore_ascii_case("delete")),
        Err(e) if crate::is_busy_error(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Puts `conn` back in WAL mode after [`switch_to_rollback`].
pub(crate) fn back_to_wal(conn: &Connection) -> Result<()> {
    conn.pragma_update(None, "synchronous", "FULL")?;
    // The import is committed whatever happens here: every open switches
    // the file to WAL again, and until then it works with the rollback
    // journal.
    match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)) {
        Ok(mode) if mode.eq_ignore_ascii_case("wal") => {}
        Ok(mode) => tracing::warn!(mode, "the replica could not go back to WAL mode yet"),
        Err(error) => {
            tracing::warn!(%error, "the replica could not go back to WAL mode yet")
        }
    }
    Ok(())
}

/// Starts the disk writing what a bulk load has put in the replica file so
/// far, on another thread, while the load goes on building its indexes.
/// The commit still syncs the file, as it must; it only has less left to
/// wait for (the import of 100,000 notes: a commit of 0.45–0.8 s took
/// 0.16–0.21 s, doc/benchmarks.md, round 9). A failure here changes
/// nothing: the commit's own sync reports any real one.
pub(crate) fn start_writeback(path: &Path) -> Option<JoinHandle<()>> {
    let path = path.to_owned();
    std::thread::Builder::new()
        .name("heph-writeback".into())
        .spawn(move || match std::fs::File::open(&path) {
            Ok(file) => {
                if let Err(error) = file.sync_data() {
                    tracing::debug!(%error, "early writeback of the replica failed");
                }
                // Closed now, it would drop the import's locks on the
                // file (see `open_files`).
                crate::open_files::defer_close(file);
            }
            Err(error) => tracing::debug!(%error, "early writeback of the replica failed"),
        })
        .ok()
}
