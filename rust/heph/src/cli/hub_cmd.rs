//! `heph hub`: run the hub server.

use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;

/// Options of `heph hub`.
#[derive(Debug, Args)]
pub struct HubArgs {}

/// Serves until SIGTERM/SIGINT.
pub fn run(_args: HubArgs) -> Result<ExitCode> {
    bail!("the hub is not built yet")
}
