//! `heph join URL TOKEN`: redeem a join token and keep the device
//! credential in the token store.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use heph_auth::{DeviceCredential, TokenStore};

use crate::paths::Paths;

/// Options of `heph join`.
#[derive(Debug, Args)]
pub struct JoinArgs {
    /// The hub's URL, e.g. http://192.168.1.10:8787.
    pub url: String,
    /// The join token from `heph hub join-token create` (read from stdin
    /// when `-`).
    pub token: String,
    /// This device's name, shown by `heph hub devices` (default: host name).
    #[arg(long)]
    pub name: Option<String>,
}

/// Redeems the token and stores the credential.
pub fn join(paths: &Paths, args: JoinArgs) -> Result<ExitCode> {
    TokenStore::check_forced(&paths.data_dir)?;
    paths.ensure()?;
    let token = if args.token == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_line(&mut text)
            .context("cannot read the token from stdin")?;
        text.trim().to_owned()
    } else {
        args.token
    };
    let name = args.name.unwrap_or_else(crate::credentials::host_name);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let credential = DeviceCredential::new(&paths.data_dir);
    let (device, _) = runtime
        .block_on(credential.join(&args.url, &token, &name))
        .with_context(|| format!("cannot join {}", heph_sync::normalize_hub_url(&args.url)))?;
    eprintln!(
        "Joined {} as device {} (label {}, scope {}). The credential is kept in: {}.",
        device.hub,
        device.device_id,
        device.label,
        device.scope,
        credential.describe_store(&device)
    );
    let configured = heph_sync::Config::load()
        .ok()
        .and_then(|c| c.hub_url)
        .map(|u| heph_sync::normalize_hub_url(&u));
    if configured.as_deref() != Some(device.hub.as_str()) {
        eprintln!(
            "To sync with it, set hub_url = \"{}\" in config.toml (or pass --hub to heph sync).",
            device.hub
        );
    }
    Ok(ExitCode::SUCCESS)
}
