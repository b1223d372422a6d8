//! The stored login and its refresh lifecycle.
//!
//! Refresh tokens rotate (single use), so a refresh is issued → in flight →
//! consumed, and only one process may run it: the others wait on a file
//! lock, then read the new tokens. The state is written before the request
//! ("refreshing"), so a process killed mid-refresh leaves a trace; the next
//! one tries that token once, and an `invalid_grant` marks the session
//! "login needed" instead of retrying in a loop.
//!
//! The session (issuer, hub, expiry, state) lives in `auth/session.json`
//! (0600) under the data dir; its tokens in the token store.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::device_login::{now, refresh, revoke_refresh_token, LoginConfig, Tokens};
use crate::token_store::{describe, StoreKind, TokenStore};
use crate::AuthError;

/// How long a logout waits for the issuer to revoke the refresh token: an
/// issuer out of reach must not hold up a logout, which goes on without it.
const REVOKE_WAIT: Duration = Duration::from_secs(5);

/// What a logout did at the issuer ([`Session::revoke`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// The issuer revoked the refresh token.
    Revoked,
    /// The issuer offers no revocation endpoint.
    NotOffered,
    /// No refresh token here to revoke (not logged in, or the keyring does
    /// not answer: the logout itself says so).
    NothingToRevoke,
    /// The issuer refused or could not be reached: the token stays valid
    /// there until it expires. The reason, as users read it.
    Failed(String),
}

impl Revocation {
    /// What a logout tells the user about the refresh token at the issuer,
    /// when there is more to say than that it was revoked.
    pub fn note(&self) -> Option<String> {
        match self {
            Revocation::Revoked | Revocation::NothingToRevoke => None,
            Revocation::NotOffered => Some(
                "the issuer offers no way to revoke this device's refresh token: \
                 it stays valid there until it expires"
                    .into(),
            ),
            Revocation::Failed(why) => Some(format!(
                "the refresh token was not revoked at the issuer ({why}): it stays \
                 valid there until it expires; this device has forgotten it"
            )),
        }
    }
}

/// Refresh this long before the access token expires (at most a quarter
/// of the token's lifetime, so short-lived tokens are not refreshed at once).
const REFRESH_MARGIN_SECS: u64 = 30;

/// Where the stored session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// Tokens usable.
    Ok,
    /// A refresh was started with the stored refresh token.
    Refreshing,
    /// The issuer refused the refresh token: log in again.
    LoginNeeded,
}

/// The stored session.
#[derive(Clone, Serialize, Deserialize)]
pub struct StoredSession {
    /// Issuer.
    pub issuer: String,
    /// Client id.
    pub client_id: String,
    /// Audience.
    pub audience: Option<String>,
    /// The hub these tokens are for.
    pub hub: String,
    /// Where the tokens are kept.
    #[serde(default = "file_store")]
    pub token_store: StoreKind,
    /// Why no keyring took them, when the file does (for :checkhealth).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
    /// In the file only with the file store.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    /// Unix time (s) when the access token expires.
    pub expires_at: u64,
    /// Lifetime (s) of the access token when issued.
    #[serde(default)]
    pub lifetime: u64,
    /// Lifecycle state.
    pub state: SessionState,
    /// Unix time (s) when the hub refused a freshly refreshed token: the
    /// login waits for the user until [`REFUSED_RETRY_SECS`] later, then
    /// tries once more (the cause may have passed: a key rotation the hub
    /// had not caught up with).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused_at: Option<u64>,
}

/// How long a login the hub refused waits before it is tried again.
pub const REFUSED_RETRY_SECS: u64 = 15 * 60;

impl std::fmt::Debug for StoredSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSession")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("hub", &self.hub)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl StoredSession {
    /// Whether a login the hub refused may be tried again (see
    /// [`StoredSession::refused_at`]); never for a refresh the issuer
    /// refused, which only a new login mends.
    fn retry_due(&self) -> bool {
        self.refused_at
            .is_some_and(|at| now() >= at.saturating_add(REFUSED_RETRY_SECS))
    }

    fn needs_refresh(&self) -> bool {
        let margin = REFRESH_MARGIN_SECS.min(self.lifetime / 4);
        self.expires_at <= now() + margin
    }

    fn login_config(&self) -> LoginConfig {
        LoginConfig {
            issuer: self.issuer.clone(),
            client_id: self.client_id.clone(),
            audience: self.audience.clone(),
        }
    }
}

/// The one spelling of a hub URL that keys both a login and the hub's sync
/// state (cursor, last sync), so a stray space or slash still matches.
///
/// It is also the only spelling that is shown, logged or stored: userinfo
/// (`http://alice:secret@proxy…`) is taken out, and kept only by the HTTP
/// client that needs it to connect.
pub fn normalize_hub_url(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}

fn file_store() -> StoreKind {
    StoreKind::File
}

/// The login of one replica (data dir).
#[derive(Debug, Clone)]
pub struct Session {
    dir: PathBuf,
}

impl Session {
    /// The session of the replica in `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join("auth"),
        }
    }

    /// The replica's data dir (the token store keys its file under it).
    fn data_dir(&self) -> &Path {
        self.dir.parent().unwrap_or(&self.dir)
    }

    fn file(&self) -> PathBuf {
        self.dir.join("session.json")
    }

    /// The keyring key: issuer + client id + hub + this replica's data dir.
    /// The refresh lock and session.json are per data dir, so the tokens
    /// are too: two replicas logged in to one hub each rotate their own
    /// refresh token under their own lock, and logging out of one leaves
    /// the other logged in.
    fn key(&self, session: &StoredSession) -> String {
        let dir =
            std::fs::canonicalize(self.data_dir()).unwrap_or_else(|_| self.data_dir().to_owned());
        format!(
            "{}|{}|{}|{}",
            session.issuer,
            session.client_id,
            session.hub,
            dir.display()
        )
    }

    /// Which token store is used (for :checkhealth). `None` when not
    /// logged in.
    pub fn store_description(&self) -> Option<String> {
        self.load().ok().flatten().map(|s| self.describe_store(&s))
    }

    /// Where `session`'s tokens are, as users read it (with the reason,
    /// for a fallback to the file).
    pub fn describe_store(&self, session: &StoredSession) -> String {
        describe(
            session.token_store,
            &self.dir,
            session.fallback_reason.as_deref(),
        )
    }

    /// The stored session, if any.
    pub fn load(&self) -> Result<Option<StoredSession>, AuthError> {
        let Some(mut session) = self.read_record()? else {
            return Ok(None);
        };
        if session.token_store != StoreKind::File {
            let store = TokenStore::attach(self.data_dir(), session.token_store)?;
            let key = self.key(&session);
            session.access_token = store.get("access", &key)?.unwrap_or_default();
            session.refresh_token = store.get("refresh", &key)?;
            if session.access_token.is_empty() && session.refresh_token.is_none() {
                // Removed from the keyring (by the user or a keyring reset):
                // nothing to send or refresh with.
                session.state = SessionState::LoginNeeded;
            }
        }
        Ok(Some(session))
    }

    /// The session file as written: without the tokens a keyring holds
    /// (which only [`Session::load`] reads).
    fn read_record(&self) -> Result<Option<StoredSession>, AuthError> {
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
        serde_json::from_str(&text).map(Some).map_err(|_| {
            AuthError::Store(format!(
                "{} is damaged; log in again",
                self.file().display()
            ))
        })
    }

    fn save(&self, session: &StoredSession) -> Result<(), AuthError> {
        let mut on_disk = session.clone();
        if session.token_store != StoreKind::File {
            let store = TokenStore::attach(self.data_dir(), session.token_store)?;
            let key = self.key(session);
            // The refresh token first: it is the one that cannot be got
            // again. A crash between the two writes then leaves a new
            // refresh token beside an old access token (refreshed on next
            // use), never the reverse.
            match &session.refresh_token {
                Some(rt) => store.set("refresh", &key, rt)?,
                None => store.delete("refresh", &key)?,
            }
            store.set("access", &key, &session.access_token)?;
            on_disk.access_token = String::new();
            on_disk.refresh_token = None;
        }
        let session = &on_disk;
        let fail = |e: std::io::Error| {
            AuthError::Store(format!("cannot write {}: {e}", self.file().display()))
        };
        std::fs::create_dir_all(&self.dir).map_err(fail)?;
        let tmp = self.dir.join("session.json.tmp");
        {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(&tmp).map_err(fail)?;
            let text = serde_json::to_vec(session).map_err(|e| AuthError::Store(e.to_string()))?;
            file.write_all(&text).map_err(fail)?;
            file.sync_all().map_err(fail)?;
        }
        // Atomic: readers see the old or the new session, never half.
        std::fs::rename(&tmp, self.file()).map_err(fail)
    }

    /// Stores a fresh login in the best usable store and returns that store
    /// (its description gives the reason when it fell back to the file).
    pub fn store_login(
        &self,
        config: &LoginConfig,
        hub: &str,
        tokens: Tokens,
    ) -> Result<TokenStore, AuthError> {
        let store = TokenStore::open(self.data_dir())?;
        let previous = self.read_record().ok().flatten();
        let session = StoredSession {
            token_store: store.kind(),
            fallback_reason: store.fallback_reason.clone(),
            issuer: config.issuer.clone(),
            client_id: config.client_id.clone(),
            audience: config.audience.clone(),
            hub: normalize_hub_url(hub),
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            lifetime: tokens.expires_at.saturating_sub(now()),
            expires_at: tokens.expires_at,
            state: SessionState::Ok,
            refused_at: None,
        };
        self.save(&session)?;
        // The login this one replaces (another hub, issuer or client): its
        // keyring entries are under another key, which nothing would name
        // again. Best effort: the new login is stored either way.
        if let Some(old) = previous.filter(|old| {
            old.token_store != StoreKind::File
                && (old.token_store != session.token_store || self.key(old) != self.key(&session))
        }) {
            let forgotten = TokenStore::attach(self.data_dir(), old.token_store).and_then(|s| {
                s.delete("access", &self.key(&old))?;
                s.delete("refresh", &self.key(&old))
            });
            if let Err(error) = forgotten {
                tracing::warn!(%error, "the tokens of the login replaced stay in the keyring");
            }
        }
        Ok(store)
    }

    /// Revokes this login's refresh token at its issuer, first step of a
    /// logout: forgetting the token here leaves any copy of it (a keyring
    /// backup, an old disk) able to get access tokens until it expires.
    /// Bounded by [`REVOKE_WAIT`]; never changes what is stored here.
    pub async fn revoke(&self) -> Revocation {
        let Some(session) = self.load().ok().flatten() else {
            return Revocation::NothingToRevoke;
        };
        let Some(token) = session.refresh_token.filter(|t| !t.is_empty()) else {
            return Revocation::NothingToRevoke;
        };
        let config = LoginConfig {
            issuer: session.issuer.clone(),
            client_id: session.client_id.clone(),
            audience: session.audience.clone(),
        };
        match tokio::time::timeout(REVOKE_WAIT, revoke_refresh_token(&config, &token)).await {
            Ok(Ok(true)) => Revocation::Revoked,
            Ok(Ok(false)) => Revocation::NotOffered,
            Ok(Err(e)) => Revocation::Failed(e.to_string()),
            Err(_) => Revocation::Failed(format!(
                "the issuer at {} did not answer within {} s",
                session.issuer,
                REVOKE_WAIT.as_secs()
            )),
        }
    }

    /// Forgets the tokens.
    pub fn logout(&self) -> Result<bool, AuthError> {
        if let Some(session) = self
            .read_record()
            .ok()
            .flatten()
            .filter(|s| s.token_store != StoreKind::File)
        {
            // The tokens are in a keyring: forgotten there first. Where it
            // cannot be reached, nothing is changed, or its entries would
            // stay in it with nothing left that names them.
            let keep = |e: AuthError| {
                AuthError::Store(format!(
                    "cannot forget the tokens kept in {}: {e}; nothing was changed. \
                     Log out where the keyring can be reached, or delete {} to forget \
                     the login on this device only (the tokens then stay in the keyring)",
                    self.describe_store(&session),
                    self.file().display()
                ))
            };
            let store = TokenStore::attach(self.data_dir(), session.token_store).map_err(keep)?;
            store.delete("access", &self.key(&session)).map_err(keep)?;
            store.delete("refresh", &self.key(&session)).map_err(keep)?;
        }
        match std::fs::remove_file(self.file()) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(AuthError::Store(e.to_string())),
        }
    }

    /// A usable access token for `hub`: `None` when not logged in to it
    /// (an open hub), refreshed first when about to expire.
    pub async fn access_token(&self, hub: &str) -> Result<Option<String>, AuthError> {
        let Some(session) = self.load()? else {
            return Ok(None);
        };
        if session.hub != normalize_hub_url(hub) {
            return Ok(None);
        }
        match session.state {
            SessionState::LoginNeeded if !session.retry_due() => {
                return Err(AuthError::LoginNeeded)
            }
            // Tried again as it is: the hub may take it now, and a refusal
            // costs one refresh, not two. The login counts as usable again
            // (a refusal marks it anew).
            SessionState::LoginNeeded if !session.needs_refresh() => {
                let mut session = session;
                session.state = SessionState::Ok;
                session.refused_at = None;
                self.save(&session)?;
                return Ok(Some(session.access_token));
            }
            SessionState::Ok if !session.needs_refresh() => {
                return Ok(Some(session.access_token));
            }
            _ => {}
        }
        self.refresh_locked(&session.access_token).await.map(Some)
    }

    /// The hub refused `fresh`, a token just refreshed: the login is
    /// marked as needing the user (status "login needed"), so later passes
    /// stop spending refresh tokens on an answer that will not change,
    /// until [`REFUSED_RETRY_SECS`] later or a new login.
    pub fn refused(&self, fresh: &str) -> Result<(), AuthError> {
        match self.load()? {
            Some(mut session) if session.access_token == fresh => {
                session.state = SessionState::LoginNeeded;
                session.refused_at = Some(now());
                self.save(&session)
            }
            _ => Ok(()),
        }
    }

    /// Refreshes now (after the hub answered 401 to `rejected`).
    pub async fn force_refresh(&self, rejected: &str) -> Result<String, AuthError> {
        self.refresh_locked(rejected).await
    }

    async fn lock(&self) -> Result<File, AuthError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| AuthError::Store(e.to_string()))?;
        let file = File::create(self.dir.join("refresh.lock"))
            .map_err(|e| AuthError::Store(e.to_string()))?;
        for _ in 0..600 {
            if file.try_lock().is_ok() {
                return Ok(file);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(AuthError::Store(
            "another process has held the token refresh lock for 30 s".into(),
        ))
    }

    /// Replaces `stale` (the token this process has) with a new one.
    async fn refresh_locked(&self, stale: &str) -> Result<String, AuthError> {
        // The OS drops the lock when a holder dies, so nobody is wedged.
        let _lock = self.lock().await?;
        let mut session = self.load()?.ok_or(AuthError::LoginNeeded)?;
        if session.state == SessionState::Ok && session.access_token != stale {
            // Another process refreshed while we waited: use its token.
            return Ok(session.access_token);
        }
        if session.state == SessionState::LoginNeeded && !session.retry_due() {
            return Err(AuthError::LoginNeeded);
        }
        let Some(refresh_token) = session.refresh_token.clone() else {
            session.state = SessionState::LoginNeeded;
            self.save(&session)?;
            return Err(AuthError::LoginNeeded);
        };
        session.state = SessionState::Refreshing;
        self.save(&session)?;
        let answer = refresh(&session.login_config(), &refresh_token).await;
        // A logout, or a new login, while the request was out wins: this
        // answer belongs to a session that is gone, and saving it would
        // bring that session back.
        match self.load()? {
            Some(now) if now.refresh_token.as_deref() == Some(refresh_token.as_str()) => {}
            // A new login for the same hub: its token serves this pass.
            Some(now) if now.state == SessionState::Ok && now.hub == session.hub => {
                return Ok(now.access_token)
            }
            _ => return Err(AuthError::LoginNeeded),
        }
        match answer {
            Ok(tokens) => {
                session.access_token = tokens.access_token.clone();
                session.refresh_token = tokens.refresh_token;
                session.lifetime = tokens.expires_at.saturating_sub(now());
                session.expires_at = tokens.expires_at;
                session.state = SessionState::Ok;
                session.refused_at = None;
                self.save(&session)?;
                Ok(tokens.access_token)
            }
            Err(AuthError::LoginNeeded) => {
                session.state = SessionState::LoginNeeded;
                self.save(&session)?;
                Err(AuthError::LoginNeeded)
            }
            Err(e) => {
                // The request may not have reached the issuer: keep the
                // token; if it was consumed, the next try says so.
                session.state = SessionState::Ok;
                self.save(&session)?;
                Err(e)
            }
        }
    }
}
