//! Applying ops to the materialized tables. Apply is idempotent (ops are
//! deduplicated by id) and order-independent: every field keeps the value of
//! its newest op, tags are a last-writer-wins element set, and bodies are
//! merged by `heph_core::merge`.
//!
//! Delete against a concurrent edit: a node is deleted when its newest
//! delete is newer than its newest restore *or edit*. An edit made after the
//! delete was stamped (on a device that had not seen it) brings the node
//! back, so concurrent work is never hidden; an edit older than the delete
//! stays in the tombstone and returns with `restore`.

use heph_core::merge::{merge_body, BodyVersion};
use heph_core::{Action, Field, Hlc, Op};
use rusqlite::{params, OptionalExtension, Transaction};

use crate::StoreError;

/// What one batch of ops did.
#[derive(Debug, Clone, Default)]
pub struct ApplyReport {
    /// Ops that were new to this replica.
    pub new_ops: usize,
    /// Ops already present (ignored).
    pub duplicates: usize,
    /// Nodes whose state may have changed, without repeats, in first-seen order.
    pub changed_nodes: Vec<String>,
    /// Concurrent body edits merged line-wise.
    pub merged: usize,
    /// Of those, merges that kept both sides between conflict markers.
    pub conflicts: usize,
    touched: std::collections::HashSet<String>,
}

impl PartialEq for ApplyReport {
    fn eq(&self, other: &Self) -> bool {
        (
            self.new_ops,
            self.duplicates,
            &self.changed_nodes,
            self.merged,
            self.conflicts,
        ) == (
            other.new_ops,
            other.duplicates,
            &other.changed_nodes,
            other.merged,
            other.conflicts,
        )
    }
}

impl ApplyReport {
    fn touch(&mut self, node: &str) {
        if self.touched.insert(node.to_owned()) {
            self.changed_nodes.push(node.to_owned());
        }
    }
}

/// Brings the full-text index of these nodes up to date. Done once per
/// transaction rather than per op, so a batch that sets a title and a body
/// indexes the node once; deleted nodes leave the index.
pub(crate) fn reindex(tx: &Transaction<'_>, nodes: &[String]) -> Result<(), StoreError> {
    let mut remove = tx.prepare_cached(
        "DELETE FROM nodes_fts WHERE rowid = (SELECT rowid FROM nodes WHERE id = ?1)",
    )?;
    let mut add = tx.prepare_cached(
        "INSERT INTO nodes_fts (rowid, title, body) SELECT rowid, title, body FROM nodes WHERE id = ?1 AND deleted = 0",
    )?;
    for node in nodes {
        remove.execute([node])?;
        add.execute([node])?;
    }
    Ok(())
}

/// Inserts `op` into the log and materializes it; `pushed` marks ops the hub
/// already has. Returns false when the op was a duplicate.
pub(crate) fn apply_op(
    tx: &Transaction<'_>,
    op: &Op,
    pushed: bool,
    report: &mut ApplyReport,
) -> Result<bool, StoreError> {
    let payload = serde_json::to_string(op).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let hlc = op.hlc.to_string();
    let inserted = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO ops (op_id, hlc, node, action, payload, pushed) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![op.op_id, hlc, op.node, action_name(&op.action), payload, pushed])?;
    if inserted == 0 {
        if pushed {
            // We sent it earlier and the hub now hands it back: acknowledged.
            tx.prepare_cached("UPDATE ops SET pushed = 1 WHERE op_id = ?1")?
                .execute([&op.op_id])?;
        }
        report.duplicates += 1;
        return Ok(false);
    }
    let seq = tx.last_insert_rowid();
    report.new_ops += 1;
    report.touch(&op.node);
    tx.prepare_cached("INSERT OR IGNORE INTO nodes (id) VALUES (?1)")?
        .execute([&op.node])?;

    match &op.action {
        Action::Create { kind } => {
            set_scalar(tx, &op.node, "kind", Some(kind.as_str()), &hlc)?;
            tx.prepare_cached(
                "UPDATE nodes SET created_hlc = ?2 WHERE id = ?1 AND (created_hlc = '' OR created_hlc > ?2)",
            )?
            .execute(params![op.node, hlc])?;
        }
        Action::Set { field, value } => {
            set_scalar(tx, &op.node, field_column(*field), value.as_deref(), &hlc)?;
        }
        Action::SetBody { body, base } => apply_body(tx, op, body, base, &hlc, report)?,
        Action::AddTag { tag } | Action::RemoveTag { tag } => {
            let present = matches!(op.action, Action::AddTag { .. });
            tx.prepare_cached(
                "INSERT INTO tags (node, tag, hlc, present) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (node, tag) DO UPDATE SET hlc = excluded.hlc, present = excluded.present
                 WHERE excluded.hlc > tags.hlc",
            )?
            .execute(params![op.node, tag, hlc, present])?;
        }
        Action::Delete | Action::Restore => {}
    }
    // Every op but a delete is a sign of life: see the module comment.
    let (delete_hlc, alive_hlc) = match op.action {
        Action::Delete => (hlc.as_str(), ""),
        _ => ("", hlc.as_str()),
    };
    tx.prepare_cached(
        "UPDATE nodes SET delete_hlc = max(delete_hlc, ?2), alive_hlc = max(alive_hlc, ?3),
             deleted = (max(delete_hlc, ?2) > max(alive_hlc, ?3)),
             updated_hlc = max(updated_hlc, ?4), last_seq = ?5 WHERE id = ?1",
    )?
    .execute(params![op.node, delete_hlc, alive_hlc, hlc, seq])?;
    Ok(true)
}

fn set_scalar(
    tx: &Transaction<'_>,
    node: &str,
    column: &str,
    value: Option<&str>,
    hlc: &str,
) -> Result<(), StoreError> {
    // Last writer wins: only a newer stamp replaces the value. title and
    // kind are NOT NULL; validation refuses clearing them.
    let sql = format!(
        "UPDATE nodes SET {column} = ?2, {column}_hlc = ?3 WHERE id = ?1 AND {column}_hlc < ?3"
    );
    tx.prepare_cached(&sql)?
        .execute(params![node, value, hlc])?;
    Ok(())
}

fn apply_body(
    tx: &Transaction<'_>,
    op: &Op,
    body: &str,
    base: &[Hlc],
    hlc: &str,
    report: &mut ApplyReport,
) -> Result<(), StoreError> {
    let (heads_json, body_hlc): (String, String) = tx
        .prepare_cached("SELECT body_heads, body_hlc FROM nodes WHERE id = ?1")?
        .query_row([&op.node], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let heads: Vec<Hlc> =
        serde_json::from_str(&heads_json).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let mut base_sorted = base.to_vec();
    base_sorted.sort();
    base_sorted.dedup();
    // Fast path: the newest version, edited from exactly what we hold.
    if hlc > body_hlc.as_str() && base_sorted == heads {
        let heads =
            serde_json::to_string(&[&op.hlc]).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        tx.prepare_cached(
            "UPDATE nodes SET body = ?2, body_heads = ?3, body_hlc = ?4 WHERE id = ?1",
        )?
        .execute(params![op.node, body, heads, hlc])?;
        return Ok(());
    }
    // Concurrent or out-of-order: recompute from every version of this body.
    let mut stmt =
        tx.prepare_cached("SELECT payload FROM ops WHERE node = ?1 AND action = 'set_body'")?;
    let ops: Vec<Op> = stmt
        .query_map([&op.node], |r| r.get::<_, String>(0))?
        .map(|payload| {
            let payload = payload?;
            serde_json::from_str::<Op>(&payload).map_err(|e| StoreError::Corrupt(e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    let versions: Vec<BodyVersion<'_>> = ops
        .iter()
        .filter_map(|o| match &o.action {
            Action::SetBody { body, base } => Some(BodyVersion {
                hlc: &o.hlc,
                base,
                body,
            }),
            _ => None,
        })
        .collect();
    let merged = merge_body(&versions);
    let max_hlc = versions
        .iter()
        .map(|v| v.hlc)
        .max()
        .map(|h| h.to_string())
        .unwrap_or_default();
    let heads =
        serde_json::to_string(&merged.heads).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    tx.prepare_cached("UPDATE nodes SET body = ?2, body_heads = ?3, body_hlc = ?4 WHERE id = ?1")?
        .execute(params![op.node, merged.text, heads, max_hlc])?;
    report.merged += usize::from(merged.merges > 0);
    report.conflicts += usize::from(merged.conflicts > 0);
    Ok(())
}

/// Current body heads of a node (the `base` for the next body edit).
pub(crate) fn body_heads(tx: &Transaction<'_>, node: &str) -> Result<Vec<Hlc>, StoreError> {
    let json: Option<String> = tx
        .prepare_cached("SELECT body_heads FROM nodes WHERE id = ?1")?
        .query_row([node], |r| r.get(0))
        .optional()?;
    match json {
        Some(json) => serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(e.to_string())),
        None => Ok(Vec::new()),
    }
}

fn field_column(field: Field) -> &'static str {
    match field {
        Field::Title => "title",
        Field::Kind => "kind",
        Field::Status => "status",
        Field::Due => "due",
        Field::Project => "project",
    }
}

fn action_name(action: &Action) -> &'static str {
    match action {
        Action::Create { .. } => "create",
        Action::Set { .. } => "set",
        Action::SetBody { .. } => "set_body",
        Action::AddTag { .. } => "add_tag",
        Action::RemoveTag { .. } => "remove_tag",
        Action::Delete => "delete",
        Action::Restore => "restore",
    }
}
