//! `heph hub`: run the hub server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use heph_auth::{JwtVerifier, VerifierConfig};

/// Options of `heph hub`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct HubArgs {
    /// Owner commands on the hub's database (join tokens, devices); none
    /// runs the server.
    #[command(subcommand)]
    pub action: Option<Box<super::hub_owner::HubAction>>,
    /// Address to listen on (port 0 picks a free port, printed on stdout).
    #[arg(long, default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,
    /// The hub database file (default: hub.db in the data dir); its
    /// signing secret for join tokens is FILE.secret beside it.
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// Serve without authentication on a non-loopback address.
    #[arg(long)]
    pub insecure_open: bool,
    /// OIDC issuer whose JWT access tokens the hub accepts (enables auth).
    #[arg(long, requires_all = ["audience", "owner_sub"])]
    pub issuer: Option<String>,
    /// Audience the tokens must carry.
    #[arg(long)]
    pub audience: Option<String>,
    /// The only subject (user) admitted; others get 403.
    #[arg(long)]
    pub owner_sub: Option<String>,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = heph_hub::DEFAULT_MAX_BODY)]
    pub max_body: usize,
    /// Ask devices for a snapshot (so new devices bootstrap from it) once
    /// this many ops came after the stored one; 0 never asks.
    #[arg(long, default_value_t = heph_hub::DEFAULT_SNAPSHOT_THRESHOLD, value_name = "OPS")]
    pub snapshot_threshold: i64,
    /// Largest snapshot upload in bytes.
    #[arg(long, default_value_t = heph_hub::DEFAULT_MAX_SNAPSHOT_BYTES, value_name = "BYTES")]
    pub max_snapshot: u64,
    /// Most connections open at once; further clients wait to be accepted.
    #[arg(long, default_value_t = 512, value_name = "N")]
    pub max_connections: usize,
    /// Time a client has to send request headers; also the keep-alive idle
    /// timeout (e.g. 10s, 500ms).
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "TIME")]
    pub header_timeout: Duration,
    /// Longest pause between two pieces of a request body.
    #[arg(long, default_value = "15s", value_parser = parse_duration, value_name = "TIME")]
    pub body_timeout: Duration,
    /// Longest a request may take, body included (408 after).
    #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "TIME")]
    pub request_timeout: Duration,
    /// How long SIGTERM waits for requests in flight before closing every
    /// connection.
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "TIME")]
    pub shutdown_grace: Duration,
}

/// Parses `10`, `10s`, `500ms`, `2m`, `1h` or `7d`.
pub(super) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 10s, 500ms, 2m)"))?;
    match unit {
        "" | "s" => Ok(Duration::from_secs(number)),
        "ms" => Ok(Duration::from_millis(number)),
        "m" => Ok(Duration::from_secs(number.saturating_mul(60))),
        "h" => Ok(Duration::from_secs(number.saturating_mul(3600))),
        "d" => Ok(Duration::from_secs(number.saturating_mul(86_400))),
        _ => Err(format!(
            "{text:?} is not a duration (e.g. 10s, 500ms, 2m, 1h)"
        )),
    }
}

/// The hub database: `--db`, else hub.db in the data dir.
pub(super) fn hub_db(paths: &crate::paths::Paths, db: Option<PathBuf>) -> Result<PathBuf> {
    Ok(match db {
        Some(db) => db,
        None => {
            paths.ensure()?;
            paths.data_dir.join("hub.db")
        }
    })
}

/// Serves until SIGTERM/SIGINT, or runs an owner command.
pub fn run(paths: &crate::paths::Paths, args: HubArgs) -> Result<ExitCode> {
    if let Some(action) = args.action {
        return super::hub_owner::run(paths, *action);
    }
    let db = hub_db(paths, args.db)?;
    // Devices that joined with a token authenticate: the hub is not open.
    // Redeems a crash cut off are settled before the hub says it listens.
    let joined = {
        let store = heph_hub::open_private(&db)?;
        store.settle_in_flight(heph_hub::join::now_ms(), 0)?;
        store.join_active()?
    };
    if !args.listen.ip().is_loopback() && !args.insecure_open && args.issuer.is_none() && !joined {
        bail!(
            "refusing to serve {} without authentication: the hub would be open to the network. \
             Listen on 127.0.0.1, create a join token first (`heph hub join-token create`), or \
             pass --insecure-open if a proxy in front of it authenticates",
            args.listen
        );
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HEPH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = tokio::runtime::Runtime::new()?;
    let served = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        outln!("heph hub listening on http://{addr}");
        use std::io::Write;
        std::io::stdout().flush()?;
        tracing::info!(%addr, db = %db.display(), "hub started");
        let auth = match (args.issuer, args.audience, args.owner_sub) {
            (Some(issuer), Some(audience), Some(owner)) => {
                tracing::info!(%issuer, %audience, "bearer tokens required");
                let verifier = JwtVerifier::new(VerifierConfig::new(&issuer, &audience, &owner));
                Some(Arc::new(verifier) as Arc<dyn heph_hub::BearerCheck>)
            }
            _ => None,
        };
        let config = heph_hub::HubConfig {
            max_body: args.max_body,
            auth,
            join: None,
            snapshot_threshold: args.snapshot_threshold,
            max_snapshot_bytes: args.max_snapshot,
        };
        let limits = heph_hub::ServeLimits {
            header_timeout: args.header_timeout,
            body_timeout: args.body_timeout,
            request_timeout: args.request_timeout,
            max_connections: args.max_connections,
            shutdown_grace: args.shutdown_grace,
        };
        heph_hub::serve_with_limits(listener, &db, config, limits, shutdown_signal())
            .await
            .context("hub failed")?;
        tracing::info!("hub stopped");
        anyhow::Ok(())
    });
    // Work still running on the blocking pool (a database call of a
    // connection closed at the end of the grace period) gets a moment to
    // finish; the process does not wait for it indefinitely.
    runtime.shutdown_timeout(Duration::from_secs(1));
    served?;
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM (service managers) or Ctrl-C.
#[cfg(unix)]
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

/// Ctrl-C (and the console's close events, which tokio reports the same way).
#[cfg(not(unix))]
async fn shutdown_signal() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}
