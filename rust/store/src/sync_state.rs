//! What sync needs from the replica: unacknowledged ops, acknowledgments,
//! the pull cursor (a hub sequence number, never a clock) and status notes.

use heph_core::Op;
use rusqlite::{params, OptionalExtension};

use crate::materialize::ApplyReport;
use crate::{Replica, Result, StoreError};

impl Replica {
    /// Ops the hub has not acknowledged, oldest first, about `max_bytes` of
    /// JSON in all (always at least one when any is pending).
    pub fn unpushed_ops(&self, max_bytes: usize) -> Result<Vec<Op>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT payload FROM ops WHERE pushed = 0 ORDER BY seq")?;
        let mut rows = stmt.query([])?;
        let mut ops = Vec::new();
        let mut size = 0;
        while let Some(row) = rows.next()? {
            let payload: String = row.get(0)?;
            if !ops.is_empty() && size + payload.len() > max_bytes {
                break;
            }
            size += payload.len();
            ops.push(
                serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            );
        }
        Ok(ops)
    }

    /// Records that the hub stored these ops.
    pub fn mark_pushed(&mut self, op_ids: &[String]) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut stmt = tx.prepare_cached("UPDATE ops SET pushed = 1 WHERE op_id = ?1")?;
            for id in op_ids {
                stmt.execute([id])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Applies ops pulled from `hub` and moves its cursor to `new_cursor`, in
    /// one transaction: a crash leaves either both or neither.
    pub fn apply_pulled(&mut self, hub: &str, ops: &[Op], new_cursor: i64) -> Result<ApplyReport> {
        self.apply_external(ops, true, |tx| {
            tx.prepare_cached(
                "INSERT INTO sync_state (hub, key, value) VALUES (?1, 'cursor', ?2)
                 ON CONFLICT (hub, key) DO UPDATE SET value = excluded.value
                 WHERE CAST(excluded.value AS INTEGER) > CAST(sync_state.value AS INTEGER)",
            )?
            .execute(params![hub, new_cursor.to_string()])?;
            Ok(())
        })
    }

    /// The hub sequence number up to which ops were pulled from `hub`.
    pub fn sync_cursor(&self, hub: &str) -> Result<i64> {
        Ok(self
            .sync_value(hub, "cursor")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// Ops not yet acknowledged by the hub.
    pub fn pending_count(&self) -> Result<u64> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM ops WHERE pushed = 0", [], |r| {
                r.get::<_, i64>(0)
            })? as u64)
    }

    /// A note kept per hub (`last_sync`, `last_error`, …).
    pub fn sync_value(&self, hub: &str, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM sync_state WHERE hub = ?1 AND key = ?2")?
            .query_row(params![hub, key], |r| r.get(0))
            .optional()?)
    }

    /// Sets (or with `None` clears) a per-hub note.
    pub fn set_sync_value(&mut self, hub: &str, key: &str, value: Option<&str>) -> Result<()> {
        if key == "cursor" {
            return Err(StoreError::Invalid(
                "the cursor moves only with pulled ops".into(),
            ));
        }
        match value {
            Some(v) => self.conn.execute(
                "INSERT INTO sync_state (hub, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (hub, key) DO UPDATE SET value = excluded.value",
                params![hub, key, v],
            )?,
            None => self.conn.execute(
                "DELETE FROM sync_state WHERE hub = ?1 AND key = ?2",
                params![hub, key],
            )?,
        };
        Ok(())
    }
}
