//! heph-store: the local replica in SQLite — the op-log, the materialized
//! nodes, full-text search and per-hub sync state.
//!
//! Every write is one `BEGIN IMMEDIATE` transaction, so several processes
//! (Neovim sidecars, the CLI) can share one replica file: writers queue on
//! SQLite's lock (busy timeout) instead of failing.

mod bulk_index;
mod bulk_journal;
mod dump;
mod fts_structure;
mod leftovers;
pub mod list_query;
mod materialize;
mod node_row;
mod op_statements;
mod open_files;
mod query;
mod restamp;
mod schema;
mod search;
pub mod snapshot;
mod sync_state;
mod write;

use std::path::{Path, PathBuf};
use std::time::Duration;

use heph_core::{Clock, Hlc};
use rusqlite::{Connection, OpenFlags};

pub use materialize::ApplyReport;
pub use query::{Columns, ListFilter, ListOrder, StatusFilter};
pub use schema::SCHEMA_VERSION;
pub use search::SearchHit;
pub use snapshot::{Exported, Imported, SnapshotError, SnapshotHeader};
pub use sync_state::{PullOutcome, PushProgress, QuarantinedOp, RawOp, SetAside};
pub use write::{CheckedOp, Edit, Saved};

/// The page size of a new replica file. Rows carry note bodies (a few
/// hundred bytes to kilobytes) and the full-text index's blocks, and a
/// bulk load writes and reads every page several times: with 16 KiB
/// pages an import of 100,000 notes does a fifth less work than with
/// SQLite's default 4 KiB, in a smaller file (doc/benchmarks.md, round
/// 9). The page cache is sized in bytes, so memory stays the same.
/// Replicas made before keep their page size.
const PAGE_SIZE: i64 = 16 * 1024;

/// How long a writer waits for another process's transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long an open waits for the write lock its once-per-replica steps
/// take (a device id, bodies merged again after a rule change).
const ONCE_BUSY_TIMEOUT: Duration = Duration::from_secs(1);

/// Errors of the replica store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("replica database error: {0}{advice}", advice = sqlite_advice(.0))]
    Sqlite(#[from] rusqlite::Error),
    /// No node has this id.
    #[error("no node with id {0:?}")]
    UnknownNode(String),
    /// The node is deleted: it takes a restore before a change.
    #[error("node {0} is deleted; restore it first (heph restore {0})")]
    Deleted(String),
    /// A value or op from outside is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// An edit names a base version this replica does not have (the
    /// buffer came from elsewhere): reload before saving.
    #[error("{0}")]
    UnknownBase(String),
    /// An op's clock is too far ahead.
    #[error(transparent)]
    Clock(#[from] heph_core::HlcError),
    /// Stored data could not be read back.
    #[error("replica data is damaged: {0}")]
    Corrupt(String),
    /// The file was written by a newer heph.
    #[error("replica schema version {found} is newer than this heph supports ({supported}); upgrade heph")]
    TooNew {
        /// Version in the file.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// The replica file is opened read-only (this user may not write it).
    #[error(
        "the replica {0} is read-only for this user: nothing was saved (check the file's owner and permissions)"
    )]
    ReadOnly(PathBuf),
    /// The replica file cannot be opened.
    #[error("cannot open replica {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// The file exists but is not a heph replica (truncated, damaged, or
    /// something else); heph refuses to touch it.
    #[error(
        "{path} is not a heph replica ({reason}); heph will not use or overwrite it. \
         Move it aside and restore a backup copy of it, or sync into a new replica \
         (a missing file starts a new one)"
    )]
    NotAReplica {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A file-system operation on the replica failed.
    #[error("cannot use replica {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl StoreError {
    /// Whether another connection holds the replica (retrying may help).
    pub fn is_busy(&self) -> bool {
        matches!(self, StoreError::Sqlite(e) if is_busy_error(e))
    }
}

/// Whether SQLite refused because another connection holds the file.
pub(crate) fn is_busy_error(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Shorthand for store results.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One open replica.
pub struct Replica {
    conn: Connection,
    clock: Clock,
    path: Option<PathBuf>,
    /// The file's entry among those this process has open; dropped after
    /// `conn` (fields drop in order), see [`open_files`].
    registration: Option<open_files::Registration>,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica").field("path", &self.path).finish()
    }
}

impl Replica {
    /// Opens the replica at `path` and migrates it; a missing file becomes
    /// a new replica (created whole, readable by its owner only). A file
    /// that is not a heph replica is refused, never reinitialised; a file
    /// this process may not write is opened read-only, so reading works.
    pub fn open(path: &Path) -> Result<Self> {
        let io_err = |source| StoreError::Io {
            path: path.to_owned(),
            source,
        };
        let read_only = match std::fs::metadata(path) {
            Ok(meta) => match open_files::already_open(&meta) {
                // Checked by the open that holds it already: a descriptor
                // opened here would drop that open's locks when closed.
                Some(read_only) => read_only,
                None => {
                    check_header(path)?;
                    make_private(path);
                    leftovers::sweep(path);
                    !writable(path).map_err(io_err)?
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                create(path)?;
                false
            }
            Err(e) => return Err(io_err(e)),
        };
        if read_only {
            tracing::warn!(file = %path.display(), "the replica is not writable; opened read-only");
        }
        let mut replica = match Self::open_as(path, read_only, false) {
            // A WAL replica in a directory this process cannot write has no
            // shared-memory file to coordinate through: read it as an
            // immutable snapshot instead.
            Err(StoreError::Open { source, .. })
                if read_only
                    && matches!(
                        source.sqlite_error_code(),
                        Some(rusqlite::ErrorCode::ReadOnly | rusqlite::ErrorCode::CannotOpen)
                    ) =>
            {
                // An immutable open reads the file alone: changes still in
                // the WAL, or a cut-short import's journal, would be
                // missed without a word.
                for (suffix, what) in [
                    ("-wal", "recent changes not yet folded into the file"),
                    ("-journal", "an import that was cut short, to roll back"),
                ] {
                    let file = companion(path, suffix);
                    if std::fs::metadata(&file).is_ok_and(|m| m.len() > 0) {
                        return Err(StoreError::Invalid(format!(
                            "{} holds {what}, which this user cannot read without write access to {}; \
                             as the replica's owner, close heph (Neovim, a running sync) or run any \
                             heph command when none is open, then read it again",
                            file.display(),
                            path.parent().map_or_else(|| ".".into(), |d| d.display().to_string()),
                        )));
                    }
                }
                Self::open_as(path, true, true)?
            }
            other => other?,
        };
        for suffix in ["-wal", "-shm"] {
            make_private(&companion(path, suffix));
        }
        let meta = std::fs::metadata(path).map_err(io_err)?;
        replica.registration = Some(open_files::register(&meta, read_only));
        // A bulk load cut short left its index to build.
        replica.finish_bulk_load()?;
        Ok(replica)
    }

    fn open_as(path: &Path, read_only: bool, immutable: bool) -> Result<Self> {
        let mut flags = OpenFlags::SQLITE_OPEN_NO_MUTEX;
        flags |= if read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
        };
        let conn = if immutable {
            Connection::open_with_flags(
                format!("file:{}?immutable=1", uri_path(path)),
                flags | OpenFlags::SQLITE_OPEN_URI,
            )
        } else {
            Connection::open_with_flags(path, flags)
        }
        .map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })?;
        Self::init(conn, Some(path.to_owned()), read_only).map_err(|e| match e {
            StoreError::Sqlite(e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
                ) =>
            {
                not_a_replica(path, e)
            }
            StoreError::Sqlite(source) => StoreError::Open {
                path: path.to_owned(),
                source,
            },
            other => other,
        })
    }

    /// An in-memory replica (tests, benchmarks).
    pub fn open_in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory()?, None, false)
    }

    fn init(mut conn: Connection, path: Option<PathBuf>, read_only: bool) -> Result<Self> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        if let Some(path) = &path {
            check_schema(&conn, path)?;
        }
        if !read_only {
            // WAL lets readers proceed while another process writes.
            conn.pragma_update(None, "journal_mode", "WAL")?;
        }
        // FULL: a commit is on the disk before it returns, so a save that
        // said "saved" survives a power cut too (NORMAL, WAL's usual
        // setting, may lose the last commits then). One WAL sync per
        // commit, well under a millisecond on an SSD.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.set_prepared_statement_cache_capacity(64);
        if read_only {
            let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if version < SCHEMA_VERSION {
                return Err(StoreError::Invalid(format!(
                    "the replica is read-only and needs an upgrade (schema {version} → {SCHEMA_VERSION}); make it writable once"
                )));
            }
        }
        schema::migrate(&mut conn)?;
        // The once-per-replica steps below wait briefly for another writer
        // (a long import): they are tried again at the next open, and an
        // open must not hang for the store's 30 s on them.
        conn.busy_timeout(ONCE_BUSY_TIMEOUT)?;
        if !read_only {
            if let Err(error) = materialize::remerge_if_rule_changed(&mut conn) {
                tracing::warn!(%error, "bodies merged by an earlier rule were not merged again yet");
            }
        }
        let origin = open_origin(&conn, read_only)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let last: Option<String> = conn.query_row("SELECT max(hlc) FROM ops", [], |r| r.get(0))?;
        let mut clock = Clock::new(&origin, None);
        if let Some(last) = last.and_then(|h| h.parse::<Hlc>().ok()) {
            clock.witness(&last);
        }
        Ok(Self {
            conn,
            clock,
            path,
            registration: None,
        })
    }

    /// Whether this handle can only read (the file is not writable).
    pub fn is_read_only(&self) -> bool {
        self.conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false)
    }

    /// Refuses, by name, a write to a replica opened read-only (SQLite's
    /// own error names no file).
    pub fn check_writable(&self) -> Result<()> {
        match &self.path {
            Some(path) if self.is_read_only() => Err(StoreError::ReadOnly(path.clone())),
            _ => Ok(()),
        }
    }

    /// How long this handle waits for another connection's transaction
    /// before a statement fails as busy ([`StoreError::is_busy`]); 30 s
    /// from [`Replica::open`], which suits scripts that can wait.
    pub fn set_busy_timeout(&self, timeout: Duration) -> Result<()> {
        Ok(self.conn.busy_timeout(timeout)?)
    }

    /// The database file, when not in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// This replica's clock (tests skew it to simulate a wrong device clock).
    pub fn clock_mut(&mut self) -> &mut Clock {
        &mut self.clock
    }

    /// The origin stamped on ops written through this handle.
    pub fn origin(&self) -> &str {
        &self.clock.last().origin
    }

    /// A counter that changes whenever another connection commits; cheap to
    /// poll for "did another process write?".
    pub fn data_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }
}

/// The first bytes of every SQLite database file.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

fn not_a_replica(path: &Path, reason: impl std::fmt::Display) -> StoreError {
    StoreError::NotAReplica {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// What a user can do about an SQLite error that has a cause outside heph
/// (a full disk, another writer, permissions); every write is one
/// transaction, so what failed saved nothing.
fn sqlite_advice(error: &rusqlite::Error) -> &'static str {
    match error.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => {
            " (the disk is full: nothing was saved; free some space and try again)"
        }
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            " (another heph process or a sync pass is writing the replica: nothing was saved; try again in a moment)"
        }
        Some(rusqlite::ErrorCode::ReadOnly) => {
            " (the replica or its folder is read-only for this user: nothing was saved)"
        }
        _ => "",
    }
}

/// The origin of the ops a handle writes: this device's six characters,
/// then ten of its own. Each open gets its own, so two processes sharing
/// the file never mint the same clock stamp; they share the first six,
/// the device a conflict block names (`device 1a2b3c · …`), which stays
/// the same from one start of Neovim to the next. A replica installed from
/// another device's snapshot gets its own (`meta` is not copied).
fn open_origin(conn: &Connection, read_only: bool) -> Result<String> {
    use rusqlite::OptionalExtension;
    let fresh = heph_core::id::new_origin();
    let stored = |conn: &Connection| -> Result<Option<String>> {
        Ok(conn
            .query_row("SELECT value FROM meta WHERE key = 'device'", [], |r| {
                r.get(0)
            })
            .optional()?)
    };
    let mut device = stored(conn)?;
    if device.is_none() && !read_only {
        // Once per replica: an open otherwise takes no write lock. Another
        // writer holding it for long is no reason to refuse the replica:
        // this open names a device of its own, and the next one stores it.
        let kept = conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('device', ?1)",
            [&fresh[fresh.len() - 6..]],
        );
        if kept.is_ok() {
            device = stored(conn)?;
        }
    }
    let device = device
        .filter(|d| d.len() == 6 && d.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(|| fresh[fresh.len() - 6..].to_owned());
    Ok(format!("{device}{}", &fresh[..10]))
}

/// Refuses a file too short or of another format to be an SQLite database
/// (SQLite itself would take an empty file for a new database).
fn check_header(path: &Path) -> Result<()> {
    use std::io::Read;
    let mut head = Vec::with_capacity(100);
    std::fs::File::open(path)
        .and_then(|f| f.take(100).read_to_end(&mut head))
        .map_err(|source| StoreError::Io {
            path: path.to_owned(),
            source,
        })?;
    if head.len() < 100 {
        return Err(not_a_replica(
            path,
            format!("the file is only {} bytes long: truncated", head.len()),
        ));
    }
    if &head[..16] != SQLITE_MAGIC {
        return Err(not_a_replica(path, "the file is not an SQLite database"));
    }
    Ok(())
}

/// Refuses an SQLite database that is not (the start of) a heph replica.
fn check_schema(conn: &Connection, path: &Path) -> Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let has = |name: &str| tables.iter().any(|t| t == name);
    if version == 0 && tables.is_empty() {
        // Created but never migrated (an interrupted first open): nothing
        // to lose, so it is finished as a new replica.
        return Ok(());
    }
    if version == 0 || !(has("meta") && has("ops") && has("nodes")) {
        return Err(not_a_replica(
            path,
            "an SQLite database, but without heph's tables",
        ));
    }
    Ok(())
}

/// Creates a new, empty replica at `path` atomically: it is built under a
/// temporary name (mode 0600, which SQLite gives its WAL and shared-memory
/// files too) and linked into place only when complete, so another process
/// never sees a half-made file. Losing a race with another process that
/// creates it at the same time is fine.
fn create(path: &Path) -> Result<()> {
    let io_err = |source| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    // `leftovers` knows this name: keep the two together.
    let tmp = companion(path, &format!(".new-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(&tmp).map_err(io_err)?;
    let built = (|| -> Result<()> {
        let mut conn = Connection::open(&tmp)?;
        // Set before the first page is written, and kept for the file's
        // life (see [`PAGE_SIZE`]).
        conn.pragma_update(None, "page_size", PAGE_SIZE)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        schema::migrate(&mut conn)?;
        // Every page into the file now, checked: the checkpoint that
        // closing does on its own reports nothing, and a file whose pages
        // stayed in the WAL (a disk that filled up) would be linked into
        // place damaged, and refused by every open after.
        let (busy, log, done): (i64, i64, i64) =
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
        conn.close().map_err(|(_, e)| e)?;
        let wal_left = std::fs::metadata(companion(&tmp, "-wal")).map_or(0, |m| m.len());
        if busy != 0 || done != log || wal_left > 0 {
            return Err(StoreError::Io {
                path: path.to_owned(),
                source: std::io::Error::other(
                    "the new replica could not be written whole (is the disk full?); nothing was created",
                ),
            });
        }
        // On the disk before it has its name.
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io_err)?;
        Ok(())
    })();
    let linked = built.and_then(|()| match std::fs::hard_link(&tmp, path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        // A file system without hard links: a rename, unless the file
        // appeared meanwhile.
        Err(_) if !path.exists() => std::fs::rename(&tmp, path).map_err(io_err),
        Err(e) => Err(io_err(e)),
    });
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(companion(&tmp, suffix));
    }
    if linked.is_ok() {
        // The new name survives a power cut too.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
        }
    }
    linked
}

/// `path` with `suffix` appended: SQLite's companion files (`-wal`,
/// `-shm`, `-journal`) of the database at `path`.
pub(crate) fn companion(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Whether this process may write `path`.
fn writable(path: &Path) -> std::io::Result<bool> {
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Ok(false),
        // EROFS: a read-only file system.
        Err(e) if e.raw_os_error() == Some(30) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes group and other permissions from `path` (a file or the data
/// dir) when it has any, with a notice in the log: replicas hold every
/// note.
pub fn make_private(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(meta) = std::fs::metadata(path) else {
            return;
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 == 0 {
            return;
        }
        match std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700)) {
            Ok(()) => tracing::warn!(
                path = %path.display(),
                old = format!("{mode:o}"),
                new = format!("{:o}", mode & 0o700),
                "was readable by others; it is now private"
            ),
            Err(e) => tracing::warn!(
                path = %path.display(),
                error = %e,
                "is readable by others and cannot be made private"
            ),
        }
    }
}

/// `path` escaped for an SQLite `file:` URI.
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for byte in path.as_os_str().as_encoded_bytes() {
        match byte {
            b'?' | b'#' | b'%' | 0x80..=0xff | 0..=0x20 => out.push_str(&format!("%{byte:02X}")),
            _ => out.push(*byte as char),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{Replica, StoreError};

    /// Every commit is synced before it returns (`synchronous = FULL`): what
    /// a save acknowledged survives a power cut, not only a crash.
    #[test]
    fn a_commit_reaches_the_disk_before_it_returns() {
        let dir = tempfile::tempdir().unwrap();
        let replica = Replica::open(&dir.path().join("replica.db")).unwrap();
        let level: i64 = replica
            .conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(level, 2, "FULL");
    }

    /// An error with a cause outside heph says what to do, and that
    /// nothing was saved.
    #[test]
    fn a_full_disk_or_another_writer_is_said_with_what_to_do() {
        let error = |code| {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(code),
                None,
            ))
            .to_string()
        };
        let full = error(rusqlite::ffi::SQLITE_FULL);
        assert!(
            full.contains("the disk is full: nothing was saved"),
            "{full}"
        );
        let busy = error(rusqlite::ffi::SQLITE_BUSY);
        assert!(
            busy.contains("another heph process or a sync pass is writing"),
            "{busy}"
        );
        assert!(!error(rusqlite::ffi::SQLITE_CORRUPT).contains("nothing was saved"));
    }

    /// A replica this user may not write (opened read-only, as `open` does
    /// for such a file) refuses an edit by the file's name, and keeps what
    /// it had.
    #[test]
    fn a_read_only_replica_refuses_an_edit_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replica.db");
        let mut replica = Replica::open(&path).unwrap();
        replica
            .create(heph_core::NewNode {
                title: "kept".into(),
                ..heph_core::NewNode::default()
            })
            .unwrap();
        drop(replica);
        let mut replica = Replica::open_as(&path, true, false).unwrap();
        let refused = replica
            .create(heph_core::NewNode {
                title: "not saved".into(),
                ..heph_core::NewNode::default()
            })
            .unwrap_err();
        assert!(matches!(&refused, StoreError::ReadOnly(p) if *p == path));
        let said = refused.to_string();
        assert!(said.contains(&path.display().to_string()), "{said}");
        assert!(said.contains("nothing was saved"), "{said}");
        assert_eq!(
            replica.export_ops().unwrap().len(),
            Replica::open(&path).unwrap().export_ops().unwrap().len()
        );
    }
}
