//! Sync status, `:HephSync` and login, as seen from the sidecar. Requests
//! handled here run on the event loop; they never touch the replica lock.

use nvim_rs::Neovim;
use rmpv::Value;

use crate::paths::Paths;

use super::Writer;

/// Sync and login state of one sidecar.
pub struct SyncBridge {
    _paths: Paths,
}

impl SyncBridge {
    /// A bridge for the replica at `paths`.
    pub fn new(paths: Paths) -> Self {
        Self { _paths: paths }
    }

    /// Answers the sync/login methods; `None` for every other method.
    pub async fn handle(
        &self,
        method: &str,
        _args: &[Value],
        _neovim: Neovim<Writer>,
    ) -> Option<Result<serde_json::Value, String>> {
        match method {
            "status" => Some(Ok(serde_json::json!({ "state": "disabled" }))),
            "sync" => Some(Err("sync is not configured: no hub URL is set".into())),
            "login" | "logout" => Some(Err("login is not configured yet".into())),
            _ => None,
        }
    }

    /// Called after a request that may have written.
    pub fn local_write_maybe(&self) {}
}
