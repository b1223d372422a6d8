//! The statements an apply runs for every op, prepared once per batch.
//! Looking a statement up in the connection's cache and handing it back
//! after one run cost more than binding and running it for a small op
//! (callgrind, an import of 10,000 nodes: 6 % of the applying thread).

use rusqlite::{CachedStatement, Connection};

/// Records an op in the log; ignored when its id is there already.
const INSERT_OP: &str =
    "INSERT OR IGNORE INTO ops (op_id, hlc, node, action, payload, pushed, body_from)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/// Sets a tag's presence, last writer wins by version key.
const UPSERT_TAG: &str = "INSERT INTO tags (node, tag, hlc, present) VALUES (?1, ?2, ?3, ?4)
     ON CONFLICT (node, tag) DO UPDATE SET hlc = excluded.hlc, present = excluded.present
     WHERE excluded.hlc > tags.hlc";

/// The body deltas held back until the version `?1` arrived.
const HELD_AFTER: &str = "SELECT payload, pushed FROM held_ops WHERE from_op = ?1";

/// Each statement is prepared the first time it is needed and kept until
/// the batch ends.
pub(crate) struct OpStatements<'c> {
    conn: &'c Connection,
    insert_op: Option<CachedStatement<'c>>,
    upsert_tag: Option<CachedStatement<'c>>,
    held_after: Option<CachedStatement<'c>>,
}

impl<'c> OpStatements<'c> {
    pub(crate) fn new(conn: &'c Connection) -> Self {
        Self {
            conn,
            insert_op: None,
            upsert_tag: None,
            held_after: None,
        }
    }

    /// `op_id, hlc, node, action, payload, pushed, body_from`.
    pub(crate) fn insert_op(&mut self) -> rusqlite::Result<&mut CachedStatement<'c>> {
        prepared(&mut self.insert_op, self.conn, INSERT_OP)
    }

    /// `node, tag, version key, present`.
    pub(crate) fn upsert_tag(&mut self) -> rusqlite::Result<&mut CachedStatement<'c>> {
        prepared(&mut self.upsert_tag, self.conn, UPSERT_TAG)
    }

    /// `from_op`; rows of `payload, pushed`.
    pub(crate) fn held_after(&mut self) -> rusqlite::Result<&mut CachedStatement<'c>> {
        prepared(&mut self.held_after, self.conn, HELD_AFTER)
    }
}

fn prepared<'s, 'c>(
    slot: &'s mut Option<CachedStatement<'c>>,
    conn: &'c Connection,
    sql: &str,
) -> rusqlite::Result<&'s mut CachedStatement<'c>> {
    match slot {
        Some(statement) => Ok(statement),
        None => Ok(slot.insert(conn.prepare_cached(sql)?)),
    }
}
