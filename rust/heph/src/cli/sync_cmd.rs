//! `heph sync` and `heph status`.

use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;

use crate::paths::Paths;

/// Options of `heph sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Hub URL (overrides the config file).
    #[arg(long)]
    pub hub: Option<String>,
}

/// Options of `heph status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs one sync.
pub fn sync(_paths: &Paths, _args: SyncArgs) -> Result<ExitCode> {
    bail!("sync is not built yet")
}

/// Prints sync state.
pub fn status(_paths: &Paths, _args: StatusArgs) -> Result<ExitCode> {
    bail!("sync is not built yet")
}
