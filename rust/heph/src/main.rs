//! `heph`: one binary for the scripting CLI, the Neovim sidecar and the hub.

mod cli;
mod local_day;
mod paths;
mod sidecar;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("heph: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
