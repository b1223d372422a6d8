//! Whole-replica views: the op-log export and a canonical dump of the
//! materialized state (for convergence checks).

use std::fmt::Write as _;

use heph_core::Op;

use crate::{Replica, Result, StoreError};

impl Replica {
    /// Every op, in local arrival order.
    pub fn export_ops(&self) -> Result<Vec<Op>> {
        let mut stmt = self.conn.prepare("SELECT payload FROM ops ORDER BY seq")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.map(|p| serde_json::from_str(&p?).map_err(|e| StoreError::Corrupt(e.to_string())))
            .collect()
    }

    /// Number of ops held.
    pub fn op_count(&self) -> Result<u64> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM ops", [], |r| r.get::<_, i64>(0))? as u64)
    }

    /// The materialized state as text, independent of arrival order and of
    /// anything local (sequence numbers, push flags). Two replicas holding the
    /// same ops give byte-identical dumps.
    pub fn canonical_dump(&self) -> Result<String> {
        let mut out = String::new();
        let mut stmt = self.conn.prepare(
            "SELECT id, kind, kind_hlc, title, title_hlc, status, status_hlc, due, due_hlc,
                    project, project_hlc, body, body_heads, body_hlc, created_hlc,
                    updated_hlc, delete_hlc, alive_hlc, deleted
             FROM nodes ORDER BY id",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let mut fields = Vec::with_capacity(19);
            for i in 0..19 {
                let value: rusqlite::types::Value = row.get(i)?;
                fields.push(format!("{value:?}"));
            }
            let _ = writeln!(out, "node {}", fields.join(" | "));
        }
        let mut stmt = self
            .conn
            .prepare("SELECT node, tag, hlc, present FROM tags ORDER BY node, tag")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let (node, tag, hlc, present): (String, String, String, bool) =
                (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
            let _ = writeln!(out, "tag {node} {tag} {hlc} {present}");
        }
        let ops: i64 = self
            .conn
            .query_row("SELECT count(*) FROM ops", [], |r| r.get(0))?;
        let _ = writeln!(out, "ops {ops}");
        Ok(out)
    }
}
