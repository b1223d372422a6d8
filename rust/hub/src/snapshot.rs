//! Snapshots: a device uploads the whole replica as of a hub sequence, and
//! a new device downloads it and pulls only the ops after it. The hub never
//! reads one: it stores and serves bytes (so it works unchanged once
//! replicas are end-to-end encrypted). The newest is kept as a file beside
//! the database, named by its sequence; the `snapshot` table says which.
//!
//! The hub asks for one (in every pull reply) once more than a threshold
//! of ops came after the stored one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use rusqlite::OptionalExtension;
use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::auth::Access;
use crate::routes::{error, internal};
use crate::{HubError, HubStore};

/// Default: ask for a snapshot once this many ops came after the stored one.
pub const DEFAULT_SNAPSHOT_THRESHOLD: i64 = 10_000;
/// Default largest snapshot accepted, in bytes.
pub const DEFAULT_MAX_SNAPSHOT_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// Reply header that carries a snapshot's hub sequence.
pub const SEQ_HEADER: &str = "x-heph-snapshot-seq";

/// The metadata table (added beside the existing ones).
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS snapshot (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    seq       INTEGER NOT NULL,
    bytes     INTEGER NOT NULL,
    stored_ms INTEGER NOT NULL
);";

/// The stored snapshot: its sequence and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredSnapshot {
    /// Hub sequence it is as of.
    pub seq: i64,
    /// Size in bytes.
    pub bytes: i64,
}

impl HubStore {
    /// The highest sequence given so far (0 for an empty hub).
    pub fn head(&self) -> Result<i64, HubError> {
        Ok(self
            .lock()
            .query_row("SELECT coalesce(max(seq), 0) FROM ops", [], |r| r.get(0))?)
    }

    /// The stored snapshot, if any.
    pub fn snapshot(&self) -> Result<Option<StoredSnapshot>, HubError> {
        Ok(self
            .lock()
            .query_row("SELECT seq, bytes FROM snapshot WHERE id = 1", [], |r| {
                Ok(StoredSnapshot {
                    seq: r.get(0)?,
                    bytes: r.get(1)?,
                })
            })
            .optional()?)
    }

    /// The file holding the snapshot as of `seq`.
    fn snapshot_file(&self, seq: i64) -> PathBuf {
        let mut name = self.path().as_os_str().to_owned();
        name.push(format!(".snapshot-{seq}"));
        PathBuf::from(name)
    }

    /// Why a snapshot as of `seq` cannot be stored now, if it cannot.
    fn refuse_snapshot(&self, seq: i64) -> Result<Option<String>, HubError> {
        let head = self.head()?;
        if seq > head {
            return Ok(Some(format!(
                "snapshot sequence {seq} is beyond the hub's newest op ({head})"
            )));
        }
        if let Some(stored) = self.snapshot()? {
            if seq <= stored.seq {
                return Ok(Some(format!(
                    "the hub already has a snapshot as of {}, not older than {seq}",
                    stored.seq
                )));
            }
        }
        Ok(None)
    }

    /// Makes the uploaded file at `tmp` the snapshot as of `seq`, unless a
    /// newer one arrived meanwhile (then `Some(reason)` and `tmp` is gone).
    fn store_snapshot(&self, tmp: &Path, seq: i64, bytes: i64) -> Result<Option<String>, HubError> {
        let file = self.snapshot_file(seq);
        let previous = {
            let mut conn = self.lock();
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let stored: Option<i64> = tx
                .query_row("SELECT seq FROM snapshot WHERE id = 1", [], |r| r.get(0))
                .optional()?;
            if stored.is_some_and(|s| s >= seq) {
                drop(tx);
                let _ = std::fs::remove_file(tmp);
                return Ok(Some(format!(
                    "the hub received a snapshot as of {} meanwhile",
                    stored.unwrap_or_default()
                )));
            }
            // The file is in place before the row names it, so a crash
            // leaves at most an unnamed file (removed at the next start).
            std::fs::rename(tmp, &file)?;
            tx.execute(
                "INSERT INTO snapshot (id, seq, bytes, stored_ms) VALUES (1, ?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, bytes = excluded.bytes,
                     stored_ms = excluded.stored_ms",
                rusqlite::params![seq, bytes, crate::join::now_ms() as i64],
            )?;
            tx.commit()?;
            stored
        };
        if let Some(old) = previous {
            let _ = std::fs::remove_file(self.snapshot_file(old));
        }
        Ok(None)
    }

    /// Removes snapshot files the table does not name (uploads cut short,
    /// a crash between storing a file and naming it).
    pub(crate) fn remove_stale_snapshots(&self) {
        // Compared by file name: with a relative `--db` the directory
        // listing says `./hub.db…` where the kept path says `hub.db…`.
        let keep = self
            .snapshot()
            .ok()
            .flatten()
            .and_then(|s| self.snapshot_file(s.seq).file_name().map(|n| n.to_owned()));
        let (Some(dir), Some(base)) = (
            self.path().parent(),
            self.path()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned()),
        ) else {
            return;
        };
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let prefix = format!("{base}.snapshot-");
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) && keep.as_deref() != Some(entry.file_name().as_os_str()) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// What the snapshot routes need.
#[derive(Clone)]
pub(crate) struct SnapshotState {
    pub(crate) store: Arc<HubStore>,
    pub(crate) max_bytes: u64,
}

/// The `snapshot` object of a pull reply: the stored snapshot's sequence
/// (0 for none) and whether the hub wants a newer one.
pub(crate) fn pull_hint(store: &HubStore, threshold: i64) -> Result<serde_json::Value, HubError> {
    let stored = store.snapshot()?.map_or(0, |s| s.seq);
    let head = store.head()?;
    let wanted = threshold > 0 && head - stored >= threshold;
    Ok(json!({ "seq": stored, "wanted": wanted }))
}

fn capture_refused(access: &Option<axum::Extension<Access>>) -> Option<Response> {
    access
        .as_ref()
        .is_some_and(|a| a.0 == Access::Capture)
        .then(|| {
            error(
                StatusCode::FORBIDDEN,
                "this device's credential has the capture scope: it may push but not use snapshots",
            )
        })
}

/// `GET /v1/snapshot`: the stored snapshot's bytes, its sequence in
/// [`SEQ_HEADER`]; 404 when there is none.
pub(crate) async fn get_snapshot(
    State(state): State<SnapshotState>,
    access: Option<axum::Extension<Access>>,
) -> Response {
    if let Some(refused) = capture_refused(&access) {
        return refused;
    }
    let store = Arc::clone(&state.store);
    let stored = match tokio::task::spawn_blocking(move || store.snapshot()).await {
        Ok(Ok(Some(s))) => s,
        Ok(Ok(None)) => return error(StatusCode::NOT_FOUND, "the hub has no snapshot yet"),
        Ok(Err(e)) => return internal(e),
        Err(e) => return internal(e),
    };
    let path = state.store.snapshot_file(stored.seq);
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        // Replaced by a newer one between the two reads: the client tries
        // again on its next pass, or pulls ops.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return error(
                StatusCode::NOT_FOUND,
                "the snapshot was just replaced; try again",
            )
        }
        Err(e) => return internal(e),
    };
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
        file,
        256 * 1024,
    ));
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, stored.bytes.to_string()),
            (
                header::HeaderName::from_static(SEQ_HEADER),
                stored.seq.to_string(),
            ),
        ],
        body,
    )
        .into_response()
}

#[derive(Deserialize)]
pub(crate) struct PutParams {
    seq: Option<i64>,
}

/// `PUT /v1/snapshot?seq=C`: stores the body as the snapshot as of `C`,
/// streamed to a temporary file and renamed into place once complete.
pub(crate) async fn put_snapshot(
    State(state): State<SnapshotState>,
    access: Option<axum::Extension<Access>>,
    params: Result<Query<PutParams>, axum::extract::rejection::QueryRejection>,
    body: Body,
) -> Response {
    if let Some(refused) = capture_refused(&access) {
        return refused;
    }
    let seq = match params {
        Ok(Query(PutParams { seq: Some(seq) })) if seq > 0 => seq,
        Ok(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "PUT /v1/snapshot needs ?seq=N, the hub sequence the snapshot is as of",
            )
        }
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("bad query: {}", e.body_text()),
            )
        }
    };
    let store = Arc::clone(&state.store);
    match tokio::task::spawn_blocking(move || store.refuse_snapshot(seq)).await {
        Ok(Ok(None)) => {}
        Ok(Ok(Some(reason))) => return error(StatusCode::CONFLICT, &reason),
        Ok(Err(e)) => return internal(e),
        Err(e) => return internal(e),
    }
    let tmp = {
        let mut name = state.store.path().as_os_str().to_owned();
        name.push(format!(
            ".snapshot-upload-{}-{}",
            std::process::id(),
            crate::join::now_ms()
        ));
        PathBuf::from(name)
    };
    let written = receive(body, &tmp, state.max_bytes).await;
    let bytes = match written {
        Ok(bytes) => bytes,
        Err(reply) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            return reply;
        }
    };
    let store = Arc::clone(&state.store);
    let tmp_owned = tmp.clone();
    let stored =
        tokio::task::spawn_blocking(move || store.store_snapshot(&tmp_owned, seq, bytes as i64))
            .await;
    match stored {
        Ok(Ok(None)) => {
            tracing::info!(seq, bytes, "stored a snapshot");
            (
                StatusCode::CREATED,
                axum::Json(json!({ "seq": seq, "bytes": bytes })),
            )
                .into_response()
        }
        Ok(Ok(Some(reason))) => error(StatusCode::CONFLICT, &reason),
        Ok(Err(e)) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            internal(e)
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            internal(e)
        }
    }
}

/// Streams a request body into a new private file, at most `max` bytes.
async fn receive(body: Body, tmp: &Path, max: u64) -> Result<u64, Response> {
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(tmp).await.map_err(internal)?;
    let mut body = body.into_data_stream();
    let mut bytes = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                &format!("the snapshot upload was cut off: {e}"),
            )
        })?;
        bytes += chunk.len() as u64;
        if bytes > max {
            return Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the snapshot is larger than the {max} bytes this hub accepts"),
            ));
        }
        file.write_all(&chunk).await.map_err(internal)?;
    }
    file.sync_all().await.map_err(internal)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Removes the files a hub database named `base` in the working
    /// directory leaves, even when the test fails.
    struct InWorkingDir(String);

    impl Drop for InWorkingDir {
        fn drop(&mut self) {
            for entry in std::fs::read_dir(".").into_iter().flatten().flatten() {
                if entry.file_name().to_string_lossy().starts_with(&self.0) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
    }

    #[test]
    fn a_restart_keeps_the_stored_snapshot_with_a_relative_database_path() {
        // `--db hub.db`: the directory listing spells the files
        // `./hub.db…` where the stored snapshot's path says `hub.db…`.
        let base = format!("snapshot-sweep-{}.db", std::process::id());
        let _cleanup = InWorkingDir(base.clone());
        let db = PathBuf::from(&base);
        let store = HubStore::open(&db).unwrap();
        let upload = PathBuf::from(format!("{base}.upload"));
        std::fs::write(&upload, b"snapshot bytes").unwrap();
        assert_eq!(store.store_snapshot(&upload, 7, 14).unwrap(), None);
        let stale = PathBuf::from(format!("{base}.snapshot-3"));
        std::fs::write(&stale, b"cut short").unwrap();
        drop(store);

        let store = HubStore::open(&db).unwrap();
        assert_eq!(
            store.snapshot().unwrap(),
            Some(StoredSnapshot { seq: 7, bytes: 14 })
        );
        assert_eq!(
            std::fs::read(store.snapshot_file(7)).unwrap(),
            b"snapshot bytes"
        );
        assert!(!stale.exists(), "a file the table does not name is removed");
    }
}
