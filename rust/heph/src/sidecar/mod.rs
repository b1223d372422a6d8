//! The Neovim sidecar: msgpack-RPC over stdin/stdout (nvim-rs). Requests
//! run on the blocking pool against one replica handle; stdout belongs to
//! the RPC channel, so logs go to a file.

mod frames;
mod memory;
mod methods;
mod params;
mod rpc_error;
mod sync_bridge;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use nvim_rs::compat::tokio::Compat;
use nvim_rs::{Handler, Neovim};
use rmpv::Value;

use crate::paths::Paths;

use methods::Context;
use rpc_error::RpcError;

/// The writer half nvim-rs gives a parent-connected process.
type Writer = Compat<tokio::fs::File>;

/// Methods that may write the replica: they nudge background sync, and
/// Neovim (told by `hello`) never sends one twice.
pub(crate) const WRITES: &[&str] = &[
    "node_save",
    "node_create",
    "node_set",
    "node_delete",
    "node_restore",
    "journal",
    "list_apply",
    "promote",
];

/// Methods whose replies can be large (a whole list): the memory they
/// used is given back once the reply is out (see memory.rs).
const LARGE_REPLIES: &[&str] = &["list_get", "list_plan", "list_apply", "home", "search"];

/// How long a request waits for another process's write (a large import,
/// this sidecar's own sync pass) before it is refused as `busy`. Neovim
/// waits for every reply: a `:w` that froze the editor for the store's
/// 30 s now says after a few that nothing was saved and to try again.
const EDITOR_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Options of `heph sidecar`.
#[derive(Debug, clap::Args)]
pub struct SidecarArgs {
    /// Log file (default: heph/sidecar.log under the state dir).
    #[arg(long, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
}

#[derive(Clone)]
struct Sidecar {
    ctx: Arc<Mutex<Context>>,
    bridge: Arc<sync_bridge::SyncBridge>,
}

#[async_trait]
impl Handler for Sidecar {
    type Writer = Writer;

    async fn handle_request(
        &self,
        name: String,
        args: Vec<Value>,
        neovim: Neovim<Writer>,
    ) -> Result<Value, Value> {
        if name == frames::MALFORMED {
            // A request the input guard could not pass on as it was.
            let why = args
                .first()
                .and_then(Value::as_str)
                .unwrap_or("malformed request");
            return Err(RpcError::bad_request(why).to_value());
        }
        let started = std::time::Instant::now();
        let reply = self.request(&name, args, neovim).await;
        match &reply {
            Ok(_) => {
                tracing::debug!(method = %name, ms = started.elapsed().as_secs_f64() * 1e3, "ok")
            }
            Err(e) => tracing::warn!(method = %name, error = %e, "request failed"),
        }
        if LARGE_REPLIES.contains(&name.as_str()) {
            // After nvim-rs has encoded and written the reply.
            tokio::spawn(async {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                let _ = tokio::task::spawn_blocking(memory::release_free_memory).await;
            });
        }
        reply.map_err(|e| e.to_value())
    }
}

impl Sidecar {
    async fn request(
        &self,
        name: &str,
        args: Vec<Value>,
        neovim: Neovim<Writer>,
    ) -> Result<Value, RpcError> {
        if let Some(reply) = self.bridge.handle(name, &args, neovim).await {
            return reply
                .map_err(RpcError::failed)
                .and_then(|v| params::reply(&v));
        }
        let ctx = Arc::clone(&self.ctx);
        let name = name.to_owned();
        let name_for_write = name.clone();
        let bridge = Arc::clone(&self.bridge);
        let reply = tokio::task::spawn_blocking(move || {
            // A request that panicked (a bug) left nothing half done: its
            // transaction rolled back as it unwound. The handle stays
            // usable, so one bad request never stops every later save.
            let mut ctx = ctx
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                panic_for_tests(&name);
                methods::dispatch(&mut ctx, &name, &args)
            }))
            .unwrap_or_else(|panic| Err(RpcError::internal(&name, panic.as_ref())))
        })
        .await
        .map_err(|e| RpcError::failed(format!("request failed: {e}")))?;
        if reply.is_ok() && WRITES.contains(&name_for_write.as_str()) {
            // Test seam: die after a committed write, before replying, as a
            // crash would (the front end must not send the write again).
            if std::env::var("HEPH_TEST_EXIT_AFTER").as_deref() == Ok(name_for_write.as_str()) {
                std::process::exit(70);
            }
            bridge.local_write_maybe();
        }
        reply
    }
}

/// Test seam: a request named in `HEPH_TEST_PANIC_IN` panics, as a bug
/// would, before it does anything.
fn panic_for_tests(name: &str) {
    if std::env::var("HEPH_TEST_PANIC_IN").as_deref() == Ok(name) {
        panic!("HEPH_TEST_PANIC_IN={name}");
    }
}

fn default_log_file() -> PathBuf {
    dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .unwrap_or_else(std::env::temp_dir)
        .join("heph")
        .join("sidecar.log")
}

fn init_logging(path: &PathBuf) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            crate::paths::private_dir(dir)?;
        }
    }
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // The log names files and nodes: the owner's only.
        options.mode(0o600);
    }
    let file = options
        .open(path)
        .with_context(|| format!("cannot open log file {}", path.display()))?;
    let filter = tracing_subscriber::EnvFilter::try_from_env("HEPH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(Mutex::new(file))
        .init();
    crate::paths::make_private(path);
    Ok(())
}

/// Exit status when stdin carries bytes that cannot be read as msgpack-RPC
/// (sysexits' EX_DATAERR); the editor reports any non-zero exit.
const EXIT_BAD_STREAM: u8 = 65;

/// Serves Neovim until stdin closes; exits non-zero when the stream breaks.
pub fn run(paths: &Paths, args: SidecarArgs) -> Result<ExitCode> {
    memory::limit_arenas();
    let log_file = args.log_file.unwrap_or_else(default_log_file);
    init_logging(&log_file)?;
    paths.ensure()?;
    let replica = heph_store::Replica::open(&paths.replica())?;
    replica.set_busy_timeout(EDITOR_BUSY_TIMEOUT)?;
    tracing::info!(replica = %paths.replica().display(), pid = std::process::id(), "sidecar starting");
    let ctx = Context {
        replica,
        data_dir: paths.data_dir.display().to_string(),
        log_file: log_file.display().to_string(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(4)
        .enable_all()
        .build()?;
    let code = runtime.block_on(async {
        use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};
        let bridge = Arc::new(sync_bridge::SyncBridge::new(paths.clone()));
        let handler = Sidecar {
            ctx: Arc::new(Mutex::new(ctx)),
            bridge: Arc::clone(&bridge),
        };
        // Stdin goes through the frame guard (frames.rs), which answers or
        // drops malformed frames; nvim-rs reads only whole, checked frames.
        // Its replies go through a pipe and a relay thread that notes the
        // requests the sidecar sends, so only answers to them pass in.
        let pending = frames::Pending::default();
        let (to_rpc, from_guard) = tokio::io::duplex(256 * 1024);
        let mut guard = tokio::spawn(frames::guard(
            tokio::io::stdin(),
            to_rpc,
            pending.clone(),
        ));
        let stdout = nvim_rs::create::unbuffered_stdout().context("cannot attach to stdout")?;
        let (from_rpc, to_relay) = std::io::pipe().context("cannot create a pipe")?;
        std::thread::Builder::new()
            .name("rpc-out".into())
            .spawn(move || {
                if let Err(e) = frames::relay(from_rpc, stdout, pending) {
                    tracing::debug!(error = %e, "stdout closed");
                }
            })
            .context("cannot start the output relay")?;
        #[cfg(unix)]
        let to_relay = std::fs::File::from(std::os::fd::OwnedFd::from(to_relay));
        #[cfg(windows)]
        let to_relay = std::fs::File::from(std::os::windows::io::OwnedHandle::from(to_relay));
        let stdout = tokio::fs::File::from_std(to_relay);
        let (neovim, io) = nvim_rs::Neovim::new(from_guard.compat(), stdout.compat_write(), handler);
        // Before the first request is read: a `login` as the very first
        // request needs the handle to send its events (it was refused as
        // "still starting" when it won the race).
        bridge.attach(neovim);
        let io = tokio::spawn(io);
        let rpc_error = match io.await {
            Ok(Ok(())) => None,
            Ok(Err(e)) if e.is_channel_closed() => None,
            Ok(Err(e)) => Some(format!("the RPC loop ended: {e}")),
            Err(e) => Some(format!("the RPC loop panicked: {e}")),
        };
        // The guard ends first when the stream ended; if the RPC loop ended
        // on its own (its error says why), the guard is still reading.
        let end = match tokio::time::timeout(std::time::Duration::from_millis(500), &mut guard)
            .await
        {
            Ok(Ok(end)) => end,
            Ok(Err(e)) => frames::End::Broken(format!("the input guard failed: {e}")),
            Err(_) => {
                guard.abort();
                frames::End::Closed
            }
        };
        anyhow::Ok(match (end, rpc_error) {
            (frames::End::Broken(why), _) => {
                tracing::error!(reason = %why, "the input stream cannot be resynchronised; exiting");
                ExitCode::from(EXIT_BAD_STREAM)
            }
            (frames::End::Closed, Some(why)) => {
                tracing::error!(reason = %why, "exiting");
                ExitCode::FAILURE
            }
            (frames::End::Closed, None) => {
                tracing::info!("stdin closed; exiting");
                ExitCode::SUCCESS
            }
        })
    });
    // A read of stdin still pending on the blocking pool must not keep the
    // process alive once it has decided to exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    code
}
