//! What sync needs from the replica: unacknowledged ops, acknowledgments,
//! the pull cursor (a hub sequence number, never a clock) and status notes.

use heph_core::hlc::human_ms;
use heph_core::{HlcError, Op};
use rusqlite::{params, OptionalExtension};

use crate::materialize::{apply_batch, apply_op, ApplyReport, LogRow};
use crate::{Replica, Result, StoreError};

/// SQLite's "now" as RFC 3339 UTC text.
const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

/// One op as pulled from a hub: its hub sequence and its JSON text, not yet
/// read (reading it is the replica's job, so a bad op can be set aside).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawOp {
    /// Hub sequence number.
    pub seq: i64,
    /// The op's JSON text, verbatim.
    pub raw: String,
}

/// What applying a pulled page (or retrying the quarantine) did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PullOutcome {
    /// What the applied ops did.
    pub applied: ApplyReport,
    /// Ops set aside in the quarantine by this call.
    pub quarantined: usize,
    /// Quarantined ops that could be applied this time.
    pub released: usize,
}

/// A count of ops set aside and the newest reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetAside {
    /// How many.
    pub count: u64,
    /// Why the newest one was set aside.
    pub newest_reason: Option<String>,
    /// When (RFC 3339, UTC).
    pub newest_at: Option<String>,
}

/// One quarantined op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantinedOp {
    /// The hub it came from.
    pub hub: String,
    /// Its hub sequence number.
    pub seq: i64,
    /// Its op id, when it could be read.
    pub op_id: Option<String>,
    /// The JSON text as received.
    pub raw: String,
    /// Why it is set aside.
    pub reason: String,
    /// First and last time it was tried (RFC 3339, UTC).
    pub first_seen: String,
    /// Last time it was tried.
    pub last_seen: String,
}

/// What a push reply told of a hub, for [`Replica::record_push_reply`].
#[derive(Debug, Clone, Copy)]
pub struct PushProgress<'a> {
    /// The hub.
    pub hub: &'a str,
    /// Moves the pull cursor up to this hub sequence. The caller moves it
    /// only over sequences it knows are all ops of this replica (the push
    /// replies cover every sequence from the cursor up to it): pulling those
    /// back would bring nothing new. The cursor never moves back.
    pub cursor: Option<i64>,
    /// The highest hub sequence the reply gave one of the ops, with that
    /// op's id (see [`Replica::hub_mark`]).
    pub mark: Option<(i64, &'a str)>,
}

impl Replica {
    /// Ops the hub has not acknowledged, oldest first, about `max_bytes` of
    /// JSON in all (always at least one when any is pending).
    pub fn unpushed_ops(&self, max_bytes: usize) -> Result<Vec<Op>> {
        Ok(self.unpushed_ops_after(i64::MIN, max_bytes)?.0)
    }

    /// Like [`Replica::unpushed_ops`], but only ops after local sequence
    /// `after`, with the local sequence of the last one: a reader that
    /// prepares the next batch while the previous one is on its way passes
    /// that back as the next `after`.
    pub fn unpushed_ops_after(&self, after: i64, max_bytes: usize) -> Result<(Vec<Op>, i64)> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT op_id, hlc, node, payload, seq FROM ops
             WHERE pushed = 0 AND refused IS NULL AND seq > ?1 ORDER BY seq",
        )?;
        let mut rows = stmt.query([after])?;
        let mut ops = Vec::new();
        let mut size = 0;
        let mut last = after;
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(4)?;
            let row = LogRow::read(row, 0)?;
            // The op as sent: its action plus id, stamp and node.
            let len = row.json_len_estimate();
            if !ops.is_empty() && size + len > max_bytes {
                break;
            }
            size += len;
            last = seq;
            ops.push(row.into_op()?);
        }
        Ok((ops, last))
    }

    /// Records that the hub stored these ops.
    pub fn mark_pushed(&mut self, op_ids: &[String]) -> Result<()> {
        self.record_push_reply(None, op_ids)
    }

    /// Records that the hub stored these ops and what its reply told of the
    /// hub (see [`PushProgress`]), in one transaction.
    pub fn record_push_reply(
        &mut self,
        progress: Option<PushProgress<'_>>,
        op_ids: &[String],
    ) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut stmt = tx.prepare_cached("UPDATE ops SET pushed = 1 WHERE op_id = ?1")?;
            for id in op_ids {
                stmt.execute([id])?;
            }
        }
        if let Some(progress) = progress {
            if let Some(seq) = progress.cursor {
                advance_cursor(&tx, progress.hub, seq)?;
            }
            if let Some((seq, op_id)) = progress.mark {
                raise_mark(&tx, progress.hub, seq, op_id)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Sets aside local ops the hub refused (`(op_id, code, reason)`): they
    /// stay in the replica but are no longer pushed, so they never block the
    /// ops behind them. Codes: `clock_ahead`, `too_large`, `invalid`.
    pub fn mark_refused(&mut self, refused: &[(String, String, String)]) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut stmt = tx.prepare_cached(&format!(
                "UPDATE ops SET refused = ?2, refused_code = ?3, refused_at = {NOW}
                 WHERE op_id = ?1 AND pushed = 0"
            ))?;
            for (id, code, reason) in refused {
                stmt.execute(params![id, reason, code])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Puts refused ops with this code back in the push queue (a clock that
    /// was ahead may have been fixed, or the hub's time may have come).
    pub fn requeue_refused(&mut self, code: &str) -> Result<usize> {
        Ok(self.conn.execute(
            "UPDATE ops SET refused = NULL, refused_code = NULL, refused_at = NULL
             WHERE pushed = 0 AND refused_code = ?1",
            [code],
        )?)
    }

    /// Puts back in the push queue every refused op set aside at least
    /// `age` ago, whatever the reason. Returns their ids.
    pub fn requeue_refused_before(&mut self, age: std::time::Duration) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare(
            "UPDATE ops SET refused = NULL, refused_code = NULL, refused_at = NULL
             WHERE pushed = 0 AND refused IS NOT NULL
               AND refused_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?1)
             RETURNING op_id",
        )?;
        let ids = stmt
            .query_map([format!("-{} seconds", age.as_secs())], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(ids)
    }

    /// The hub this device last synced its own ops with (`heph sync --hub`
    /// names no hub for next time; `heph status` still knows it).
    pub fn last_hub(&self) -> Result<Option<String>> {
        pushed_hub(&self.conn)
    }

    /// Local ops the hub refused, and the newest reason.
    pub fn refused_summary(&self) -> Result<SetAside> {
        let count: i64 = self.conn.query_row(
            "SELECT count(*) FROM ops WHERE refused IS NOT NULL AND pushed = 0",
            [],
            |r| r.get(0),
        )?;
        let newest = self
            .conn
            .query_row(
                "SELECT refused, refused_at FROM ops WHERE refused IS NOT NULL AND pushed = 0
                 ORDER BY refused_at DESC, seq DESC LIMIT 1",
                [],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?)),
            )
            .optional()?;
        Ok(SetAside {
            count: count as u64,
            newest_reason: newest.as_ref().map(|n| n.0.clone()),
            newest_at: newest.and_then(|n| n.1),
        })
    }

    /// Reads, validates and drift-checks one pulled op. `hub_now_ms` (the
    /// hub's clock, when it said) tells whose clock is off.
    fn screen(&self, raw: &str, hub_now_ms: Option<u64>) -> std::result::Result<Op, String> {
        let op = Op::parse_json(raw).map_err(|e| format!("unreadable op: {e}"))?;
        op.validate()
            .map_err(|e| format!("invalid op {}: {}", e.op_id, e.reason))?;
        op.check_json_size()
            .map_err(|e| format!("invalid op {}: {}", e.op_id, e.reason))?;
        let now = self.clock.physical_ms();
        match self.clock.check_drift_at(&op.hlc, now) {
            Ok(()) => Ok(op),
            Err(HlcError::TooFarAhead { ahead_ms, limit_ms }) => {
                let hub_agrees = hub_now_ms.is_some_and(|h| op.hlc.millis <= h + limit_ms);
                Err(if hub_agrees {
                    let behind = hub_now_ms.unwrap_or(now).saturating_sub(now);
                    format!(
                        "op {} is stamped {} ahead of this device's clock, but not ahead of \
                         the hub's: this device's clock seems to be behind (by about {}); \
                         the op is kept aside and applies once this clock catches up",
                        op.op_id,
                        human_ms(ahead_ms),
                        human_ms(behind)
                    )
                } else {
                    format!(
                        "op {} is stamped {} in the future (limit {}): the device that \
                         made it has a clock that runs ahead, or this device's clock is \
                         behind; the op is kept aside and applies once its time comes",
                        op.op_id,
                        human_ms(ahead_ms),
                        human_ms(limit_ms)
                    )
                })
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// Applies a page of ops pulled from `hub` and moves its cursor to
    /// `new_cursor`, in one transaction: a crash leaves either both or
    /// neither. An op that cannot be read, is invalid, or is stamped beyond
    /// the drift limit is quarantined (raw text, hub sequence, reason) in
    /// that same transaction instead of failing the page.
    pub fn apply_pulled(
        &mut self,
        hub: &str,
        ops: &[RawOp],
        new_cursor: i64,
        hub_now_ms: Option<u64>,
    ) -> Result<PullOutcome> {
        // The ops that read well, beside the raw text each came from.
        let mut good = Vec::with_capacity(ops.len());
        let mut parsed: Vec<Op> = Vec::with_capacity(ops.len());
        let mut bad = Vec::new();
        for op in ops {
            match self.screen(&op.raw, hub_now_ms) {
                Ok(read) => {
                    good.push(op);
                    parsed.push(read);
                }
                Err(reason) => bad.push((op, reason)),
            }
        }
        let (quarantined, applied) = self.write(|w| {
            // A body delta that does not fit its base version is set aside.
            for (i, reason) in apply_batch(w.tx, &parsed, None, true, &mut w.report)? {
                bad.push((good[i], reason));
            }
            {
                let mut put = w.tx.prepare_cached(&format!(
                    "INSERT INTO quarantine (hub, seq, op_id, raw, reason, first_seen, last_seen)
                     VALUES (?1, ?2, ?3, ?4, ?5, {NOW}, {NOW})
                     ON CONFLICT (hub, seq) DO UPDATE SET
                         reason = excluded.reason, last_seen = excluded.last_seen"
                ))?;
                for (op, reason) in &bad {
                    put.execute(params![hub, op.seq, op_id_of(&op.raw), op.raw, reason])?;
                }
            }
            advance_cursor(w.tx, hub, new_cursor)?;
            // The last op whose id reads (an unreadable one is quarantined).
            if let Some((seq, op_id)) = ops.iter().rev().find_map(|o| Some((o.seq, o.op_id()?))) {
                raise_mark(w.tx, hub, seq, &op_id)?;
            }
            Ok(bad.len())
        })?;
        for op in &parsed {
            // Drift was checked above; the clock may only have moved on since.
            let _ = self.clock.observe(&op.hlc);
        }
        Ok(PullOutcome {
            applied,
            quarantined,
            released: 0,
        })
    }

    /// Tries every op quarantined from `hub` again: those that can now be
    /// applied (a future stamp whose time came, an op a newer heph can
    /// read) are applied and leave the quarantine, in one transaction; the
    /// others keep their place with a fresh reason and `last_seen`.
    pub fn retry_quarantine(&mut self, hub: &str, hub_now_ms: Option<u64>) -> Result<PullOutcome> {
        let rows: Vec<(i64, String)> = self
            .conn
            .prepare_cached("SELECT seq, raw FROM quarantine WHERE hub = ?1 ORDER BY seq")?
            .query_map([hub], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<std::result::Result<_, _>>()?;
        if rows.is_empty() {
            return Ok(PullOutcome::default());
        }
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for (seq, raw) in &rows {
            match self.screen(raw, hub_now_ms) {
                Ok(op) => good.push((*seq, op)),
                Err(reason) => bad.push((*seq, reason)),
            }
        }
        let (released, applied) = self.write(|w| {
            let mut released = 0;
            let mut drop =
                w.tx.prepare_cached("DELETE FROM quarantine WHERE hub = ?1 AND seq = ?2")?;
            for (seq, op) in &good {
                match apply_op(w.tx, op, true, &mut w.report) {
                    Err(StoreError::Invalid(reason)) => bad.push((*seq, reason)),
                    other => {
                        other?;
                        drop.execute(params![hub, seq])?;
                        released += 1;
                    }
                }
            }
            let mut keep = w.tx.prepare_cached(&format!(
                "UPDATE quarantine SET reason = ?3, last_seen = {NOW} WHERE hub = ?1 AND seq = ?2"
            ))?;
            for (seq, reason) in &bad {
                keep.execute(params![hub, seq, reason])?;
            }
            Ok(released)
        })?;
        for (_, op) in &good {
            let _ = self.clock.observe(&op.hlc);
        }
        Ok(PullOutcome {
            applied,
            quarantined: 0,
            released,
        })
    }

    /// Ops quarantined from `hub` (every hub when `None`), and the newest
    /// reason.
    pub fn quarantine_summary(&self, hub: Option<&str>) -> Result<SetAside> {
        let count: i64 = self.conn.query_row(
            "SELECT count(*) FROM quarantine WHERE ?1 IS NULL OR hub = ?1",
            [hub],
            |r| r.get(0),
        )?;
        let newest = self
            .conn
            .query_row(
                "SELECT reason, last_seen FROM quarantine WHERE ?1 IS NULL OR hub = ?1
                 ORDER BY first_seen DESC, seq DESC LIMIT 1",
                [hub],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
            )
            .optional()?;
        Ok(SetAside {
            count: count as u64,
            newest_reason: newest.as_ref().map(|n| n.0.clone()),
            newest_at: newest.map(|n| n.1),
        })
    }

    /// Every quarantined op, oldest hub sequence first.
    pub fn quarantined(&self) -> Result<Vec<QuarantinedOp>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT hub, seq, op_id, raw, reason, first_seen, last_seen
                 FROM quarantine ORDER BY hub, seq",
            )?
            .query_map([], |r| {
                Ok(QuarantinedOp {
                    hub: r.get(0)?,
                    seq: r.get(1)?,
                    op_id: r.get(2)?,
                    raw: r.get(3)?,
                    reason: r.get(4)?,
                    first_seen: r.get(5)?,
                    last_seen: r.get(6)?,
                })
            })?
            .collect::<std::result::Result<_, _>>()?)
    }

    /// The hub sequence number up to which ops were pulled from `hub`.
    pub fn sync_cursor(&self, hub: &str) -> Result<i64> {
        Ok(self
            .sync_value(hub, "cursor")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// Records the database id the hub at `hub` sent with a pull page.
    /// Another id than the one recorded before means another database at
    /// that URL (a new or wiped hub), which holds none of what the old one
    /// acknowledged: every op is then marked unpushed (refused ones stay
    /// set aside) and the pull cursor goes back to 0, so that the next
    /// pass sends the new hub every op this device has and reads it from
    /// its start. Pushes and pulls are idempotent, so this costs only
    /// traffic. Returns whether it did.
    pub fn note_hub_instance(&mut self, hub: &str, instance: &str) -> Result<bool> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let known = read_sync_value(&tx, hub, "instance")?;
        let replaced = known.as_deref().is_some_and(|k| k != instance);
        if replaced {
            start_over(&tx, hub)?;
        }
        if known.as_deref() != Some(instance) {
            write_sync_value(&tx, hub, "instance", Some(instance))?;
        }
        tx.commit()?;
        Ok(replaced)
    }

    /// Before a pass with `hub`: an op's `pushed` flag says that the hub
    /// this replica last pushed to has it, which says nothing of another
    /// hub. The first pass with another hub than the last one (a move to
    /// a new server, a second hub) marks every op unpushed, the refused
    /// ones too (another hub may take them), so that hub gets every op;
    /// it keeps each once. Returns the hub pushed to before, when it did.
    /// A replica from before this record counts its pushes as made to a
    /// hub it already has a cursor or a note for.
    pub fn begin_push_to(&mut self, hub: &str) -> Result<Option<String>> {
        // The usual pass: the same hub as the last, read without taking
        // the write lock.
        if pushed_hub(&self.conn)?.as_deref() == Some(hub) {
            return Ok(None);
        }
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let last = pushed_hub(&tx)?;
        let before = match last {
            Some(last) if last == hub => return Ok(None),
            Some(last) => Some(last),
            None => {
                let pushed_any = tx
                    .query_row("SELECT 1 FROM ops WHERE pushed = 1 LIMIT 1", [], |_| Ok(()))
                    .optional()?
                    .is_some();
                let known = tx
                    .query_row(
                        "SELECT 1 FROM sync_state WHERE hub = ?1 LIMIT 1",
                        [hub],
                        |_| Ok(()),
                    )
                    .optional()?
                    .is_some();
                (pushed_any && !known).then(|| {
                    tx.query_row(
                        "SELECT hub FROM sync_state WHERE hub <> ?1 ORDER BY hub LIMIT 1",
                        [hub],
                        |r| r.get(0),
                    )
                    .optional()
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| "another hub".to_owned())
                })
            }
        };
        if before.is_some() {
            tx.execute(
                "UPDATE ops SET pushed = 0, refused = NULL, refused_code = NULL, refused_at = NULL
                 WHERE pushed = 1 OR refused IS NOT NULL",
                [],
            )?;
            tx.execute("UPDATE held_ops SET pushed = 0 WHERE pushed = 1", [])?;
        }
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('pushed_hub', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [hub],
        )?;
        tx.commit()?;
        Ok(before)
    }

    /// The highest hub sequence this replica knows `hub` gave an op, and
    /// that op's id: from pulled pages and push replies. A hub holds its
    /// ops in sequence order and never drops one, so while it still has
    /// this op at this sequence it has every op this replica saw it
    /// acknowledge. A hub restored from an older copy of its database does
    /// not (see [`Replica::start_over_with_hub`]).
    pub fn hub_mark(&self, hub: &str) -> Result<Option<(i64, String)>> {
        read_mark(&self.conn, hub)
    }

    /// Starts again with `hub`, whose database no longer holds what it
    /// acknowledged (restored from an older copy): as for another database
    /// ([`Replica::note_hub_instance`]), every op is marked unpushed and the
    /// pull cursor goes back to 0, so the next pass sends every op and
    /// reads the hub from its start.
    pub fn start_over_with_hub(&mut self, hub: &str) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        start_over(&tx, hub)?;
        tx.commit()?;
        Ok(())
    }

    /// Ops not yet acknowledged by the hub.
    pub fn pending_count(&self) -> Result<u64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM ops WHERE pushed = 0 AND refused IS NULL",
            [],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// A note kept per hub (`last_sync`, `last_error`, …).
    pub fn sync_value(&self, hub: &str, key: &str) -> Result<Option<String>> {
        read_sync_value(&self.conn, hub, key)
    }

    /// Sets (or with `None` clears) a per-hub note.
    pub fn set_sync_value(&mut self, hub: &str, key: &str, value: Option<&str>) -> Result<()> {
        if key == "cursor" {
            return Err(StoreError::Invalid(
                "the cursor moves only with pulled ops".into(),
            ));
        }
        write_sync_value(&self.conn, hub, key, value)
    }
}

/// A per-hub note ([`Replica::sync_value`]), read on `conn` (which may be
/// inside a transaction).
fn read_sync_value(conn: &rusqlite::Connection, hub: &str, key: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT value FROM sync_state WHERE hub = ?1 AND key = ?2")?
        .query_row(params![hub, key], |r| r.get(0))
        .optional()?)
}

/// Sets (or with `None` clears) a per-hub note on `conn`, the cursor
/// included: [`Replica::set_sync_value`] keeps callers from the cursor.
fn write_sync_value(
    conn: &rusqlite::Connection,
    hub: &str,
    key: &str,
    value: Option<&str>,
) -> Result<()> {
    match value {
        Some(v) => conn.execute(
            "INSERT INTO sync_state (hub, key, value) VALUES (?1, ?2, ?3)
             ON CONFLICT (hub, key) DO UPDATE SET value = excluded.value",
            params![hub, key, v],
        )?,
        None => conn.execute(
            "DELETE FROM sync_state WHERE hub = ?1 AND key = ?2",
            params![hub, key],
        )?,
    };
    Ok(())
}

/// Moves the pull cursor for `hub` up to `seq` (never back).
fn advance_cursor(tx: &rusqlite::Connection, hub: &str, seq: i64) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO sync_state (hub, key, value) VALUES (?1, 'cursor', ?2)
         ON CONFLICT (hub, key) DO UPDATE SET value = excluded.value
         WHERE CAST(excluded.value AS INTEGER) > CAST(sync_state.value AS INTEGER)",
    )?
    .execute(params![hub, seq.to_string()])?;
    Ok(())
}

/// Marks every op unpushed (refused ones stay set aside) and forgets how
/// far `hub` was read: the next pass sends it everything and reads it from
/// its start. Pushes and pulls are idempotent, so this costs only traffic.
fn start_over(tx: &rusqlite::Connection, hub: &str) -> Result<()> {
    tx.execute(
        "UPDATE ops SET pushed = 0 WHERE pushed = 1 AND refused IS NULL",
        [],
    )?;
    tx.execute("UPDATE held_ops SET pushed = 0 WHERE pushed = 1", [])?;
    write_sync_value(tx, hub, "cursor", None)?;
    write_sync_value(tx, hub, "mark", None)?;
    Ok(())
}

/// [`Replica::hub_mark`] on `conn`; stored as "SEQ OP_ID".
fn read_mark(conn: &rusqlite::Connection, hub: &str) -> Result<Option<(i64, String)>> {
    Ok(read_sync_value(conn, hub, "mark")?.and_then(|v| {
        let (seq, op_id) = v.split_once(' ')?;
        Some((seq.parse().ok()?, op_id.to_owned()))
    }))
}

/// Moves the mark for `hub` up to `seq`, held by op `op_id` (never back).
fn raise_mark(tx: &rusqlite::Connection, hub: &str, seq: i64, op_id: &str) -> Result<()> {
    if read_mark(tx, hub)?.is_some_and(|(known, _)| known >= seq) {
        return Ok(());
    }
    write_sync_value(tx, hub, "mark", Some(&format!("{seq} {op_id}")))
}

impl RawOp {
    /// The op's id, when its text has a readable one.
    pub fn op_id(&self) -> Option<String> {
        op_id_of(&self.raw)
    }
}

/// The `op_id` of an op's JSON text, when it has a readable one.
fn op_id_of(raw: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(raw).ok()?;
    let id = value.get("op_id")?.as_str()?;
    Some(id.chars().take(128).collect())
}

/// The hub this replica last pushed to (`meta`'s `pushed_hub`).
fn pushed_hub(conn: &rusqlite::Connection) -> Result<Option<String>> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = 'pushed_hub'", [], |r| {
            r.get(0)
        })
        .optional()?)
}
