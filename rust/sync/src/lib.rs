//! heph-sync: the spoke side of sync — the hub client, one sync pass, the
//! background service the sidecar runs, and the config file.
//!
//! A pass pushes every op the hub has not acknowledged (in batches of about
//! 3 MiB, the next one read while one is on its way), then pulls from the
//! cursor until the hub says there is no more. Store
//! calls are short transactions between network calls, never around them,
//! and every step is safe to repeat after a crash.

pub mod client;
pub mod config;
pub mod engine;
pub mod service;

pub use client::{ClientError, HubClient, NoToken, TokenProvider};
pub use config::Config;
pub use engine::{sync_authenticated, sync_once, SyncError, SyncReport};
pub use heph_auth::normalize_hub_url;
pub use service::{PassChanges, SyncService, SyncState, SyncStatus};
