//! heph-hub: the sync hub. It stores ops as opaque JSON, deduplicated by
//! `op_id`, and gives each a hub sequence number the first time it is
//! stored. Spokes pull by sequence number (never by clock), so an op made
//! offline long ago still reaches every device.

mod auth;
mod routes;
mod store;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

pub use auth::{BearerCheck, Rejection};
pub use routes::{router, MAX_DRIFT_MS, MAX_OP_DEPTH, MAX_PULL_BYTES, MAX_PULL_LIMIT};
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
}

/// How a hub runs.
#[derive(Clone)]
pub struct HubConfig {
    /// Largest accepted request body in bytes.
    pub max_body: usize,
    /// Verifies bearer tokens; `None` serves open (local use).
    pub auth: Option<Arc<dyn BearerCheck>>,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            max_body: DEFAULT_MAX_BODY,
            auth: None,
        }
    }
}

/// Serves the hub on `listener` until `shutdown` completes. Requests in
/// flight finish first, so an acknowledged push is always committed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    db: &Path,
    config: HubConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), HubError> {
    let store = HubStore::open(db)?;
    let app = router(Arc::new(store), config);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    Ok(())
}
