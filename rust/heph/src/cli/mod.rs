//! Command-line interface: argument definitions and dispatch.

/// `println!` that returns the error instead of panicking when stdout is
/// closed (`heph dump | head -1`): `main` then exits quietly, as `cat` does.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)?
    }};
}

mod auth_cmd;
mod hub_cmd;
mod hub_owner;
mod join_cmd;
pub(crate) mod nodes;
mod sync_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::paths::Paths;

/// heph: tasks, notes and a daily journal, synced through a hub.
#[derive(Debug, Parser)]
#[command(name = "heph", version, about)]
pub struct Cli {
    /// Directory of the local replica (default: $XDG_DATA_HOME/heph).
    #[arg(long, global = true, env = "HEPH_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// Every subcommand of the `heph` binary.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Add a task or note; prints the new id.
    Add(nodes::AddArgs),
    /// List open tasks (or every node with --all).
    List(nodes::ListArgs),
    /// Show one node.
    Show(nodes::ShowArgs),
    /// Set fields: heph set ID title=... status=... due=... project=... tags=a,b
    Set(nodes::SetArgs),
    /// Mark a task done.
    Done(nodes::IdArg),
    /// Delete a node (it can be restored with `heph restore`).
    Rm(nodes::IdArg),
    /// Restore a deleted node.
    Restore(nodes::IdArg),
    /// Full-text search over titles and bodies.
    Search(nodes::SearchArgs),
    /// Print the id of a day's journal (today by default), creating it.
    Journal(nodes::JournalArgs),
    /// Write every op as JSON lines to stdout (held body deltas last).
    ExportOps,
    /// Read ops as JSON lines from stdin and apply them.
    ImportOps,
    /// Run the msgpack-RPC sidecar for Neovim on stdin/stdout.
    Sidecar(crate::sidecar::SidecarArgs),
    /// Push and pull ops with the hub once.
    Sync(sync_cmd::SyncArgs),
    /// Show sync state: hub URL, last sync, pending ops, last error.
    Status(sync_cmd::StatusArgs),
    /// Run the hub server.
    Hub(hub_cmd::HubArgs),
    /// Print the canonical dump of the materialized state (for tests and debugging).
    #[command(hide = true)]
    Dump,
    /// Log in with the OAuth device-code flow.
    Login(auth_cmd::LoginArgs),
    /// Forget the stored tokens.
    Logout(auth_cmd::LogoutArgs),
    /// Join a hub with a single-use token from its owner (`heph hub join-token create`).
    Join(join_cmd::JoinArgs),
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let paths = Paths::resolve(cli.data_dir.as_deref())?;
    match cli.command {
        Command::Add(args) => nodes::add(&paths, args),
        Command::List(args) => nodes::list(&paths, args),
        Command::Show(args) => nodes::show(&paths, args),
        Command::Set(args) => nodes::set(&paths, args),
        Command::Done(args) => nodes::done(&paths, args),
        Command::Rm(args) => nodes::rm(&paths, args),
        Command::Restore(args) => nodes::restore(&paths, args),
        Command::Search(args) => nodes::search(&paths, args),
        Command::Journal(args) => nodes::journal(&paths, args),
        Command::ExportOps => nodes::export_ops(&paths),
        Command::ImportOps => nodes::import_ops(&paths),
        Command::Sidecar(args) => crate::sidecar::run(&paths, args),
        Command::Sync(args) => sync_cmd::sync(&paths, args),
        Command::Status(args) => sync_cmd::status(&paths, args),
        Command::Hub(args) => hub_cmd::run(&paths, args),
        Command::Dump => nodes::dump(&paths),
        Command::Login(args) => auth_cmd::login(&paths, args),
        Command::Logout(args) => auth_cmd::logout(&paths, args),
        Command::Join(args) => join_cmd::join(&paths, args),
    }
}
