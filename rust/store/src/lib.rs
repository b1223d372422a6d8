//! heph-store: the local replica in SQLite — the op-log, the materialized
//! nodes, full-text search and per-hub sync state.
//!
//! Every write is one `BEGIN IMMEDIATE` transaction, so several processes
//! (Neovim sidecars, the CLI) can share one replica file: writers queue on
//! SQLite's lock (busy timeout) instead of failing.

mod dump;
mod materialize;
mod query;
mod restamp;
mod schema;
mod sync_state;
mod write;

use std::path::{Path, PathBuf};
use std::time::Duration;

use heph_core::{Clock, Hlc};
use rusqlite::{Connection, OpenFlags};

pub use materialize::ApplyReport;
pub use query::{ListFilter, ListOrder, SearchHit, StatusFilter};
pub use schema::SCHEMA_VERSION;
pub use sync_state::{PullOutcome, QuarantinedOp, RawOp, SetAside};
pub use write::Edit;

/// How long a writer waits for another process's transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Errors of the replica store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("replica database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// No node has this id.
    #[error("no node with id {0:?}")]
    UnknownNode(String),
    /// A value or op from outside is not acceptable.
    #[error("{0}")]
    Invalid(String),
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
    /// The replica file cannot be opened.
    #[error("cannot open replica {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
}

/// Shorthand for store results.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One open replica.
pub struct Replica {
    conn: Connection,
    clock: Clock,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica").field("path", &self.path).finish()
    }
}

impl Replica {
    /// Opens (creating if needed) the replica at `path` and migrates it.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })?;
        Self::init(conn, Some(path.to_owned()))
    }

    /// An in-memory replica (tests, benchmarks).
    pub fn open_in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory()?, None)
    }

    fn init(mut conn: Connection, path: Option<PathBuf>) -> Result<Self> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // WAL lets readers proceed while another process writes.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.set_prepared_statement_cache_capacity(64);
        schema::migrate(&mut conn)?;
        // Each open replica gets its own origin, so two processes sharing the
        // file never mint the same clock stamp.
        let origin = heph_core::id::new_origin();
        let last: Option<String> = conn.query_row("SELECT max(hlc) FROM ops", [], |r| r.get(0))?;
        let mut clock = Clock::new(&origin, None);
        if let Some(last) = last.and_then(|h| h.parse::<Hlc>().ok()) {
            clock.witness(&last);
        }
        Ok(Self { conn, clock, path })
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
