//! Background sync for the sidecar: soon after local writes (debounced), on
//! an interval, and on demand; exponential backoff with jitter while the hub
//! is unreachable. Status changes are published on a watch channel.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;

use std::sync::Arc;

use crate::client::{ClientError, NoToken, TokenProvider};
use crate::engine::{record_outcome, sync_authenticated, SyncError, SyncReport};

/// How long after a local write the sync starts (more writes push it back).
pub const DEBOUNCE: Duration = Duration::from_secs(2);
/// Longest wait between attempts while the hub is unreachable.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// A removed device does not retry on its own (a year is "never").
const REMOVED_WAIT: Duration = Duration::from_secs(365 * 24 * 3600);

/// Where sync stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    /// Everything is on the hub.
    Synced,
    /// Local ops wait to be pushed.
    Pending,
    /// A pass is running.
    Syncing,
    /// The hub cannot be reached; retrying with backoff.
    Offline,
    /// The last pass failed for another reason.
    Error,
    /// The hub refused the credentials.
    LoginNeeded,
    /// The hub's owner removed this device (revoked its credential): no
    /// retries until it joins again.
    Removed,
    /// No hub configured.
    Disabled,
}

/// What the status line shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncStatus {
    /// The state.
    pub state: SyncState,
    /// Ops not yet on the hub.
    pub pending: u64,
    /// The hub URL.
    pub hub: Option<String>,
    /// Local time (HH:MM) of the last successful pass.
    pub last_sync: Option<String>,
    /// The last error.
    pub last_error: Option<String>,
    /// Local time (HH:MM) since when the hub is unreachable.
    pub offline_since: Option<String>,
    /// Pulled ops set aside (unreadable, invalid, or stamped too far ahead),
    /// retried on every pass.
    pub quarantined: u64,
    /// Why the newest quarantined op was set aside.
    pub quarantine_reason: Option<String>,
    /// This device's ops the hub refused (kept here, not pushed).
    pub refused: u64,
    /// Why the newest refused op was refused.
    pub refused_reason: Option<String>,
    /// Body edits held back: the version they apply to never came (the
    /// device that made it could not send it), or they do not fit it.
    pub held: u64,
}

impl SyncStatus {
    /// A status with nothing set aside.
    pub fn new(state: SyncState, hub: Option<String>) -> Self {
        Self {
            state,
            pending: 0,
            hub,
            last_sync: None,
            last_error: None,
            offline_since: None,
            quarantined: 0,
            quarantine_reason: None,
            refused: 0,
            refused_reason: None,
            held: 0,
        }
    }
}

/// What the replica holds for the status line.
#[derive(Debug, Clone, Default)]
struct Counts {
    pending: u64,
    quarantine: heph_store::SetAside,
    refused: heph_store::SetAside,
    held: u64,
}

impl Counts {
    fn write_to(&self, s: &mut SyncStatus) -> bool {
        let before = (
            s.pending,
            s.quarantined,
            s.quarantine_reason.clone(),
            s.refused,
            s.refused_reason.clone(),
            s.held,
        );
        s.pending = self.pending;
        s.quarantined = self.quarantine.count;
        s.quarantine_reason = self.quarantine.newest_reason.clone();
        s.refused = self.refused.count;
        s.refused_reason = self.refused.newest_reason.clone();
        s.held = self.held;
        before
            != (
                s.pending,
                s.quarantined,
                s.quarantine_reason.clone(),
                s.refused,
                s.refused_reason.clone(),
                s.held,
            )
    }
}

enum Request {
    Now(oneshot::Sender<Result<SyncReport, String>>),
    LocalWrite,
}

/// Handle to the background sync task.
#[derive(Clone)]
pub struct SyncService {
    requests: mpsc::Sender<Request>,
    status: watch::Receiver<SyncStatus>,
    changes: broadcast::Sender<PassChanges>,
}

fn clock_time() -> String {
    let now = time::OffsetDateTime::now_local().unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    format!("{:02}:{:02}", now.hour(), now.minute())
}

/// Some jitter so many devices do not retry in lockstep.
fn jitter(base: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    base + base.mul_f64(f64::from(nanos % 1000) / 4000.0)
}

impl SyncService {
    /// Starts syncing `replica` with an open hub (no credentials) every
    /// `interval`. Must be called inside a tokio runtime.
    pub fn start(replica: PathBuf, hub_url: String, interval: Duration) -> Self {
        Self::start_with_tokens(replica, hub_url, interval, Arc::new(NoToken))
    }

    /// Starts syncing `replica` with `hub_url` every `interval`, with the
    /// bearer tokens `tokens` gives. Must be called inside a tokio runtime.
    pub fn start_with_tokens(
        replica: PathBuf,
        hub_url: String,
        interval: Duration,
        tokens: Arc<dyn TokenProvider>,
    ) -> Self {
        // One spelling of the URL, so status notes land where the cursor is.
        // Passes connect with the URL as given (userinfo included); status
        // and stored notes use its one spelling without userinfo.
        let connect_url = hub_url.trim().to_owned();
        let hub_url = crate::normalize_hub_url(&hub_url);
        let (requests, mut rx) = mpsc::channel(64);
        let (status_tx, status) =
            watch::channel(SyncStatus::new(SyncState::Pending, Some(hub_url.clone())));
        let (changes, _) = broadcast::channel(64);
        let changes_tx = changes.clone();
        tokio::spawn(async move {
            let mut next = Instant::now();
            let mut backoff: Option<Duration> = None;
            // Removed from the hub: local writes do not start passes.
            let mut removed = false;
            loop {
                let reply = tokio::select! {
                    request = rx.recv() => match request {
                        None => break,
                        Some(Request::LocalWrite) => {
                            // Debounce: each write moves the pass to DEBOUNCE from now,
                            // unless we are backing off from an unreachable hub.
                            if backoff.is_none() && !removed {
                                next = Instant::now() + DEBOUNCE;
                            }
                            let counts = counts(&replica, &hub_url).await;
                            status_tx.send_if_modified(|s| {
                                let state = if s.state == SyncState::Synced && counts.pending > 0 { SyncState::Pending } else { s.state };
                                let changed = counts.write_to(s) || s.state != state;
                                s.state = state;
                                changed
                            });
                            continue;
                        }
                        Some(Request::Now(reply)) => Some(reply),
                    },
                    _ = tokio::time::sleep_until(next) => None,
                };
                status_tx.send_modify(|s| s.state = SyncState::Syncing);
                let outcome =
                    run_pass(replica.clone(), connect_url.clone(), Arc::clone(&tokens)).await;
                let counts = counts(&replica, &hub_url).await;
                let pending = counts.pending;
                let result = match &outcome {
                    Ok(report) => {
                        backoff = None;
                        removed = false;
                        next = Instant::now() + interval;
                        status_tx.send_modify(|s| {
                            s.state = if pending > 0 {
                                SyncState::Pending
                            } else {
                                SyncState::Synced
                            };
                            counts.write_to(s);
                            s.last_sync = Some(clock_time());
                            s.last_error = None;
                            s.offline_since = None;
                        });
                        let news = PassChanges::of(report, reply.is_some());
                        if !news.is_empty() {
                            let _ = changes_tx.send(news);
                        }
                        Ok(report.clone())
                    }
                    Err(e) => {
                        let (state, retry) = match e {
                            // The hub, or the issuer a token refresh needs,
                            // out of reach: offline, tried again soon.
                            _ if out_of_reach(e) => {
                                let wait = backoff
                                    .map(|b| (b * 2).min(MAX_BACKOFF))
                                    .unwrap_or(Duration::from_secs(2));
                                backoff = Some(wait);
                                (SyncState::Offline, jitter(wait))
                            }
                            // Removed by the owner: retrying cannot help;
                            // only an explicit :HephSync (after a new join)
                            // tries again.
                            SyncError::Auth(heph_auth::AuthError::Removed(_)) => {
                                (SyncState::Removed, REMOVED_WAIT)
                            }
                            SyncError::Client(ClientError::Unauthorized(_))
                            | SyncError::Auth(heph_auth::AuthError::LoginNeeded) => {
                                (SyncState::LoginNeeded, interval)
                            }
                            _ => (SyncState::Error, interval),
                        };
                        removed = state == SyncState::Removed;
                        next = Instant::now() + retry;
                        tracing::warn!(error = %e, retry_in = ?retry, "sync failed");
                        status_tx.send_modify(|s| {
                            if state == SyncState::Offline && s.offline_since.is_none() {
                                s.offline_since = Some(clock_time());
                            }
                            s.state = state;
                            counts.write_to(s);
                            s.last_error = Some(e.to_string());
                        });
                        Err(e.to_string())
                    }
                };
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
            }
        });
        Self {
            requests,
            status,
            changes,
        }
    }

    /// Syncs now and returns what moved.
    pub async fn sync_now(&self) -> Result<SyncReport, String> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(Request::Now(tx))
            .await
            .map_err(|_| "the sync task stopped".to_owned())?;
        rx.await.map_err(|_| "the sync task stopped".to_owned())?
    }

    /// Tells the service that the replica was written locally.
    pub fn local_write(&self) {
        let _ = self.requests.try_send(Request::LocalWrite);
    }

    /// The status, as a watch receiver.
    pub fn status(&self) -> watch::Receiver<SyncStatus> {
        self.status.clone()
    }

    /// What each pass changed (see [`PassChanges`]).
    pub fn changes(&self) -> broadcast::Receiver<PassChanges> {
        self.changes.subscribe()
    }
}

/// Whether a pass failed for want of a connection: the hub (or a 5xx,
/// a 429), or the issuer a token refresh needs. Offline, tried again
/// soon; anything else waits for the interval.
fn out_of_reach(e: &SyncError) -> bool {
    match e {
        SyncError::Client(c) => c.is_transient(),
        SyncError::Auth(heph_auth::AuthError::Network(_)) => true,
        _ => false,
    }
}

/// What a pass changed, for the editor: the nodes its pulls changed (open
/// buffers show them again) and, for a pass nobody asked for (timer, local
/// writes), what the user should hear of it. A pass asked for with
/// [`SyncService::sync_now`] has a caller that reports its whole outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassChanges {
    /// Nodes changed by pulled ops.
    pub nodes: Vec<String>,
    /// Nodes whose body now holds a conflict block made by a background
    /// pass.
    pub conflict_nodes: Vec<String>,
    /// A background pass's warnings (ops set aside, a clock that is wrong,
    /// a hub that lost what it acknowledged).
    pub warnings: Vec<String>,
    /// Deleted nodes a background pass brought back.
    pub revived_nodes: Vec<String>,
}

impl PassChanges {
    fn of(report: &SyncReport, requested: bool) -> Self {
        Self {
            nodes: report.changed_nodes.clone(),
            conflict_nodes: if requested {
                Vec::new()
            } else {
                report.conflict_nodes.clone()
            },
            warnings: if requested {
                Vec::new()
            } else {
                report.warnings.clone()
            },
            revived_nodes: if requested {
                Vec::new()
            } else {
                report.revived_nodes.clone()
            },
        }
    }

    fn is_empty(&self) -> bool {
        self.nodes.is_empty()
            && self.conflict_nodes.is_empty()
            && self.warnings.is_empty()
            && self.revived_nodes.is_empty()
    }
}

async fn run_pass(
    replica: PathBuf,
    hub: String,
    tokens: Arc<dyn TokenProvider>,
) -> Result<SyncReport, SyncError> {
    // A task of its own, so a panic in the pass ends the pass, not the
    // service.
    let joined = tokio::spawn(async move {
        let outcome = sync_authenticated(&replica, &hub, tokens.as_ref()).await;
        if let Err(e) = record_outcome(&replica, &hub, &outcome) {
            tracing::warn!(error = %e, "cannot record sync outcome");
        }
        outcome
    })
    .await;
    joined.unwrap_or_else(|e| {
        Err(SyncError::Client(ClientError::Garbage(format!(
            "sync task failed: {e}"
        ))))
    })
}

async fn counts(replica: &std::path::Path, hub: &str) -> Counts {
    let replica = replica.to_owned();
    let hub = hub.to_owned();
    tokio::task::spawn_blocking(move || {
        let Ok(r) = heph_store::Replica::open(&replica) else {
            return Counts::default();
        };
        Counts {
            pending: r.pending_count().unwrap_or(0),
            quarantine: r.quarantine_summary(Some(&hub)).unwrap_or_default(),
            refused: r.refused_summary().unwrap_or_default(),
            held: r.held_ops().map_or(0, |h| h.len() as u64),
        }
    })
    .await
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::PassChanges;
    use crate::SyncReport;

    /// A requested pass's caller reports its conflicts and warnings; only
    /// a background pass's go with its changed nodes.
    #[test]
    fn only_a_background_pass_carries_its_conflicts_and_warnings() {
        let report = SyncReport {
            changed_nodes: vec!["a".into(), "b".into()],
            conflict_nodes: vec!["b".into()],
            warnings: vec!["1 pulled op(s) set aside".into()],
            ..SyncReport::default()
        };
        let background = PassChanges::of(&report, false);
        assert_eq!(background.nodes, ["a", "b"]);
        assert_eq!(background.conflict_nodes, ["b"]);
        assert_eq!(background.warnings, report.warnings);
        let requested = PassChanges::of(&report, true);
        assert_eq!(requested.nodes, ["a", "b"]);
        assert!(requested.conflict_nodes.is_empty() && requested.warnings.is_empty());
        // Nothing to tell: nothing is sent.
        assert!(PassChanges::of(&SyncReport::default(), false).is_empty());
        let warned = SyncReport {
            warnings: vec!["clock".into()],
            ..SyncReport::default()
        };
        assert!(!PassChanges::of(&warned, false).is_empty());
        assert!(PassChanges::of(&warned, true).is_empty());
    }
}
