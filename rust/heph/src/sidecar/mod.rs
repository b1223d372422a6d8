//! The Neovim sidecar: msgpack-RPC over stdin/stdout.

use std::process::ExitCode;

use anyhow::{bail, Result};

use crate::cli::SidecarArgs;
use crate::paths::Paths;

/// Serves Neovim until stdin closes.
pub fn run(_paths: &Paths, _args: SidecarArgs) -> Result<ExitCode> {
    bail!("the sidecar is not built yet")
}
