//! heph-hub: the sync hub. It stores ops as opaque JSON, deduplicated by
//! `op_id`, and gives each a hub sequence number the first time it is
//! stored. Spokes pull by sequence number (never by clock), so an op made
//! offline long ago still reaches every device.
//!
//! The server holds up against slow and half-open clients (see
//! `doc/limits.md`): request headers must arrive within a bound (hyper's
//! header read timeout, which also closes idle keep-alive connections), a
//! body that stalls or drips is cut off (tower-http timeouts), the number
//! of open connections is capped (new ones wait in the kernel's backlog
//! instead of using up file descriptors), and shutdown ends within a bound
//! whatever the clients do.

mod auth;
mod capture;
pub mod join;
mod routes;
mod snapshot;
mod store;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

pub use auth::{Access, BearerCheck, Rejection};
pub use join::{HubSecret, Scope};
pub use routes::{router, MAX_DRIFT_MS, MAX_OP_DEPTH, MAX_PULL_BYTES, MAX_PULL_LIMIT};
pub use snapshot::{
    StoredSnapshot, DEFAULT_MAX_SNAPSHOT_BYTES, DEFAULT_SNAPSHOT_THRESHOLD, SEQ_HEADER,
};
pub use store::{HubStore, PushOutcome};

/// Default request body limit: pushes come in batches of about 1 MB.
pub const DEFAULT_MAX_BODY: usize = 4 * 1024 * 1024;

/// Errors of the hub.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The hub database failed.
    #[error("hub database error: {0}")]
    Db(#[from] rusqlite::Error),
    /// Binding or serving failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A stored op could not be read back.
    #[error("hub data is damaged: {0}")]
    Corrupt(String),
    /// The database file cannot be used: it cannot be created, or it is
    /// something else (a device's replica, not SQLite), left untouched.
    #[error("cannot use the hub database {}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// How a hub runs.
#[derive(Clone)]
pub struct HubConfig {
    /// Largest accepted request body in bytes.
    pub max_body: usize,
    /// Verifies OIDC bearer tokens; with neither this nor join tokens the
    /// hub serves open (local use).
    pub auth: Option<Arc<dyn BearerCheck>>,
    /// The secret join tokens are signed with; `serve` reads (or creates)
    /// the one beside the database when `None`.
    pub join: Option<Arc<HubSecret>>,
    /// Ask devices for a snapshot once this many ops came after the stored
    /// one (0: never ask).
    pub snapshot_threshold: i64,
    /// Largest snapshot accepted, in bytes.
    pub max_snapshot_bytes: u64,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            max_body: DEFAULT_MAX_BODY,
            auth: None,
            join: None,
            snapshot_threshold: DEFAULT_SNAPSHOT_THRESHOLD,
            max_snapshot_bytes: DEFAULT_MAX_SNAPSHOT_BYTES,
        }
    }
}

/// Connection limits of the server (documented in `doc/limits.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeLimits {
    /// Time a client has to send a request's headers; also how long an
    /// idle keep-alive connection stays open.
    pub header_timeout: Duration,
    /// Longest pause between two pieces of a request body.
    pub body_timeout: Duration,
    /// Longest a request may take, body included, before it gets 408.
    pub request_timeout: Duration,
    /// Most connections open at once; further clients wait to be accepted.
    pub max_connections: usize,
    /// How long shutdown waits for requests in flight before closing every
    /// connection.
    pub shutdown_grace: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(15),
            request_timeout: Duration::from_secs(60),
            max_connections: 512,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Serves the hub on `listener` with the default [`ServeLimits`] until
/// `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    db: &Path,
    config: HubConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), HubError> {
    serve_with_limits(listener, db, config, ServeLimits::default(), shutdown).await
}

/// Serves the hub on `listener` until `shutdown` completes. Requests in
/// flight then get `limits.shutdown_grace` to finish (a push the hub
/// acknowledged is always committed; one cut off is simply resent), after
/// which every connection is closed.
pub async fn serve_with_limits(
    listener: tokio::net::TcpListener,
    db: &Path,
    config: HubConfig,
    limits: ServeLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), HubError> {
    private_db_file(db)?;
    let store = HubStore::open(db)?;
    private_db_companions(db);
    let mut config = config;
    if config.join.is_none() {
        config.join = Some(Arc::new(HubSecret::load_or_create(&HubSecret::path_for(
            db,
        ))?));
    }
    // No redeem survives a restart: settle those a crash cut off.
    let settled = store.settle_in_flight(join::now_ms(), 0)?;
    if settled > 0 {
        tracing::warn!(
            settled,
            "settled join token redeems cut off by the last stop"
        );
    }
    let app = router(Arc::new(store), config);
    let service = tower::ServiceBuilder::new()
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(RequestBodyTimeoutLayer::new(limits.body_timeout))
        .service(app);
    let service = TowerToHyperService::new(service);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(64 * 1024);
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut connections = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut at_capacity = false;
    loop {
        let slot = match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => {
                at_capacity = false;
                slot
            }
            Err(_) => {
                if !at_capacity {
                    at_capacity = true;
                    tracing::warn!(
                        max = limits.max_connections,
                        "connection limit reached; new clients wait"
                    );
                }
                tokio::select! {
                    _ = &mut shutdown => break,
                    slot = Arc::clone(&slots).acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                }
            }
        };
        let (stream, _peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors or a connection reset before
                    // it was accepted: wait a little rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        while connections.try_join_next().is_some() {}
        let connection = http.serve_connection(TokioIo::new(stream), service.clone());
        let connection = graceful.watch(connection);
        connections.spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    let open = connections.len();
    tracing::info!(open, "shutting down");
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            grace_ms = limits.shutdown_grace.as_millis() as u64,
            "closing connections still open after the shutdown grace period"
        );
    }
    connections.shutdown().await;
    Ok(())
}

/// Opens (creating) the hub database, readable by its owner only: for the
/// owner's commands that work beside a running hub.
pub fn open_private(db: &Path) -> Result<HubStore, HubError> {
    private_db_file(db)?;
    let store = HubStore::open(db)?;
    private_db_companions(db);
    Ok(store)
}

/// Creates the hub database readable by its owner only, or makes an
/// existing one so.
fn private_db_file(db: &Path) -> Result<(), HubError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(db)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => make_private(db),
            Err(e) => {
                return Err(HubError::File {
                    path: db.to_owned(),
                    reason: e.to_string(),
                })
            }
        }
    }
    Ok(())
}

/// Makes the database's WAL and shared-memory files private too.
fn private_db_companions(db: &Path) {
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        make_private(Path::new(&name));
    }
}

/// Removes group and other permissions from `path` when it has any.
fn make_private(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(meta) = std::fs::metadata(path) else {
            return;
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            match std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700)) {
                Ok(()) => tracing::warn!(
                    file = %path.display(),
                    old = format!("{mode:o}"),
                    "the hub database was readable by others; it is now private (0600)"
                ),
                Err(e) => tracing::warn!(
                    file = %path.display(),
                    error = %e,
                    "the hub database is readable by others and cannot be made private"
                ),
            }
        }
    }
}
