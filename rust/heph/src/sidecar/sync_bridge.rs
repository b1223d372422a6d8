//! Sync status, `:HephSync` and login, as seen from the sidecar. Requests
//! handled here run on the event loop and never take the replica lock.

use heph_sync::{Config, SyncService, SyncState, SyncStatus};
use nvim_rs::Neovim;
use rmpv::Value;
use serde_json::json;

use crate::paths::Paths;

use super::params::to_msgpack;
use super::Writer;

/// Sync and login state of one sidecar.
pub struct SyncBridge {
    service: Option<SyncService>,
    config_error: Option<String>,
}

fn status_json(status: &SyncStatus) -> serde_json::Value {
    serde_json::to_value(status).unwrap_or_else(|_| json!({ "state": "error" }))
}

impl SyncBridge {
    /// Starts background sync when a hub is configured. Call inside tokio.
    pub fn new(paths: Paths) -> Self {
        match Config::load() {
            Ok(config) => {
                let service = config.hub_url.clone().map(|hub| {
                    tracing::info!(%hub, "background sync enabled");
                    SyncService::start(paths.replica(), hub, config.interval())
                });
                Self {
                    service,
                    config_error: None,
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "config not loaded; sync disabled");
                Self {
                    service: None,
                    config_error: Some(e.to_string()),
                }
            }
        }
    }

    /// Forwards status changes and nodes changed by sync to Neovim.
    pub fn attach(&self, neovim: Neovim<Writer>) {
        let Some(service) = &self.service else {
            return;
        };
        let mut status = service.status();
        let nvim = neovim.clone();
        tokio::spawn(async move {
            loop {
                let current = status.borrow_and_update().clone();
                notify(&nvim, "status", status_json(&current)).await;
                if status.changed().await.is_err() {
                    break;
                }
            }
        });
        let mut changes = service.changes();
        tokio::spawn(async move {
            while let Ok(ids) = changes.recv().await {
                notify(&neovim, "nodes_changed", json!({ "ids": ids })).await;
            }
        });
    }

    /// Answers the sync/login methods; `None` for every other method.
    pub async fn handle(
        &self,
        method: &str,
        _args: &[Value],
        _neovim: Neovim<Writer>,
    ) -> Option<Result<serde_json::Value, String>> {
        let not_configured = || {
            self.config_error.clone().unwrap_or_else(|| {
                "sync is not configured: set hub_url in config.toml or hub_url in setup()".into()
            })
        };
        match method {
            "status" => Some(Ok(match &self.service {
                Some(service) => status_json(&service.status().borrow()),
                None => status_json(&SyncStatus {
                    state: SyncState::Disabled,
                    pending: 0,
                    hub: None,
                    last_sync: None,
                    last_error: self.config_error.clone(),
                    offline_since: None,
                }),
            })),
            "sync" => Some(match &self.service {
                Some(service) => service
                    .sync_now()
                    .await
                    .map(|report| serde_json::to_value(report).unwrap_or_default()),
                None => Err(not_configured()),
            }),
            "login" | "logout" => Some(Err(
                "login is not available in this build: the hub runs open on loopback".into(),
            )),
            _ => None,
        }
    }

    /// Called after a request that may have written.
    pub fn local_write_maybe(&self) {
        if let Some(service) = &self.service {
            service.local_write();
        }
    }
}

/// Sends an event to `require("heph.events").dispatch`.
async fn notify(neovim: &Neovim<Writer>, event: &str, payload: serde_json::Value) {
    let args = vec![Value::from(event), to_msgpack(&payload)];
    if let Err(e) = neovim
        .exec_lua("require('heph.events').dispatch(...)", args)
        .await
    {
        tracing::debug!(error = %e, event, "notification not delivered");
    }
}
