//! The hub's SQLite store. One connection behind a mutex: every push is one
//! serialized transaction, so sequence numbers are assigned in commit order
//! and no reader sees sequence N+1 before N.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};

use crate::HubError;

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushOutcome {
    /// How many ops were new.
    pub new: usize,
    /// The hub sequence of each op, in request order.
    pub seqs: Vec<i64>,
}

/// Refuses a file that is not a hub database before anything is written
/// to it: `--db` naming a device's replica would otherwise get the hub's
/// tables added beside its own, and a file that is not SQLite would only
/// fail later with no name.
fn refuse_foreign(conn: &Connection, path: &Path) -> Result<(), HubError> {
    let refuse = |reason: &str| HubError::File {
        path: path.to_owned(),
        reason: format!("{reason}; the hub leaves it untouched: give --db a file of its own"),
    };
    let replica = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'nodes'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map_err(|e| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) => {
                refuse("the file is not an SQLite database")
            }
            _ => e.into(),
        })?;
    if replica > 0 {
        return Err(refuse("it is a device's replica, not a hub database"));
    }
    Ok(())
}

/// The hub's op table.
pub struct HubStore {
    conn: Mutex<Connection>,
    path: PathBuf,
    /// This database's id, made when it was created (see [`HubStore::instance`]).
    instance: String,
}

impl HubStore {
    /// Opens (creating) the hub database.
    pub fn open(path: &Path) -> Result<Self, HubError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        refuse_foreign(&conn, path)?;
        // Two processes setting up a new database at once (the hub and
        // `heph hub join-token create`): switching to WAL can answer "busy"
        // without waiting, so the set-up is tried again for a while.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while let Err(e) = Self::set_up(&conn) {
            let busy = matches!(&e, rusqlite::Error::SqliteFailure(f, _)
                if f.code == rusqlite::ErrorCode::DatabaseBusy);
            if !busy || std::time::Instant::now() >= deadline {
                return Err(e.into());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let instance = conn.query_row(
            "SELECT value FROM hub_meta WHERE key = 'instance'",
            [],
            |r| r.get(0),
        )?;
        let store = Self {
            conn: Mutex::new(conn),
            path: path.to_owned(),
            instance,
        };
        store.remove_stale_snapshots();
        Ok(store)
    }

    fn set_up(conn: &Connection) -> rusqlite::Result<()> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // An acknowledged push must survive a power cut.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS ops (
                 seq   INTEGER PRIMARY KEY,
                 op_id TEXT NOT NULL UNIQUE,
                 op    TEXT NOT NULL
             );",
        )?;
        conn.execute_batch(crate::join::SCHEMA)?;
        conn.execute_batch(crate::snapshot::SCHEMA)?;
        // A random id made with the database and kept in it: a new or
        // wiped database at the same URL has another one.
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS hub_meta (
                 key   TEXT PRIMARY KEY,
                 value TEXT NOT NULL
             );
             INSERT OR IGNORE INTO hub_meta (key, value)
                 VALUES ('instance', lower(hex(randomblob(16))));",
        )
    }

    /// The id of this hub database, sent with every pull page: a device
    /// that finds another id than before at the same URL knows the hub
    /// lost what it had acknowledged (a new database), and sends it
    /// everything again.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The database file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a transaction open
        // (rusqlite rolls back on drop), so the connection is still usable.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores new ops (op_id, JSON text) in one transaction.
    pub fn push(&self, ops: &[(String, String)]) -> Result<PushOutcome, HubError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut outcome = PushOutcome {
            new: 0,
            seqs: Vec::with_capacity(ops.len()),
        };
        {
            let mut insert =
                tx.prepare_cached("INSERT OR IGNORE INTO ops (op_id, op) VALUES (?1, ?2)")?;
            let mut existing = tx.prepare_cached("SELECT seq FROM ops WHERE op_id = ?1")?;
            for (op_id, op) in ops {
                if insert.execute(params![op_id, op])? == 1 {
                    outcome.new += 1;
                    outcome.seqs.push(tx.last_insert_rowid());
                } else {
                    let seq: i64 = existing
                        .query_row([op_id], |r| r.get(0))
                        .optional()?
                        .ok_or_else(|| HubError::Corrupt(format!("op {op_id} vanished")))?;
                    outcome.seqs.push(seq);
                }
            }
        }
        tx.commit()?;
        Ok(outcome)
    }

    /// Ops after sequence `after`: at most `limit` of them and about
    /// `max_bytes` of JSON (always at least one), and whether more remain.
    pub fn pull(
        &self,
        after: i64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<(Vec<(i64, String)>, bool), HubError> {
        let conn = self.lock();
        let mut stmt =
            conn.prepare_cached("SELECT seq, op FROM ops WHERE seq > ?1 ORDER BY seq LIMIT ?2")?;
        let mut cursor = stmt.query(params![after, limit as i64 + 1])?;
        let mut rows: Vec<(i64, String)> = Vec::new();
        let mut bytes = 0;
        let mut more = false;
        while let Some(row) = cursor.next()? {
            let op: String = row.get(1)?;
            if rows.len() == limit || (!rows.is_empty() && bytes + op.len() > max_bytes) {
                more = true;
                break;
            }
            bytes += op.len();
            rows.push((row.get(0)?, op));
        }
        Ok((rows, more))
    }

    /// The id of the op at sequence `seq`, if there is one.
    pub fn op_id_at(&self, seq: i64) -> Result<Option<String>, HubError> {
        Ok(self
            .lock()
            .prepare_cached("SELECT op_id FROM ops WHERE seq = ?1")?
            .query_row([seq], |r| r.get(0))
            .optional()?)
    }

    /// Number of ops stored.
    pub fn count(&self) -> Result<i64, HubError> {
        Ok(self
            .lock()
            .query_row("SELECT count(*) FROM ops", [], |r| r.get(0))?)
    }
}
