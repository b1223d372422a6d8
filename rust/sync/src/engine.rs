//! One sync pass: push what the hub lacks, then pull what we lack.

use std::path::Path;

use heph_core::Op;
use heph_store::{Replica, StoreError};

use crate::client::{ClientError, HubClient};

/// Bytes of op JSON per push request.
pub const PUSH_BATCH_BYTES: usize = 1024 * 1024;
/// Ops per pull request.
pub const PULL_BATCH: usize = 2000;

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
    /// The hub sent an op this heph cannot read.
    #[error("the hub sent an op this heph cannot read (seq {seq}): {reason}; upgrade heph on this device")]
    BadOp {
        /// Its sequence number.
        seq: i64,
        /// The parse error.
        reason: String,
    },
}

/// Pushes every unacknowledged op, then pulls until the hub has no more.
/// Safe to interrupt anywhere: the next pass resends and re-pulls, and
/// duplicates are no-ops.
pub fn sync_once(replica_path: &Path, client: &HubClient) -> Result<SyncReport, SyncError> {
    let mut report = SyncReport::default();
    let hub = client.url().to_owned();
    // A fresh handle per pass: other processes write the same file, and no
    // transaction is ever held across a request.
    let mut replica = Replica::open(replica_path)?;
    loop {
        let ops = replica.unpushed_ops(PUSH_BATCH_BYTES)?;
        if ops.is_empty() {
            break;
        }
        let reply = client.push(&ops)?;
        let ids: Vec<String> = ops.into_iter().map(|o| o.op_id).collect();
        replica.mark_pushed(&ids)?;
        report.pushed += reply.new;
    }
    let mut changed = std::collections::HashSet::new();
    let mut cursor = replica.sync_cursor(&hub)?;
    loop {
        let page = client.pull(cursor, PULL_BATCH)?;
        let Some(last) = page.ops.last().map(|o| o.seq) else {
            break;
        };
        let ops = page
            .ops
            .into_iter()
            .map(|p| {
                serde_json::from_value::<Op>(p.op).map_err(|e| SyncError::BadOp {
                    seq: p.seq,
                    reason: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Ops and cursor move together, in one transaction.
        let applied = replica.apply_pulled(&hub, &ops, last)?;
        report.pulled += applied.new_ops;
        report.merged += applied.merged;
        report.conflicts += applied.conflicts;
        for id in applied.changed_nodes {
            if changed.insert(id.clone()) {
                report.changed_nodes.push(id);
            }
        }
        cursor = last;
        if !page.more {
            break;
        }
    }
    Ok(report)
}

fn block_on<F: std::future::Future>(future: F) -> Result<F::Output, SyncError> {
    match tokio::runtime::Handle::try_current() {
        // Inside the sidecar's blocking pool: borrow its runtime.
        Ok(handle) => Ok(handle.block_on(future)),
        Err(_) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| SyncError::Client(ClientError::Garbage(e.to_string())))?;
            Ok(runtime.block_on(future))
        }
    }
}

/// A sync pass that attaches the stored login's bearer token, if the
/// replica is logged in to this hub. A 401 triggers one refresh and one
/// retry; a refused refresh ends in `AuthError::LoginNeeded`.
pub fn sync_with_login(replica_path: &Path, hub: &str) -> Result<SyncReport, SyncError> {
    let mut client = HubClient::new(hub)?;
    let data_dir = replica_path.parent().unwrap_or(Path::new("."));
    let session = heph_auth::Session::new(data_dir);
    let token = block_on(session.access_token(client.url()))??;
    client.set_token(token.clone());
    match sync_once(replica_path, &client) {
        Err(SyncError::Client(ClientError::Unauthorized(_))) if token.is_some() => {
            let rejected = token.unwrap_or_default();
            let fresh = block_on(session.force_refresh(&rejected))??;
            client.set_token(Some(fresh));
            sync_once(replica_path, &client)
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
