//! The hub owner's commands on the hub's database: `heph hub join-token
//! create|list|abort`, `heph hub devices`, `heph hub revoke`. They work
//! whether or not the hub is running (SQLite coordinates), and never print
//! a secret other than the new token itself, once.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use heph_hub::join::{new_token_id, now_ms, Claims, HubSecret, Scope};
use heph_hub::HubStore;

use crate::paths::Paths;

/// Owner commands of `heph hub`.
#[derive(Debug, Subcommand)]
pub enum HubAction {
    /// Single-use join tokens for new devices.
    #[command(subcommand)]
    JoinToken(TokenAction),
    /// List the devices that joined (label, scope, created, last seen).
    Devices(DbArgs),
    /// Remove a device: its next request gets 401.
    Revoke(RevokeArgs),
}

/// `heph hub join-token …`.
#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Create a token; it is printed once, on stdout.
    Create(CreateArgs),
    /// List the tokens the hub knows and their state.
    List(DbArgs),
    /// Cancel a token that was not used yet.
    Abort(AbortArgs),
}

/// Where the hub's database is.
#[derive(Debug, Args)]
pub struct DbArgs {
    /// The hub database file (as `heph hub --db`; default: hub.db in the data dir).
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Options of `heph hub join-token create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// How long the token may be used (e.g. 15m, 1h, 7d).
    #[arg(long, default_value = "15m", value_parser = super::hub_cmd::parse_duration)]
    pub ttl: Duration,
    /// A name for the device-to-be, shown by `heph hub devices`.
    #[arg(long, default_value = "device")]
    pub label: String,
    /// `full` (push and pull) or `capture` (push only).
    #[arg(long, default_value = "full", value_parser = ["full", "capture"])]
    pub scope: String,
}

/// Options of `heph hub join-token abort`.
#[derive(Debug, Args)]
pub struct AbortArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The token's id (from `join-token list`).
    pub id: String,
}

/// Options of `heph hub revoke`.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The device's id or label (from `heph hub devices`).
    pub device: String,
}

fn open(paths: &Paths, db: &DbArgs) -> Result<(PathBuf, HubStore)> {
    let path = super::hub_cmd::hub_db(paths, db.db.clone())?;
    let store = heph_hub::open_private(&path)
        .with_context(|| format!("cannot open the hub database {}", path.display()))?;
    Ok((path, store))
}

fn time(ms: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp((ms / 1000) as i64)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

/// Runs one owner command.
pub fn run(paths: &Paths, action: HubAction) -> Result<ExitCode> {
    match action {
        HubAction::JoinToken(TokenAction::Create(args)) => create(paths, args),
        HubAction::JoinToken(TokenAction::List(args)) => list(paths, args),
        HubAction::JoinToken(TokenAction::Abort(args)) => abort(paths, args),
        HubAction::Devices(args) => devices(paths, args),
        HubAction::Revoke(args) => revoke(paths, args),
    }
}

fn create(paths: &Paths, args: CreateArgs) -> Result<ExitCode> {
    let (db, store) = open(paths, &args.db)?;
    let secret_path = HubSecret::path_for(&db);
    let secret = HubSecret::load_or_create(&secret_path)
        .with_context(|| format!("cannot read or create {}", secret_path.display()))?;
    let scope =
        Scope::parse(&args.scope).ok_or_else(|| anyhow!("scope must be full or capture"))?;
    let label = args.label.trim();
    if label.is_empty() || label.chars().count() > 64 {
        bail!("--label must be 1 to 64 characters");
    }
    let now = now_ms();
    let claims = Claims {
        hub: secret.hub_id(),
        id: new_token_id()?,
        exp: now / 1000 + args.ttl.as_secs().max(1),
        label: label.to_owned(),
        scope,
    };
    let token = secret.sign(&claims);
    store.register_token(&claims, &token, now)?;
    if args.db.json {
        outln!(
            "{}",
            serde_json::json!({
                "token": token, "id": claims.id, "label": claims.label,
                "scope": scope.as_str(), "expires": claims.exp,
            })
        );
    } else {
        outln!("{token}");
        eprintln!(
            "Join token {} for {:?} (scope {}), usable once until {}.\n\
             On the new device: heph join <hub URL> <token>   (or :HephJoin <hub URL>)",
            claims.id,
            claims.label,
            scope.as_str(),
            time(claims.exp * 1000)
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn list(paths: &Paths, args: DbArgs) -> Result<ExitCode> {
    let (_, store) = open(paths, &args)?;
    let tokens = store.tokens()?;
    if args.json {
        outln!("{}", serde_json::to_string(&tokens)?);
    } else if tokens.is_empty() {
        eprintln!("No join tokens.");
    } else {
        for t in tokens {
            outln!(
                "{}  {:<9}  {:<7}  until {}  {}",
                t.id,
                t.state,
                t.scope,
                time(t.expires * 1000),
                t.label
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn abort(paths: &Paths, args: AbortArgs) -> Result<ExitCode> {
    let (_, store) = open(paths, &args.db)?;
    match store.abort_token(&args.id, now_ms())? {
        Ok(done) => {
            use heph_hub::join::Aborted;
            match done {
                Aborted::Now => eprintln!("Join token {} cancelled.", args.id),
                Aborted::Expired => eprintln!(
                    "Join token {} had expired already: nobody can use it.",
                    args.id
                ),
                Aborted::Already => eprintln!("Join token {} was cancelled already.", args.id),
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(why) => bail!(why),
    }
}

fn devices(paths: &Paths, args: DbArgs) -> Result<ExitCode> {
    let (_, store) = open(paths, &args)?;
    let devices = store.devices()?;
    if args.json {
        outln!("{}", serde_json::to_string(&devices)?);
    } else if devices.is_empty() {
        eprintln!("No devices joined with a token.");
    } else {
        for d in devices {
            let seen = d.last_seen.map(time).unwrap_or_else(|| "never".into());
            let state = match d.revoked {
                Some(at) => format!("removed {}", time(at)),
                None => format!("last seen {seen}"),
            };
            outln!(
                "{}  {:<12}  {:<7}  joined {}  {}  ({})",
                d.id,
                d.label,
                d.scope,
                time(d.created),
                state,
                d.name
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn revoke(paths: &Paths, args: RevokeArgs) -> Result<ExitCode> {
    let (_, store) = open(paths, &args.db)?;
    match store.revoke(&args.device, now_ms())? {
        Ok((id, false)) => {
            eprintln!("Device {id} removed: its next request gets 401.");
            Ok(ExitCode::SUCCESS)
        }
        Ok((id, true)) => {
            eprintln!("Device {id} was removed already; nothing changed.");
            Ok(ExitCode::SUCCESS)
        }
        Err(why) => bail!(why),
    }
}
