//! `heph`: one binary for the scripting CLI, the Neovim sidecar and the hub.

mod cli;
mod credentials;
mod local_day;
mod paths;
mod sidecar;

use clap::Parser;

fn main() -> std::process::ExitCode {
    // An empty variable means "not set", as in most tools: `HEPH_TOKEN_STORE=`
    // must not force a store named "".
    for name in ["HEPH_TOKEN_STORE", "HEPH_DATA_DIR"] {
        if std::env::var_os(name).is_some_and(|v| v.is_empty()) {
            std::env::remove_var(name);
        }
    }
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        // `heph show ID | head -1`: the reader left; exit quietly, as cat does.
        Err(err)
            if err.chain().any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            std::process::ExitCode::from(141)
        }
        Err(err) => {
            eprintln!("heph: {}", message(&err));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each once: many errors already say their
/// cause in their own text (`cannot read F: Is a directory`), which the
/// chain would repeat.
fn message(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let cause = cause.to_string();
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}
