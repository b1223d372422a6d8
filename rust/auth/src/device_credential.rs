//! A device credential from a join token (`heph join URL TOKEN`): the
//! device redeems the token at the hub once and keeps the credential it
//! gets in the same token store a login uses (the OS keyring, else a file
//! of mode 0600), keyed by hub and data dir. Its description (hub, id,
//! label, scope, store) lives in `auth/device.json` under the data dir.
//!
//! The device sends a key of its own with the redeem, kept in
//! `auth/device-key` (0600): a redeem whose reply was lost is sent again
//! with the same key and gets the same credential.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::session::normalize_hub_url;
use crate::token_store::{describe, StoreKind, TokenStore};
use crate::AuthError;

/// The stored device credential's description.
#[derive(Clone, Serialize, Deserialize)]
pub struct StoredDevice {
    /// The hub it is for.
    pub hub: String,
    /// The device's id on the hub (for `heph hub revoke`).
    pub device_id: String,
    /// The owner's label for this device.
    pub label: String,
    /// `full` or `capture`.
    pub scope: String,
    /// Where the credential is kept.
    pub token_store: StoreKind,
    /// Why no keyring took it, when the file does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
    /// In the file only with the file store.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    credential: String,
}

impl std::fmt::Debug for StoredDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredDevice")
            .field("hub", &self.hub)
            .field("device_id", &self.device_id)
            .field("label", &self.label)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl StoredDevice {
    /// How users read the way this device authenticates.
    pub fn summary(&self) -> String {
        format!(
            "device credential (label {}, scope {}, id {})",
            self.label, self.scope, self.device_id
        )
    }
}

/// What the hub answers to a redeem.
#[derive(Deserialize)]
struct Redeemed {
    credential: String,
    device_id: String,
    scope: String,
    label: String,
}

/// The device credential of one replica (data dir).
#[derive(Debug, Clone)]
pub struct DeviceCredential {
    data_dir: PathBuf,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> AuthError + '_ {
    move |e| AuthError::Store(format!("cannot write {}: {e}", path.display()))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), AuthError> {
    let fail = io(path);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(&fail)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp).map_err(&fail)?;
        file.write_all(bytes).map_err(&fail)?;
        file.sync_all().map_err(&fail)?;
    }
    std::fs::rename(&tmp, path).map_err(&fail)
}

impl DeviceCredential {
    /// The device credential of the replica in `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            data_dir: data_dir.to_owned(),
        }
    }

    fn file(&self) -> PathBuf {
        self.data_dir.join("auth").join("device.json")
    }

    fn key_file(&self) -> PathBuf {
        self.data_dir.join("auth").join("device-key")
    }

    /// The keyring key: hub + this replica's data dir.
    fn keyring_key(&self, hub: &str) -> String {
        let dir = std::fs::canonicalize(&self.data_dir).unwrap_or_else(|_| self.data_dir.clone());
        format!("device|{hub}|{}", dir.display())
    }

    /// This device's redeem key, made on first use.
    fn device_key(&self) -> Result<String, AuthError> {
        let path = self.key_file();
        if let Ok(text) = std::fs::read_to_string(&path) {
            let text = text.trim();
            if text.len() >= 32 {
                return Ok(text.to_owned());
            }
        }
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes)
            .map_err(|e| AuthError::Store(format!("no randomness for a device key: {e}")))?;
        let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        write_private(&path, key.as_bytes())?;
        Ok(key)
    }

    /// The stored credential's description, with the credential itself.
    pub fn load(&self) -> Result<Option<StoredDevice>, AuthError> {
        let text = match std::fs::read_to_string(self.file()) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(AuthError::Store(format!(
                    "cannot read {}: {e}",
                    self.file().display()
                )))
            }
        };
        let mut device: StoredDevice = serde_json::from_str(&text).map_err(|_| {
            AuthError::Store(format!("{} is damaged; join again", self.file().display()))
        })?;
        if device.token_store != StoreKind::File {
            let store = TokenStore::attach(&self.data_dir, device.token_store)?;
            device.credential = store
                .get("device", &self.keyring_key(&device.hub))?
                .unwrap_or_default();
        }
        Ok(Some(device))
    }

    /// The credential to send to `hub`, when this device joined it.
    pub fn credential_for(&self, hub: &str) -> Result<Option<String>, AuthError> {
        match self.load()? {
            Some(device) if device.hub == normalize_hub_url(hub) => {
                if device.credential.is_empty() {
                    return Err(AuthError::Removed(
                        "the device credential is gone from the token store; join again".into(),
                    ));
                }
                Ok(Some(device.credential))
            }
            _ => Ok(None),
        }
    }

    /// Where the credential is, as users read it.
    pub fn describe_store(&self, device: &StoredDevice) -> String {
        describe(
            device.token_store,
            &self.data_dir.join("auth"),
            device.fallback_reason.as_deref(),
        )
        .replace("session.json", "device.json")
    }

    /// Forgets the credential (the hub still knows the device until its
    /// owner revokes it).
    pub fn forget(&self) -> Result<bool, AuthError> {
        if let Ok(Some(device)) = self.load() {
            if device.token_store != StoreKind::File {
                let store = TokenStore::attach(&self.data_dir, device.token_store)?;
                store.delete("device", &self.keyring_key(&device.hub))?;
            }
        }
        match std::fs::remove_file(self.file()) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(AuthError::Store(e.to_string())),
        }
    }

    fn save(
        &self,
        hub: &str,
        redeemed: Redeemed,
        store: &TokenStore,
    ) -> Result<StoredDevice, AuthError> {
        let mut device = StoredDevice {
            hub: hub.to_owned(),
            device_id: redeemed.device_id,
            label: redeemed.label,
            scope: redeemed.scope,
            token_store: store.kind(),
            fallback_reason: store.fallback_reason.clone(),
            credential: redeemed.credential,
        };
        let mut on_disk = device.clone();
        if store.kind() != StoreKind::File {
            store.set("device", &self.keyring_key(hub), &device.credential)?;
            on_disk.credential = String::new();
        }
        let text = serde_json::to_vec(&on_disk).map_err(|e| AuthError::Store(e.to_string()))?;
        write_private(&self.file(), &text)?;
        device.credential = String::new();
        Ok(device)
    }

    /// Redeems `token` at `hub` and stores the credential. A lost reply is
    /// retried (same device key, same credential); the hub's refusals
    /// (expired, cancelled, already used, another hub's token, altered)
    /// come back as [`AuthError::Denied`] with its words.
    pub async fn join(
        &self,
        hub: &str,
        token: &str,
        device_name: &str,
    ) -> Result<(StoredDevice, TokenStore), AuthError> {
        let shown = normalize_hub_url(hub);
        let connect = hub.trim().trim_end_matches('/');
        // Said as it is, before anything is made or sent ("builder error"
        // otherwise).
        match reqwest::Url::parse(connect) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
            _ => {
                return Err(AuthError::Network(format!(
                    "{hub:?} is not a hub URL (http:// or https:// and a host, e.g. http://192.168.1.10:8787)"
                )))
            }
        }
        let store = TokenStore::open(&self.data_dir)?;
        let key = self.device_key()?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| AuthError::Network(e.to_string()))?;
        let body = serde_json::json!({
            "token": token.trim(),
            "device_key": key,
            "device_name": device_name,
        });
        let mut last = String::new();
        for attempt in 0..3u64 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(500 * attempt)).await;
            }
            let response = match http
                .post(format!("{connect}/v1/join"))
                .json(&body)
                .send()
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    last = format!("cannot reach the hub at {shown}: {}", e.without_url());
                    continue;
                }
            };
            let status = response.status();
            let text = match response.text().await {
                Ok(text) => text,
                Err(e) => {
                    last = format!("the hub's reply was cut off: {}", e.without_url());
                    continue;
                }
            };
            if status.is_success() {
                let redeemed: Redeemed = serde_json::from_str(&text).map_err(|_| {
                    AuthError::Issuer(format!("{shown} did not answer like a heph hub"))
                })?;
                let device = self.save(&shown, redeemed, &store)?;
                return Ok((device, store));
            }
            let message = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or_else(|| format!("{shown} answered {status}"));
            if status.is_server_error() {
                last = message;
                continue;
            }
            if status == reqwest::StatusCode::NOT_FOUND {
                return Err(AuthError::Denied(format!(
                    "{shown} does not take join tokens (is it a heph hub of this version?)"
                )));
            }
            return Err(AuthError::Denied(message));
        }
        Err(AuthError::Network(last))
    }
}
