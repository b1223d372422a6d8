//! `heph login` and `heph logout`.

use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;

use crate::paths::Paths;

/// Options of `heph login`.
#[derive(Debug, Args)]
pub struct LoginArgs {}

/// Options of `heph logout`.
#[derive(Debug, Args)]
pub struct LogoutArgs {}

/// Runs the device-code login.
pub fn login(_paths: &Paths, _args: LoginArgs) -> Result<ExitCode> {
    bail!("login is not built yet")
}

/// Forgets stored tokens.
pub fn logout(_paths: &Paths, _args: LogoutArgs) -> Result<ExitCode> {
    bail!("login is not built yet")
}
