//! Snapshots: a whole replica as of its pull cursor for one hub, so a new
//! device bootstraps from one download instead of applying every op.
//!
//! A snapshot is opaque to the hub (built by a device, stored and served
//! as bytes): a 24-byte header — magic, format, schema version, hub
//! sequence C — then a zstd stream of an SQLite database holding exactly
//! what a device that pulled every op up to C holds: the op-log, the
//! materialized nodes and tags, the full-text index, held body deltas and
//! the quarantine. Device-local state (sync cursors and notes, `meta`) is
//! left out; every op in it is acknowledged by the hub.
//!
//! Installing one into a replica nobody else has open moves the checked
//! database into place by a rename (`heph sync` on a new device); into a
//! replica another process holds (a sidecar) it copies the tables in one
//! transaction (SQLite's transfer path copies b-tree records as they are),
//! so connections other processes hold stay valid. Either way a crash
//! leaves either nothing or everything.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

use crate::{schema, Replica, StoreError, SCHEMA_VERSION};

/// The first bytes of a snapshot.
pub const SNAPSHOT_MAGIC: &[u8; 8] = b"HEPHSNAP";
/// The snapshot format this build writes and reads.
pub const SNAPSHOT_FORMAT: u32 = 1;
/// Header length: magic, format (u32), schema (u32), seq (i64), little-endian.
pub const HEADER_LEN: usize = 24;

/// Tables a snapshot carries, copied in this order. The `nodes_fts_*`
/// tables are the full-text index's own storage (its text comes from
/// `nodes`).
const TABLES: &[&str] = &[
    "ops",
    "nodes",
    "tags",
    "held_ops",
    "quarantine",
    "nodes_fts_data",
    "nodes_fts_idx",
    "nodes_fts_docsize",
    "nodes_fts_config",
];

/// zstd level of an exported snapshot.
const EXPORT_LEVEL: i32 = 1;

/// A zstd frame's magic number, as it appears in the stream.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// Bit of a zstd frame header's descriptor: a content checksum follows
/// the frame.
const ZSTD_CHECKSUM_FLAG: u8 = 0x04;

/// Test seam: a process that must die in the middle of installing a
/// snapshot (crash-safety tests) names the point here.
const ABORT_ENV: &str = "HEPH_TEST_SNAPSHOT_ABORT";

/// Errors of snapshot export and import.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The replica is not in a state where this applies (unpushed ops for
    /// an export, a replica that already holds ops for an import): nothing
    /// was changed; sync carries on with ops.
    #[error("snapshot not applicable: {0}")]
    NotApplicable(String),
    /// The snapshot bytes are not a usable snapshot: nothing was changed.
    #[error("unusable snapshot: {0}")]
    Invalid(String),
    /// The replica failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A temporary file could not be written or read.
    #[error("snapshot file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl From<rusqlite::Error> for SnapshotError {
    fn from(e: rusqlite::Error) -> Self {
        SnapshotError::Store(StoreError::Sqlite(e))
    }
}

/// A snapshot's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotHeader {
    /// Snapshot format.
    pub format: u32,
    /// Replica schema version of the database inside.
    pub schema: i64,
    /// Hub sequence the snapshot is as of.
    pub seq: i64,
}

impl SnapshotHeader {
    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..8].copy_from_slice(SNAPSHOT_MAGIC);
        out[8..12].copy_from_slice(&self.format.to_le_bytes());
        out[12..16].copy_from_slice(&(self.schema as u32).to_le_bytes());
        out[16..24].copy_from_slice(&self.seq.to_le_bytes());
        out
    }

    /// Reads and checks a header: magic, a format and schema this build
    /// reads, a positive sequence.
    pub fn decode(bytes: &[u8]) -> Result<Self, SnapshotError> {
        if bytes.len() < HEADER_LEN {
            return Err(SnapshotError::Invalid(format!(
                "only {} bytes: truncated header",
                bytes.len()
            )));
        }
        if &bytes[..8] != SNAPSHOT_MAGIC {
            return Err(SnapshotError::Invalid(
                "not a heph snapshot (bad magic)".into(),
            ));
        }
        let word = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let format = word(8);
        let schema = i64::from(word(12));
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&bytes[16..24]);
        let seq = i64::from_le_bytes(seq);
        if format != SNAPSHOT_FORMAT {
            return Err(SnapshotError::Invalid(format!(
                "snapshot format {format}; this heph reads format {SNAPSHOT_FORMAT}"
            )));
        }
        if !(1..=SCHEMA_VERSION).contains(&schema) {
            return Err(SnapshotError::Invalid(format!(
                "replica schema {schema} in the snapshot; this heph supports 1 to {SCHEMA_VERSION} (upgrade heph)"
            )));
        }
        if seq < 1 {
            return Err(SnapshotError::Invalid(format!("hub sequence {seq}")));
        }
        Ok(Self {
            format,
            schema,
            seq,
        })
    }
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exported {
    /// The hub sequence it is as of.
    pub seq: i64,
    /// Bytes written (header included).
    pub bytes: u64,
    /// Ops in it.
    pub ops: u64,
}

/// What an import installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    /// The hub sequence it is as of: the new pull cursor.
    pub seq: i64,
    /// Ops installed.
    pub ops: u64,
    /// Whether the snapshot was moved into place (no other connection had
    /// the replica open) rather than copied in.
    pub moved: bool,
}

/// A file removed when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        for suffix in ["", "-journal", "-wal", "-shm"] {
            let _ = std::fs::remove_file(crate::companion(&self.0, suffix));
        }
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.to_owned(),
        source,
    }
}

impl Replica {
    /// A temporary file name beside the replica (or in the system's
    /// temporary directory for an in-memory replica).
    fn temp_path(&self, what: &str) -> PathBuf {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!(".heph-{what}-{}-{n}", std::process::id());
        match self.path.as_deref().and_then(Path::parent) {
            Some(dir) if !dir.as_os_str().is_empty() => dir.join(name),
            Some(_) => PathBuf::from(name),
            None => std::env::temp_dir().join(name),
        }
    }

    /// Writes a snapshot of this replica as of its pull cursor for `hub`
    /// to `out`. Refused ([`SnapshotError::NotApplicable`]) unless the hub
    /// has acknowledged every op here (nothing unpushed or refused, no held
    /// delta of our own) and something was pulled from it: the snapshot is
    /// then the hub's ops up to the cursor. (An op pushed by another
    /// process after the last pull may ride along; a device installing the
    /// snapshot pulls it again, a no-op.)
    pub fn export_snapshot(
        &self,
        hub: &str,
        out: &mut dyn Write,
    ) -> Result<Exported, SnapshotError> {
        let tmp = TempFile(self.temp_path("snapshot-export"));
        let _ = std::fs::remove_file(&tmp.0);
        // A consistent copy without holding any lock for long: readers and
        // writers of the replica carry on meanwhile.
        let target = tmp.0.to_str().ok_or_else(|| {
            SnapshotError::NotApplicable(format!("temporary path {} is not UTF-8", tmp.0.display()))
        })?;
        self.conn.execute("VACUUM INTO ?1", [target])?;
        let conn = Connection::open(&tmp.0)?;
        conn.pragma_update(None, "journal_mode", "DELETE")?;
        let count = |sql: &str| -> rusqlite::Result<i64> { conn.query_row(sql, [], |r| r.get(0)) };
        let unpushed = count("SELECT count(*) FROM ops WHERE pushed = 0")?;
        if unpushed > 0 {
            return Err(SnapshotError::NotApplicable(format!(
                "{unpushed} op(s) here are not acknowledged by the hub (not pushed yet, or refused)"
            )));
        }
        let held = count("SELECT count(*) FROM held_ops WHERE pushed = 0")?;
        if held > 0 {
            return Err(SnapshotError::NotApplicable(format!(
                "{held} held body delta(s) here are not pushed yet"
            )));
        }
        if crate::bulk_index::is_deferred(&conn)? {
            return Err(SnapshotError::NotApplicable(
                "a bulk load is under way (the search index is not built)".into(),
            ));
        }
        let seq: i64 = conn
            .query_row(
                "SELECT value FROM sync_state WHERE hub = ?1 AND key = 'cursor'",
                [hub],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if seq < 1 {
            return Err(SnapshotError::NotApplicable(format!(
                "nothing was pulled from {hub} yet"
            )));
        }
        let ops = count("SELECT count(*) FROM ops")? as u64;
        // Device-local state stays here; quarantined ops keep their place
        // only for this hub (sequence numbers are per hub).
        conn.execute_batch("DELETE FROM sync_state; DELETE FROM meta;")?;
        conn.execute("DELETE FROM quarantine WHERE hub <> ?1", [hub])?;
        conn.close().map_err(|(_, e)| e)?;

        let header = SnapshotHeader {
            format: SNAPSHOT_FORMAT,
            schema: SCHEMA_VERSION,
            seq,
        };
        out.write_all(&header.encode()).map_err(io_err(&tmp.0))?;
        let mut counted = CountingWriter {
            inner: out,
            bytes: 0,
        };
        let mut file = std::fs::File::open(&tmp.0).map_err(io_err(&tmp.0))?;
        // Level 1 on every core: the export sits in a device's first upload,
        // and level 3 on one thread took seconds there for 4% fewer bytes.
        let mut encoder =
            zstd::stream::Encoder::new(&mut counted, EXPORT_LEVEL).map_err(io_err(&tmp.0))?;
        encoder.include_checksum(true).map_err(io_err(&tmp.0))?;
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        encoder
            .multithread(workers as u32)
            .map_err(io_err(&tmp.0))?;
        std::io::copy(&mut file, &mut encoder).map_err(io_err(&tmp.0))?;
        encoder.finish().map_err(io_err(&tmp.0))?;
        Ok(Exported {
            seq,
            bytes: counted.bytes + HEADER_LEN as u64,
            ops,
        })
    }

    /// Whether this replica holds nothing a snapshot would replace: no ops,
    /// nothing pulled or quarantined from any hub.
    pub fn can_bootstrap(&self) -> Result<bool, StoreError> {
        let any: Option<i64> = self
            .conn
            .query_row(
                "SELECT 1 WHERE EXISTS (SELECT 1 FROM ops) OR EXISTS (SELECT 1 FROM held_ops)
                    OR EXISTS (SELECT 1 FROM quarantine)
                    OR EXISTS (SELECT 1 FROM sync_state WHERE key = 'cursor' AND value <> '0')",
                [],
                |r| r.get(0),
            )
            .optional()?;
        Ok(any.is_none())
    }

    /// Bootstraps this replica from a snapshot of `hub` read from `input`.
    /// Applies only to a replica that holds nothing yet
    /// ([`Replica::can_bootstrap`]); `max_seq` is the sequence the hub said
    /// the snapshot has, which the snapshot must not exceed. Everything is
    /// checked before anything changes; then the snapshot's tables replace
    /// the empty ones and the pull cursor for `hub` becomes the snapshot's
    /// sequence, in one transaction. The replica keeps its own identity:
    /// nothing of the device that made the snapshot comes along.
    ///
    /// This copies every page through the open connection, so it works
    /// while other processes hold the replica open;
    /// [`Replica::bootstrap_from_snapshot`] is faster when none does.
    pub fn import_snapshot(
        &mut self,
        hub: &str,
        input: &mut dyn Read,
        max_seq: Option<i64>,
    ) -> Result<Imported, SnapshotError> {
        let unpacked = self.unpack_snapshot(input, max_seq)?;
        self.copy_unpacked(hub, &unpacked)
    }

    /// Bootstraps the empty replica at `path` from a snapshot of `hub`, as
    /// [`Replica::import_snapshot`] does, with the same checks. When no
    /// other connection has the replica open (`heph sync` on a new
    /// device), the checked database is moved into place by a rename: one
    /// write of the replica's size instead of three (unpack, log, checkpoint).
    /// Otherwise its tables are copied in. A crash at any moment leaves the
    /// empty replica or the complete one.
    pub fn bootstrap_from_snapshot(
        path: &Path,
        hub: &str,
        input: &mut dyn Read,
        max_seq: Option<i64>,
    ) -> Result<Imported, SnapshotError> {
        let replica = Replica::open(path)?;
        let unpacked = replica.unpack_snapshot(input, max_seq)?;
        drop(replica);
        let started = std::time::Instant::now();
        if let Some(ops) = move_into_place(path, hub, &unpacked)? {
            tracing::debug!(
                ms = started.elapsed().as_millis() as u64,
                "snapshot moved into place"
            );
            return Ok(Imported {
                seq: unpacked.seq,
                ops,
                moved: true,
            });
        }
        tracing::debug!("the replica is open elsewhere: copying the snapshot into it");
        Replica::open(path)?.copy_unpacked(hub, &unpacked)
    }

    /// Reads, unpacks and checks a snapshot into a temporary file beside
    /// this (empty) replica; nothing of the replica changes.
    fn unpack_snapshot(
        &self,
        input: &mut dyn Read,
        max_seq: Option<i64>,
    ) -> Result<Unpacked, SnapshotError> {
        if self.path.is_none() {
            return Err(SnapshotError::NotApplicable(
                "an in-memory replica cannot install a snapshot".into(),
            ));
        }
        if !self.can_bootstrap()? {
            return Err(SnapshotError::NotApplicable(
                "the replica already holds ops".into(),
            ));
        }
        let mut head = [0u8; HEADER_LEN];
        let mut got = 0;
        while got < HEADER_LEN {
            match input.read(&mut head[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(SnapshotError::Invalid(format!("reading it: {e}"))),
            }
        }
        let header = SnapshotHeader::decode(&head[..got])?;
        if let Some(max) = max_seq {
            if header.seq > max {
                return Err(SnapshotError::Invalid(format!(
                    "it claims hub sequence {}, beyond the {max} the hub announced",
                    header.seq
                )));
            }
        }
        let tmp = TempFile(self.temp_path("snapshot-import"));
        let _ = std::fs::remove_file(&tmp.0);
        let started = std::time::Instant::now();
        {
            let mut file = private_file(&tmp.0)?;
            // The zstd frame's checksum over the database is what stands
            // for a full check of it (see `check_database`): refused
            // without one.
            let mut frame = [0u8; 5];
            input
                .read_exact(&mut frame)
                .map_err(|e| SnapshotError::Invalid(format!("compressed stream too short: {e}")))?;
            if frame[..4] != ZSTD_MAGIC || frame[4] & ZSTD_CHECKSUM_FLAG == 0 {
                return Err(SnapshotError::Invalid(
                    "compressed stream is not one zstd frame with a checksum".into(),
                ));
            }
            let mut decoder =
                zstd::stream::Decoder::new(std::io::Read::chain(&frame[..], input))
                    .map_err(|e| SnapshotError::Invalid(format!("compressed stream: {e}")))?;
            // Large writes: the database is hundreds of MB. The move path
            // syncs it before the rename; flushing what is written while
            // decompressing goes on leaves that sync only the tail.
            let flusher = BackgroundFlush::start(&file).map_err(io_err(&tmp.0))?;
            let mut buf = vec![0u8; 1 << 20];
            let mut unflushed = 0;
            loop {
                let n = match decoder.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(SnapshotError::Invalid(format!("compressed stream: {e}")))
                    }
                };
                file.write_all(&buf[..n]).map_err(io_err(&tmp.0))?;
                unflushed += n;
                if unflushed >= FLUSH_EVERY {
                    flusher.request();
                    unflushed = 0;
                }
            }
            flusher.finish().map_err(io_err(&tmp.0))?;
        }
        let unpacked_ms = started.elapsed().as_millis() as u64;
        check_database(&tmp.0, &header)?;
        tracing::debug!(
            unpack_ms = unpacked_ms,
            check_ms = started.elapsed().as_millis() as u64 - unpacked_ms,
            "snapshot unpacked and checked"
        );
        Ok(Unpacked {
            file: tmp,
            seq: header.seq,
        })
    }

    /// Copies an unpacked snapshot's tables into this replica in one
    /// transaction (the path that works while others hold it open).
    fn copy_unpacked(&mut self, hub: &str, unpacked: &Unpacked) -> Result<Imported, SnapshotError> {
        let Some(path) = self.path.clone() else {
            return Err(SnapshotError::NotApplicable(
                "an in-memory replica cannot install a snapshot".into(),
            ));
        };
        let started = std::time::Instant::now();
        let target = unpacked.file.0.to_str().ok_or_else(|| {
            SnapshotError::NotApplicable(format!(
                "temporary path {} is not UTF-8",
                unpacked.file.0.display()
            ))
        })?;
        self.conn.execute("ATTACH DATABASE ?1 AS snap", [target])?;
        let installed = install(&mut self.conn, hub, unpacked.seq);
        let detached = self.conn.execute("DETACH DATABASE snap", []);
        let ops = installed?;
        detached?;
        // The full-text index caches its structure per connection and
        // cannot see rows written under it: a fresh connection reads them.
        *self = Replica::open(&path)?;
        tracing::debug!(
            ms = started.elapsed().as_millis() as u64,
            "snapshot copied in"
        );
        Ok(Imported {
            seq: unpacked.seq,
            ops,
            moved: false,
        })
    }
}

/// A checked snapshot database in a temporary file, and its sequence.
struct Unpacked {
    file: TempFile,
    seq: i64,
}

/// Moves the unpacked snapshot over the empty replica at `path` if no
/// other connection has it open; `Ok(None)` (nothing changed) if one has.
///
/// Proof of sole access: SQLite lets a connection leave WAL mode only
/// when no other connection has the file open (it checkpoints and deletes
/// the log under an exclusive lock). The exclusive lock is then held while
/// the device-local state is carried over and the file is renamed, so no
/// one reads the replica half-way. Whoever opened the old file in that
/// window finds it overwritten with a non-database header and fails
/// loudly instead of writing into a file no longer in place.
fn move_into_place(
    path: &Path,
    hub: &str,
    unpacked: &Unpacked,
) -> Result<Option<u64>, SnapshotError> {
    let current = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    current.busy_timeout(std::time::Duration::ZERO)?;
    if !crate::bulk_journal::leave_wal(&current)? {
        return Ok(None);
    }
    match current.execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE;") {
        Ok(()) => {}
        Err(e) if crate::is_busy_error(&e) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    // Someone may have opened it (back into WAL mode) between the two
    // statements: then the copy path.
    let mode: String = current.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("delete") || crate::companion(path, "-wal").exists() {
        return Ok(None);
    }
    let empty: Option<i64> = current
        .query_row(
            "SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM ops) AND NOT EXISTS (SELECT 1 FROM held_ops)
                AND NOT EXISTS (SELECT 1 FROM quarantine)",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if empty.is_none() {
        return Err(SnapshotError::NotApplicable(
            "the replica received ops meanwhile".into(),
        ));
    }
    let meta: Vec<(String, String)> = current
        // The snapshot's bodies were merged by its maker's rule: not this
        // replica's mark of it (merged again at the next open if need be).
        .prepare("SELECT key, value FROM meta WHERE key NOT IN ('index_deferred', 'merge_rule')")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let state: Vec<(String, String, String)> = current
        .prepare("SELECT hub, key, value FROM sync_state")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;

    let mut snap = Connection::open(&unpacked.file.0)?;
    let tx = snap.transaction()?;
    for (key, value) in &meta {
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)",
            params![key, value],
        )?;
    }
    for (h, key, value) in &state {
        tx.execute(
            "INSERT INTO sync_state (hub, key, value) VALUES (?1, ?2, ?3)",
            params![h, key, value],
        )?;
    }
    tx.execute("UPDATE quarantine SET hub = ?1", [hub])?;
    tx.execute(
        "INSERT INTO sync_state (hub, key, value) VALUES (?1, 'cursor', ?2)
         ON CONFLICT (hub, key) DO UPDATE SET value = excluded.value",
        params![hub, unpacked.seq.to_string()],
    )?;
    let ops: i64 = tx.query_row("SELECT count(*) FROM ops", [], |r| r.get(0))?;
    tx.commit()?;
    // The mode is kept in the file's header: the replica opens in WAL mode.
    snap.pragma_update(None, "journal_mode", "WAL")?;
    snap.close().map_err(|(_, e)| e)?;
    let tmp = &unpacked.file.0;
    std::fs::File::open(tmp)
        .and_then(|f| f.sync_all())
        .map_err(io_err(tmp))?;

    let mut old = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_err(path))?;
    if std::env::var(ABORT_ENV).as_deref() == Ok("before-rename") {
        std::process::abort();
    }
    std::fs::rename(tmp, path).map_err(io_err(path))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The rename itself survives a power cut.
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    // Anyone who opened the old file meanwhile gets "not a database".
    let _ = old.write_all(&[0u8; 100]);
    // Only now the lock goes (closing another descriptor of the file
    // earlier would drop SQLite's POSIX locks).
    drop(current);
    drop(old);
    Ok(Some(ops as u64))
}

/// Counts bytes on their way out.
struct CountingWriter<'a> {
    inner: &'a mut dyn Write,
    bytes: u64,
}

impl Write for CountingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Bytes written between two background flushes of an unpacking snapshot.
const FLUSH_EVERY: usize = 64 << 20;

/// Flushes a file to disk on another thread while it is being written, so
/// the disk works while this thread decompresses.
struct BackgroundFlush {
    wake: Option<std::sync::mpsc::SyncSender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl BackgroundFlush {
    fn start(file: &std::fs::File) -> std::io::Result<Self> {
        let file = file.try_clone()?;
        // One pending request at most: a flush in progress covers more.
        let (wake, requests) = std::sync::mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("snapshot-flush".into())
            .spawn(move || {
                for () in requests {
                    file.sync_data()?;
                }
                Ok(())
            })?;
        Ok(Self {
            wake: Some(wake),
            thread: Some(thread),
        })
    }

    fn request(&self) {
        if let Some(wake) = &self.wake {
            let _ = wake.try_send(());
        }
    }

    /// Waits for the flush under way; its error, if it failed.
    fn finish(mut self) -> std::io::Result<()> {
        self.stop()
    }

    fn stop(&mut self) -> std::io::Result<()> {
        self.wake = None;
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(std::io::Error::other("the flushing thread panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for BackgroundFlush {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// A new file readable by its owner only (snapshots hold every note).
fn private_file(path: &Path) -> Result<std::fs::File, SnapshotError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map_err(io_err(path))
}

/// Checks the unpacked database: an SQLite file with the schema its header
/// names and a replica's tables, holding only acknowledged ops and no
/// device-local state; an older schema is brought up to date here.
fn check_database(path: &Path, header: &SnapshotHeader) -> Result<(), SnapshotError> {
    let invalid = |what: String| SnapshotError::Invalid(what);
    let mut magic = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .map_err(|e| invalid(format!("the database inside is too short ({e})")))?;
    if &magic != b"SQLite format 3\0" {
        return Err(invalid("the data inside is not a database".into()));
    }
    let len = std::fs::metadata(path).map_err(io_err(path))?.len();
    let mut conn = Connection::open(path).map_err(|e| invalid(format!("database: {e}")))?;
    let checked = (|| -> rusqlite::Result<Result<(), String>> {
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version != header.schema {
            return Ok(Err(format!(
                "its database has schema {version}, its header says {}",
                header.schema
            )));
        }
        // No `PRAGMA quick_check` (it reads the whole file, about a third
        // of the install): the bytes are the ones SQLite wrote on the
        // exporting device (`VACUUM INTO`), verified end to end by the
        // zstd checksum, and the page count the database's header records
        // must match the file, so a cut-short file is refused too.
        let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        if pages.checked_mul(page_size) != i64::try_from(len).ok() {
            return Ok(Err(format!(
                "its database is damaged: {len} bytes for {pages} pages of {page_size}"
            )));
        }
        for table in TABLES.iter().chain(&["meta", "sync_state"]) {
            let found: Option<i64> = conn
                .query_row(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                    [table],
                    |r| r.get(0),
                )
                .optional()?;
            if found.is_none() {
                return Ok(Err(format!("its database lacks the table {table}")));
            }
        }
        let local: i64 = conn.query_row(
            "SELECT (SELECT count(*) FROM ops WHERE pushed = 0)
                  + (SELECT count(*) FROM held_ops WHERE pushed = 0)
                  + (SELECT count(*) FROM sync_state) + (SELECT count(*) FROM meta)",
            [],
            |r| r.get(0),
        )?;
        if local > 0 {
            return Ok(Err(
                "it holds unacknowledged ops or device-local state".into()
            ));
        }
        Ok(Ok(()))
    })()
    .map_err(|e| invalid(format!("its database cannot be read: {e}")))?;
    checked.map_err(invalid)?;
    if header.schema < SCHEMA_VERSION {
        schema::migrate(&mut conn).map_err(|e| invalid(format!("upgrading its schema: {e}")))?;
    }
    conn.close()
        .map_err(|(_, e)| invalid(format!("database: {e}")))?;
    Ok(())
}

/// Copies the attached snapshot's tables into the (empty) replica and sets
/// the cursor, in one transaction.
fn install(conn: &mut Connection, hub: &str, seq: i64) -> Result<u64, SnapshotError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // Checked again under the write lock: another process may have written.
    let any: Option<i64> = tx
        .query_row(
            "SELECT 1 WHERE EXISTS (SELECT 1 FROM main.ops) OR EXISTS (SELECT 1 FROM main.held_ops)
                OR EXISTS (SELECT 1 FROM main.quarantine)",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if any.is_some() {
        return Err(SnapshotError::NotApplicable(
            "the replica received ops meanwhile".into(),
        ));
    }
    for table in TABLES {
        tx.execute_batch(&format!(
            "DELETE FROM main.{table}; INSERT INTO main.{table} SELECT * FROM snap.{table};"
        ))?;
    }
    tx.execute("DELETE FROM main.meta WHERE key = 'index_deferred'", [])?;
    tx.execute("UPDATE main.quarantine SET hub = ?1", [hub])?;
    tx.execute(
        "INSERT INTO main.sync_state (hub, key, value) VALUES (?1, 'cursor', ?2)
         ON CONFLICT (hub, key) DO UPDATE SET value = excluded.value",
        params![hub, seq.to_string()],
    )?;
    let ops: i64 = tx.query_row("SELECT count(*) FROM main.ops", [], |r| r.get(0))?;
    if std::env::var(ABORT_ENV).as_deref() == Ok("before-commit") {
        // Dies with the transaction open, as a crash or kill would.
        std::process::abort();
    }
    tx.commit()?;
    Ok(ops as u64)
}
