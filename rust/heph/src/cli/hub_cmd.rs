//! `heph hub`: run the hub server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Args;
use heph_auth::{JwtVerifier, Rejection, VerifierConfig};

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
}

/// Serves until SIGTERM/SIGINT.
pub fn run(paths: &crate::paths::Paths, args: HubArgs) -> Result<ExitCode> {
    if !args.listen.ip().is_loopback() && !args.insecure_open && args.issuer.is_none() {
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
        let auth = match (args.issuer, args.audience, args.owner_sub) {
            (Some(issuer), Some(audience), Some(owner)) => {
                tracing::info!(%issuer, %audience, "bearer tokens required");
                let verifier = JwtVerifier::new(VerifierConfig::new(&issuer, &audience, &owner));
                Some(Arc::new(JwtBearer(verifier)) as Arc<dyn heph_hub::BearerCheck>)
            }
            _ => None,
        };
        let config = heph_hub::HubConfig {
            max_body: args.max_body,
            auth,
        };
        heph_hub::serve(listener, &db, config, shutdown_signal())
            .await
            .context("hub failed")?;
        tracing::info!("hub stopped");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Adapts the JWT verifier to the hub's bearer seam.
struct JwtBearer(JwtVerifier);

#[async_trait::async_trait]
impl heph_hub::BearerCheck for JwtBearer {
    async fn check(&self, bearer: Option<&str>) -> Result<(), heph_hub::Rejection> {
        self.0
            .verify(bearer)
            .await
            .map(|_| ())
            .map_err(|r| match r {
                Rejection::Unauthorized(m) => heph_hub::Rejection::Unauthorized(m),
                Rejection::Forbidden(m) => heph_hub::Rejection::Forbidden(m),
            })
    }

    fn challenge(&self) -> String {
        self.0.www_authenticate("a valid access token is required")
    }
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
