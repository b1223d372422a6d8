//! `heph login` and `heph logout`.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{anyhow, Result};
use clap::Args;
use heph_auth::{device_login, LoginConfig, LoginEvent, Session, TokenStore};
use heph_sync::Config;

use crate::paths::Paths;

/// Options of `heph login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// OIDC issuer URL (or `issuer` in config.toml, or HEPH_ISSUER).
    #[arg(long, env = "HEPH_ISSUER")]
    pub issuer: Option<String>,
    /// OAuth client id (or `client_id` in config.toml, or HEPH_CLIENT_ID).
    #[arg(long, env = "HEPH_CLIENT_ID")]
    pub client_id: Option<String>,
    /// The hub's audience / resource indicator (or `audience` in config.toml).
    #[arg(long, env = "HEPH_AUDIENCE")]
    pub audience: Option<String>,
    /// The hub these tokens are for (or `hub_url` in config.toml).
    #[arg(long)]
    pub hub: Option<String>,
}

/// Options of `heph logout`.
#[derive(Debug, Args)]
pub struct LogoutArgs {}

/// Resolves login settings from flags, then the config file.
pub fn login_settings(args: LoginArgs) -> Result<(LoginConfig, String)> {
    let config = Config::load()?;
    let issuer = args
        .issuer
        .or(config.issuer)
        .ok_or_else(|| anyhow!("no issuer: pass --issuer URL or set issuer in config.toml"))?;
    let client_id = args.client_id.or(config.client_id).ok_or_else(|| {
        anyhow!("no client id: pass --client-id ID or set client_id in config.toml")
    })?;
    let hub = args
        .hub
        .or(config.hub_url)
        .ok_or_else(|| anyhow!("no hub: pass --hub URL or set hub_url in config.toml"))?;
    Ok((
        LoginConfig {
            issuer,
            client_id,
            audience: args.audience.or(config.audience),
        },
        hub,
    ))
}

/// Runs the device-code login.
pub fn login(paths: &Paths, args: LoginArgs) -> Result<ExitCode> {
    let (config, hub) = login_settings(args)?;
    TokenStore::check_forced(&paths.data_dir)?;
    paths.ensure()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let tokens = runtime.block_on(device_login(
        &config,
        |event| match event {
            LoginEvent::Code {
                verification_uri,
                verification_uri_complete,
                user_code,
                expires_in,
            } => {
                eprintln!("Open {verification_uri} and enter the code {user_code}");
                if let Some(complete) = verification_uri_complete {
                    eprintln!("(or open {complete})");
                }
                if expires_in < 120 {
                    eprintln!("The code expires in {expires_in} seconds.");
                } else {
                    eprintln!("The code expires in {} minutes.", expires_in / 60);
                }
                // Machine-readable line for scripts and tests.
                let _ = writeln!(std::io::stdout(), "user_code {user_code}");
            }
            LoginEvent::Polling => eprintln!("Waiting for approval…"),
            LoginEvent::Retrying { reason } => {
                eprintln!("{reason}; still trying until the code expires…")
            }
        },
        tokio::time::sleep,
    ))?;
    // The description says why when no keyring was usable.
    let store = Session::new(&paths.data_dir).store_login(&config, &hub, tokens)?;
    eprintln!("Logged in. Tokens are kept in: {}.", store.describe());
    Ok(ExitCode::SUCCESS)
}

/// Revokes the refresh token at the issuer, then forgets the stored
/// tokens and the device credential.
pub fn logout(paths: &Paths, _args: LogoutArgs) -> Result<ExitCode> {
    let session = Session::new(&paths.data_dir);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let revocation = runtime.block_on(session.revoke());
    let removed = session.logout()?;
    let device = heph_auth::DeviceCredential::new(&paths.data_dir).forget()?;
    if removed || device {
        eprintln!("Logged out.");
    } else {
        eprintln!("Not logged in.");
    }
    if let Some(note) = revocation.note() {
        eprintln!("Note: {note}.");
    }
    Ok(ExitCode::SUCCESS)
}
