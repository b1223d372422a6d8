//! Local writes: each call records ops for what changed, in one transaction.

use std::collections::BTreeSet;

use heph_core::fields::Value;
use heph_core::op::{check_field_value, MAX_BODY_BYTES, MAX_VALUE_BYTES};
use heph_core::{Action, Field, Hlc, Kind, NewNode, Node, NodePatch, Op, Status};
use rusqlite::{Transaction, TransactionBehavior};
use time::Date;

use crate::materialize::{
    apply_batch, apply_op, body_heads, delta_depth, version_text, ApplyReport,
};

use crate::{query, Replica, Result, StoreError};

/// One edit of a [`Replica::batch`].
#[derive(Debug, Clone)]
pub enum Edit {
    /// Create a node.
    Create(NewNode),
    /// Change a node.
    Update(String, NodePatch),
    /// Delete a node.
    Delete(String),
    /// Bring a deleted node back, then change it.
    Restore(String, NodePatch),
}

/// What [`Replica::update_from`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// The names of the changed fields.
    pub changed: Vec<&'static str>,
    /// The body was merged with versions the editor had not seen.
    pub merged: bool,
    /// That merge left a conflict block in the body.
    pub conflict: bool,
    /// The node had been deleted (elsewhere): the save brought it back.
    pub restored: bool,
}

/// Records ops inside one write transaction.
pub(crate) struct Writer<'a, 'c> {
    pub(crate) tx: &'a Transaction<'c>,
    clock: &'a mut heph_core::Clock,
    pub(crate) report: ApplyReport,
    /// Build the whole full-text index when the transaction ends (a bulk
    /// load into an empty replica deferred it).
    rebuild_index: bool,
    /// Secondary indexes dropped for a bulk load, created again when the
    /// transaction ends.
    recreate_indexes: Vec<String>,
}

impl Writer<'_, '_> {
    /// Stamps and applies one local op.
    fn record(&mut self, node: &str, action: Action) -> Result<()> {
        let op = Op {
            op_id: heph_core::id::new_op_id(),
            hlc: self.clock.tick()?,
            node: node.to_owned(),
            action,
        };
        op.validate().map_err(|e| StoreError::Invalid(e.reason))?;
        // An op the hub would refuse is refused here, before it is recorded.
        op.check_json_size()
            .map_err(|e| StoreError::Invalid(e.reason))?;
        apply_op(self.tx, &op, false, &mut self.report)?;
        Ok(())
    }

    fn set(&mut self, node: &str, field: Field, value: Option<String>) -> Result<()> {
        self.record(node, Action::Set { field, value })
    }
}

impl Replica {
    /// Runs `f` in one immediate write transaction with a clock that is
    /// already past every op in the file (other processes write it too).
    pub(crate) fn write<T>(
        &mut self,
        f: impl FnOnce(&mut Writer<'_, '_>) -> Result<T>,
    ) -> Result<(T, ApplyReport)> {
        self.check_writable()?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Our own unacknowledged ops stamped in the future (the clock was
        // ahead and is fixed now) get fresh stamps first, so the clock does
        // not go on from them.
        let restamped = crate::restamp::restamp_future(&tx, &mut self.clock)?;
        let last: Option<String> = tx.query_row("SELECT max(hlc) FROM ops", [], |r| r.get(0))?;
        if let Some(last) = last.and_then(|h| h.parse::<Hlc>().ok()) {
            self.clock.witness(&last);
        }
        let mut writer = Writer {
            tx: &tx,
            clock: &mut self.clock,
            report: ApplyReport::default(),
            rebuild_index: false,
            recreate_indexes: Vec::new(),
        };
        for node in &restamped.nodes {
            // Rebuilt, and taken out of the index, by the re-stamp.
            writer.report.touch(node);
            writer.report.mark_unindexed(node);
        }
        writer.report.restamped = restamped.ops;
        writer.report.local_origin = Some(writer.clock.last().origin.clone());
        let value = f(&mut writer)?;
        let rebuild_index = writer.rebuild_index;
        let recreate = std::mem::take(&mut writer.recreate_indexes);
        let report = crate::materialize::settle(&tx, writer.report)?;
        crate::materialize::reindex(&tx, &report)?;
        if rebuild_index {
            crate::bulk_index::rebuild(&tx)?;
        }
        crate::bulk_index::create_indexes(&tx, &recreate)?;
        tx.commit()?;
        Ok((value, report))
    }

    /// Gives fresh stamps to this device's ops the hub never acknowledged
    /// that are stamped beyond the drift limit of the (fixed) clock, and
    /// rebuilds the nodes they touch (see the `restamp` module). Every write
    /// does this first; a sync pass calls it before pushing. Returns how
    /// many ops were re-stamped.
    pub fn restamp_future_ops(&mut self) -> Result<usize> {
        Ok(self.write(|_| Ok(()))?.1.restamped)
    }

    /// Creates a node and returns it. Not a journal: a day's journal has
    /// the id of its date ([`Replica::journal`]), so that devices that
    /// write the same day offline write one page.
    pub fn create(&mut self, new: NewNode) -> Result<Node> {
        if new.kind == Some(Kind::Journal) {
            return Err(StoreError::Invalid(
                "a journal is the page of a day: open it by its date (heph journal DATE, :Heph journal DATE)".into(),
            ));
        }
        let id = heph_core::id::new_node_id();
        self.create_with_id(&id, new)
    }

    fn create_with_id(&mut self, id: &str, new: NewNode) -> Result<Node> {
        self.write(|w| create_in(w, id, &new))?;
        self.get(id)?
            .ok_or_else(|| StoreError::UnknownNode(id.to_owned()))
    }

    /// Applies a patch, recording ops only for fields that really change.
    /// Returns the names of the changed fields.
    pub fn update(&mut self, id: &str, patch: &NodePatch) -> Result<Vec<&'static str>> {
        Ok(self.write(|w| update_in(w, id, patch, None))?.0)
    }

    /// Like [`update`](Self::update), with the body recorded as an edit of
    /// the body versions `body_base` (the heads the editor saw), so a body
    /// changed elsewhere meanwhile is merged with this edit, not replaced.
    /// Base stamps this replica does not know are refused.
    ///
    /// A node deleted meanwhile (another process, a sync) is brought back
    /// by an edit, as an edit made after a delete brings it back when
    /// devices sync: what the user typed lands. A save that changes
    /// nothing leaves a deleted node deleted ([`StoreError::Deleted`]).
    pub fn update_from(&mut self, id: &str, patch: &NodePatch, body_base: &[Hlc]) -> Result<Saved> {
        let ((changed, restored), report) = self.write(|w| {
            let node =
                query::get_node(w.tx, id)?.ok_or_else(|| StoreError::UnknownNode(id.to_owned()))?;
            let restored = node.deleted && !patch.is_empty();
            if restored {
                w.record(id, Action::Restore)?;
            }
            Ok((update_in(w, id, patch, Some(body_base))?, restored))
        })?;
        Ok(Saved {
            changed,
            merged: report.merged > 0,
            conflict: report.conflict_nodes.iter().any(|n| n == id),
            restored,
        })
    }

    /// Several edits in one transaction: all land or none does. Returns the
    /// ids of the nodes, in the order of `edits` (new ids for creations).
    pub fn batch(&mut self, edits: Vec<Edit>) -> Result<Vec<String>> {
        Ok(self
            .write(|w| {
                let mut ids = Vec::with_capacity(edits.len());
                for edit in edits {
                    match edit {
                        Edit::Create(new) => {
                            let id = heph_core::id::new_node_id();
                            create_in(w, &id, &new)?;
                            ids.push(id);
                        }
                        Edit::Update(id, patch) => {
                            update_in(w, &id, &patch, None)?;
                            ids.push(id);
                        }
                        Edit::Restore(id, patch) => {
                            if query::get_node(w.tx, &id)?.is_none() {
                                return Err(StoreError::UnknownNode(id));
                            }
                            w.record(&id, Action::Restore)?;
                            update_in(w, &id, &patch, None)?;
                            ids.push(id);
                        }
                        Edit::Delete(id) => {
                            if query::get_node(w.tx, &id)?.is_none() {
                                return Err(StoreError::UnknownNode(id));
                            }
                            w.record(&id, Action::Delete)?;
                            ids.push(id);
                        }
                    }
                }
                Ok(ids)
            })?
            .0)
    }

    /// Marks a node deleted (restorable).
    pub fn delete(&mut self, id: &str) -> Result<()> {
        self.require(id)?;
        self.write(|w| w.record(id, Action::Delete))?;
        Ok(())
    }

    /// Brings a deleted node back.
    pub fn restore(&mut self, id: &str) -> Result<()> {
        self.require(id)?;
        self.write(|w| w.record(id, Action::Restore))?;
        Ok(())
    }

    /// The journal node of `date`, created (or restored) when missing. Its
    /// id is derived from the date, so devices agree on it offline.
    pub fn journal(&mut self, date: Date) -> Result<Node> {
        let id = heph_core::id::journal_id(date);
        match self.get(&id)? {
            // A deleted one stays deleted (its `deleted` says so): brought
            // back unasked, the restore would undo, once synced, a delete
            // made on purpose on another device.
            Some(node) => Ok(node),
            None => self.create_with_id(
                &id,
                NewNode {
                    kind: Some(Kind::Journal),
                    title: heph_core::model::format_date(date),
                    ..NewNode::default()
                },
            ),
        }
    }

    /// Applies ops from outside (import, tests): validated, clock-checked,
    /// all or nothing.
    pub fn apply_ops(&mut self, ops: &[Op]) -> Result<ApplyReport> {
        self.apply_external(ops, false, |_| Ok(()))
    }

    /// Applies a stream of ops from outside (`heph import-ops`) in one
    /// transaction, a chunk at a time, so memory follows the chunk and not
    /// the stream. Each op is validated and clock-checked; any error, the
    /// stream's own included, leaves the replica as it was.
    pub fn import_ops<I>(&mut self, ops: I) -> Result<ApplyReport>
    where
        I: IntoIterator<Item = Result<Op>>,
    {
        let ops = ops.into_iter().map(|op| op.and_then(CheckedOp::new));
        self.import_checked_ops(ops, |_, _| ())
    }

    /// [`Replica::import_ops`] of ops checked already, on another thread
    /// (see [`CheckedOp`]); each is still clock-checked here. Each chunk
    /// of ops and their log texts, once applied, goes to `spent`, so the
    /// thread that made them can free them: freeing another thread's
    /// allocations contends for its allocator's lock (glibc's arenas),
    /// which doubled the import's context switches.
    pub fn import_checked_ops<I>(
        &mut self,
        ops: I,
        mut spent: impl FnMut(Vec<Op>, Vec<String>),
    ) -> Result<ApplyReport>
    where
        I: IntoIterator<Item = Result<CheckedOp>>,
    {
        const CHUNK: usize = 4096;
        const IMPORT_CACHE_KIB: i64 = -32 * 1024;
        let mut newest: Option<Hlc> = None;
        // A larger page cache while the history streams in: fewer pages
        // spilled and read back (restored after).
        let cache: i64 = self.conn.query_row("PRAGMA cache_size", [], |r| r.get(0))?;
        self.conn
            .pragma_update(None, "cache_size", IMPORT_CACHE_KIB)?;
        // Into a new replica file, a rollback journal (see `bulk_journal`).
        let rollback = self.path.is_some()
            && !self.is_read_only()
            && crate::bulk_index::is_empty(&self.conn)?
            && crate::bulk_journal::switch_to_rollback(&self.conn)?;
        // The pages the ops made go to the disk while the indexes are built.
        let mut writeback = None;
        let file = self.path.clone().filter(|_| rollback);
        let imported = self.write(|w| {
            // Into an empty replica, the indexes are built once at the end.
            w.rebuild_index = crate::bulk_index::defer_if_empty(w.tx)?;
            let mut log_indexes = Vec::new();
            if w.rebuild_index {
                use crate::bulk_index::{drop_indexes, LOG_INDEXES, SECONDARY_INDEXES};
                // Deferred here. When it is not, an initial pull may have
                // deferred it already: the mark is read when first needed.
                w.report.set_index_deferred(true);
                w.recreate_indexes = drop_indexes(w.tx, SECONDARY_INDEXES)?;
                log_indexes = drop_indexes(w.tx, LOG_INDEXES)?;
            }
            let mut ops = ops.into_iter().peekable();
            while ops.peek().is_some() {
                let mut chunk = Vec::with_capacity(CHUNK);
                let mut payloads = Vec::with_capacity(CHUNK);
                for op in ops.by_ref().take(CHUNK) {
                    let CheckedOp { op, payload } = op?;
                    // Named by its id: the stream's reader knows the lines,
                    // the clock is here.
                    w.clock.check_drift(&op.hlc).map_err(|e| {
                        StoreError::Invalid(format!(
                            "op {}: {e}",
                            op.op_id.chars().take(64).collect::<String>()
                        ))
                    })?;
                    if newest.as_ref().is_none_or(|n| op.hlc > *n) {
                        newest = Some(op.hlc.clone());
                    }
                    chunk.push(op);
                    payloads.push(payload);
                }
                let refused = apply_batch(w.tx, &chunk, Some(&payloads), false, &mut w.report)?;
                if let Some((_, reason)) = refused.first() {
                    return Err(StoreError::Invalid(reason.clone()));
                }
                spent(chunk, payloads);
            }
            if let Some(path) = &file {
                writeback = crate::bulk_journal::start_writeback(path);
            }
            // Before the merges of `settle`, which read them.
            crate::bulk_index::create_indexes(w.tx, &log_indexes)?;
            Ok(())
        });
        if let Some(writeback) = writeback {
            let _ = writeback.join();
        }
        if rollback {
            crate::bulk_journal::back_to_wal(&self.conn)?;
        }
        self.conn.pragma_update(None, "cache_size", cache)?;
        let ((), report) = imported?;
        if let Some(newest) = newest {
            // Checked above; the clock may only have moved on since.
            let _ = self.clock.observe(&newest);
        }
        Ok(report)
    }

    pub(crate) fn apply_external(
        &mut self,
        ops: &[Op],
        pushed: bool,
        finish: impl FnOnce(&Transaction<'_>) -> Result<()>,
    ) -> Result<ApplyReport> {
        for op in ops {
            check_external(op, &self.clock)?;
        }
        let ((), report) = self.write(|w| {
            if let Some((_, reason)) = apply_batch(w.tx, ops, None, pushed, &mut w.report)?.first()
            {
                return Err(StoreError::Invalid(reason.clone()));
            }
            finish(w.tx)
        })?;
        for op in ops {
            // Checked above; the clock may only have moved on since.
            let _ = self.clock.observe(&op.hlc);
        }
        Ok(report)
    }

    fn require(&self, id: &str) -> Result<()> {
        if self.get(id)?.is_none() {
            return Err(StoreError::UnknownNode(id.to_owned()));
        }
        Ok(())
    }
}

/// Refuses an op from outside that is invalid, too large, or stamped
/// beyond the drift limit of `clock`.
fn check_external(op: &Op, clock: &heph_core::Clock) -> Result<()> {
    check_op(op)?;
    clock.check_drift(&op.hlc)?;
    Ok(())
}

/// Refuses an op that is invalid or larger than a hub accepts.
fn check_op(op: &Op) -> Result<()> {
    op.validate()
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
    op.check_json_size()
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
    Ok(())
}

/// An op from outside, checked (valid, no larger than a hub accepts) and
/// with the text the log keeps of its action made: `heph import-ops` makes
/// them on its reading thread, so the apply, on the other core, does
/// neither. Only the clock check, which needs the replica's clock, is left
/// to [`Replica::import_checked_ops`].
#[derive(Debug, Clone)]
pub struct CheckedOp {
    op: Op,
    payload: String,
}

impl CheckedOp {
    /// Checks `op`; an invalid or too large op is refused with
    /// [`StoreError::Invalid`].
    pub fn new(op: Op) -> Result<Self> {
        check_op(&op)?;
        let payload = crate::materialize::action_json(&op)?;
        Ok(Self { op, payload })
    }
}

/// Records the ops of a new node.
fn create_in(w: &mut Writer<'_, '_>, id: &str, new: &NewNode) -> Result<()> {
    let kind = new.kind.unwrap_or(Kind::Task);
    check_body(&new.body)?;
    let status = match (kind, new.status) {
        (Kind::Task, status) => Some(status.unwrap_or(Status::Todo)),
        (_, None) => None,
        (_, Some(_)) => {
            return Err(StoreError::Invalid(format!(
                "status: a new {kind} has none; only tasks have a status"
            )))
        }
    };
    let fields = NodePatch {
        title: Some(new.title.clone()),
        status: Some(status),
        due: Some(new.due),
        project: Some(new.project.clone()),
        tags: Some(new.tags.clone()),
        ..NodePatch::default()
    };
    // Checked before anything is recorded: a bad value writes nothing.
    let values = canonical(&fields)?;
    w.record(id, Action::Create { kind })?;
    set_fields(w, id, values, None)?;
    if !new.body.is_empty() {
        w.record(
            id,
            Action::SetBody {
                body: new.body.clone(),
                base: Vec::new(),
            },
        )?;
    }
    Ok(())
}

/// Records ops for the fields of `patch` that differ from the node.
fn update_in(
    w: &mut Writer<'_, '_>,
    id: &str,
    patch: &NodePatch,
    body_base: Option<&[Hlc]>,
) -> Result<Vec<&'static str>> {
    let node = query::get_node(w.tx, id)?.ok_or_else(|| StoreError::UnknownNode(id.to_owned()))?;
    if node.deleted {
        return Err(StoreError::Deleted(id.to_owned()));
    }
    check_kind_change(&node, patch.kind)?;
    // Tags typed over a set shown earlier change that set, not the one
    // the node has now (a tag added elsewhere meanwhile stays).
    let rebased;
    let patch = match patch.tags_shown {
        Some(_) => {
            rebased = NodePatch {
                tags: patch.tags_over(&node.tags),
                tags_shown: None,
                ..patch.clone()
            };
            &rebased
        }
        None => patch,
    };
    let mut values = canonical(patch)?;
    values.extend(implied_status(&node, patch)?.map(Value::Status));
    let mut changed = set_fields(w, id, values, Some(&node))?;
    if let Some(body) = &patch.body {
        check_body(body)?;
        if *body != node.body {
            let base = match body_base {
                Some(base) => known_body_base(w.tx, id, base)?,
                None => body_heads(w.tx, id)?,
            };
            let action = body_action(w.tx, id, body, base)?;
            w.record(id, action)?;
            changed.push("body");
        }
    }
    Ok(changed)
}

/// A journal is the page of its day (its id is the date's): a node does
/// not become one, and a journal stays one, or the day's page would be a
/// task that `heph journal` brings back, and a journal made from a task a
/// page no date opens.
fn check_kind_change(node: &Node, kind: Option<Kind>) -> Result<()> {
    let Some(kind) = kind.filter(|k| *k != node.kind) else {
        return Ok(());
    };
    if kind == Kind::Journal {
        return Err(StoreError::Invalid(
            "kind: a node cannot become a journal; a journal is the page of a day (heph journal DATE, :Heph journal DATE)".into(),
        ));
    }
    if node.kind == Kind::Journal {
        return Err(StoreError::Invalid(format!(
            "kind: a journal stays a journal (the page of its day); copy its text into a new {} instead",
            kind.as_str()
        )));
    }
    Ok(())
}

/// Checks that `patch` gives a status only to a task (every way of editing
/// says so the same: the CLI, a header, `node_set`), and returns the status
/// its kind change implies, if any: a node that becomes a task starts as
/// `todo`, as its header shows it; a task that becomes a note has none.
fn implied_status(node: &Node, patch: &NodePatch) -> Result<Option<Option<Status>>> {
    let kind = patch.kind.unwrap_or(node.kind);
    if kind != Kind::Task && matches!(patch.status, Some(Some(_))) {
        return Err(StoreError::Invalid(format!(
            "status: \"{}\" is a {kind}; only tasks have a status",
            node.title
        )));
    }
    if patch.status.is_some() || kind == node.kind {
        return Ok(None);
    }
    Ok(if kind == Kind::Task && node.status.is_none() {
        Some(Some(Status::Todo))
    } else if node.kind == Kind::Task && node.status.is_some() {
        // A task that becomes a note leaves its status behind: kept, it
        // would show nowhere but `--json`, and turn up again as a checkbox.
        Some(None)
    } else {
        None
    })
}

/// The fields a patch sets, checked and in canonical form.
fn canonical(patch: &NodePatch) -> Result<Vec<Value>> {
    Value::from_patch(patch)
        .into_iter()
        .map(|value| {
            let name = value.name();
            value
                .canonical()
                .map_err(|e| StoreError::Invalid(format!("{name}: {e}")))
        })
        .collect()
}

/// Records the ops that take each field of `values` from its value in
/// `current` to the new one (a new node has no current values: its unset
/// fields get no op); the names of the fields that change. Scalars are one
/// `set` op each, the tag set an op per tag added or removed.
fn set_fields(
    w: &mut Writer<'_, '_>,
    id: &str,
    values: Vec<Value>,
    current: Option<&Node>,
) -> Result<Vec<&'static str>> {
    let mut changed = Vec::new();
    for value in values {
        let def = value.def();
        let old = current.map(|node| (def.get)(node));
        if old.as_ref() == Some(&value) || (old.is_none() && value.is_unset()) {
            continue;
        }
        match (def.scalar, value) {
            (Some(field), value) => {
                let text = value.op_value();
                if let Some(text) = &text {
                    check_scalar(field, text)?;
                }
                w.set(id, field, text)?;
            }
            (None, Value::Tags(wanted)) => {
                let had = match old {
                    Some(Value::Tags(had)) => had,
                    _ => BTreeSet::new(),
                };
                for tag in wanted.difference(&had) {
                    w.record(id, Action::AddTag { tag: tag.clone() })?;
                }
                for tag in had.difference(&wanted) {
                    w.record(id, Action::RemoveTag { tag: tag.clone() })?;
                }
            }
            (None, other) => {
                return Err(StoreError::Invalid(format!(
                    "{} is neither a scalar nor the tag set",
                    other.name()
                )))
            }
        }
        changed.push(def.name);
    }
    Ok(changed)
}

/// Most deltas between a body version and a full text: a longer chain is
/// cut by writing the whole body, so rebuilding any version stays cheap.
const MAX_DELTA_CHAIN: u32 = 32;

/// The op recording `body` as an edit of the versions `base`: a delta
/// against the first base version when that is smaller than the text.
fn body_action(tx: &Transaction<'_>, id: &str, body: &str, base: Vec<Hlc>) -> Result<Action> {
    let full = |base| {
        Ok(Action::SetBody {
            body: body.to_owned(),
            base,
        })
    };
    let Some(first) = base.first() else {
        return full(base);
    };
    // The version the delta applies to: the smallest op id at the first
    // base stamp (one stamp names every version made with it).
    let from: Option<String> = tx
        .prepare_cached(
            "SELECT min(op_id) FROM ops WHERE hlc = ?1 AND +node = ?2 AND +action = 'set_body'",
        )?
        .query_row(rusqlite::params![first.to_string(), id], |r| r.get(0))?;
    let Some(from) = from else {
        return full(base);
    };
    if delta_depth(tx, &from, MAX_DELTA_CHAIN)? >= MAX_DELTA_CHAIN {
        return full(base);
    }
    let from_text = version_text(tx, id, &from)?;
    let delta = heph_core::body_delta::BodyDelta::between(&from_text, body);
    let delta_len = serde_json::to_string(&delta).map_or(usize::MAX, |j| j.len());
    if delta_len + from.len() >= body.len() {
        return full(base);
    }
    Ok(Action::EditBody { base, from, delta })
}

/// Checks that every stamp of an editor's body base is a body version of
/// this node: a base from another node or a garbled buffer is refused, not
/// recorded as if the editor had seen nothing.
fn known_body_base(tx: &Transaction<'_>, id: &str, base: &[Hlc]) -> Result<Vec<Hlc>> {
    let mut stmt = tx.prepare_cached(
        "SELECT 1 FROM ops WHERE node = ?1 AND action = 'set_body' AND hlc = ?2 LIMIT 1",
    )?;
    for stamp in base {
        if !stmt.exists(rusqlite::params![id, stamp.to_string()])? {
            return Err(StoreError::UnknownBase(format!(
                "the edit is based on {stamp}, which is no body version of {id} that this \
                 replica has (one of another node, or one it never received); reload it \
                 (the CLI: --base takes the body_heads of `heph show {id} --json`)"
            )));
        }
    }
    let mut base = base.to_vec();
    base.sort();
    base.dedup();
    Ok(base)
}

fn check_scalar(field: Field, value: &str) -> Result<()> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(StoreError::Invalid(format!(
            "{field} is longer than {MAX_VALUE_BYTES} bytes"
        )));
    }
    check_field_value(field, value).map_err(|e| StoreError::Invalid(e.0))
}

fn check_body(body: &str) -> Result<()> {
    if body.len() > MAX_BODY_BYTES {
        return Err(StoreError::Invalid(format!(
            "the body is larger than {} KiB; split it into several notes",
            MAX_BODY_BYTES / 1024
        )));
    }
    Ok(())
}
