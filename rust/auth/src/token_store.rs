//! Where tokens live: the OS keyring when one is usable (Secret Service
//! over D-Bus, else the kernel keyring), otherwise a file only the user can
//! read, with a warning. Access and refresh tokens are separate entries
//! (some keyrings limit a secret's size), keyed by issuer + client + hub.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use keyring_core::{CredentialStore, Entry};

use crate::AuthError;

/// Which store holds the tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoreKind {
    /// The freedesktop Secret Service (GNOME Keyring, KWallet…).
    SecretService,
    /// The Linux kernel keyring (session keyring).
    KernelKeyring,
    /// A 0600 file in the data dir.
    File,
}

/// A usable token store.
pub struct TokenStore {
    kind: StoreKind,
    keyring: Option<Arc<CredentialStore>>,
    dir: PathBuf,
    /// Why the file store was chosen, when a keyring was wanted.
    pub fallback_reason: Option<String>,
}

const SERVICE: &str = "heph";

/// Writes, reads back and deletes a probe entry: a keyring that is present
/// but locked or without a session keyring fails here, not at login.
fn probe(store: &Arc<CredentialStore>) -> Result<(), String> {
    // A name of its own: processes probing at once must not delete each
    // other's probe.
    static PROBES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let user = format!("probe-{}-{n}", std::process::id());
    let entry = store
        .build(SERVICE, &user, None)
        .map_err(|e| e.to_string())?;
    entry.set_password("probe").map_err(|e| e.to_string())?;
    let read = entry.get_password().map_err(|e| e.to_string())?;
    let _ = entry.delete_credential();
    if read == "probe" {
        Ok(())
    } else {
        Err("the keyring returned something else than was stored".into())
    }
}

#[cfg(target_os = "linux")]
fn secret_service() -> Result<Arc<CredentialStore>, String> {
    let store: Arc<CredentialStore> =
        zbus_secret_service_keyring_store::Store::new().map_err(|e| e.to_string())?;
    Ok(store)
}

#[cfg(target_os = "linux")]
fn kernel_keyring() -> Result<Arc<CredentialStore>, String> {
    let store: Arc<CredentialStore> =
        linux_keyutils_keyring_store::Store::new().map_err(|e| e.to_string())?;
    Ok(store)
}

#[cfg(not(target_os = "linux"))]
fn secret_service() -> Result<Arc<CredentialStore>, String> {
    Err("not available on this platform".into())
}

#[cfg(not(target_os = "linux"))]
fn kernel_keyring() -> Result<Arc<CredentialStore>, String> {
    Err("not available on this platform".into())
}

/// A connection to the keyring of `kind` (not the file store), unprobed.
fn connect(kind: StoreKind) -> Result<Arc<CredentialStore>, String> {
    match kind {
        StoreKind::SecretService => secret_service(),
        StoreKind::KernelKeyring => kernel_keyring(),
        StoreKind::File => Err("the file store is not a keyring".into()),
    }
}

/// A keyring of `kind` that has just stored and read back a secret.
fn keyring(kind: StoreKind) -> Result<Arc<CredentialStore>, String> {
    let store = connect(kind)?;
    probe(&store)?;
    Ok(store)
}

impl StoreKind {
    /// How the store is named to users.
    pub fn label(self) -> &'static str {
        match self {
            StoreKind::SecretService => "Secret Service (OS keyring)",
            StoreKind::KernelKeyring => "kernel keyring (session)",
            StoreKind::File => "file (mode 0600)",
        }
    }
}

impl TokenStore {
    /// The best usable store. `HEPH_TOKEN_STORE` (`secret-service`,
    /// `kernel-keyring`, `file`) forces one.
    pub fn open(data_dir: &Path) -> Result<Self, AuthError> {
        match std::env::var("HEPH_TOKEN_STORE").ok().as_deref() {
            Some("file") => return Self::open_kind(data_dir, StoreKind::File),
            Some("secret-service") => return Self::open_kind(data_dir, StoreKind::SecretService),
            Some("kernel-keyring") => return Self::open_kind(data_dir, StoreKind::KernelKeyring),
            _ => {}
        }
        let mut reasons = Vec::new();
        for (kind, name) in [
            (StoreKind::SecretService, "Secret Service"),
            (StoreKind::KernelKeyring, "kernel keyring"),
        ] {
            match keyring(kind) {
                Ok(store) => return Ok(Self::new(data_dir, kind, Some(store))),
                Err(e) => reasons.push(format!("{name}: {e}")),
            }
        }
        let reason = format!("no usable keyring ({})", reasons.join("; "));
        tracing::warn!("{reason}; tokens are kept in a file only you can read");
        let mut store = Self::new(data_dir, StoreKind::File, None);
        store.fallback_reason = Some(reason);
        Ok(store)
    }

    fn new(data_dir: &Path, kind: StoreKind, keyring: Option<Arc<CredentialStore>>) -> Self {
        Self {
            kind,
            keyring,
            dir: data_dir.join("auth"),
            fallback_reason: None,
        }
    }

    /// Opens the store of `kind`, checking that it stores and reads back.
    pub fn open_kind(data_dir: &Path, kind: StoreKind) -> Result<Self, AuthError> {
        Self::with(data_dir, kind, keyring)
    }

    /// Uses the store of `kind` where a session's tokens already are,
    /// without writing a probe: reading the tokens shows whether it works.
    pub fn attach(data_dir: &Path, kind: StoreKind) -> Result<Self, AuthError> {
        Self::with(data_dir, kind, connect)
    }

    fn with(
        data_dir: &Path,
        kind: StoreKind,
        make: fn(StoreKind) -> Result<Arc<CredentialStore>, String>,
    ) -> Result<Self, AuthError> {
        let store = match kind {
            StoreKind::File => None,
            _ => Some(make(kind).map_err(|e| {
                AuthError::Store(format!(
                    "the keyring holding your tokens is unusable ({e}); log in again"
                ))
            })?),
        };
        Ok(Self::new(data_dir, kind, store))
    }

    /// The store in use.
    pub fn kind(&self) -> StoreKind {
        self.kind
    }

    /// A one-line description for :checkhealth and `heph status`.
    pub fn describe(&self) -> String {
        match self.kind {
            StoreKind::SecretService | StoreKind::KernelKeyring => self.kind.label().into(),
            StoreKind::File => format!(
                "file {} (mode 0600){}",
                self.dir.join("session.json").display(),
                self.fallback_reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
        }
    }

    fn entry(store: &Arc<CredentialStore>, name: &str, key: &str) -> Result<Entry, AuthError> {
        store
            .build(SERVICE, &format!("{name}:{key}"), None)
            .map_err(|e| AuthError::Store(e.to_string()))
    }

    /// Stores a secret in a keyring store (no-op for the file store, whose
    /// secrets live in the session file).
    pub fn set(&self, name: &str, key: &str, secret: &str) -> Result<(), AuthError> {
        if let Some(store) = &self.keyring {
            Self::entry(store, name, key)?
                .set_password(secret)
                .map_err(|e| AuthError::Store(format!("cannot save to the keyring: {e}")))?;
        }
        Ok(())
    }

    /// Reads a secret from a keyring store.
    pub fn get(&self, name: &str, key: &str) -> Result<Option<String>, AuthError> {
        let Some(store) = &self.keyring else {
            return Ok(None);
        };
        match Self::entry(store, name, key)?.get_password() {
            Ok(secret) => Ok(Some(secret)),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(e) => Err(AuthError::Store(format!("cannot read the keyring: {e}"))),
        }
    }

    /// Deletes a secret from a keyring store.
    pub fn delete(&self, name: &str, key: &str) -> Result<(), AuthError> {
        if let Some(store) = &self.keyring {
            match Self::entry(store, name, key)?.delete_credential() {
                Ok(()) | Err(keyring_core::Error::NoEntry) => {}
                Err(e) => {
                    return Err(AuthError::Store(format!(
                        "cannot delete from the keyring: {e}"
                    )))
                }
            }
        }
        Ok(())
    }
}
