//! `heph hub`: run the hub server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;

/// Options of `heph hub`.
#[derive(Debug, Args)]
pub struct HubArgs {
    /// Address to listen on (port 0 picks a free port, printed on stdout).
    #[arg(long, default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,
    /// The hub database file (default: hub.db in the data dir).
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// Serve without authentication on a non-loopback address.
    #[arg(long)]
    pub insecure_open: bool,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = heph_hub::DEFAULT_MAX_BODY)]
    pub max_body: usize,
}

/// Serves until SIGTERM/SIGINT.
pub fn run(paths: &crate::paths::Paths, args: HubArgs) -> Result<ExitCode> {
    if !args.listen.ip().is_loopback() && !args.insecure_open {
        bail!(
            "refusing to serve {} without authentication: the hub would be open to the network. \
             Listen on 127.0.0.1, or pass --insecure-open if a proxy in front of it authenticates",
            args.listen
        );
    }
    let db = match args.db {
        Some(db) => db,
        None => {
            paths.ensure()?;
            paths.data_dir.join("hub.db")
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HEPH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        println!("heph hub listening on http://{addr}");
        use std::io::Write;
        std::io::stdout().flush()?;
        tracing::info!(%addr, db = %db.display(), "hub started");
        let config = heph_hub::HubConfig {
            max_body: args.max_body,
            auth: None,
        };
        heph_hub::serve(listener, &db, config, shutdown_signal())
            .await
            .context("hub failed")?;
        tracing::info!("hub stopped");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
