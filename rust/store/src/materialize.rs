//! Applying ops to the materialized tables. Apply is idempotent (ops are
//! deduplicated by id) and order-independent: every field keeps the value of
//! its newest op, tags are a last-writer-wins element set, and bodies are
//! merged by `heph_core::merge`.
//!
//! Ties: two ops may carry one stamp (an import, a buggy peer), so every
//! last-writer-wins value is stamped `<hlc> <op_id>` (see [`version_key`])
//! and body versions are identified by both.
//!
//! Bodies: a save edited from the current heads is applied at once; any
//! other body version is merged once per node at the end of the transaction
//! ([`settle`]), from the versions between the heads and their common
//! ancestor only.
//!
//! Delete against a concurrent edit: a node is deleted when its newest
//! delete is newer than its newest restore *or edit*. An edit made after the
//! delete was stamped (on a device that had not seen it) brings the node
//! back, so concurrent work is never hidden; an edit older than the delete
//! stays in the tombstone and returns with `restore`.

use std::collections::{BTreeMap, HashMap, HashSet};

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
    /// Of those, merges that made a conflict block (one per node).
    pub conflicts: usize,
    /// Nodes whose body now holds a conflict block made by this apply.
    pub conflict_nodes: Vec<String>,
    /// Own future-stamped ops given fresh stamps before this write.
    pub restamped: usize,
    touched: HashSet<String>,
    /// Bodies to merge when the transaction ends, with their new versions.
    pending_bodies: BTreeMap<String, Vec<NewVersion>>,
}

impl PartialEq for ApplyReport {
    fn eq(&self, other: &Self) -> bool {
        (
            self.new_ops,
            self.duplicates,
            &self.changed_nodes,
            self.merged,
            self.conflicts,
            &self.conflict_nodes,
        ) == (
            other.new_ops,
            other.duplicates,
            &other.changed_nodes,
            other.merged,
            other.conflicts,
            &other.conflict_nodes,
        )
    }
}

impl ApplyReport {
    pub(crate) fn touch(&mut self, node: &str) {
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
    materialize(tx, op, seq, report)?;
    Ok(true)
}

/// Materializes one op already in the log at `seq`.
fn materialize(
    tx: &Transaction<'_>,
    op: &Op,
    seq: i64,
    report: &mut ApplyReport,
) -> Result<(), StoreError> {
    let hlc = op.hlc.to_string();
    // Last-writer-wins values are stamped with the op id too, so two ops
    // with one stamp resolve the same way in any order.
    let key = version_key(&op.hlc, &op.op_id);
    report.touch(&op.node);
    tx.prepare_cached("INSERT OR IGNORE INTO nodes (id) VALUES (?1)")?
        .execute([&op.node])?;

    match &op.action {
        Action::Create { kind } => {
            set_scalar(tx, &op.node, "kind", Some(kind.as_str()), &key)?;
            tx.prepare_cached(
                "UPDATE nodes SET created_hlc = ?2 WHERE id = ?1 AND (created_hlc = '' OR created_hlc > ?2)",
            )?
            .execute(params![op.node, hlc])?;
        }
        Action::Set { field, value } => {
            set_scalar(tx, &op.node, field_column(*field), value.as_deref(), &key)?;
        }
        Action::SetBody { body, base } => apply_body(tx, op, body, base, report)?,
        Action::AddTag { tag } | Action::RemoveTag { tag } => {
            let present = matches!(op.action, Action::AddTag { .. });
            tx.prepare_cached(
                "INSERT INTO tags (node, tag, hlc, present) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (node, tag) DO UPDATE SET hlc = excluded.hlc, present = excluded.present
                 WHERE excluded.hlc > tags.hlc",
            )?
            .execute(params![op.node, tag, key, present])?;
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
    Ok(())
}

/// Rebuilds the materialized state of `node` from its ops in the log (after
/// some of them were re-stamped): its row, tags and index entry are dropped
/// and every op is applied again in `(hlc, op_id)` order, without touching
/// the log. Bodies needing a merge are left in `report` for [`settle`].
pub(crate) fn rebuild_node(
    tx: &Transaction<'_>,
    node: &str,
    report: &mut ApplyReport,
) -> Result<(), StoreError> {
    // The index row first: it is keyed by the node's rowid.
    tx.prepare_cached(
        "DELETE FROM nodes_fts WHERE rowid = (SELECT rowid FROM nodes WHERE id = ?1)",
    )?
    .execute([node])?;
    tx.prepare_cached("DELETE FROM nodes WHERE id = ?1")?
        .execute([node])?;
    tx.prepare_cached("DELETE FROM tags WHERE node = ?1")?
        .execute([node])?;
    report.pending_bodies.remove(node);
    let rows: Vec<(i64, String)> = tx
        .prepare_cached("SELECT seq, payload FROM ops WHERE node = ?1 ORDER BY hlc, op_id")?
        .query_map([node], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (seq, payload) in &rows {
        let op: Op =
            serde_json::from_str(payload).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        materialize(tx, &op, *seq, report)?;
    }
    // The node's version is its newest op in the log, as after any apply.
    tx.prepare_cached(
        "UPDATE nodes SET last_seq = (SELECT max(seq) FROM ops WHERE node = ?1) WHERE id = ?1",
    )?
    .execute([node])?;
    Ok(())
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

/// A body version applied in this transaction, still to be merged.
#[derive(Debug, Clone)]
struct NewVersion {
    hlc: Hlc,
    op_id: String,
    base: Vec<Hlc>,
}

/// A body version read back from the op-log.
#[derive(Debug, Clone)]
struct StoredVersion {
    hlc: Hlc,
    op_id: String,
    base: Vec<Hlc>,
    body: String,
}

/// How a version (or a last-writer-wins value) is stamped in the tables:
/// `<hlc> <op_id>`. The space sorts below every character of an origin, so
/// text order is `(hlc, op_id)` order, and a stamp written without the op id
/// (older replicas) still compares correctly.
fn version_key(hlc: &Hlc, op_id: &str) -> String {
    format!("{hlc} {op_id}")
}

/// The stamp and, when recorded, the op id of a version key.
fn parse_key(key: &str) -> Result<(Hlc, Option<&str>), StoreError> {
    let (hlc, op_id) = match key.split_once(' ') {
        Some((hlc, op_id)) => (hlc, Some(op_id)),
        None => (key, None),
    };
    Ok((
        hlc.parse()
            .map_err(|e: heph_core::HlcError| StoreError::Corrupt(e.to_string()))?,
        op_id,
    ))
}

fn read_heads(json: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The stamps of the heads in a `body_heads` column, sorted, without
/// repeats (the `base` an edit of them records).
fn head_stamps(json: &str) -> Result<Vec<Hlc>, StoreError> {
    let mut heads = Vec::new();
    for key in read_heads(json)? {
        heads.push(parse_key(&key)?.0);
    }
    heads.sort();
    heads.dedup();
    Ok(heads)
}

fn apply_body(
    tx: &Transaction<'_>,
    op: &Op,
    body: &str,
    base: &[Hlc],
    report: &mut ApplyReport,
) -> Result<(), StoreError> {
    let version = NewVersion {
        hlc: op.hlc.clone(),
        op_id: op.op_id.clone(),
        base: base.to_vec(),
    };
    if let Some(pending) = report.pending_bodies.get_mut(&op.node) {
        pending.push(version);
        return Ok(());
    }
    let (heads_json, body_hlc): (String, String) = tx
        .prepare_cached("SELECT body_heads, body_hlc FROM nodes WHERE id = ?1")?
        .query_row([&op.node], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let heads = head_stamps(&heads_json)?;
    let mut base_sorted = base.to_vec();
    base_sorted.sort();
    base_sorted.dedup();
    let newest = match body_hlc.as_str() {
        "" => None,
        key => Some(parse_key(key)?.0),
    };
    // Fast path (every local save): newer than every version and edited
    // from exactly the heads, so it is the only head and its text the body.
    if newest.is_none_or(|n| op.hlc > n) && base_sorted == heads {
        let key = version_key(&op.hlc, &op.op_id);
        let heads_json =
            serde_json::to_string(&[&key]).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        tx.prepare_cached(
            "UPDATE nodes SET body = ?2, body_heads = ?3, body_hlc = ?4 WHERE id = ?1",
        )?
        .execute(params![op.node, body, heads_json, key])?;
        return Ok(());
    }
    // Concurrent or out of order: merged once, when the transaction ends.
    report.pending_bodies.insert(op.node.clone(), vec![version]);
    Ok(())
}

/// Finishes an apply transaction: merges each body that received concurrent
/// or out-of-order versions, once per node however many versions arrived.
/// Call it after the last `apply_op` of a transaction, before `reindex`.
pub(crate) fn settle(
    tx: &Transaction<'_>,
    mut report: ApplyReport,
) -> Result<ApplyReport, StoreError> {
    let pending = std::mem::take(&mut report.pending_bodies);
    for (node, versions) in pending {
        merge_node_body(tx, &node, &versions, &mut report)?;
    }
    Ok(report)
}

/// Every set-body version of `node` stamped `hlc`.
fn versions_at(
    tx: &Transaction<'_>,
    node: &str,
    hlc: &Hlc,
) -> Result<Vec<StoredVersion>, StoreError> {
    let mut stmt = tx.prepare_cached(
        // The unary plus keeps SQLite on the stamp index, not the node's
        // (which would scan every version of the node).
        "SELECT payload FROM ops WHERE hlc = ?1 AND +node = ?2 AND +action = 'set_body'",
    )?;
    let payloads: Vec<String> = stmt
        .query_map(params![hlc.to_string(), node], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut out: Vec<StoredVersion> = payloads
        .iter()
        .map(|p| stored_version(p))
        .collect::<Result<_, _>>()?;
    out.sort_by(|a, b| a.op_id.cmp(&b.op_id));
    Ok(out)
}

fn stored_version(payload: &str) -> Result<StoredVersion, StoreError> {
    let op: Op = serde_json::from_str(payload).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    match op.action {
        Action::SetBody { body, base } => Ok(StoredVersion {
            hlc: op.hlc,
            op_id: op.op_id,
            base,
            body,
        }),
        _ => Err(StoreError::Corrupt(format!(
            "op {} is not a body version",
            op.op_id
        ))),
    }
}

/// Whether some version of `node` was edited from versions stamped `hlc`.
fn has_child(tx: &Transaction<'_>, node: &str, hlc: &Hlc) -> Result<bool, StoreError> {
    // A stamp in quotes occurs in a payload only as a stamp: quotes inside
    // the body are escaped. Only a later version can list it in its base.
    let quoted = format!("\"{hlc}\"");
    Ok(tx
        .prepare_cached(
            "SELECT 1 FROM ops WHERE node = ?1 AND action = 'set_body' AND hlc > ?2
             AND instr(payload, ?3) > 0 LIMIT 1",
        )?
        .query_row(params![node, hlc.to_string(), quoted], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Recomputes the body of `node` after `new` versions arrived: finds the
/// heads, loads the versions from the heads down to their common ancestors
/// (not the whole history) and merges them.
fn merge_node_body(
    tx: &Transaction<'_>,
    node: &str,
    new: &[NewVersion],
    report: &mut ApplyReport,
) -> Result<(), StoreError> {
    let (old_body, heads_json, body_hlc): (String, String, String) = tx
        .prepare_cached("SELECT body, body_heads, body_hlc FROM nodes WHERE id = ?1")?
        .query_row([node], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    let old_newest = match body_hlc.as_str() {
        "" => None,
        key => Some(parse_key(key)?.0),
    };
    let mut newest = body_hlc;
    // The heads: old heads and new versions no version was edited from.
    let child_in_new = |hlc: &Hlc| new.iter().any(|n| n.hlc > *hlc && n.base.contains(hlc));
    let mut heads: Vec<StoredVersion> = Vec::new();
    for key in read_heads(&heads_json)? {
        let (hlc, op_id) = parse_key(&key)?;
        if child_in_new(&hlc) {
            continue;
        }
        for v in versions_at(tx, node, &hlc)? {
            if op_id.is_none_or(|id| id == v.op_id) {
                heads.push(v);
            }
        }
    }
    let mut checked = HashSet::new();
    for n in new {
        let key = version_key(&n.hlc, &n.op_id);
        if key > newest {
            newest = key;
        }
        if !checked.insert(n.hlc.clone()) || child_in_new(&n.hlc) {
            continue;
        }
        // Only a version older than what we held can have a child there.
        if old_newest.as_ref().is_some_and(|o| *o > n.hlc) && has_child(tx, node, &n.hlc)? {
            continue;
        }
        heads.extend(versions_at(tx, node, &n.hlc)?);
    }
    heads.sort_by(|a, b| (&a.hlc, &a.op_id).cmp(&(&b.hlc, &b.op_id)));
    heads.dedup_by(|a, b| a.hlc == b.hlc && a.op_id == b.op_id);

    let loaded = if heads.len() > 1 {
        load_merge_region(tx, node, heads)?
    } else {
        heads
    };
    let versions: Vec<BodyVersion<'_>> = loaded
        .iter()
        .map(|v| BodyVersion {
            hlc: &v.hlc,
            op_id: &v.op_id,
            base: &v.base,
            body: &v.body,
        })
        .collect();
    let merged = merge_body(&versions);
    let heads: Vec<String> = merged
        .head_versions
        .iter()
        .map(|(hlc, op_id)| version_key(hlc, op_id))
        .collect();
    let heads = serde_json::to_string(&heads).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    tx.prepare_cached("UPDATE nodes SET body = ?2, body_heads = ?3, body_hlc = ?4 WHERE id = ?1")?
        .execute(params![node, merged.text, heads, newest])?;
    report.merged += usize::from(merged.merges > 0);
    if merged.conflicts > 0 && merged.text != old_body {
        report.conflicts += 1;
        report.conflict_nodes.push(node.to_owned());
    }
    Ok(())
}

/// The versions a merge of `heads` needs: walking back from the heads in
/// stamp order, each version painted with the heads it descends to, until
/// only versions below a common ancestor remain (git's merge-base walk).
/// Several best common ancestors (criss-cross) are walked in turn, for the
/// virtual ancestor. Deterministic: it depends only on the versions held.
fn load_merge_region(
    tx: &Transaction<'_>,
    node: &str,
    heads: Vec<StoredVersion>,
) -> Result<Vec<StoredVersion>, StoreError> {
    type Key = (Hlc, String);
    let mut loaded: BTreeMap<Key, StoredVersion> = BTreeMap::new();
    let mut cache: HashMap<Hlc, Vec<StoredVersion>> = HashMap::new();
    let mut starts = heads;
    while starts.len() > 1 {
        if starts.len() > 64 {
            // Too many branches to paint: take every version.
            let mut stmt = tx.prepare_cached(
                "SELECT payload FROM ops WHERE node = ?1 AND action = 'set_body'",
            )?;
            let payloads: Vec<String> = stmt
                .query_map([node], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            return payloads.iter().map(|p| stored_version(p)).collect();
        }
        let all: u64 = if starts.len() == 64 {
            u64::MAX
        } else {
            (1 << starts.len()) - 1
        };
        // Pending versions: (paint, below a common ancestor).
        let mut pending: BTreeMap<Key, (StoredVersion, u64, bool)> = BTreeMap::new();
        for (i, v) in starts.drain(..).enumerate() {
            loaded.insert((v.hlc.clone(), v.op_id.clone()), v.clone());
            pending.insert((v.hlc.clone(), v.op_id.clone()), (v, 1 << i, false));
        }
        let mut bases = Vec::new();
        loop {
            let live: u64 = pending
                .values()
                .filter(|(_, _, stale)| !stale)
                .fold(0, |acc, (_, paint, _)| acc | paint);
            if live == 0 {
                break;
            }
            // Two branches: once one has no pending version left, no common
            // ancestor can follow.
            let painted = pending.values().fold(0, |acc, (_, p, _)| acc | p);
            if all == 3 && painted != all {
                break;
            }
            let Some((key, (v, paint, mut stale))) = pending.pop_last() else {
                break;
            };
            if paint == all && !stale {
                bases.push(v.clone());
                stale = true;
            }
            for h in v.base.iter().filter(|h| **h < v.hlc) {
                if !cache.contains_key(h) {
                    let found = versions_at(tx, node, h)?;
                    cache.insert(h.clone(), found);
                }
                for p in &cache[h] {
                    let entry = pending
                        .entry((p.hlc.clone(), p.op_id.clone()))
                        .or_insert_with(|| (p.clone(), 0, false));
                    entry.1 |= paint;
                    // Below a common ancestor: cannot be a best one.
                    entry.2 |= stale;
                }
            }
            loaded.insert(key, v);
        }
        starts = bases;
    }
    Ok(loaded.into_values().collect())
}

/// Current body heads of a node (the `base` for the next body edit): their
/// stamps, sorted, without repeats.
pub(crate) fn body_heads(conn: &rusqlite::Connection, node: &str) -> Result<Vec<Hlc>, StoreError> {
    let json: Option<String> = conn
        .prepare_cached("SELECT body_heads FROM nodes WHERE id = ?1")?
        .query_row([node], |r| r.get(0))
        .optional()?;
    head_stamps(json.as_deref().unwrap_or("[]"))
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
