//! Whole-replica views: the op-log export and a canonical dump of the
//! materialized state (for convergence checks).

use std::fmt::Write as _;

use heph_core::Op;

use crate::materialize::LogRow;
use crate::{Replica, Result, StoreError};

impl Replica {
    /// Every op, in local arrival order.
    pub fn export_ops(&self) -> Result<Vec<Op>> {
        let mut stmt = self
            .conn
            .prepare("SELECT op_id, hlc, node, payload FROM ops ORDER BY seq")?;
        let rows = stmt.query_map([], |r| LogRow::read(r, 0))?;
        rows.map(|row| {
            row.map_err(|e| StoreError::Corrupt(format!("an op: {e}")))?
                .into_op()
        })
        .collect()
    }

    /// The body deltas held back (see [`Replica::held_ops`]), as ops: part
    /// of what this replica knows, so an export that is a backup keeps
    /// them (imported again, they wait again).
    pub fn export_held_ops(&self) -> Result<Vec<Op>> {
        let mut stmt = self
            .conn
            .prepare("SELECT payload FROM held_ops ORDER BY op_id")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.map(|payload| {
            let payload = payload?;
            Op::parse_json(&payload).map_err(|e| StoreError::Corrupt(format!("a held op: {e}")))
        })
        .collect()
    }

    /// Body deltas held back, by op id: waiting for the version they apply
    /// to (`None`), or with the reason they do not fit it.
    pub fn held_ops(&self) -> Result<Vec<(String, Option<String>)>> {
        Ok(self
            .conn
            .prepare("SELECT op_id, reason FROM held_ops ORDER BY op_id")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?)
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
                    updated_hlc, delete_hlc, alive_hlc, deleted, tag_list
             FROM nodes ORDER BY id",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let mut fields = Vec::with_capacity(20);
            for i in 0..20 {
                let value = owned(row.get_ref(i)?).map_err(|what| {
                    let id = String::from_utf8_lossy(
                        row.get_ref(0)
                            .ok()
                            .and_then(|v| v.as_bytes().ok())
                            .unwrap_or_default(),
                    )
                    .into_owned();
                    StoreError::Corrupt(format!("node {id:?}, column {i}: {what}"))
                })?;
                fields.push(format!("{value:?}"));
            }
            let _ = writeln!(out, "node {}", fields.join(" | "));
        }
        let mut stmt = self
            .conn
            .prepare("SELECT node, tag, hlc, present FROM tags ORDER BY node, tag")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let read = || -> rusqlite::Result<(String, String, String, bool)> {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            };
            let (node, tag, hlc, present) =
                read().map_err(|e| StoreError::Corrupt(format!("a tag row: {e}")))?;
            let _ = writeln!(out, "tag {node} {tag} {hlc} {present}");
        }
        // The full-text index: its structure is sound, and which nodes it
        // holds with how many tokens per column. (It indexes live nodes
        // only, so the check against all of `nodes` does not apply.)
        self.conn
            .execute(
                "INSERT INTO nodes_fts (nodes_fts, rank) VALUES ('integrity-check', 0)",
                [],
            )
            .map_err(|e| StoreError::Corrupt(format!("the full-text index: {e}")))?;
        let mut stmt = self.conn.prepare(
            "SELECT n.id, hex(d.sz) FROM nodes_fts_docsize d JOIN nodes n ON n.rowid = d.id
             ORDER BY n.id",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let read = || -> rusqlite::Result<(String, String)> { Ok((row.get(0)?, row.get(1)?)) };
            let (id, sizes) =
                read().map_err(|e| StoreError::Corrupt(format!("an index row: {e}")))?;
            let _ = writeln!(out, "indexed {id} {sizes}");
        }
        let ops: i64 = self
            .conn
            .query_row("SELECT count(*) FROM ops", [], |r| r.get(0))?;
        let _ = writeln!(out, "ops {ops}");
        Ok(out)
    }
}

/// An owned copy of a column value; text that is not UTF-8 is an error
/// (rusqlite's own conversion would panic on it).
fn owned(
    value: rusqlite::types::ValueRef<'_>,
) -> std::result::Result<rusqlite::types::Value, String> {
    use rusqlite::types::{Value, ValueRef};
    Ok(match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(
            std::str::from_utf8(t)
                .map_err(|e| format!("text is not valid UTF-8 ({e})"))?
                .to_owned(),
        ),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    })
}
