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

use heph_core::body_delta::BodyDelta;
use heph_core::merge::{merge_body, BodyVersion};
use heph_core::{Action, Field, Hlc, Op};
use rusqlite::{params, OptionalExtension, Transaction};

use crate::node_row::NodeRow;
use crate::op_statements::OpStatements;
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
    /// Deleted nodes this apply brought back (an edit or a restore made
    /// elsewhere after the delete): the user who deleted one is told.
    pub revived_nodes: Vec<String>,
    /// Own future-stamped ops given fresh stamps before this write.
    pub restamped: usize,
    /// Body deltas held back until the version they apply to arrives.
    pub held: usize,
    touched: HashSet<String>,
    /// Nodes taken out of the full-text index before their row changed;
    /// put back by [`reindex`].
    unindexed: HashSet<String>,
    /// Bodies to merge when the transaction ends, with their new versions.
    pending_bodies: BTreeMap<String, Vec<NewVersion>>,
    /// Whether the full-text index is deferred (a bulk load), once read:
    /// asked for every node, and it changes only where a bulk load starts
    /// or ends ([`ApplyReport::set_index_deferred`]).
    index_deferred: Option<bool>,
    /// The origin of this replica's own edits in this transaction (a
    /// local write): a conflict is new to the user when the text they
    /// just saved lacks it, not only the text the replica held.
    pub(crate) local_origin: Option<String>,
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
    /// Records that a bulk load started (or that none is under way) in
    /// this transaction.
    pub(crate) fn set_index_deferred(&mut self, deferred: bool) {
        self.index_deferred = Some(deferred);
    }

    fn index_deferred(&mut self, tx: &Transaction<'_>) -> Result<bool, StoreError> {
        match self.index_deferred {
            Some(deferred) => Ok(deferred),
            None => {
                let deferred = crate::bulk_index::is_deferred(tx)?;
                self.index_deferred = Some(deferred);
                Ok(deferred)
            }
        }
    }

    /// Records that `node` left the full-text index in this transaction.
    pub(crate) fn mark_unindexed(&mut self, node: &str) {
        self.unindexed.insert(node.to_owned());
    }

    pub(crate) fn touch(&mut self, node: &str) {
        // Looked up first: every op of a node touches it, and only the
        // first needs the copies.
        if !self.touched.contains(node) {
            self.touched.insert(node.to_owned());
            self.changed_nodes.push(node.to_owned());
        }
    }
}

/// The rule bodies with several heads were merged by; a replica that
/// recorded another (or none) merges them again at its first writable open.
pub(crate) const MERGE_RULE: &str = "2";

/// Merges again every body that has several heads, when the replica's
/// bodies were merged by an earlier rule (conflict blocks as units came
/// with rule 2): a device that pulls every op, or installs a snapshot,
/// computes the same text as one that upgraded. Only reads when there is
/// nothing to do.
pub(crate) fn remerge_if_rule_changed(conn: &mut rusqlite::Connection) -> Result<(), StoreError> {
    let recorded: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'merge_rule'", [], |r| {
            r.get(0)
        })
        .optional()?;
    if recorded.as_deref() == Some(MERGE_RULE) {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let ids: Vec<String> = tx
        .prepare("SELECT id FROM nodes WHERE body_heads LIKE '%,%' ORDER BY id")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut report = ApplyReport::default();
    for id in &ids {
        unindex(&tx, id, &mut report)?;
        // A body that cannot be merged again (versions it names are not
        // all here) keeps the text it has: no reason to refuse the replica.
        if let Err(error) = merge_node_body(&tx, id, &[], &mut report) {
            tracing::warn!(node = %id, %error, "a body was not merged again");
        }
    }
    reindex(&tx, &report)?;
    tx.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('merge_rule', ?1)",
        [MERGE_RULE],
    )?;
    tx.commit()?;
    Ok(())
}

/// Takes `node` out of the full-text index before its row changes, once
/// per transaction. The index reads its text from `nodes` (external
/// content), so an entry must be removed while the row still holds the
/// text it was made from; [`reindex`] puts it back when the row is final.
pub(crate) fn unindex(
    tx: &Transaction<'_>,
    node: &str,
    report: &mut ApplyReport,
) -> Result<(), StoreError> {
    if report.unindexed.contains(node) {
        return Ok(());
    }
    if report.index_deferred(tx)? {
        // Nothing is indexed during a bulk load, and nothing is put back
        // (see `reindex`): not remembered either, which for a whole
        // history is an id per node held to the end.
        return Ok(());
    }
    report.unindexed.insert(node.to_owned());
    // Only a live node is in the index.
    tx.prepare_cached(
        "DELETE FROM nodes_fts WHERE rowid = (SELECT rowid FROM nodes WHERE id = ?1 AND deleted = 0)",
    )?
    .execute([node])?;
    Ok(())
}

/// Puts the nodes taken out of the index in this transaction back, with
/// their final text; deleted nodes stay out. Done once per transaction
/// rather than per op, so a batch that sets a title and a body indexes the
/// node once.
pub(crate) fn reindex(tx: &Transaction<'_>, report: &ApplyReport) -> Result<(), StoreError> {
    if report.unindexed.is_empty() || crate::bulk_index::is_deferred(tx)? {
        // A bulk load builds the whole index at its end.
        return Ok(());
    }
    let mut add = tx.prepare_cached(
        "INSERT INTO nodes_fts (rowid, title, body)
         SELECT rowid, title, body FROM nodes WHERE id = ?1 AND deleted = 0",
    )?;
    // In a stable order, so every replica builds the same index.
    let mut nodes: Vec<&String> = report.unindexed.iter().collect();
    nodes.sort();
    for node in nodes {
        add.execute([node])?;
    }
    Ok(())
}

/// How an op is kept in the log: its action as JSON (the id, stamp and
/// node are columns of their own, not repeated).
pub(crate) fn action_json(op: &Op) -> Result<String, StoreError> {
    serde_json::to_string(&op.action).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn read_action(payload: &str) -> Result<Action, StoreError> {
    serde_json::from_str(payload).map_err(|e| StoreError::Corrupt(format!("an op: {e}")))
}

/// One op as read from the log: `op_id, hlc, node, payload` columns.
pub(crate) struct LogRow {
    op_id: String,
    hlc: String,
    node: String,
    payload: String,
}

impl LogRow {
    /// Reads the four columns starting at `first`.
    pub(crate) fn read(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Self> {
        Ok(Self {
            op_id: r.get(first)?,
            hlc: r.get(first + 1)?,
            node: r.get(first + 2)?,
            payload: r.get(first + 3)?,
        })
    }

    /// About the size of the op as JSON.
    pub(crate) fn json_len_estimate(&self) -> usize {
        self.payload.len() + self.op_id.len() + self.hlc.len() + self.node.len() + 32
    }

    /// The op.
    pub(crate) fn into_op(self) -> Result<Op, StoreError> {
        Ok(Op {
            hlc: self
                .hlc
                .parse()
                .map_err(|e: heph_core::HlcError| StoreError::Corrupt(e.to_string()))?,
            action: read_action(&self.payload)?,
            op_id: self.op_id,
            node: self.node,
        })
    }
}

/// Inserts `op` into the log and materializes it; `pushed` marks ops the hub
/// already has. Returns false when the op was a duplicate or is held back
/// (a body delta whose base version is not here yet: it is applied when
/// that version arrives, so the outcome does not depend on arrival order).
/// A delta that does not fit its base is refused with
/// [`StoreError::Invalid`] before anything is written.
pub(crate) fn apply_op(
    tx: &Transaction<'_>,
    op: &Op,
    pushed: bool,
    report: &mut ApplyReport,
) -> Result<bool, StoreError> {
    let before = report.new_ops;
    let mut statements = OpStatements::new(tx);
    let mut group = NodeGroup::load(tx, &op.node)?;
    let applied = group.apply(tx, &mut statements, op, None, pushed, report);
    group.finish(tx, report)?;
    applied?;
    Ok(report.new_ops > before)
}

/// Applies many ops at once: grouped by node, each node's row is read once,
/// changed in memory by all of its ops in stamp order, and written once.
/// The state reached is the one op-by-op application gives (apply is
/// order-independent). Returns the ops refused as invalid (a body delta
/// that does not fit its base) by index, with the reason; nothing of those
/// is written. `payloads`, when given, holds each op's [`action_json`], in
/// the order of `ops` (made ahead on another thread).
pub(crate) fn apply_batch(
    tx: &Transaction<'_>,
    ops: &[Op],
    payloads: Option<&[String]>,
    pushed: bool,
    report: &mut ApplyReport,
) -> Result<Vec<(usize, String)>, StoreError> {
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&ops[a], &ops[b]);
        (&a.node, &a.hlc, &a.op_id).cmp(&(&b.node, &b.hlc, &b.op_id))
    });
    debug_assert!(payloads.is_none_or(|p| p.len() == ops.len()));
    let mut refused = Vec::new();
    let mut statements = OpStatements::new(tx);
    for run in order.chunk_by(|&a, &b| ops[a].node == ops[b].node) {
        let mut group = NodeGroup::load(tx, &ops[run[0]].node)?;
        for &i in run {
            let payload = payloads.and_then(|p| p.get(i)).map(String::as_str);
            match group.apply(tx, &mut statements, &ops[i], payload, pushed, report) {
                Err(StoreError::Invalid(reason)) => refused.push((i, reason)),
                other => {
                    other?;
                }
            }
        }
        group.finish(tx, report)?;
    }
    Ok(refused)
}

/// The ops of one node being applied: its row in memory and the text of
/// each body version applied meanwhile (deltas after them need it).
struct NodeGroup {
    row: NodeRow,
    texts: HashMap<String, String>,
    /// Whether an op was new (applied or held back): a group of duplicates
    /// only (a device pulling back ops it has) leaves the row and the
    /// full-text index alone.
    changed: bool,
    /// Whether the node was deleted before these ops.
    was_deleted: bool,
}

impl NodeGroup {
    fn load(tx: &Transaction<'_>, node: &str) -> Result<Self, StoreError> {
        let row = NodeRow::load(tx, node)?;
        Ok(Self {
            was_deleted: row.deleted,
            row,
            texts: HashMap::new(),
            changed: false,
        })
    }

    /// Writes the row back when an op changed it, after taking the node out
    /// of the full-text index while the stored row still holds the text the
    /// entry was made from ([`reindex`] puts it back).
    fn finish(mut self, tx: &Transaction<'_>, report: &mut ApplyReport) -> Result<(), StoreError> {
        if self.changed {
            unindex(tx, &self.row.id, report)?;
            self.row.store(tx)?;
            if self.was_deleted && !self.row.deleted && !report.revived_nodes.contains(&self.row.id)
            {
                report.revived_nodes.push(self.row.id.clone());
            }
        }
        Ok(())
    }

    /// Applies `op` (of this node) and any held delta it releases;
    /// `payload` is its [`action_json`] when the caller made it already.
    fn apply(
        &mut self,
        tx: &Transaction<'_>,
        statements: &mut OpStatements<'_>,
        op: &Op,
        payload: Option<&str>,
        pushed: bool,
        report: &mut ApplyReport,
    ) -> Result<(), StoreError> {
        let mut released = Vec::new();
        self.apply_one(tx, statements, op, payload, pushed, report, &mut released)?;
        // Deltas that waited for a version applied here, and then for them.
        while let Some((held, pushed)) = released.pop() {
            if let Err(StoreError::Invalid(reason)) =
                self.apply_one(tx, statements, &held, None, pushed, report, &mut released)
            {
                hold(tx, &held, pushed, Some(&reason))?;
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_one(
        &mut self,
        tx: &Transaction<'_>,
        statements: &mut OpStatements<'_>,
        op: &Op,
        payload: Option<&str>,
        pushed: bool,
        report: &mut ApplyReport,
        released: &mut Vec<(Op, bool)>,
    ) -> Result<(), StoreError> {
        if op.node != self.row.id {
            return Err(StoreError::Corrupt(format!(
                "op {} applied to node {}",
                op.op_id, self.row.id
            )));
        }
        let mut from = None;
        let text = match &op.action {
            Action::SetBody { body, .. } => Some(body.clone()),
            Action::EditBody {
                base,
                from: from_id,
                delta,
            } => {
                if exists(tx, &op.op_id)? {
                    duplicate(tx, op, pushed, report)?;
                    return Ok(());
                }
                let Some(text) = self.delta_text(tx, op, base, from_id, delta)? else {
                    self.changed = true;
                    if hold(tx, op, pushed, None)? {
                        report.held += 1;
                    } else {
                        report.duplicates += 1;
                    }
                    return Ok(());
                };
                from = Some(from_id.as_str());
                Some(text)
            }
            _ => None,
        };
        let payload = match payload {
            Some(payload) => std::borrow::Cow::Borrowed(payload),
            None => std::borrow::Cow::Owned(action_json(op)?),
        };
        // The stamp is formatted once, for the log and the row.
        let key = version_key(&op.hlc, &op.op_id);
        let inserted = statements.insert_op()?.execute(params![
            op.op_id,
            key_stamp(&key, &op.op_id),
            op.node,
            action_name(&op.action),
            payload,
            pushed,
            from
        ])?;
        if inserted == 0 {
            duplicate(tx, op, pushed, report)?;
            return Ok(());
        }
        let seq = tx.last_insert_rowid();
        report.new_ops += 1;
        self.changed = true;
        let version = Version {
            key: &key,
            seq,
            text: text.as_deref(),
        };
        materialize(tx, statements, &mut self.row, op, version, report)?;
        if let Some(text) = text {
            self.texts.insert(op.op_id.clone(), text);
            let rows: Vec<(String, bool)> = statements
                .held_after()?
                .query_map([&op.op_id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            if !rows.is_empty() {
                tx.prepare_cached("DELETE FROM held_ops WHERE from_op = ?1")?
                    .execute([&op.op_id])?;
            }
            for (payload, pushed) in rows {
                let held: Op = serde_json::from_str(&payload)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                released.push((held, pushed));
            }
        }
        Ok(())
    }

    /// The text a body delta makes, or `None` when its base version is not
    /// in the log yet. A delta that names a version it cannot apply to
    /// (another node, not in its base, or lines that do not fit) is refused.
    fn delta_text(
        &self,
        tx: &Transaction<'_>,
        op: &Op,
        base: &[Hlc],
        from: &str,
        delta: &BodyDelta,
    ) -> Result<Option<String>, StoreError> {
        let row: Option<(String, String, String)> = tx
            .prepare_cached("SELECT hlc, node, action FROM ops WHERE op_id = ?1")?
            .query_row([from], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        let Some((from_hlc, node, action)) = row else {
            return Ok(None);
        };
        let refuse = |why: String| {
            StoreError::Invalid(format!(
                "invalid op {}: its body delta {why}",
                op.op_id.chars().take(64).collect::<String>()
            ))
        };
        if node != op.node || action != "set_body" {
            return Err(refuse(format!(
                "applies to {from}, not a body version of this node"
            )));
        }
        let from_hlc: Hlc = from_hlc
            .parse()
            .map_err(|e: heph_core::HlcError| StoreError::Corrupt(e.to_string()))?;
        if from_hlc >= op.hlc || !base.contains(&from_hlc) {
            return Err(refuse(format!(
                "applies to {from}, which is not an earlier version in its base"
            )));
        }
        let base_text = match self.texts.get(from) {
            Some(text) => std::borrow::Cow::Borrowed(text.as_str()),
            None if only_head(&self.row.body_heads)?.as_deref() == Some(from) => {
                std::borrow::Cow::Borrowed(self.row.body.as_str())
            }
            None => std::borrow::Cow::Owned(version_text(tx, &op.node, from)?),
        };
        delta
            .apply(&base_text)
            .map(Some)
            .map_err(|e| refuse(e.to_string()))
    }
}

/// The op id of the only head in a `body_heads` column, if there is one
/// head and its key records it.
fn only_head(heads: &str) -> Result<Option<String>, StoreError> {
    Ok(match read_heads(heads)?.as_slice() {
        [only] => parse_key(only)?.1.map(str::to_owned),
        _ => None,
    })
}

fn duplicate(
    tx: &Transaction<'_>,
    op: &Op,
    pushed: bool,
    report: &mut ApplyReport,
) -> Result<bool, StoreError> {
    if pushed {
        // We sent it earlier and the hub now hands it back: acknowledged.
        tx.prepare_cached("UPDATE ops SET pushed = 1 WHERE op_id = ?1")?
            .execute([&op.op_id])?;
    }
    report.duplicates += 1;
    Ok(false)
}

fn exists(tx: &Transaction<'_>, op_id: &str) -> Result<bool, StoreError> {
    Ok(tx
        .prepare_cached("SELECT 1 FROM ops WHERE op_id = ?1")?
        .exists([op_id])?)
}

/// Keeps a body delta aside until its base version arrives (`reason` when
/// it arrived and the delta does not fit it). Returns false when it was
/// already held.
fn hold(
    tx: &Transaction<'_>,
    op: &Op,
    pushed: bool,
    reason: Option<&str>,
) -> Result<bool, StoreError> {
    let Action::EditBody { from, .. } = &op.action else {
        return Err(StoreError::Corrupt(format!(
            "op {} is not a body delta",
            op.op_id
        )));
    };
    let held = tx
        .prepare_cached("SELECT 1 FROM held_ops WHERE op_id = ?1")?
        .exists([&op.op_id])?;
    if held {
        tx.prepare_cached(
            "UPDATE held_ops SET pushed = max(pushed, ?2), reason = coalesce(?3, reason)
             WHERE op_id = ?1",
        )?
        .execute(params![op.op_id, pushed, reason])?;
        return Ok(false);
    }
    let payload = serde_json::to_string(op).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    tx.prepare_cached(
        "INSERT INTO held_ops (op_id, node, from_op, payload, pushed, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![op.op_id, op.node, from, payload, pushed, reason])?;
    Ok(true)
}

/// The full text of the body version `op_id` of `node`: the node's body when
/// that version is its only head, else rebuilt from the nearest full text
/// along its deltas.
pub(crate) fn version_text(
    tx: &Transaction<'_>,
    node: &str,
    op_id: &str,
) -> Result<String, StoreError> {
    let heads: Option<(String, String)> = tx
        .prepare_cached("SELECT body_heads, body FROM nodes WHERE id = ?1")?
        .query_row([node], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((heads, body)) = heads {
        if only_head(&heads)?.as_deref() == Some(op_id) {
            return Ok(body);
        }
    }
    let mut deltas = Vec::new();
    let mut id = op_id.to_owned();
    let mut text = loop {
        let payload: Option<String> = tx
            .prepare_cached("SELECT payload FROM ops WHERE op_id = ?1")?
            .query_row([&id], |r| r.get(0))
            .optional()?;
        let payload =
            payload.ok_or_else(|| StoreError::Corrupt(format!("body version {id} is missing")))?;
        match read_action(&payload)? {
            Action::SetBody { body, .. } => break body,
            Action::EditBody { from, delta, .. } => {
                deltas.push(delta);
                id = from;
            }
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "op {id} is not a body version"
                )))
            }
        }
    };
    for delta in deltas.iter().rev() {
        text = delta
            .apply(&text)
            .map_err(|e| StoreError::Corrupt(format!("body version {op_id}: {e}")))?;
    }
    Ok(text)
}

/// How many deltas lie between the body version `op_id` and a full text,
/// counted up to `cap`.
pub(crate) fn delta_depth(tx: &Transaction<'_>, op_id: &str, cap: u32) -> Result<u32, StoreError> {
    Ok(tx
        .prepare_cached(
            "WITH RECURSIVE chain(id, depth) AS (
                 SELECT ?1, 0
                 UNION ALL
                 SELECT ops.body_from, chain.depth + 1 FROM ops JOIN chain ON ops.op_id = chain.id
                 WHERE ops.body_from IS NOT NULL AND chain.depth < ?2)
             SELECT max(depth) FROM chain",
        )?
        .query_row(params![op_id, cap], |r| r.get(0))?)
}

/// Where an op being materialized stands.
#[derive(Clone, Copy)]
struct Version<'a> {
    /// Its [`version_key`].
    key: &'a str,
    /// Its local sequence in the log.
    seq: i64,
    /// The body of a body version (a delta's, rebuilt), when known.
    text: Option<&'a str>,
}

/// Materializes one op already in the log into its node's `row`.
fn materialize(
    tx: &Transaction<'_>,
    statements: &mut OpStatements<'_>,
    row: &mut NodeRow,
    op: &Op,
    Version { key, seq, text }: Version<'_>,
    report: &mut ApplyReport,
) -> Result<(), StoreError> {
    // Last-writer-wins values are stamped with the op id too (the key), so
    // two ops with one stamp resolve the same way in any order.
    let hlc = key_stamp(key, &op.op_id);
    report.touch(&op.node);
    match &op.action {
        Action::Create { kind } => {
            row.set_field(Field::Kind, Some(kind.as_str()), key)?;
            row.created(hlc);
        }
        Action::Set { field, value } => row.set_field(*field, value.as_deref(), key)?,
        Action::SetBody { base, .. } | Action::EditBody { base, .. } => {
            let text = match text {
                Some(t) => std::borrow::Cow::Borrowed(t),
                None => std::borrow::Cow::Owned(version_text(tx, &op.node, &op.op_id)?),
            };
            apply_body(row, op, &text, base, report)?;
        }
        Action::AddTag { tag } | Action::RemoveTag { tag } => {
            let present = matches!(op.action, Action::AddTag { .. });
            statements
                .upsert_tag()?
                .execute(params![op.node, tag, key, present])?;
        }
        Action::Delete | Action::Restore => {}
    }
    // Every op but a delete is a sign of life: see the module comment.
    row.lived(hlc, matches!(op.action, Action::Delete), seq);
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
    // Out of the index first, while the row still holds its text.
    unindex(tx, node, report)?;
    tx.prepare_cached("DELETE FROM nodes WHERE id = ?1")?
        .execute([node])?;
    tx.prepare_cached("DELETE FROM tags WHERE node = ?1")?
        .execute([node])?;
    report.pending_bodies.remove(node);
    let rows: Vec<(i64, Op)> = tx
        .prepare_cached(
            "SELECT seq, op_id, hlc, node, payload FROM ops WHERE node = ?1 ORDER BY hlc, op_id",
        )?
        .query_map([node], |r| Ok((r.get(0)?, LogRow::read(r, 1)?)))?
        .map(|row| {
            let (seq, row) = row?;
            Ok((seq, row.into_op()?))
        })
        .collect::<Result<_, StoreError>>()?;
    let mut statements = OpStatements::new(tx);
    let mut group = NodeGroup::load(tx, node)?;
    for (seq, op) in &rows {
        // In stamp order, a delta's base version was rebuilt before it.
        let text = match &op.action {
            Action::SetBody { body, .. } => Some(body.clone()),
            Action::EditBody { base, from, delta } => {
                group.delta_text(tx, op, base, from, delta)?
            }
            _ => None,
        };
        let key = version_key(&op.hlc, &op.op_id);
        let version = Version {
            key: &key,
            seq: *seq,
            text: text.as_deref(),
        };
        materialize(tx, &mut statements, &mut group.row, op, version, report)?;
        if let Some(text) = text {
            group.texts.insert(op.op_id.clone(), text);
        }
    }
    // The node's version is its newest op in the log, as after any apply.
    if let Some(newest) = rows.iter().map(|(seq, _)| *seq).max() {
        group.row.last_seq = newest;
    }
    if !rows.is_empty() {
        group.row.store(tx)?;
    }
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
    use std::fmt::Write as _;
    let mut key = String::with_capacity(32 + op_id.len());
    // Writing to a String cannot fail.
    let _ = write!(key, "{hlc} {op_id}");
    key
}

/// The stamp's text in a [`version_key`] of `op_id`: its first half.
fn key_stamp<'k>(key: &'k str, op_id: &str) -> &'k str {
    &key[..key.len() - op_id.len() - 1]
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
    row: &mut NodeRow,
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
    let heads = head_stamps(&row.body_heads)?;
    let mut base_sorted = base.to_vec();
    base_sorted.sort();
    base_sorted.dedup();
    let newest = match row.body_hlc.as_str() {
        "" => None,
        key => Some(parse_key(key)?.0),
    };
    // Fast path (every local save): newer than every version and edited
    // from exactly the heads, so it is the only head and its text the body.
    if newest.is_none_or(|n| op.hlc > n) && base_sorted == heads {
        let key = version_key(&op.hlc, &op.op_id);
        row.body_heads =
            serde_json::to_string(&[&key]).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        row.body = body.to_owned();
        row.body_hlc = key;
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
        "SELECT op_id, hlc, node, payload FROM ops
         WHERE hlc = ?1 AND +node = ?2 AND +action = 'set_body'",
    )?;
    let rows: Vec<LogRow> = stmt
        .query_map(params![hlc.to_string(), node], |r| LogRow::read(r, 0))?
        .collect::<Result<_, _>>()?;
    let mut out: Vec<StoredVersion> = rows
        .into_iter()
        .map(|row| stored_version(tx, row.into_op()?))
        .collect::<Result<_, _>>()?;
    out.sort_by(|a, b| a.op_id.cmp(&b.op_id));
    Ok(out)
}

fn stored_version(tx: &Transaction<'_>, op: Op) -> Result<StoredVersion, StoreError> {
    match op.action {
        Action::SetBody { body, base } => Ok(StoredVersion {
            hlc: op.hlc,
            op_id: op.op_id,
            base,
            body,
        }),
        Action::EditBody { base, .. } => Ok(StoredVersion {
            body: version_text(tx, &op.node, &op.op_id)?,
            hlc: op.hlc,
            op_id: op.op_id,
            base,
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
    // A block is news to the user when what they last saw lacks it: the
    // text they are saving, for a local write; what this replica showed,
    // for ops from elsewhere. (A block kept and edited on another device
    // coming back over a resolution made here is news, though the merge
    // made no new block.)
    let saved_here = report.local_origin.as_deref().and_then(|origin| {
        let newest = new.iter().rev().find(|n| n.hlc.origin == origin)?;
        loaded.iter().find(|v| v.op_id == newest.op_id)
    });
    let seen = saved_here.map_or(old_body.as_str(), |v| v.body.as_str());
    if merged.text != old_body && heph_core::merge::blocks_not_in(&merged.text, seen) > 0 {
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
                "SELECT op_id, hlc, node, payload FROM ops WHERE node = ?1 AND action = 'set_body'",
            )?;
            let rows: Vec<LogRow> = stmt
                .query_map([node], |r| LogRow::read(r, 0))?
                .collect::<Result<_, _>>()?;
            return rows
                .into_iter()
                .map(|row| stored_version(tx, row.into_op()?))
                .collect();
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

fn action_name(action: &Action) -> &'static str {
    match action {
        Action::Create { .. } => "create",
        Action::Set { .. } => "set",
        // Both body forms are body versions to every query.
        Action::SetBody { .. } | Action::EditBody { .. } => "set_body",
        Action::AddTag { .. } => "add_tag",
        Action::RemoveTag { .. } => "remove_tag",
        Action::Delete => "delete",
        Action::Restore => "restore",
    }
}
