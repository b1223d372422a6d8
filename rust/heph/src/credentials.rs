//! The bearer tokens sync sends, as the CLI and the sidecar wire them in:
//! a device credential from a join token when this replica joined the hub,
//! else the OIDC login, else none (an open hub).

use std::path::{Path, PathBuf};

use heph_auth::{AuthError, DeviceCredential, Session, SessionState};

/// Tokens from what this replica stored: a device credential or a login.
pub struct StoredCredentials {
    data_dir: PathBuf,
}

impl StoredCredentials {
    /// The credentials of the replica in `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            data_dir: data_dir.to_owned(),
        }
    }
}

/// Sync awaits these on its own runtime (the sidecar's, or the one
/// `heph sync` makes), so a refresh is just another request on it.
#[async_trait::async_trait]
impl heph_sync::TokenProvider for StoredCredentials {
    async fn token(&self, hub: &str) -> Result<Option<String>, AuthError> {
        if let Some(credential) = DeviceCredential::new(&self.data_dir).credential_for(hub)? {
            return Ok(Some(credential));
        }
        Session::new(&self.data_dir).access_token(hub).await
    }

    async fn refresh(
        &self,
        _hub: &str,
        rejected: &str,
        message: &str,
    ) -> Result<String, AuthError> {
        if rejected.starts_with(heph_hub::join::CREDENTIAL_PREFIX) {
            // A device credential is not refreshed: the owner removed it.
            return Err(AuthError::Removed(message.to_owned()));
        }
        Session::new(&self.data_dir).force_refresh(rejected).await
    }

    async fn refused_after_refresh(&self, _hub: &str, fresh: &str) {
        if let Err(error) = Session::new(&self.data_dir).refused(fresh) {
            tracing::warn!(%error, "could not mark the login as refused");
        }
    }
}

/// How this replica authenticates to `hub`, as `heph status` and
/// `:checkhealth heph` say it, and where its secret is kept.
pub fn describe(data_dir: &Path, hub: Option<&str>) -> (String, Option<String>) {
    let device = DeviceCredential::new(data_dir);
    match device.load() {
        Ok(Some(d)) if hub.is_none_or(|h| heph_auth::normalize_hub_url(h) == d.hub) => {
            let store = device.describe_store(&d);
            return (d.summary(), Some(store));
        }
        Ok(_) => {}
        Err(e) => return (e.to_string(), None),
    }
    let (login, store) = login(data_dir, hub);
    let text = match login {
        Login::LoggedIn => "OIDC login".to_owned(),
        Login::Needed => "OIDC login (login needed)".to_owned(),
        Login::OtherHub(other) => format!("not logged in to this hub (the login is for {other})"),
        Login::None => "not logged in".to_owned(),
        Login::Unreadable(e) => e,
    };
    (text, store)
}

/// The state of a replica's OIDC login.
pub enum Login {
    /// Tokens are stored and usable (or being refreshed).
    LoggedIn,
    /// The refresh was refused: log in again.
    Needed,
    /// A login for another hub than the one asked about (its URL).
    OtherHub(String),
    /// No login stored.
    None,
    /// The stored session cannot be read (the message says why).
    Unreadable(String),
}

/// The login of the replica in `data_dir` (for `hub`, when given), and
/// where its tokens are kept.
pub fn login(data_dir: &Path, hub: Option<&str>) -> (Login, Option<String>) {
    let session = Session::new(data_dir);
    match session.load() {
        Ok(Some(s)) if hub.is_some_and(|h| heph_auth::normalize_hub_url(h) != s.hub) => (
            Login::OtherHub(s.hub.clone()),
            Some(session.describe_store(&s)),
        ),
        Ok(Some(s)) => {
            let state = match s.state {
                SessionState::LoginNeeded => Login::Needed,
                SessionState::Ok | SessionState::Refreshing => Login::LoggedIn,
            };
            (state, Some(session.describe_store(&s)))
        }
        Ok(None) => (Login::None, None),
        Err(e) => (Login::Unreadable(e.to_string()), None),
    }
}

/// This machine's name, for the hub's device list.
pub fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unnamed device".into())
}
