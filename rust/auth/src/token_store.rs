//! Where tokens live: the OS keyring when one is usable (on Linux the
//! Secret Service over D-Bus, else the kernel keyring; the login Keychain on
//! macOS; the Credential Manager on Windows), otherwise a file only the user
//! can read, with a warning. Access and refresh tokens are separate entries,
//! keyed by issuer + client + hub; a token longer than its keyring allows is
//! split over numbered entries.

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
    /// The macOS login Keychain.
    Keychain,
    /// The Windows Credential Manager.
    CredentialManager,
    /// A file only the user can read, in the data dir.
    File,
}

impl StoreKind {
    /// The keyrings worth trying on this platform, best first.
    pub fn native() -> &'static [StoreKind] {
        if cfg!(target_os = "linux") {
            &[StoreKind::SecretService, StoreKind::KernelKeyring]
        } else if cfg!(target_os = "macos") {
            &[StoreKind::Keychain]
        } else if cfg!(windows) {
            &[StoreKind::CredentialManager]
        } else {
            &[]
        }
    }

    /// The name `HEPH_TOKEN_STORE` takes (the same as in session.json).
    pub fn id(self) -> &'static str {
        match self {
            StoreKind::SecretService => "secret-service",
            StoreKind::KernelKeyring => "kernel-keyring",
            StoreKind::Keychain => "keychain",
            StoreKind::CredentialManager => "credential-manager",
            StoreKind::File => "file",
        }
    }

    fn from_id(id: &str) -> Option<Self> {
        [
            StoreKind::SecretService,
            StoreKind::KernelKeyring,
            StoreKind::Keychain,
            StoreKind::CredentialManager,
            StoreKind::File,
        ]
        .into_iter()
        .find(|kind| kind.id() == id)
    }

    /// How the store is named to users.
    pub fn label(self) -> &'static str {
        match self {
            StoreKind::SecretService => "Secret Service (OS keyring)",
            StoreKind::KernelKeyring => "kernel keyring (session)",
            StoreKind::Keychain => "macOS Keychain",
            StoreKind::CredentialManager => "Windows Credential Manager",
            StoreKind::File if cfg!(unix) => "file (mode 0600)",
            StoreKind::File => "file (your account only)",
        }
    }

    /// The longest secret one entry takes, in characters. The Credential
    /// Manager holds 2,560 bytes of UTF-16 (1,280 characters), less than
    /// some providers' JWTs.
    fn max_chars(self) -> Option<usize> {
        match self {
            StoreKind::CredentialManager => Some(1_000),
            _ => None,
        }
    }
}

/// A usable token store.
pub struct TokenStore {
    kind: StoreKind,
    keyring: Option<Arc<CredentialStore>>,
    /// Secrets longer than this are split over several entries.
    max_chars: Option<usize>,
    dir: PathBuf,
    /// Why the file store was chosen, when a keyring was wanted.
    pub fallback_reason: Option<String>,
}

const SERVICE: &str = "heph";

/// What the first entry of a split secret holds, followed by the number of
/// parts. No token starts with it; a secret that does is split anyway, so
/// the first entry is never ambiguous.
const SPLIT_MARK: &str = "heph-split:";

/// More parts than this means the entry is not ours or is damaged.
const MAX_PARTS: usize = 64;

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

/// Where tokens of `kind` are, as users read it: the keyring's name, or the
/// session file under `auth_dir` with the reason no keyring took them.
pub(crate) fn describe(kind: StoreKind, auth_dir: &Path, fallback_reason: Option<&str>) -> String {
    match kind {
        StoreKind::File => format!(
            "file {}{}{}",
            auth_dir.join("session.json").display(),
            if cfg!(unix) { " (mode 0600)" } else { "" },
            fallback_reason
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ),
        keyring => keyring.label().into(),
    }
}

/// A connection to the keyring of `kind` (not the file store), unprobed.
/// Each platform's store crate is built only on its platform.
fn connect(kind: StoreKind) -> Result<Arc<CredentialStore>, String> {
    let store: Arc<CredentialStore> = match kind {
        #[cfg(target_os = "linux")]
        StoreKind::SecretService => {
            zbus_secret_service_keyring_store::Store::new().map_err(|e| e.to_string())?
        }
        #[cfg(target_os = "linux")]
        StoreKind::KernelKeyring => {
            linux_keyutils_keyring_store::Store::new().map_err(|e| e.to_string())?
        }
        #[cfg(target_os = "macos")]
        StoreKind::Keychain => {
            apple_native_keyring_store::keychain::Store::new().map_err(|e| e.to_string())?
        }
        #[cfg(windows)]
        StoreKind::CredentialManager => {
            windows_native_keyring_store::Store::new().map_err(|e| e.to_string())?
        }
        StoreKind::File => return Err("the file store is not a keyring".into()),
        #[allow(unreachable_patterns)]
        other => return Err(format!("no {} on this platform", other.label())),
    };
    Ok(store)
}

/// A keyring of `kind` that has just stored and read back a secret.
fn keyring(kind: StoreKind) -> Result<Arc<CredentialStore>, String> {
    let store = connect(kind)?;
    probe(&store)?;
    Ok(store)
}

impl TokenStore {
    /// The store `HEPH_TOKEN_STORE` forces (`secret-service`,
    /// `kernel-keyring`, `keychain`, `credential-manager`, `file`), if any.
    /// Logins check it before they start, so a typo does not cost a login.
    pub fn forced() -> Result<Option<StoreKind>, AuthError> {
        let Ok(id) = std::env::var("HEPH_TOKEN_STORE") else {
            return Ok(None);
        };
        StoreKind::from_id(&id).map(Some).ok_or_else(|| {
            AuthError::Store(format!(
                "HEPH_TOKEN_STORE={id:?} is not a token store (secret-service, \
                 kernel-keyring, keychain, credential-manager or file)"
            ))
        })
    }

    /// Checks, before a login or a join asks anything of the user, that
    /// the store `HEPH_TOKEN_STORE` forces (if any) exists and can be used
    /// here: found out only after the approval, the tokens would be lost.
    pub fn check_forced(data_dir: &Path) -> Result<(), AuthError> {
        if Self::forced()?.is_some() {
            Self::open(data_dir)?;
        }
        Ok(())
    }

    /// The best usable store, or the one `HEPH_TOKEN_STORE` forces.
    pub fn open(data_dir: &Path) -> Result<Self, AuthError> {
        if let Some(kind) = Self::forced()? {
            return Self::open_kind(data_dir, kind);
        }
        let mut reasons = Vec::new();
        for &kind in StoreKind::native() {
            match keyring(kind) {
                Ok(store) => return Ok(Self::new(data_dir, kind, Some(store))),
                Err(e) => reasons.push(format!("{}: {e}", kind.label())),
            }
        }
        let reason = if reasons.is_empty() {
            "no keyring is supported on this platform".to_owned()
        } else {
            format!("no usable keyring ({})", reasons.join("; "))
        };
        tracing::warn!("{reason}; tokens are kept in a file only you can read");
        let mut store = Self::new(data_dir, StoreKind::File, None);
        store.fallback_reason = Some(reason);
        Ok(store)
    }

    fn new(data_dir: &Path, kind: StoreKind, keyring: Option<Arc<CredentialStore>>) -> Self {
        Self {
            kind,
            keyring,
            max_chars: kind.max_chars(),
            dir: data_dir.join("auth"),
            fallback_reason: None,
        }
    }

    /// Opens the store of `kind`, checking that it stores and reads back.
    pub fn open_kind(data_dir: &Path, kind: StoreKind) -> Result<Self, AuthError> {
        Self::with(data_dir, kind, keyring)
            .map_err(|e| AuthError::Store(format!("the {} is unusable: {e}", kind.label())))
    }

    /// Uses the store of `kind` where a session's tokens already are,
    /// without writing a probe: reading the tokens shows whether it works.
    pub fn attach(data_dir: &Path, kind: StoreKind) -> Result<Self, AuthError> {
        Self::with(data_dir, kind, connect).map_err(|e| {
            AuthError::Store(format!(
                "the keyring holding your tokens is unusable ({e}); log in again"
            ))
        })
    }

    fn with(
        data_dir: &Path,
        kind: StoreKind,
        make: fn(StoreKind) -> Result<Arc<CredentialStore>, String>,
    ) -> Result<Self, String> {
        let store = match kind {
            StoreKind::File => None,
            _ => Some(make(kind)?),
        };
        Ok(Self::new(data_dir, kind, store))
    }

    /// The store in use.
    pub fn kind(&self) -> StoreKind {
        self.kind
    }

    /// A one-line description for :checkhealth and `heph status`.
    pub fn describe(&self) -> String {
        describe(self.kind, &self.dir, self.fallback_reason.as_deref())
    }

    /// The entry for part `part` of a secret (0: the first, which holds the
    /// whole secret or the split mark).
    fn entry(
        store: &Arc<CredentialStore>,
        name: &str,
        key: &str,
        part: usize,
    ) -> Result<Entry, AuthError> {
        let user = match part {
            0 => format!("{name}:{key}"),
            n => format!("{name}#{n}:{key}"),
        };
        store
            .build(SERVICE, &user, None)
            .map_err(|e| AuthError::Store(e.to_string()))
    }

    fn read(entry: &Entry) -> Result<Option<String>, AuthError> {
        match entry.get_password() {
            Ok(secret) => Ok(Some(secret)),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(e) => Err(AuthError::Store(format!("cannot read the keyring: {e}"))),
        }
    }

    fn remove(entry: &Entry) -> Result<(), AuthError> {
        match entry.delete_credential() {
            Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
            Err(e) => Err(AuthError::Store(format!(
                "cannot delete from the keyring: {e}"
            ))),
        }
    }

    /// How many parts the first entry says follow it (0: not split).
    fn parts_of(first: &str) -> Result<usize, AuthError> {
        let Some(count) = first.strip_prefix(SPLIT_MARK) else {
            return Ok(0);
        };
        match count.parse::<usize>() {
            Ok(n) if (1..=MAX_PARTS).contains(&n) => Ok(n),
            _ => Err(AuthError::Store(
                "a token in the keyring is damaged; log in again".into(),
            )),
        }
    }

    /// Stores a secret in a keyring store (no-op for the file store, whose
    /// secrets live in the session file).
    pub fn set(&self, name: &str, key: &str, secret: &str) -> Result<(), AuthError> {
        let Some(store) = &self.keyring else {
            return Ok(());
        };
        let save = |part: usize, text: &str| {
            Self::entry(store, name, key, part)?
                .set_password(text)
                .map_err(|e| AuthError::Store(format!("cannot save to the keyring: {e}")))
        };
        let first = Self::entry(store, name, key, 0)?;
        let old_parts = Self::read(&first)?
            .map(|old| Self::parts_of(&old).unwrap_or(MAX_PARTS))
            .unwrap_or(0);
        let chars: Vec<char> = secret.chars().collect();
        let limit = self.max_chars.unwrap_or(usize::MAX).max(1);
        let parts = if chars.len() <= limit && !secret.starts_with(SPLIT_MARK) {
            save(0, secret)?;
            0
        } else {
            let pieces: Vec<String> = chars.chunks(limit).map(|c| c.iter().collect()).collect();
            if pieces.len() > MAX_PARTS {
                return Err(AuthError::Store(format!(
                    "a token of {} characters is too long for the {}",
                    chars.len(),
                    self.kind.label()
                )));
            }
            // Parts first: the first entry points at complete parts only.
            for (i, piece) in pieces.iter().enumerate() {
                save(i + 1, piece)?;
            }
            save(0, &format!("{SPLIT_MARK}{}", pieces.len()))?;
            pieces.len()
        };
        for stale in parts + 1..=old_parts {
            Self::remove(&Self::entry(store, name, key, stale)?)?;
        }
        Ok(())
    }

    /// Reads a secret from a keyring store.
    pub fn get(&self, name: &str, key: &str) -> Result<Option<String>, AuthError> {
        let Some(store) = &self.keyring else {
            return Ok(None);
        };
        let Some(first) = Self::read(&Self::entry(store, name, key, 0)?)? else {
            return Ok(None);
        };
        let parts = Self::parts_of(&first)?;
        if parts == 0 {
            return Ok(Some(first));
        }
        let mut secret = String::new();
        for part in 1..=parts {
            match Self::read(&Self::entry(store, name, key, part)?)? {
                Some(piece) => secret.push_str(&piece),
                None => {
                    return Err(AuthError::Store(
                        "a token in the keyring is incomplete; log in again".into(),
                    ))
                }
            }
        }
        Ok(Some(secret))
    }

    /// Deletes a secret from a keyring store.
    pub fn delete(&self, name: &str, key: &str) -> Result<(), AuthError> {
        let Some(store) = &self.keyring else {
            return Ok(());
        };
        let first = Self::entry(store, name, key, 0)?;
        let parts = match Self::read(&first) {
            Ok(Some(text)) => Self::parts_of(&text).unwrap_or(MAX_PARTS),
            _ => 0,
        };
        for part in 1..=parts {
            Self::remove(&Self::entry(store, name, key, part)?)?;
        }
        Self::remove(&first)
    }
}

#[cfg(test)]
mod tests {
    //! Splitting long secrets, against the real keyrings of
    //! tests/keyring-session.sh (skipped elsewhere unless
    //! HEPH_REQUIRE_KEYRING=1 asks for them).
    use super::*;

    fn stores() -> Vec<TokenStore> {
        let dir = std::env::temp_dir();
        let mut found = Vec::new();
        for &kind in StoreKind::native() {
            match TokenStore::open_kind(&dir, kind) {
                Ok(mut store) => {
                    store.max_chars = Some(7);
                    found.push(store);
                }
                Err(e) if std::env::var("HEPH_REQUIRE_KEYRING").as_deref() == Ok("1") => {
                    panic!("{} is required here but unusable: {e}", kind.label())
                }
                Err(e) => eprintln!("skipping {}: {e}", kind.label()),
            }
        }
        found
    }

    fn key(test: &str) -> String {
        format!(
            "http://issuer.test|{test}|http://127.0.0.1:{}",
            std::process::id()
        )
    }

    fn part_exists(store: &TokenStore, name: &str, key: &str, part: usize) -> bool {
        let keyring = store.keyring.as_ref().unwrap();
        let entry = TokenStore::entry(keyring, name, key, part).unwrap();
        TokenStore::read(&entry).unwrap().is_some()
    }

    #[test]
    fn a_long_secret_is_split_and_joined() {
        for store in stores() {
            let key = key("split");
            let long = "eyJhbGciOiJSUzI1NiJ9.payload-of-some-length.signature";
            store.set("access", &key, long).unwrap();
            assert_eq!(store.get("access", &key).unwrap().as_deref(), Some(long));
            let parts = long.len().div_ceil(7);
            assert!(
                part_exists(&store, "access", &key, parts),
                "{:?}",
                store.kind
            );
            assert!(!part_exists(&store, "access", &key, parts + 1));

            // A shorter secret replaces it and leaves no stale parts behind.
            store.set("access", &key, "short").unwrap();
            assert_eq!(store.get("access", &key).unwrap().as_deref(), Some("short"));
            assert!(!part_exists(&store, "access", &key, 1), "{:?}", store.kind);

            // A secret that looks like the mark is stored split, unambiguously.
            store.set("access", &key, "heph-split:3").unwrap();
            assert_eq!(
                store.get("access", &key).unwrap().as_deref(),
                Some("heph-split:3")
            );

            store.set("access", &key, long).unwrap();
            store.delete("access", &key).unwrap();
            assert_eq!(store.get("access", &key).unwrap(), None);
            for part in 0..=parts {
                assert!(
                    !part_exists(&store, "access", &key, part),
                    "part {part} left"
                );
            }
        }
    }

    #[test]
    fn a_damaged_or_incomplete_split_is_an_error_not_a_token() {
        for store in stores() {
            let key = key("damaged");
            let keyring = store.keyring.clone().unwrap();
            let first = TokenStore::entry(&keyring, "refresh", &key, 0).unwrap();

            first.set_password("heph-split:9999").unwrap();
            let err = store.get("refresh", &key).unwrap_err().to_string();
            assert!(err.contains("damaged"), "{err}");

            store.set("refresh", &key, "0123456789abcdef").unwrap();
            let second = TokenStore::entry(&keyring, "refresh", &key, 2).unwrap();
            second.delete_credential().unwrap();
            let err = store.get("refresh", &key).unwrap_err().to_string();
            assert!(err.contains("incomplete"), "{err}");

            store.delete("refresh", &key).unwrap();
            assert_eq!(store.get("refresh", &key).unwrap(), None);
        }
    }

    #[test]
    fn store_ids_are_the_names_in_session_files() {
        for kind in [
            StoreKind::SecretService,
            StoreKind::KernelKeyring,
            StoreKind::Keychain,
            StoreKind::CredentialManager,
            StoreKind::File,
        ] {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.id()));
            assert_eq!(StoreKind::from_id(kind.id()), Some(kind));
        }
        assert_eq!(StoreKind::from_id("wallet"), None);
    }
}
