//! Helpers shared by the end-to-end tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The `heph` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_heph");

/// A child process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `heph hub --listen LISTEN --db DB EXTRA...` and returns the
/// process with the URL it printed.
pub fn spawn_hub(db: &Path, listen: &str, extra: &[&str]) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["hub", "--listen", listen, "--db"])
        .arg(db)
        .args(extra)
        .env("HEPH_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the hub");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("hub stdout"))
        .read_line(&mut line)
        .expect("hub output");
    let url = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "hub said {line:?}");
    (child, url)
}
