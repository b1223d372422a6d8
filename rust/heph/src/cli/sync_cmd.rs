//! `heph sync` and `heph status`.

use std::process::ExitCode;

use crate::credentials::Login;
use anyhow::{anyhow, Context, Result};
use clap::Args;
use heph_store::Replica;
use heph_sync::{Config, HubClient};

use crate::paths::Paths;

/// Options of `heph sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Hub URL (overrides the config file).
    #[arg(long)]
    pub hub: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Options of `heph status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Hub URL (overrides the config file).
    #[arg(long)]
    pub hub: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

fn hub_url(flag: Option<String>) -> Result<String> {
    if let Some(url) = flag {
        return Ok(url);
    }
    let config = Config::load()?;
    config.hub_url.ok_or_else(|| {
        anyhow!(
            "no hub configured: pass --hub URL or set hub_url in {}",
            Config::path()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "config.toml".into())
        )
    })
}

/// Runs one sync pass.
pub fn sync(paths: &Paths, args: SyncArgs) -> Result<ExitCode> {
    // A misspelt HEPH_TOKEN_STORE is an error everywhere, not only at login.
    heph_auth::TokenStore::forced()?;
    let hub = hub_url(args.hub)?;
    paths.ensure()?;
    let client = HubClient::new(&hub)?;
    let tokens = crate::credentials::StoredCredentials::new(&paths.data_dir);
    // The one runtime of `heph sync`: the pass, its token refresh and its
    // requests all run on it.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the sync runtime")?;
    let outcome = runtime.block_on(heph_sync::sync_authenticated(
        &paths.replica(),
        &hub,
        &tokens,
    ));
    // The pass's own outcome comes first: a disk that filled up during it
    // fails the record too, and would otherwise hide why the pass failed.
    let recorded = heph_sync::engine::record_outcome(&paths.replica(), client.url(), &outcome);
    let report = outcome.with_context(|| format!("sync with {} failed", client.url()))?;
    recorded?;
    for warning in &report.warnings {
        eprintln!("heph: warning: {warning}");
    }
    if !report.revived_nodes.is_empty() {
        // Named by title when the replica answers; the pass succeeded
        // either way.
        let replica = Replica::open(&paths.replica()).ok();
        for id in &report.revived_nodes {
            let title = replica
                .as_ref()
                .and_then(|r| r.get(id).ok().flatten())
                .map(|n| n.title)
                .unwrap_or_default();
            eprintln!(
                "heph: {id} {title:?} came back: it was edited or restored on another device after it was deleted here (heph rm {id} deletes it again)"
            );
        }
    }
    if args.json {
        outln!("{}", serde_json::to_string(&report)?);
    } else {
        let mut extra = String::new();
        if report.bootstrapped > 0 {
            extra.push_str(&format!(
                ", {} installed from the hub's snapshot",
                report.bootstrapped
            ));
        }
        if report.merged > 0 {
            extra.push_str(&format!(", merged {} concurrent edit(s)", report.merged));
        }
        if report.refused > 0 {
            extra.push_str(&format!(", {} refused by the hub", report.refused));
        }
        if report.quarantined > 0 {
            extra.push_str(&format!(", {} set aside", report.quarantined));
        }
        if report.released > 0 {
            extra.push_str(&format!(", {} applied from quarantine", report.released));
        }
        if report.push_only {
            extra.push_str(" (this device may only push: a capture credential)");
        }
        outln!("pushed {}, pulled {}{extra}", report.pushed, report.pulled);
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints sync state.
pub fn status(paths: &Paths, args: StatusArgs) -> Result<ExitCode> {
    heph_auth::TokenStore::forced()?;
    let hub = match args.hub {
        Some(h) => Some(h),
        None => Config::load()?.hub_url,
    };
    if let Some(hub) = &hub {
        // As `heph sync` refuses it: a status of a hub that cannot be
        // would describe nothing.
        HubClient::new(hub)?;
    }
    paths.ensure()?;
    let replica = Replica::open(&paths.replica())?;
    let pending = replica.pending_count()?;
    // None configured: the hub of the last `heph sync --hub URL`.
    let configured = hub.is_some();
    let key = match hub.as_deref().map(heph_sync::normalize_hub_url) {
        Some(key) => Some(key),
        None => replica.last_hub()?,
    };
    let quarantine = replica.quarantine_summary(key.as_deref())?;
    let refused = replica.refused_summary()?;
    let held = replica.held_ops()?.len();
    let (last_sync, last_error, cursor) = match &key {
        Some(h) => (
            replica.sync_value(h, "last_sync")?,
            replica.sync_value(h, "last_error")?,
            replica.sync_cursor(h)?,
        ),
        None => (None, None, 0),
    };
    // The login, if any: its state and where its tokens are.
    let (login, token_store) = crate::credentials::login(&paths.data_dir, key.as_deref());
    let login = match login {
        Login::LoggedIn => "logged in".to_owned(),
        Login::Needed => "login needed".to_owned(),
        Login::OtherHub(other) => format!("not logged in to this hub (the login is for {other})"),
        Login::None => "not logged in".to_owned(),
        Login::Unreadable(e) => e,
    };
    // How this device authenticates: a device credential or the login.
    let (auth, auth_store) = crate::credentials::describe(&paths.data_dir, key.as_deref());
    let token_store = token_store.or(auth_store);
    if args.json {
        outln!(
            "{}",
            serde_json::json!({
                "hub": key,
                // false: `hub` is the one this device last synced with.
                "hub_configured": configured,
                "pending": pending,
                "last_sync": last_sync,
                "last_error": last_error,
                "cursor": cursor,
                "quarantined": quarantine.count,
                "quarantine_reason": quarantine.newest_reason,
                "refused": refused.count,
                "refused_reason": refused.newest_reason,
                "held": held,
                "login": login,
                "auth": auth,
                "token_store": token_store,
            })
        );
    } else {
        match (&key, configured) {
            (Some(key), true) => outln!("hub:        {key}"),
            (Some(key), false) => outln!(
                "hub:        {key} (the last synced with; none configured: pass --hub or set \
                 hub_url)"
            ),
            (None, _) => outln!("hub:        (none configured)"),
        }
        outln!("pending:    {pending} op(s) not yet on the hub");
        outln!(
            "last sync:  {}",
            last_sync.as_deref().map_or_else(|| "never".into(), when)
        );
        if let Some(e) = last_error {
            outln!("last error: {e}");
        }
        if quarantine.count > 0 {
            outln!(
                "set aside:  {} pulled op(s) in quarantine, retried on each sync; newest: {}",
                quarantine.count,
                quarantine.newest_reason.as_deref().unwrap_or("")
            );
        }
        if refused.count > 0 {
            outln!(
                "refused:    {} op(s) of this device refused by the hub (kept here); newest: {}",
                refused.count,
                refused.newest_reason.as_deref().unwrap_or("")
            );
        }
        if held > 0 {
            outln!(
                "held:       {held} body edit(s) of other devices waiting for the version they \
                 change, which this device never received (refused by the hub on the device that \
                 made it?)"
            );
        }
        match token_store {
            Some(store) => outln!("auth:       {auth}; secrets in {store}"),
            None => outln!("auth:       {auth}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A stored time as people read it: to the second, and how long ago
/// (`2026-12-02 03:51:53 UTC, 4 min ago`). Anything unreadable is shown
/// as it is.
fn when(stamp: &str) -> String {
    use time::format_description::well_known::Rfc3339;
    let Ok(at) = time::OffsetDateTime::parse(stamp, &Rfc3339) else {
        return stamp.to_owned();
    };
    let at = at.to_offset(time::UtcOffset::UTC);
    let ago = (time::OffsetDateTime::now_utc() - at).whole_seconds();
    let ago = match ago {
        s if s < 0 => "in the future: this device's clock?".to_owned(),
        s if s < 60 => format!("{s} s ago"),
        s if s < 3600 => format!("{} min ago", s / 60),
        s if s < 48 * 3600 => format!("{} h ago", s / 3600),
        s => format!("{} days ago", s / 86400),
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC, {ago}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_sync_time_reads_to_the_second_and_says_how_long_ago() {
        let an_hour_ago = time::OffsetDateTime::now_utc() - time::Duration::seconds(3700);
        let stamp = an_hour_ago
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let shown = super::when(&stamp);
        assert!(shown.ends_with(" UTC, 1 h ago"), "{shown}");
        assert!(
            shown.as_bytes()[10] == b' ' && !shown.contains('.'),
            "{shown}"
        );
        assert_eq!(super::when("garbage"), "garbage");
    }
}
