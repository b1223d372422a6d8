//! One sync pass: push what the hub lacks, then pull what we lack.
//!
//! A pass is a future on the caller's runtime (the sidecar's, or the one the
//! CLI makes for `heph sync`). The store calls run inline between requests,
//! not on the blocking pool: each is one short local SQLite transaction,
//! bounded by a push batch or a pull page (`PUSH_BATCH_BYTES`,
//! `PULL_PAGE_BYTES`), no transaction is held across an `.await`, and the
//! sidecar's runtime has another worker for Neovim meanwhile. Moving the
//! replica handle (one SQLite connection, kept for the whole pass) in and out
//! of `spawn_blocking` for each call would cost more than it frees.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use heph_core::Op;
use heph_store::{Replica, StoreError};

use crate::client::{ClientError, HubClient, TokenProvider};

/// Bytes of op JSON per push request: under the hub's default request
/// limit (`heph_hub::DEFAULT_MAX_BODY`, 4 MiB) with room for the estimate's
/// error; a hub with a lower limit answers 413 and the batch is halved.
/// Each request is one transaction and one sync to disk on the hub, so a
/// backlog goes up in few of them.
pub const PUSH_BATCH_BYTES: usize = 3 * 1024 * 1024;
/// The smallest push batch a 413 makes the pass fall back to (a single
/// larger op still goes alone).
/// How long an op the hub refused stays set aside before it is sent again.
const SET_ASIDE_RETRY: std::time::Duration = std::time::Duration::from_secs(60 * 60);

const MIN_PUSH_BATCH_BYTES: usize = 64 * 1024;
/// Ops per pull request.
pub const PULL_BATCH: usize = 5000;
/// Bytes of op JSON per pull request (the hub caps it at its own limit and
/// always sends at least one op).
pub const PULL_PAGE_BYTES: usize = 4 * 1024 * 1024;

/// What a pass moved.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SyncReport {
    /// Ops the hub stored for the first time.
    pub pushed: usize,
    /// Ops new to this replica.
    pub pulled: usize,
    /// Concurrent body edits merged.
    pub merged: usize,
    /// Of those, merges with both sides kept between conflict markers.
    pub conflicts: usize,
    /// Nodes changed by pulled ops.
    pub changed_nodes: Vec<String>,
    /// Nodes whose body now holds a conflict block made by this pass.
    pub conflict_nodes: Vec<String>,
    /// Nodes deleted here that pulled ops brought back (edited or
    /// restored on another device after the delete).
    pub revived_nodes: Vec<String>,
    /// Local ops the hub refused in this pass (set aside, kept here).
    pub refused: usize,
    /// Pulled ops set aside in the quarantine in this pass.
    pub quarantined: usize,
    /// Quarantined ops applied in this pass (their time came).
    pub released: usize,
    /// What the user should know (clock wrong, ops set aside).
    pub warnings: Vec<String>,
    /// Ops installed from the hub's snapshot (a new device's first pass).
    pub bootstrapped: u64,
    /// The hub sequence of a snapshot this pass uploaded (the hub asked).
    pub snapshot_uploaded: Option<i64>,
    /// The hub lets this device push but not pull (a credential with the
    /// capture scope): nothing was pulled, and that is no failure.
    pub push_only: bool,
}

/// Why a pass stopped.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Talking to the hub failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The replica refused (including ops from the hub that are invalid or
    /// stamped too far in the future).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Login or token refresh failed (including "login needed").
    #[error(transparent)]
    Auth(#[from] heph_auth::AuthError),
}

/// Opens the replica for a pass. `HEPH_CLOCK_SKEW_MS` (a test hook, as in
/// the CLI) pretends this device's clock is off by that many ms.
fn open_replica(path: &Path) -> Result<Replica, StoreError> {
    let mut replica = Replica::open(path)?;
    // A pass writes (acknowledgments, pulled ops): refused by name at once.
    replica.check_writable()?;
    if let Some(skew) = std::env::var("HEPH_CLOCK_SKEW_MS")
        .ok()
        .and_then(|s| s.trim().parse().ok())
    {
        replica.clock_mut().set_offset_ms(skew);
    }
    Ok(replica)
}

/// What a push reply leaves to record in the replica: the ops the hub
/// stored, the ones it refused, and how far the cursor moves over our own.
#[derive(Debug, Default)]
struct Settle {
    hub: String,
    through: Option<i64>,
    /// The highest hub sequence of the reply and its op's id.
    mark: Option<(i64, String)>,
    pushed: Vec<String>,
    refused: Vec<(String, String, String)>,
}

impl Settle {
    /// Records it: acknowledgments, cursor and mark in one transaction.
    fn write(self, replica: &mut Replica) -> Result<(), StoreError> {
        let progress =
            (self.through.is_some() || self.mark.is_some()).then(|| heph_store::PushProgress {
                hub: &self.hub,
                cursor: self.through,
                mark: self.mark.as_ref().map(|(seq, id)| (*seq, id.as_str())),
            });
        replica.record_push_reply(progress, &self.pushed)?;
        if !self.refused.is_empty() {
            replica.mark_refused(&self.refused)?;
        }
        Ok(())
    }
}

/// Pushes one batch; ops the hub refuses (per op, or a 413 for a single op)
/// are set aside with the reason. Every op of `ops` ends pushed or refused
/// once the returned [`Settle`] is written (a batch the hub refused whole
/// is recorded here, half by half).
///
/// A 413 also lowers `budget`, the size of the batches after this one, to
/// half of what was refused: a hub (or a proxy before it) with a lower
/// request limit than [`PUSH_BATCH_BYTES`] costs one refused request per
/// pass, not one per batch.
async fn push_batch(
    replica: &mut Replica,
    client: &HubClient,
    ops: &[Op],
    body: Option<Vec<u8>>,
    budget: &AtomicUsize,
    own: &mut OwnRun,
    report: &mut SyncReport,
) -> Result<Settle, SyncError> {
    let body_len = body.as_ref().map(Vec::len);
    let sent = match body {
        Some(body) => client.push_encoded(ops.len(), body).await,
        None => client.push(ops).await,
    };
    let reply = match sent {
        Ok(reply) => reply,
        // A request refused whole (too large, too slow to send, or a shape
        // the hub will not take): halve it until the op at fault is alone
        // (below: what happens to that one).
        Err(ClientError::Status {
            status: status @ (400 | 408 | 413),
            message,
            from_hub,
        }) => {
            // Something in between that refuses every push (a broken
            // proxy, a login page) would cost a request and a set-aside op
            // for each op in the queue: after the first op it set aside,
            // the pass stops and the rest waits, queued.
            if !from_hub && own.set_aside_on_the_way {
                return Err(ClientError::Status {
                    status,
                    message,
                    from_hub,
                }
                .into());
            }
            if ops.len() > 1 {
                if status != 400 {
                    // Measured only now: the parts sent without a body are
                    // encoded again by the client.
                    let size = body_len.unwrap_or_else(|| json_size(ops));
                    budget.fetch_min((size / 2).max(MIN_PUSH_BATCH_BYTES), Ordering::Relaxed);
                }
                let (a, b) = ops.split_at(ops.len() / 2);
                // Boxed: the future contains itself.
                Box::pin(push_batch(replica, client, a, None, budget, own, report))
                    .await?
                    .write(replica)?;
                Box::pin(push_batch(replica, client, b, None, budget, own, report))
                    .await?
                    .write(replica)?;
                return Ok(Settle::default());
            }
            // Alone, an op answered 408 waits for the next pass (a slow
            // link now may be a fast one later); one answered 400 or 413
            // is set aside, so the ops behind it go, and sent again an
            // hour later (`SET_ASIDE_RETRY`): from something in between
            // the hub (a proxy's page), the refusal may not hold then.
            let on_the_way = if from_hub {
                String::new()
            } else {
                " by something between this device and the hub (a proxy?)".to_owned()
            };
            let (code, reason) = match status {
                408 => {
                    return Err(ClientError::Status {
                        status,
                        message,
                        from_hub,
                    }
                    .into())
                }
                413 => (
                    "too_large",
                    format!(
                        "the op was refused as too large{on_the_way} (413): {message}; it stays \
                         on this device, and is sent again in an hour and when this device \
                         syncs with another hub"
                    ),
                ),
                _ => (
                    "invalid",
                    format!(
                        "the op was refused{on_the_way} (400): {message}; it stays on this \
                         device, and is sent again in an hour"
                    ),
                ),
            };
            replica.mark_refused(&[(ops[0].op_id.clone(), code.into(), reason.clone())])?;
            report.refused += 1;
            own.set_aside_on_the_way |= !from_hub;
            if !own.retried.contains(&ops[0].op_id) {
                report.warnings.push(format!(
                    "op {} on node {} is set aside: {reason}",
                    ops[0].op_id, ops[0].node
                ));
            }
            return Ok(Settle::default());
        }
        Err(e) => return Err(e.into()),
    };
    let mut refused = Vec::new();
    let mut ahead: Option<u64> = None;
    let mut other_reasons = Vec::new();
    for r in &reply.refused {
        let Some(op) = ops.get(r.index) else { continue };
        let reason = if r.code == "clock_ahead" {
            let by = r.ahead_ms.unwrap_or(0);
            ahead = Some(ahead.unwrap_or(0).max(by));
            clock_ahead_message(by)
        } else {
            format!("the hub refused op {} ({}): {}", op.op_id, r.code, r.reason)
        };
        if r.code != "clock_ahead" && !own.retried.contains(&op.op_id) {
            other_reasons.push(reason.clone());
        }
        refused.push((op.op_id.clone(), r.code.clone(), reason));
    }
    let mut pushed = Vec::new();
    let mut mark: Option<(i64, String)> = None;
    for (op, seq) in ops.iter().zip(&reply.seqs) {
        match seq {
            Some(seq) => {
                pushed.push(op.op_id.clone());
                own.acknowledged(*seq);
                if mark.as_ref().is_none_or(|(m, _)| seq > m) {
                    mark = Some((*seq, op.op_id.clone()));
                }
            }
            None if !refused.iter().any(|r| r.0 == op.op_id) => refused.push((
                op.op_id.clone(),
                "invalid".into(),
                format!("the hub did not store op {} and gave no reason", op.op_id),
            )),
            None => {}
        }
    }
    report.pushed += reply.new;
    report.refused += refused.len();
    if let Some(by) = ahead {
        report.warnings.push(clock_ahead_message(by));
    }
    report.warnings.extend(other_reasons);
    Ok(Settle {
        hub: own.hub.clone(),
        through: own.advance(),
        mark,
        pushed,
        refused,
    })
}

/// Hub sequences the push replies gave this device's own ops, for moving
/// the pull cursor over them instead of pulling them back (a first upload
/// would otherwise download and re-apply every op it just sent). The cursor
/// moves only over an unbroken run of our own sequences right after it: a
/// sequence held by any other op (another device's, interleaved) leaves a
/// gap that stops the run, and the pull fetches everything from there, so
/// no op of another device is ever skipped.
#[derive(Debug)]
struct OwnRun {
    hub: String,
    /// The pull cursor as far as this pass knows it.
    cursor: i64,
    /// Our sequences above the cursor, not yet joined to it.
    ahead: std::collections::BTreeSet<i64>,
    /// Ops set aside an hour ago or more and sent again by this pass:
    /// refused again, they are set aside again without a new warning (the
    /// status still counts them), not one every hour.
    retried: std::collections::HashSet<String>,
    /// An op of this pass was set aside on a refusal from something
    /// between this device and the hub (see `push_batch`).
    set_aside_on_the_way: bool,
}

impl OwnRun {
    fn new(hub: String, cursor: i64) -> Self {
        Self {
            hub,
            cursor,
            ahead: std::collections::BTreeSet::new(),
            retried: std::collections::HashSet::new(),
            set_aside_on_the_way: false,
        }
    }

    /// The hub stored (or already had) one of our ops at `seq`.
    fn acknowledged(&mut self, seq: i64) {
        if seq > self.cursor {
            self.ahead.insert(seq);
        }
    }

    /// Joins the run of sequences right after the cursor: the new cursor
    /// when it moved.
    fn advance(&mut self) -> Option<i64> {
        let before = self.cursor;
        while self.ahead.first() == Some(&(self.cursor + 1)) {
            self.ahead.pop_first();
            self.cursor += 1;
        }
        (self.cursor > before).then_some(self.cursor)
    }
}

/// A push reply being recorded: the handle comes back with the outcome.
type Recording = tokio::task::JoinHandle<(Replica, Result<(), StoreError>)>;

/// Waits for a reply's recording: the handle back, or why it failed.
async fn finish_recording(recording: Recording) -> Result<Replica, SyncError> {
    match recording.await {
        Ok((handle, Ok(()))) => Ok(handle),
        Ok((_, Err(e))) => Err(e.into()),
        Err(e) => Err(StoreError::Invalid(format!("recording a push reply failed: {e}")).into()),
    }
}

/// About the size of `ops` as a push request's JSON.
fn json_size(ops: &[Op]) -> usize {
    ops.iter().map(|op| op.json_len() + 1).sum()
}

/// Splits `ops` into runs of about `budget` bytes of JSON (at least one op
/// each), in order.
fn split_to_budget(ops: &[Op], budget: usize) -> Vec<&[Op]> {
    let mut parts = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (i, op) in ops.iter().enumerate() {
        let len = op.json_len() + 1;
        if i > start && size + len > budget {
            parts.push(&ops[start..i]);
            (start, size) = (i, 0);
        }
        size += len;
    }
    if start < ops.len() {
        parts.push(&ops[start..]);
    }
    parts
}

/// Push batches read and encoded ahead of the one on its way.
const PUSH_BATCHES_AHEAD: usize = 2;

/// A push batch: the ops and the request body made of them.
type Batch = Result<(Vec<Op>, Vec<u8>), SyncError>;

/// Reads the unacknowledged ops in push batches, oldest first, on its own
/// handle, and hands each over encoded; an empty batch (or an error) ends
/// it, and so does the pass no longer taking batches. Each op is read once
/// per pass: what the hub refuses is set aside by the pass, what it never
/// answered for stays unacknowledged and goes again next pass.
fn prepare_batches(
    replica_path: &Path,
    ready: &tokio::sync::mpsc::Sender<Batch>,
    budget: &AtomicUsize,
) {
    let replica = match Replica::open(replica_path) {
        Ok(r) => r,
        Err(e) => {
            let _ = ready.blocking_send(Err(e.into()));
            return;
        }
    };
    let mut after = i64::MIN;
    loop {
        let batch = replica
            .unpushed_ops_after(after, budget.load(Ordering::Relaxed))
            .map_err(SyncError::from)
            .and_then(|(ops, last)| {
                after = last;
                let body = crate::client::encode_push(&ops)?;
                Ok((ops, body))
            });
        let last = !matches!(&batch, Ok((ops, _)) if !ops.is_empty());
        if ready.blocking_send(batch).is_err() || last {
            return;
        }
    }
}

/// What the sending device hears when the hub refuses its future stamps.
pub fn clock_ahead_message(ahead_ms: u64) -> String {
    format!(
        "this device's clock is wrong (ahead by {} of the hub's clock): the hub refused \
         its op(s); fix the clock — they stay on this device and are sent again on each sync",
        heph_core::hlc::human_ms(ahead_ms)
    )
}

/// Pushes every unacknowledged op, then pulls until the hub has no more.
/// Safe to interrupt anywhere: the next pass resends and re-pulls, and
/// duplicates are no-ops. Ops the hub refuses are set aside (never blocking
/// the ops behind them), a push failure other than an unreachable hub or
/// refused credentials still lets the pull run, and pulled ops that cannot
/// be applied are quarantined and retried on each pass.
pub async fn sync_once(replica_path: &Path, client: &HubClient) -> Result<SyncReport, SyncError> {
    let (first, replaced) = sync_pass(replica_path, client).await?;
    if !replaced {
        return Ok(first);
    }
    // The hub at this URL is a new database: every op goes to it again,
    // and it is read from its start, in a second pass.
    let (mut report, _) = sync_pass(replica_path, client).await?;
    // The first pass pushed and stopped before pulling.
    report.pushed += first.pushed;
    report.refused += first.refused;
    report.warnings.splice(0..0, first.warnings);
    Ok(report)
}

/// One pass of [`sync_once`]; also says whether the hub turned out to be
/// another database than the one this device synced with before (see
/// [`heph_store::Replica::note_hub_instance`]), which ends the pass before
/// it pulls anything.
async fn sync_pass(
    replica_path: &Path,
    client: &HubClient,
) -> Result<(SyncReport, bool), SyncError> {
    let mut report = SyncReport::default();
    let hub = client.url().to_owned();
    // A fresh handle per pass: other processes write the same file, and no
    // transaction is ever held across a request.
    let mut replica = open_replica(replica_path)?;
    // Pushed to another hub last: this one gets every op.
    if let Some(before) = replica.begin_push_to(&hub)? {
        report.warnings.push(format!(
            "this device synced with {before} before {hub}: it sends {hub} every op it has \
             (a hub keeps each op once)"
        ));
    }
    // A clock that was ahead and is fixed: this device's own future stamps
    // (refused, or never sent) get fresh ones, so they go out now instead of
    // when real time catches up.
    replica.restamp_future_ops()?;
    // Ops refused for a clock that was ahead: the clock may be fixed, or
    // the hub's time may have come.
    replica.requeue_refused("clock_ahead")?;
    // Ops the hub refused an hour ago or more go again: its limits or its
    // version may have changed since, and an op set aside for good would
    // leave this device and the others different for good.
    let retried = replica.requeue_refused_before(SET_ASIDE_RETRY)?;
    // The op at the highest sequence this device knows the hub gave: the
    // hub must still hold it there (see `Replica::hub_mark`), asked with
    // the first pull page. Read before the push: what a restored hub
    // acknowledges now must not stand in for what it lost.
    let mut mark = replica.hub_mark(&hub)?;
    let mut own = OwnRun::new(hub.clone(), replica.sync_cursor(&hub)?);
    own.retried = retried.into_iter().collect();
    // The next batches are read and encoded on another thread while one is
    // on its way: the hub checks and stores a batch meanwhile.
    let (ready, mut batches) = tokio::sync::mpsc::channel(PUSH_BATCHES_AHEAD);
    let reader_path = replica_path.to_owned();
    let budget = Arc::new(AtomicUsize::new(PUSH_BATCH_BYTES));
    let reader_budget = Arc::clone(&budget);
    let reader =
        tokio::task::spawn_blocking(move || prepare_batches(&reader_path, &ready, &reader_budget));
    // A reply is recorded on the blocking pool, on a handle of its own,
    // while the next batch is on its way: the hub and this device work at
    // the same time instead of taking turns. Whole batches' replies are
    // recorded in order, one at a time; the parts of a batch the hub
    // refused as too large are recorded on the pass's own handle as they
    // come, perhaps while the previous reply is still being recorded. The
    // order does not matter: a reply only marks this device's ops pushed
    // and moves the cursor up over its own hub sequences, never back.
    let mut recorder = Some(open_replica(replica_path)?);
    let mut recording: Option<Recording> = None;
    let pushed: Result<Option<SyncError>, SyncError> = async {
        loop {
            // The reader ends with an empty batch: a channel closed before
            // it means the reader died (a panic), not that all went.
            let Some(batch) = batches.recv().await else {
                let stopped = StoreError::Invalid("the push reader stopped early".into());
                return Ok(Some(stopped.into()));
            };
            let (ops, body) = batch?;
            if ops.is_empty() {
                break;
            }
            let limit = budget.load(Ordering::Relaxed);
            let sent = async {
                if body.len() <= limit || ops.len() == 1 {
                    return push_batch(
                        &mut replica,
                        client,
                        &ops,
                        Some(body),
                        &budget,
                        &mut own,
                        &mut report,
                    )
                    .await;
                }
                // Read before a 413 lowered the budget: sent in parts that
                // fit instead of being refused first.
                for part in split_to_budget(&ops, limit) {
                    push_batch(
                        &mut replica,
                        client,
                        part,
                        None,
                        &budget,
                        &mut own,
                        &mut report,
                    )
                    .await?
                    .write(&mut replica)?;
                }
                Ok(Settle::default())
            };
            let settle = match sent.await {
                Ok(settle) => settle,
                Err(SyncError::Client(
                    e @ (ClientError::Unauthorized(_) | ClientError::Unreachable { .. }),
                )) => return Err(e.into()),
                // The pull still runs.
                Err(e) => return Ok(Some(e)),
            };
            let mut handle = match recording.take() {
                Some(previous) => finish_recording(previous).await?,
                None => recorder
                    .take()
                    .ok_or_else(|| StoreError::Invalid("the push recorder went missing".into()))?,
            };
            recording = Some(tokio::task::spawn_blocking(move || {
                let written = settle.write(&mut handle);
                (handle, written)
            }));
        }
        Ok(None)
    }
    .await;
    // Every reply recorded (and its handle closed) before the pull, the
    // snapshot or an early return: nothing acknowledged is left unwritten.
    let recorded = match recording.take() {
        Some(last) => finish_recording(last).await.map(drop),
        None => Ok(()),
    };
    drop(recorder);
    // The reader stops at its next batch and closes its handle before
    // anything below needs the replica alone (a snapshot install).
    drop(batches);
    if let Err(e) = reader.await {
        tracing::warn!(error = %e, "the push reader failed");
    }
    let push_error = pushed?;
    recorded?;
    let mut changed = std::collections::HashSet::new();
    let mut cursor = replica.sync_cursor(&hub)?;
    if cursor == 0 && replica.can_bootstrap()? {
        let (back, outcome) = bootstrap(replica, replica_path, client).await;
        replica = match back {
            Some(replica) => replica,
            None => open_replica(replica_path)?,
        };
        match outcome {
            Ok(Some(imported)) => {
                // A fresh handle (the test clock hook applies again).
                replica = open_replica(replica_path)?;
                cursor = imported.seq;
                report.bootstrapped = imported.ops;
                tracing::info!(
                    seq = imported.seq,
                    ops = imported.ops,
                    "bootstrapped from the hub's snapshot"
                );
            }
            Ok(None) => tracing::debug!("the hub has no snapshot; pulling every op"),
            Err(SyncError::Client(e @ ClientError::Unauthorized(_))) => return Err(e.into()),
            Err(e) => {
                tracing::warn!(error = %e, "not bootstrapping from the hub's snapshot; pulling every op instead")
            }
        }
    }
    if cursor == 0 {
        // Into an empty replica: index the notes once, after the pull.
        replica.begin_bulk_load()?;
    }
    let mut hub_now = None;
    let mut hint = None;
    let mut absorb = |report: &mut SyncReport, outcome: heph_store::PullOutcome| {
        report.pulled += outcome.applied.new_ops;
        report.merged += outcome.applied.merged;
        report.conflicts += outcome.applied.conflicts;
        for id in outcome.applied.conflict_nodes {
            if !report.conflict_nodes.contains(&id) {
                report.conflict_nodes.push(id);
            }
        }
        for id in outcome.applied.revived_nodes {
            if !report.revived_nodes.contains(&id) {
                report.revived_nodes.push(id);
            }
        }
        report.quarantined += outcome.quarantined;
        report.released += outcome.released;
        for id in outcome.applied.changed_nodes {
            if changed.insert(id.clone()) {
                report.changed_nodes.push(id);
            }
        }
    };
    let mut checked_instance = false;
    loop {
        let at = mark.as_ref().map(|(seq, _)| *seq);
        let page = match client
            .pull_asking(cursor, at, PULL_BATCH, PULL_PAGE_BYTES)
            .await
        {
            Ok(page) => page,
            // A capture credential: the push was all this device may do.
            Err(ClientError::Status {
                status: 403,
                message,
                ..
            }) if message.contains("capture scope") => {
                report.push_only = true;
                break;
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(instance) = page.hub.as_deref().filter(|_| !checked_instance) {
            checked_instance = true;
            if replica.note_hub_instance(&hub, instance)? {
                report.warnings.push(format!(
                    "{hub} is another hub database than the one this device synced with \
                     (a new or wiped hub): this device sends it every op it has"
                ));
                return Ok((report, true));
            }
        }
        if let Some((seq, op_id)) = mark.take() {
            // An older hub does not say; it is not checked.
            let lost = page
                .at
                .as_ref()
                .is_some_and(|held| held.seq == seq && held.op_id.as_deref() != Some(&op_id));
            if lost {
                replica.start_over_with_hub(&hub)?;
                report.warnings.push(format!(
                    "{hub} no longer holds ops it acknowledged (its database was restored \
                     from an older copy?): this device sends it every op it has and reads \
                     it again from its start"
                ));
                return Ok((report, true));
            }
        }
        hub_now = page.now.or(hub_now);
        hint = page.snapshot.or(hint);
        let Some(last) = page.ops.last().map(|o| o.seq) else {
            break;
        };
        // Ops, quarantine and cursor move together, in one transaction.
        let outcome = replica.apply_pulled(&hub, &page.ops, last, page.now)?;
        absorb(&mut report, outcome);
        cursor = last;
        if !page.more {
            break;
        }
    }
    replica.finish_bulk_load()?;
    let retried = replica.retry_quarantine(&hub, hub_now)?;
    absorb(&mut report, retried);
    if report.quarantined > 0 {
        if let Some(reason) = replica.quarantine_summary(Some(&hub))?.newest_reason {
            report.warnings.push(format!(
                "{} pulled op(s) set aside: {reason}",
                report.quarantined
            ));
        }
    }
    if let Some(e) = push_error {
        return Err(e);
    }
    // Up to date with the hub and nothing of ours unacknowledged: if the
    // hub asks for a snapshot, this device makes one. A failure here costs
    // only the snapshot; the pass itself succeeded.
    if hint.is_some_and(|h| h.wanted) && report.refused == 0 && replica.pending_count()? == 0 {
        drop(replica);
        match upload_snapshot(replica_path, client).await {
            Ok(seq) => report.snapshot_uploaded = seq,
            Err(e) => tracing::warn!(error = %e, "the hub asked for a snapshot; none uploaded"),
        }
    }
    Ok((report, false))
}

/// A temporary file beside the replica.
fn temp_beside(replica_path: &Path, what: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        ".heph-{what}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    match replica_path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(name),
        _ => std::path::PathBuf::from(name),
    }
}

/// Removes a file when dropped.
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Downloads the hub's snapshot and installs it into the (empty) replica
/// as it arrives: `Ok(None)` when the hub has none. The replica is handed
/// back when the hub has no snapshot or does not answer; otherwise the
/// handle is closed (so the install can move the snapshot into place when
/// no other process has the replica open) and the caller opens a fresh
/// one. On an error the replica is unchanged. Installing runs on the
/// blocking pool, decompressing while this task downloads.
async fn bootstrap(
    replica: Replica,
    replica_path: &Path,
    client: &HubClient,
) -> (
    Option<Replica>,
    Result<Option<heph_store::Imported>, SyncError>,
) {
    let (seq, mut download) = match client.open_snapshot().await {
        Ok(Some(found)) => found,
        Ok(None) => return (Some(replica), Ok(None)),
        Err(e) => return (Some(replica), Err(e.into())),
    };
    drop(replica);
    let started = std::time::Instant::now();
    let (pieces, arriving) = tokio::sync::mpsc::channel(DOWNLOAD_PIECES_AHEAD);
    let hub = client.url().to_owned();
    let path = replica_path.to_owned();
    let install = tokio::task::spawn_blocking(move || {
        let mut input = PieceReader {
            arriving,
            current: bytes::Bytes::new(),
        };
        Replica::bootstrap_from_snapshot(&path, &hub, &mut input, Some(seq))
    });
    let mut download_error = None;
    loop {
        match download.next_chunk().await {
            // A closed channel: the install stopped reading (refused).
            Ok(Some(piece)) => {
                if pieces.send(Ok(piece)).await.is_err() {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                let _ = pieces.send(Err(std::io::Error::other(e.to_string()))).await;
                download_error = Some(e);
                break;
            }
        }
    }
    drop(pieces);
    let joined = install.await;
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        "snapshot downloaded and installed"
    );
    if let Some(e) = download_error {
        return (None, Err(e.into()));
    }
    match joined {
        Ok(Ok(imported)) => (None, Ok(Some(imported))),
        Ok(Err(heph_store::SnapshotError::Store(e))) => (None, Err(e.into())),
        Ok(Err(e)) => (
            None,
            Err(SyncError::Store(StoreError::Invalid(e.to_string()))),
        ),
        // The task panicked: the install is one transaction or one
        // rename, so nothing is half done.
        Err(e) => (
            None,
            Err(SyncError::Store(StoreError::Invalid(format!(
                "installing the snapshot failed: {e}"
            )))),
        ),
    }
}

/// Pieces of a snapshot download buffered ahead of the install (bounded:
/// a slow disk holds the download back instead of filling memory).
const DOWNLOAD_PIECES_AHEAD: usize = 16;

/// The pieces of a download, read on a blocking thread as they arrive.
struct PieceReader {
    arriving: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    current: bytes::Bytes,
}

impl std::io::Read for PieceReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.arriving.blocking_recv() {
                Some(Ok(piece)) => self.current = piece,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        bytes::Buf::advance(&mut self.current, n);
        Ok(n)
    }
}

/// Makes a snapshot of the replica as of its cursor for the hub and uploads
/// it. The copy is a read (writers carry on); compressing and uploading
/// hold no lock. `Ok(None)`: not applicable now (e.g. a write came in).
async fn upload_snapshot(
    replica_path: &Path,
    client: &HubClient,
) -> Result<Option<i64>, SyncError> {
    let file = Scratch(temp_beside(replica_path, "snapshot-upload"));
    let _ = std::fs::remove_file(&file.0);
    let hub = client.url().to_owned();
    let (path, out) = (replica_path.to_owned(), file.0.clone());
    let exported = tokio::task::spawn_blocking(move || -> Result<_, heph_store::SnapshotError> {
        let replica = Replica::open(&path)?;
        let mut writer = std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(&out).map_err(|source| heph_store::SnapshotError::Io {
                path: out.clone(),
                source,
            })?,
        );
        let exported = replica.export_snapshot(&hub, &mut writer)?;
        std::io::Write::flush(&mut writer).map_err(|source| heph_store::SnapshotError::Io {
            path: out.clone(),
            source,
        })?;
        Ok(exported)
    })
    .await
    .map_err(|e| StoreError::Invalid(format!("making the snapshot failed: {e}")))?;
    let exported = match exported {
        Ok(e) => e,
        Err(heph_store::SnapshotError::NotApplicable(why)) => {
            tracing::debug!(%why, "no snapshot now");
            return Ok(None);
        }
        Err(heph_store::SnapshotError::Store(e)) => return Err(e.into()),
        Err(e) => return Err(StoreError::Invalid(e.to_string()).into()),
    };
    client.upload_snapshot(exported.seq, &file.0).await?;
    tracing::info!(
        seq = exported.seq,
        bytes = exported.bytes,
        ops = exported.ops,
        "uploaded a snapshot"
    );
    Ok(Some(exported.seq))
}

/// A sync pass that sends the bearer token `tokens` gives for this hub,
/// if any. A 401 asks the provider once for a fresh token and retries; a
/// provider that has none ends the pass with its reason (login needed,
/// device removed).
pub async fn sync_authenticated(
    replica_path: &Path,
    hub: &str,
    tokens: &dyn TokenProvider,
) -> Result<SyncReport, SyncError> {
    let mut client = HubClient::new(hub)?;
    let token = tokens.token(client.url()).await?;
    client.set_token(token.clone());
    match sync_once(replica_path, &client).await {
        Err(SyncError::Client(ClientError::Unauthorized(message))) if token.is_some() => {
            let rejected = token.unwrap_or_default();
            let fresh = tokens.refresh(client.url(), &rejected, &message).await?;
            client.set_token(Some(fresh.clone()));
            let again = sync_once(replica_path, &client).await;
            if matches!(again, Err(SyncError::Client(ClientError::Unauthorized(_)))) {
                tokens.refused_after_refresh(client.url(), &fresh).await;
            }
            again
        }
        other => other,
    }
}

/// Records the outcome of a pass for `heph status` and `:HephSync status`.
pub fn record_outcome(
    replica_path: &Path,
    hub: &str,
    outcome: &Result<SyncReport, SyncError>,
) -> Result<(), StoreError> {
    let hub = &crate::normalize_hub_url(hub);
    let mut replica = Replica::open(replica_path)?;
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    match outcome {
        Ok(_) => {
            replica.set_sync_value(hub, "last_sync", Some(&now))?;
            replica.set_sync_value(hub, "last_error", None)?;
        }
        Err(e) => {
            replica.set_sync_value(hub, "last_error", Some(&format!("{now} {e}")))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::OwnRun;

    #[test]
    fn the_cursor_moves_only_over_an_unbroken_run_of_our_sequences() {
        let mut own = OwnRun::new("h".into(), 10);
        // 11 belongs to another device: nothing moves, however much of
        // ours lies beyond it.
        for seq in [12, 13, 14] {
            own.acknowledged(seq);
        }
        assert_eq!(own.advance(), None);
        assert_eq!(own.cursor, 10);
        // Sequences at or below the cursor (an op the hub already had)
        // change nothing.
        own.acknowledged(3);
        assert_eq!(own.advance(), None);
    }

    #[test]
    fn the_run_joins_across_batches_and_stops_at_a_gap() {
        let mut own = OwnRun::new("h".into(), 0);
        for seq in [1, 2, 3] {
            own.acknowledged(seq);
        }
        assert_eq!(own.advance(), Some(3));
        // The next batch: 4 and 5 are ours, 6 is not, 7 is.
        for seq in [5, 4, 7] {
            own.acknowledged(seq);
        }
        assert_eq!(own.advance(), Some(5));
        assert_eq!(own.advance(), None);
        assert_eq!(own.cursor, 5);
    }
}
