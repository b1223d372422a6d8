//! Where heph keeps its files: data dir (replica), state dir (logs, locks).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
pub use heph_store::make_private;

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

    /// Creates the data dir when missing, readable by its owner only (0700);
    /// an existing one open to others is made private, with a notice.
    pub fn ensure(&self) -> Result<()> {
        private_dir(&self.data_dir)
    }
}

/// Creates `dir` (and missing parents) with mode 0700 for `dir` itself, or
/// removes group and other access from it when it exists.
pub fn private_dir(dir: &Path) -> Result<()> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    match builder.create(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("the data dir {} is a file, not a directory", dir.display())
        }
        Err(e) => {
            return Err(e).with_context(|| format!("cannot create data dir {}", dir.display()))
        }
    }
    make_private(dir);
    Ok(())
}
