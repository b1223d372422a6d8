//! Fresh stamps for this device's own ops stamped in the future.
//!
//! A device whose clock ran ahead stamps its ops in the future; the hub
//! refuses them (`clock_ahead`) and the clock, witnessing them, would keep
//! stamping every new op there too. Once the clock is fixed, the ops the hub
//! never acknowledged are known to this device only, so they can be stamped
//! again: in their order, after the newest stamp that stays, with the body
//! bases that name them rewritten, and the nodes they touch rebuilt from
//! their ops — all in the caller's transaction. They keep their op ids: the
//! hub refuses by content and stores nothing of a refused op.

use std::collections::{BTreeSet, HashMap};

use heph_core::{Action, Clock, Hlc, Op};
use rusqlite::{params, Transaction};

use crate::materialize::{action_json, rebuild_node, settle, ApplyReport, LogRow};
use crate::{Result, StoreError};

/// The lowest stamp text of millisecond `ms`: a stamp's text sorts at or
/// above it exactly when the stamp is from `ms` or later.
fn from_ms(ms: u64) -> String {
    format!("{ms:012x}")
}

/// What a re-stamp did.
#[derive(Debug, Default)]
pub(crate) struct Restamped {
    /// Ops given fresh stamps.
    pub ops: usize,
    /// Nodes rebuilt, in first-seen order.
    pub nodes: Vec<String>,
}

/// Re-stamps this device's unacknowledged ops stamped beyond the drift
/// limit of `clock` (or refused as `clock_ahead` and still ahead of it),
/// with every unacknowledged op after the first of them, and takes the clock
/// back from stamps that far ahead. The caller witnesses the log afterwards.
pub(crate) fn restamp_future(tx: &Transaction<'_>, clock: &mut Clock) -> Result<Restamped> {
    let now = clock.physical_ms();
    let limit = now.saturating_add(clock.max_drift_ms());
    if clock.last().millis > limit {
        // Witnessed from our own future stamps: start again from the log.
        clock.reset(None);
    }
    let first: Option<String> = tx
        .prepare_cached(
            // The range on the stamp index first: empty on every write but
            // those just after a clock fix.
            "SELECT min(hlc) FROM ops WHERE hlc >= ?2 AND pushed = 0
             AND (hlc >= ?1 OR refused_code = 'clock_ahead')",
        )?
        .query_row(
            params![
                from_ms(limit.saturating_add(1)),
                from_ms(now.saturating_add(1))
            ],
            |r| r.get(0),
        )?;
    let Some(first) = first else {
        return Ok(Restamped::default());
    };
    // The newest stamp that stays: the re-stamped ops go after it.
    let kept: Option<String> = tx
        .prepare_cached("SELECT max(hlc) FROM ops WHERE pushed = 1 OR hlc < ?1")?
        .query_row([&first], |r| r.get(0))?;
    let kept = kept
        .map(|k| k.parse::<Hlc>())
        .transpose()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    clock.reset(kept.as_ref());

    type Row = (
        LogRow,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = tx
        .prepare_cached(
            "SELECT op_id, hlc, node, payload, action, refused, refused_code, refused_at FROM ops
             WHERE pushed = 0 AND hlc >= ?1 ORDER BY hlc, op_id",
        )?
        .query_map([&first], |r| {
            Ok((
                LogRow::read(r, 0)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ))
        })?
        .collect::<std::result::Result<_, _>>()?;
    let mut ops = Vec::with_capacity(rows.len());
    // (node, old stamp) of each re-stamped body version -> its new stamps.
    let mut renamed: HashMap<(String, Hlc), Vec<Hlc>> = HashMap::new();
    let mut meta = Vec::with_capacity(rows.len());
    for (row, action, refused, code, at) in rows {
        meta.push((action, refused, code, at));
        let mut op: Op = row.into_op()?;
        let fresh = clock.tick()?;
        if op.is_body_version() {
            renamed
                .entry((op.node.clone(), op.hlc.clone()))
                .or_default()
                .push(fresh.clone());
        }
        op.hlc = fresh;
        ops.push(op);
    }
    // Only these ops can name a re-stamped version as a base: a base is
    // older than the version edited from it, and ops the hub has were made
    // before these (or elsewhere, without seeing them).
    for op in &mut ops {
        if let Action::SetBody { base, .. } | Action::EditBody { base, .. } = &mut op.action {
            let mut new_base = Vec::with_capacity(base.len());
            for b in base.iter() {
                match renamed.get(&(op.node.clone(), b.clone())) {
                    Some(fresh) => new_base.extend(fresh.iter().cloned()),
                    None => new_base.push(b.clone()),
                }
            }
            new_base.sort();
            new_base.dedup();
            *base = new_base;
        }
    }
    tx.prepare_cached("DELETE FROM ops WHERE pushed = 0 AND hlc >= ?1")?
        .execute([&first])?;
    let mut nodes = Vec::new();
    let mut seen = BTreeSet::new();
    {
        // New rows (new local sequence numbers, in the new stamp order), so
        // the nodes' versions move on and editors reload them.
        let mut put = tx.prepare_cached(
            "INSERT INTO ops (op_id, hlc, node, action, payload, pushed, refused, refused_code, refused_at, body_from)
             VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?8, ?9)",
        )?;
        for (op, (action, refused, code, at)) in ops.iter().zip(meta) {
            let payload = action_json(op)?;
            // A refusal for the clock no longer holds; others still do.
            let (refused, code, at) = if code.as_deref() == Some("clock_ahead") {
                (None, None, None)
            } else {
                (refused, code, at)
            };
            put.execute(params![
                op.op_id,
                op.hlc.to_string(),
                op.node,
                action,
                payload,
                refused,
                code,
                at,
                match &op.action {
                    Action::EditBody { from, .. } => Some(from.as_str()),
                    _ => None,
                }
            ])?;
            if seen.insert(op.node.clone()) {
                nodes.push(op.node.clone());
            }
        }
    }
    let mut report = ApplyReport::default();
    for node in &nodes {
        rebuild_node(tx, node, &mut report)?;
    }
    settle(tx, report)?;
    Ok(Restamped {
        ops: ops.len(),
        nodes,
    })
}
