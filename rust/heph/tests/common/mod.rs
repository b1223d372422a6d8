//! Helpers shared by the end-to-end tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The `heph` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_heph");

/// A device: its own replica in a temporary dir, driven through the CLI,
/// with a clock skewed by `skew_ms` (`HEPH_CLOCK_SKEW_MS`).
pub struct Device {
    pub dir: tempfile::TempDir,
    pub skew_ms: i64,
}

impl Device {
    pub fn new() -> Self {
        Device {
            dir: tempfile::tempdir().unwrap(),
            skew_ms: 0,
        }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--data-dir")
            .arg(self.dir.path())
            .args(args)
            .env("HEPH_CONFIG", self.dir.path().join("no-config.toml"))
            .env("HEPH_CLOCK_SKEW_MS", self.skew_ms.to_string());
        cmd
    }

    /// Runs a command: (success, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = self.cmd(args).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs a command that must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args);
        assert!(ok, "{args:?} failed: {err}");
        out
    }

    /// Runs a command that prints JSON.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }

    /// `heph import-ops` with `lines` on stdin: (success, stderr).
    pub fn import(&self, lines: &str) -> (bool, String) {
        use std::io::Write;
        let mut child = self
            .cmd(&["import-ops"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(lines.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// A join token with the capture scope (push only), made by the owner.
pub fn capture_token(db: &Path, label: &str) -> String {
    hub_ok(
        db,
        &[
            "join-token",
            "create",
            "--label",
            label,
            "--scope",
            "capture",
        ],
    )
}

/// Runs `heph hub ARGS --db DB`, which must succeed; its stdout, trimmed.
pub fn hub_ok(db: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .arg("hub")
        .args(args)
        .arg("--db")
        .arg(db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

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
    spawn_hub_with_env(db, listen, extra, &[])
}

/// [`spawn_hub`] with extra environment variables (test seams).
pub fn spawn_hub_with_env(
    db: &Path,
    listen: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["hub", "--listen", listen, "--db"])
        .arg(db)
        .args(extra)
        .envs(env.iter().copied())
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

/// Plain HTTP for the tests, each request waited for and read whole. The
/// workspace has one HTTP stack (async reqwest); these helpers run it on a
/// small runtime per request, and the clients keep no idle connections, so
/// nothing crosses from one runtime to the next.
pub mod http {
    use std::time::Duration;

    /// A reply, read whole.
    pub struct Reply {
        pub status: u16,
        pub headers: reqwest::header::HeaderMap,
        pub body: String,
    }

    impl Reply {
        /// The body as JSON, `Null` when it is not JSON.
        pub fn json(&self) -> serde_json::Value {
            serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
        }
    }

    /// A client whose requests give up after `timeout`.
    pub fn client(timeout: Duration) -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(timeout)
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
    }

    /// Sends `request` and reads the reply.
    pub fn send(request: reqwest::RequestBuilder) -> Result<Reply, reqwest::Error> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let response = request.send().await?;
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                let body = response.text().await?;
                Ok(Reply {
                    status,
                    headers,
                    body,
                })
            })
    }
}
