//! Join tokens and device credentials: stateless blobs signed with the
//! hub's secret (HMAC-SHA256). A token names its hub, so one made by
//! another hub is refused as such, not as "tampered".
//!
//! Token text: `hj1.<base64url(JSON claims)>.<base64url(mac)>`.
//! Credential text: `hd1_<base64url(HMAC(secret, token id | device key))>`:
//! the hub can compute it again for a retried redeem, so it never keeps it.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const TOKEN_PREFIX: &str = "hj1.";
/// Every device credential starts with this, so the hub knows which
/// verifier a bearer token is for.
pub const CREDENTIAL_PREFIX: &str = "hd1_";

/// What a device may do with its credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Push and pull.
    Full,
    /// Push only: a phone shortcut or a script that adds tasks.
    Capture,
}

impl Scope {
    /// `full` or `capture`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Full => "full",
            Scope::Capture => "capture",
        }
    }

    /// Parses `full` or `capture`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "full" => Some(Scope::Full),
            "capture" => Some(Scope::Capture),
            _ => None,
        }
    }
}

/// What a join token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The hub that made it.
    pub hub: String,
    /// The token's id (also the id of the device that redeems it).
    pub id: String,
    /// Expiry, unix seconds.
    pub exp: u64,
    /// The owner's label for the device-to-be ("phone").
    pub label: String,
    /// What the credential will allow.
    pub scope: Scope,
}

/// Why a token text is refused before its state is looked at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a heph join token at all.
    #[error("this is not a heph join token (check that it was copied whole)")]
    Malformed,
    /// Made by another hub.
    #[error("this join token was made by another hub; create one on this hub with `heph hub join-token create`")]
    OtherHub,
    /// The signature does not match.
    #[error("the join token's signature is invalid: it was altered or mistyped")]
    BadSignature,
}

/// The hub's signing secret, kept in a file of mode 0600.
pub struct HubSecret {
    key: [u8; 32],
}

impl std::fmt::Debug for HubSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubSecret")
            .field("hub_id", &self.hub_id())
            .finish_non_exhaustive()
    }
}

type HmacSha256 = Hmac<Sha256>;

/// `n` random bytes from the OS.
pub fn random_bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).map_err(std::io::Error::other)?;
    Ok(bytes)
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of `text`, hex: how the hub stores tokens, keys and credentials.
pub fn hash(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

impl HubSecret {
    /// The secret file that goes with the hub database `db`.
    pub fn path_for(db: &Path) -> PathBuf {
        let mut name = db.as_os_str().to_owned();
        name.push(".secret");
        PathBuf::from(name)
    }

    /// Reads the secret, creating it (mode 0600) on first use.
    pub fn load_or_create(path: &Path) -> std::io::Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => return Self::from_file(path, &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let key = random_bytes::<32>()?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(path) {
            Ok(mut file) => {
                use std::io::Write;
                file.write_all(hex(&key).as_bytes())?;
                file.sync_all()?;
                Ok(Self { key })
            }
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Self::from_file(path, &std::fs::read(path)?)
            }
            Err(e) => Err(e),
        }
    }

    /// Reads an existing secret; `None` when there is none yet.
    pub fn load(path: &Path) -> std::io::Result<Option<Self>> {
        match std::fs::read(path) {
            Ok(bytes) => Self::from_file(path, &bytes).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn from_file(path: &Path, bytes: &[u8]) -> std::io::Result<Self> {
        let damaged = || {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{} is damaged: it must hold 64 hex digits (delete it to make a new \
                     secret; every join token and device credential then stops working)",
                    path.display()
                ),
            )
        };
        let text = std::str::from_utf8(bytes).map_err(|_| damaged())?.trim();
        if text.len() != 64 {
            return Err(damaged());
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| damaged())?;
        }
        Ok(Self { key })
    }

    /// A secret from raw bytes (tests).
    pub fn from_key(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn mac(&self, parts: &[&[u8]]) -> HmacSha256 {
        // HMAC takes keys of any length; 32 bytes never fail.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac
    }

    /// The hub's public id: names the hub in its tokens.
    pub fn hub_id(&self) -> String {
        hex(&self.mac(&[b"hub-id"]).finalize().into_bytes()[..8])
    }

    /// Signs new claims into token text.
    pub fn sign(&self, claims: &Claims) -> String {
        let payload = serde_json::to_vec(claims).unwrap_or_default();
        let mac = self.mac(&[b"join-token", &payload]).finalize().into_bytes();
        format!("{TOKEN_PREFIX}{}.{}", B64.encode(&payload), B64.encode(mac))
    }

    /// The claims of a token this hub signed.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let body = token
            .trim()
            .strip_prefix(TOKEN_PREFIX)
            .ok_or(TokenError::Malformed)?;
        let (payload, mac) = body.split_once('.').ok_or(TokenError::Malformed)?;
        let payload = B64.decode(payload).map_err(|_| TokenError::Malformed)?;
        let mac = B64.decode(mac).map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
        if claims.hub != self.hub_id() {
            return Err(TokenError::OtherHub);
        }
        self.mac(&[b"join-token", &payload])
            .verify_slice(&mac)
            .map_err(|_| TokenError::BadSignature)?;
        Ok(claims)
    }

    /// The credential of the device with key `device_key` that redeemed
    /// token `token_id`.
    pub fn credential(&self, token_id: &str, device_key: &str) -> String {
        let mac = self
            .mac(&[
                b"device-credential",
                token_id.as_bytes(),
                device_key.as_bytes(),
            ])
            .finalize()
            .into_bytes();
        format!("{CREDENTIAL_PREFIX}{}", B64.encode(mac))
    }
}

/// A new token id: 12 hex digits, short enough to type in `revoke`.
pub fn new_token_id() -> std::io::Result<String> {
    Ok(hex(&random_bytes::<6>()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(hub: String) -> Claims {
        Claims {
            hub,
            id: "0123456789ab".into(),
            exp: 2_000_000_000,
            label: "phone".into(),
            scope: Scope::Capture,
        }
    }

    #[test]
    fn tokens_round_trip_and_refusals_are_distinct() {
        let hub = HubSecret::from_key([7; 32]);
        let other = HubSecret::from_key([8; 32]);
        let token = hub.sign(&claims(hub.hub_id()));
        assert_eq!(hub.verify(&token), Ok(claims(hub.hub_id())));
        assert_eq!(
            hub.verify(&other.sign(&claims(other.hub_id()))),
            Err(TokenError::OtherHub)
        );
        // A forged token that claims this hub but is signed by another.
        assert_eq!(
            hub.verify(&other.sign(&claims(hub.hub_id()))),
            Err(TokenError::BadSignature)
        );
        // Flip the signature's first character (all of its bits are used).
        let dot = token.rfind('.').unwrap() + 1;
        let flipped = if &token[dot..=dot] == "A" { "B" } else { "A" };
        let tampered = format!("{}{flipped}{}", &token[..dot], &token[dot + 1..]);
        assert_eq!(hub.verify(&tampered), Err(TokenError::BadSignature));
        assert_eq!(hub.verify("hello"), Err(TokenError::Malformed));
        assert_eq!(hub.verify("hj1.!!.??"), Err(TokenError::Malformed));
    }

    #[test]
    fn the_credential_is_recomputable_and_per_device() {
        let hub = HubSecret::from_key([7; 32]);
        let a = hub.credential("t1", "device-a");
        assert_eq!(a, hub.credential("t1", "device-a"));
        assert_ne!(a, hub.credential("t1", "device-b"));
        assert!(a.starts_with(CREDENTIAL_PREFIX));
    }

    #[test]
    fn the_secret_file_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let path = HubSecret::path_for(&dir.path().join("hub.db"));
        let first = HubSecret::load_or_create(&path).unwrap();
        let again = HubSecret::load_or_create(&path).unwrap();
        assert_eq!(first.hub_id(), again.hub_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert!(!format!("{first:?}").contains(&hex(&first.key)));
    }
}
