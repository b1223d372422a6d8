//! Where heph keeps its files: data dir (replica), state dir (logs, locks).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Resolved locations for one replica.
#[derive(Debug, Clone)]
pub struct Paths {
    /// Directory holding `replica.db`.
    pub data_dir: PathBuf,
}

impl Paths {
    /// `--data-dir` / `HEPH_DATA_DIR` when given, else `$XDG_DATA_HOME/heph`.
    pub fn resolve(data_dir: Option<&Path>) -> Result<Self> {
        let data_dir = match data_dir {
            Some(dir) => dir.to_path_buf(),
            None => dirs::data_dir()
                .context("no data directory found: pass --data-dir or set HEPH_DATA_DIR")?
                .join("heph"),
        };
        Ok(Self { data_dir })
    }

    /// The SQLite replica file.
    pub fn replica(&self) -> PathBuf {
        self.data_dir.join("replica.db")
    }

    /// Creates the data dir when missing.
    pub fn ensure(&self) -> Result<()> {
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("cannot create data dir {}", self.data_dir.display()))
    }
}
