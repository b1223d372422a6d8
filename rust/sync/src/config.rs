//! `$XDG_CONFIG_HOME/heph/config.toml`, shared by the CLI and the sidecar:
//!
//! ```toml
//! hub_url = "http://127.0.0.1:8787"
//! sync_interval_secs = 60
//! ```
//!
//! `HEPH_CONFIG` names another file; `HEPH_HUB_URL`, `HEPH_SYNC_INTERVAL`,
//! `HEPH_ISSUER`, `HEPH_CLIENT_ID` and `HEPH_AUDIENCE` override the file
//! (Neovim's setup() sets them).

use std::path::PathBuf;

use serde::Deserialize;

/// Sync settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The hub, e.g. `http://127.0.0.1:8787`.
    pub hub_url: Option<String>,
    /// Seconds between background syncs (default 60).
    pub sync_interval_secs: Option<u64>,
    /// OIDC issuer for login.
    pub issuer: Option<String>,
    /// OAuth client id for login.
    pub client_id: Option<String>,
    /// Audience (resource) of the hub's tokens.
    pub audience: Option<String>,
}

/// Errors reading the config file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("{path} is not a valid heph config: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// The config file's path.
    pub fn path() -> Option<PathBuf> {
        if let Some(path) = std::env::var_os("HEPH_CONFIG") {
            return Some(PathBuf::from(path));
        }
        dirs::config_dir().map(|d| d.join("heph").join("config.toml"))
    }

    /// Reads the file (absent is fine) and applies the environment.
    pub fn load() -> Result<Self, ConfigError> {
        let mut config = match Self::path() {
            Some(path) if path.exists() => {
                let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                toml::from_str(&text).map_err(|e| ConfigError::Invalid {
                    path,
                    message: e.to_string(),
                })?
            }
            _ => Config::default(),
        };
        if let Ok(url) = std::env::var("HEPH_HUB_URL") {
            if !url.trim().is_empty() {
                config.hub_url = Some(url.trim().to_owned());
            }
        }
        for (var, field) in [
            ("HEPH_ISSUER", &mut config.issuer),
            ("HEPH_CLIENT_ID", &mut config.client_id),
            ("HEPH_AUDIENCE", &mut config.audience),
        ] {
            if let Ok(value) = std::env::var(var) {
                if !value.trim().is_empty() {
                    *field = Some(value.trim().to_owned());
                }
            }
        }
        if let Some(secs) = std::env::var("HEPH_SYNC_INTERVAL")
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            config.sync_interval_secs = Some(secs);
        }
        Ok(config)
    }

    /// Seconds between background syncs.
    pub fn interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.sync_interval_secs.unwrap_or(60).max(5))
    }
}
