//! Sync status, `:HephSync` and login, as seen from the sidecar. Requests
//! handled here run on the event loop and never take the replica lock; long
//! work (sync passes, login polling) runs in background tasks and reports
//! through notifications.

use std::sync::{Arc, Mutex};

use heph_auth::{device_login, LoginConfig, LoginEvent, Session, TokenStore};
use heph_sync::{Config, SyncService, SyncState, SyncStatus};
use nvim_rs::Neovim;
use rmpv::Value;
use serde_json::json;

use crate::paths::Paths;

use super::Writer;

/// A login in progress.
struct PendingLogin {
    /// The code event, once the issuer gave one (shown again on a second
    /// :HephLogin instead of starting over).
    code: Option<serde_json::Value>,
    task: tokio::task::JoinHandle<()>,
    /// Set by a logout: the polling stops, and tokens that come anyway are
    /// not stored. (Aborting `task` cannot stop the polling, which runs on
    /// a blocking thread.)
    cancel: tokio::sync::watch::Sender<bool>,
}

/// Sync and login state of one sidecar.
pub struct SyncBridge {
    paths: Paths,
    config: Config,
    service: Option<SyncService>,
    config_error: Option<String>,
    neovim: Mutex<Option<Neovim<Writer>>>,
    login: Arc<Mutex<Option<PendingLogin>>>,
    /// Held while a login's tokens are stored, and by a logout while it
    /// forgets them: a logout never runs in the middle of a store.
    storing: Arc<Mutex<()>>,
}

fn status_json(status: &SyncStatus) -> serde_json::Value {
    serde_json::to_value(status).unwrap_or_else(|_| json!({ "state": "error" }))
}

impl SyncBridge {
    /// Starts background sync when a hub is configured. Call inside tokio.
    pub fn new(paths: Paths) -> Self {
        let (config, config_error) = match Config::load() {
            Ok(config) => (config, None),
            Err(e) => {
                tracing::error!(error = %e, "config not loaded; sync disabled");
                (Config::default(), Some(e.to_string()))
            }
        };
        let service = config.hub_url.clone().map(|hub| {
            tracing::info!(%hub, "background sync enabled");
            let tokens = Arc::new(crate::credentials::StoredCredentials::new(&paths.data_dir));
            SyncService::start_with_tokens(paths.replica(), hub, config.interval(), tokens)
        });
        Self {
            paths,
            config,
            service,
            config_error,
            neovim: Mutex::new(None),
            login: Arc::new(Mutex::new(None)),
            storing: Arc::new(Mutex::new(())),
        }
    }

    /// Forwards status changes and nodes changed by sync to Neovim.
    pub fn attach(&self, neovim: Neovim<Writer>) {
        if let Ok(mut slot) = self.neovim.lock() {
            *slot = Some(neovim.clone());
        }
        let Some(service) = &self.service else {
            // A config that does not load turns sync off: said at once,
            // not only when the user asks for the status.
            if let Some(error) = self.config_error.clone() {
                let status = status_json(&SyncStatus {
                    last_error: Some(error),
                    ..SyncStatus::new(SyncState::Disabled, None)
                });
                tokio::spawn(async move { notify(&neovim, "status", status).await });
            }
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
            while let Ok(news) = changes.recv().await {
                let payload = json!({
                    "ids": news.nodes,
                    "conflicts": news.conflict_nodes,
                    "warnings": news.warnings,
                    "revived": news.revived_nodes,
                });
                notify(&neovim, "nodes_changed", payload).await;
            }
        });
    }

    fn not_configured(&self) -> String {
        self.config_error.clone().unwrap_or_else(|| {
            "sync is not configured: set hub_url in config.toml or in setup()".into()
        })
    }

    fn status(&self) -> serde_json::Value {
        let mut status = match &self.service {
            Some(service) => status_json(&service.status().borrow()),
            None => status_json(&SyncStatus {
                last_error: self.config_error.clone(),
                ..SyncStatus::new(SyncState::Disabled, None)
            }),
        };
        // How this device authenticates: a device credential or the login.
        let (auth, store) =
            crate::credentials::describe(&self.paths.data_dir, self.config.hub_url.as_deref());
        status["logged_in"] = json!(store.is_some());
        status["auth"] = json!(auth);
        status["token_store"] = json!(store.unwrap_or_else(|| "not logged in".into()));
        status
    }

    /// Answers the sync/login methods; `None` for every other method.
    pub async fn handle(
        &self,
        method: &str,
        args: &[Value],
        neovim: Neovim<Writer>,
    ) -> Option<Result<serde_json::Value, String>> {
        match method {
            "status" => Some(Ok(self.status())),
            "sync" => Some(match &self.service {
                Some(service) => service
                    .sync_now()
                    .await
                    .map(|report| serde_json::to_value(report).unwrap_or_default()),
                None => Err(self.not_configured()),
            }),
            // :HephSync: answers at once; the outcome comes as a
            // `sync_done` notification, so the editor never waits.
            "sync_start" => Some(match &self.service {
                Some(service) => {
                    let service = service.clone();
                    tokio::spawn(async move {
                        let payload = match service.sync_now().await {
                            Ok(report) => json!({ "ok": true, "report": report }),
                            Err(e) => json!({ "ok": false, "error": e }),
                        };
                        notify(&neovim, "sync_done", payload).await;
                    });
                    Ok(json!({ "started": true }))
                }
                None => Err(self.not_configured()),
            }),
            // On exit: push what is pending, but never hold the editor
            // longer than `timeout_ms` (default 1500).
            "sync_flush" => Some(match &self.service {
                Some(service) => {
                    #[derive(serde::Deserialize)]
                    struct Flush {
                        timeout_ms: Option<u64>,
                    }
                    let ms = super::params::decode::<Flush>("sync_flush", args)
                        .ok()
                        .and_then(|p| p.timeout_ms)
                        .unwrap_or(1500)
                        .min(10_000);
                    // Asked on every exit: nothing pending, nothing to wait
                    // for (the editor's count may not have caught up with
                    // a save just made, as in `:wq`; this one has).
                    let pending = heph_store::Replica::open(&self.paths.replica())
                        .and_then(|r| r.pending_count())
                        .unwrap_or(1);
                    if pending == 0 {
                        return Some(Ok(json!({ "done": true })));
                    }
                    let done = tokio::time::timeout(
                        std::time::Duration::from_millis(ms),
                        service.sync_now(),
                    )
                    .await;
                    Ok(json!({ "done": matches!(done, Ok(Ok(_))) }))
                }
                None => Ok(json!({ "done": false })),
            }),
            "login" => Some(self.start_login()),
            "join" => Some(self.start_join(args, neovim)),
            "logout" => Some(self.logout().await),
            _ => None,
        }
    }

    fn login_config(&self) -> Result<(LoginConfig, String), String> {
        let hub = self
            .config
            .hub_url
            .clone()
            .ok_or("no hub configured: set hub_url in setup() or config.toml")?;
        let issuer = self
            .config
            .issuer
            .clone()
            .ok_or("no issuer configured: set issuer in setup() or config.toml")?;
        let client_id = self
            .config
            .client_id
            .clone()
            .ok_or("no client id configured: set client_id in setup() or config.toml")?;
        Ok((
            LoginConfig {
                issuer,
                client_id,
                audience: self.config.audience.clone(),
            },
            hub,
        ))
    }

    fn start_login(&self) -> Result<serde_json::Value, String> {
        let (config, hub) = self.login_config()?;
        TokenStore::check_forced(&self.paths.data_dir).map_err(|e| e.to_string())?;
        let neovim = self
            .neovim
            .lock()
            .ok()
            .and_then(|n| n.clone())
            .ok_or("the sidecar is still starting; try again")?;
        let mut pending = self.login.lock().map_err(|_| "login state is poisoned")?;
        if let Some(p) = pending.as_ref().filter(|p| !p.task.is_finished()) {
            // Show the same code again instead of starting over.
            if let Some(code) = p.code.clone() {
                let nvim = neovim.clone();
                tokio::spawn(async move { notify(&nvim, "login", code).await });
            }
            return Ok(json!({ "state": "pending" }));
        }
        let slot = Arc::clone(&self.login);
        let session = Session::new(&self.paths.data_dir);
        let service = self.service.clone();
        let (cancel, mut cancelled) = tokio::sync::watch::channel(false);
        let storing = Arc::clone(&self.storing);
        let task = tokio::spawn(async move {
            let nvim = neovim.clone();
            let on_event = move |event: LoginEvent| {
                let payload = serde_json::to_value(&event).unwrap_or_default();
                if payload["state"] == "code" {
                    if let Ok(mut p) = slot.lock() {
                        if let Some(p) = p.as_mut() {
                            p.code = Some(payload.clone());
                        }
                    }
                }
                let nvim = nvim.clone();
                tokio::spawn(async move { notify(&nvim, "login", payload).await });
            };
            // The oauth2 futures are not Send; poll them on a blocking thread.
            let handle = tokio::runtime::Handle::current();
            let login = tokio::task::spawn_blocking(move || {
                let result = handle.block_on(async {
                    tokio::select! {
                        result = device_login(&config, on_event, tokio::time::sleep) => result,
                        _ = cancelled.wait_for(|c| *c) => Err(heph_auth::AuthError::Issuer(
                            "login cancelled by a logout".into(),
                        )),
                    }
                });
                let tokens = result?;
                // A logout between the approval and here wins: checked and
                // stored under the lock a logout takes to forget tokens.
                let _storing = storing.lock().unwrap_or_else(|p| p.into_inner());
                if *cancelled.borrow() {
                    return Err(heph_auth::AuthError::Issuer(
                        "login cancelled by a logout".into(),
                    ));
                }
                session.store_login(&config, &hub, tokens)
            })
            .await;
            let outcome = login.unwrap_or_else(|e| {
                Err(heph_auth::AuthError::Issuer(format!(
                    "login task failed: {e}"
                )))
            });
            match outcome {
                Ok(store) => {
                    let (described, fallback) = (store.describe(), store.fallback_reason.is_some());
                    tracing::info!(store = %described, "logged in");
                    // A fallback to the file is said once, here, to the user.
                    let done = json!({ "state": "done", "store": described, "fallback": fallback });
                    notify(&neovim, "login", done).await;
                    if let Some(service) = service {
                        let _ = service.sync_now().await;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "login failed");
                    notify(
                        &neovim,
                        "login",
                        json!({ "state": "failed", "message": e.to_string() }),
                    )
                    .await;
                }
            }
        });
        *pending = Some(PendingLogin {
            code: None,
            task,
            cancel,
        });
        Ok(json!({ "state": "started" }))
    }

    /// :HephJoin: answers at once; the redeem runs in the background and
    /// reports as a `login` event (`joined` or `join_failed`), then a sync
    /// starts when the hub is the configured one.
    fn start_join(
        &self,
        args: &[Value],
        neovim: Neovim<Writer>,
    ) -> Result<serde_json::Value, String> {
        #[derive(serde::Deserialize)]
        struct JoinParams {
            url: String,
            token: String,
            name: Option<String>,
        }
        let JoinParams { url, token, name } =
            super::params::decode("join", args).map_err(|e| e.message)?;
        let name = name.unwrap_or_else(crate::credentials::host_name);
        TokenStore::check_forced(&self.paths.data_dir).map_err(|e| e.to_string())?;
        let credential = heph_auth::DeviceCredential::new(&self.paths.data_dir);
        let configured = self
            .config
            .hub_url
            .as_deref()
            .map(heph_sync::normalize_hub_url);
        let service = self.service.clone();
        tokio::spawn(async move {
            // The keyring crates block: run the redeem off the event loop.
            let handle = tokio::runtime::Handle::current();
            let joined = tokio::task::spawn_blocking(move || {
                // Named by the credential's own file (device.json), not
                // the login's.
                handle
                    .block_on(credential.join(&url, &token, &name))
                    .map(|(device, store)| {
                        let kept = credential.describe_store(&device);
                        (device, store, kept)
                    })
            })
            .await;
            let payload = match joined {
                Ok(Ok((device, store, kept))) => {
                    tracing::info!(device = %device.device_id, label = %device.label, "joined a hub");
                    let syncs = configured.as_deref() == Some(device.hub.as_str());
                    if let (true, Some(service)) = (syncs, service) {
                        tokio::spawn(async move {
                            let _ = service.sync_now().await;
                        });
                    }
                    json!({
                        "state": "joined",
                        "hub": device.hub,
                        "device_id": device.device_id,
                        "label": device.label,
                        "scope": device.scope,
                        "store": kept,
                        "fallback": store.fallback_reason.is_some(),
                        "configured": syncs,
                    })
                }
                Ok(Err(e)) => json!({ "state": "join_failed", "message": e.to_string() }),
                Err(e) => {
                    json!({ "state": "join_failed", "message": format!("join task failed: {e}") })
                }
            };
            notify(&neovim, "login", payload).await;
        });
        Ok(json!({ "state": "started" }))
    }

    async fn logout(&self) -> Result<serde_json::Value, String> {
        if let Ok(mut pending) = self.login.lock() {
            if let Some(p) = pending.take() {
                let _ = p.cancel.send(true);
                p.task.abort();
            }
        }
        let session = Session::new(&self.paths.data_dir);
        let revocation = session.revoke().await;
        // A login being stored finishes first, and is forgotten with the
        // rest; one not stored yet sees the cancel and stores nothing.
        let _storing = self.storing.lock().unwrap_or_else(|p| p.into_inner());
        let removed = session.logout().map_err(|e| e.to_string())?;
        let device = heph_auth::DeviceCredential::new(&self.paths.data_dir)
            .forget()
            .map_err(|e| e.to_string())?;
        // The status line shows what the hub says now (an open hub: still
        // synced; one that needs a login: "login needed").
        if let Some(service) = self.service.clone() {
            tokio::spawn(async move {
                let _ = service.sync_now().await;
            });
        }
        Ok(json!({
            "removed": removed || device,
            "note": revocation.note(),
        }))
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
    let args = vec![
        Value::from(event),
        super::params::reply(&payload).unwrap_or(Value::Nil),
    ];
    if let Err(e) = neovim
        .exec_lua("require('heph.events').dispatch(...)", args)
        .await
    {
        tracing::debug!(error = %e, event, "notification not delivered");
    }
}
