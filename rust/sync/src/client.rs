//! HTTP client for the hub's three routes. Async, on the same reqwest stack
//! as heph-auth; every request has a timeout sized to what it moves, so a
//! stalled hub ends a pass instead of hanging it.

use std::time::Duration;

use heph_auth::normalize_hub_url;
use heph_core::Op;
use serde::{Deserialize, Serialize};

/// Errors talking to the hub.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The hub URL is not usable.
    #[error("invalid hub URL {url:?}: {reason}")]
    BadUrl {
        /// The URL as given (no userinfo).
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection (hub down, wrong address, network).
    #[error("hub unreachable at {url}: {reason}")]
    Unreachable {
        /// The hub.
        url: String,
        /// Why.
        reason: String,
    },
    /// The hub needs a (new) token.
    #[error("the hub refused the credentials (401): {0}{advice}", advice = login_advice(.0))]
    Unauthorized(String),
    /// The hub answered with an error status.
    #[error("hub returned {status}: {message}{advice}", advice = status_advice(*status, message))]
    Status {
        /// HTTP status.
        status: u16,
        /// The hub's message.
        message: String,
        /// Whether the reply is a heph hub's own error (its JSON): a
        /// verdict on the request, not a proxy's or a web server's page
        /// in between.
        from_hub: bool,
    },
    /// The hub answered with something that is not the protocol.
    #[error("hub returned an invalid reply: {0}")]
    Garbage(String),
}

/// What to do about a 401, unless the hub's own message says it already.
fn login_advice(message: &str) -> &'static str {
    if message.contains("heph join") || message.contains("heph login") {
        ""
    } else {
        "; run :HephLogin or `heph login`, or join with :HephJoin or `heph join URL TOKEN`"
    }
}

/// What to do about a refusal whose cause is the account, not heph.
fn status_advice(status: u16, message: &str) -> &'static str {
    if status == 403 && message.contains("belongs to someone else") {
        "; this login is not the hub owner's: log out (:HephLogout, `heph logout`) and log in as the owner, or ask the owner for a join token (:HephJoin)"
    } else {
        ""
    }
}

impl ClientError {
    /// Whether retrying later may help (network trouble, hub errors).
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Unreachable { .. } => true,
            ClientError::Status { status, .. } => *status >= 500 || matches!(*status, 408 | 429),
            _ => false,
        }
    }
}

/// Where sync gets the bearer token for a hub: the heph binary wires in
/// the OIDC login or a device credential from a join token; sync itself
/// knows neither, nor where they are kept. Async, so a refresh runs on the
/// caller's runtime (no second runtime, no `block_on`).
#[async_trait::async_trait]
pub trait TokenProvider: Send + Sync {
    /// The token to send to `hub`; `None` for an open hub.
    async fn token(&self, hub: &str) -> Result<Option<String>, heph_auth::AuthError>;

    /// The hub answered 401 (`message`) to `rejected`: a fresh token to try
    /// once more, or an error that says what the user must do (log in
    /// again, join again).
    async fn refresh(
        &self,
        hub: &str,
        rejected: &str,
        message: &str,
    ) -> Result<String, heph_auth::AuthError>;

    /// The hub answered 401 to `fresh` too, a token just refreshed: asking
    /// for another at every pass would not change the answer (the hub
    /// trusts another issuer, wants another audience…), so the provider
    /// stops until the user acts. Nothing by default.
    async fn refused_after_refresh(&self, _hub: &str, _fresh: &str) {}
}

/// No credentials: for an open hub (local use, tests).
pub struct NoToken;

#[async_trait::async_trait]
impl TokenProvider for NoToken {
    async fn token(&self, _hub: &str) -> Result<Option<String>, heph_auth::AuthError> {
        Ok(None)
    }

    async fn refresh(
        &self,
        _hub: &str,
        _rejected: &str,
        message: &str,
    ) -> Result<String, heph_auth::AuthError> {
        Err(heph_auth::AuthError::Issuer(format!(
            "the hub wants credentials ({message}); run :HephLogin / `heph login`, or join \
             with `heph join URL TOKEN`"
        )))
    }
}

/// Reply header of `GET /v1/snapshot` that carries the snapshot's sequence.
pub const SNAPSHOT_SEQ_HEADER: &str = "x-heph-snapshot-seq";

/// Time allowed for a request before any body bytes count.
pub const BASE_TIMEOUT: Duration = Duration::from_secs(30);
/// Slowest transfer rate tolerated, in bytes per second: each request gets
/// `BASE_TIMEOUT` plus its size at this rate, so a slow link still makes
/// progress page by page instead of failing one long request.
pub const MIN_BYTES_PER_SEC: u64 = 16 * 1024;

/// The timeout of a request moving about `bytes`.
pub fn timeout_for(bytes: usize) -> Duration {
    BASE_TIMEOUT + Duration::from_secs(bytes as u64 / MIN_BYTES_PER_SEC)
}

/// An op of a page, kept as the JSON text it came as: the replica reads
/// it once (building a JSON tree and printing it again cost a third of an
/// initial pull).
#[derive(Deserialize)]
struct WireOp<'a> {
    seq: i64,
    #[serde(borrow)]
    op: &'a serde_json::value::RawValue,
}

#[derive(Deserialize)]
struct WirePage<'a> {
    #[serde(borrow)]
    ops: Vec<WireOp<'a>>,
    more: bool,
    #[serde(default)]
    now: Option<u64>,
    #[serde(default)]
    snapshot: Option<SnapshotHint>,
    #[serde(default)]
    hub: Option<String>,
    #[serde(default)]
    at: Option<HeldOp>,
}

/// A page read without looking inside the ops (never fails on depth).
#[derive(Deserialize)]
struct SkimOp {
    seq: i64,
    #[allow(dead_code)]
    op: serde::de::IgnoredAny,
}

#[derive(Deserialize)]
struct SkimPage {
    ops: Vec<SkimOp>,
    more: bool,
    #[serde(default)]
    now: Option<u64>,
    #[serde(default)]
    snapshot: Option<SnapshotHint>,
    #[serde(default)]
    hub: Option<String>,
    #[serde(default)]
    at: Option<HeldOp>,
}

/// What the hub holds at the sequence a pull asked about (`at=`): a hub
/// restored from an older copy of its database no longer holds, there, the
/// op it acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HeldOp {
    /// The sequence asked about.
    pub seq: i64,
    /// The id of the op there, `None` when there is none.
    pub op_id: Option<String>,
}

/// What a pull reply says about the hub's snapshot (on the last page).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct SnapshotHint {
    /// The stored snapshot's hub sequence (0 for none).
    pub seq: i64,
    /// Whether the hub wants a newer one.
    pub wanted: bool,
}

/// A pull reply.
#[derive(Debug, Clone)]
pub struct PullReply {
    /// Ops in sequence order, as JSON text (read by the replica, which
    /// quarantines what it cannot apply).
    pub ops: Vec<heph_store::RawOp>,
    /// Whether more ops follow.
    pub more: bool,
    /// The hub's clock (ms since the epoch), when it said.
    pub now: Option<u64>,
    /// The hub's snapshot, when it said (last page only).
    pub snapshot: Option<SnapshotHint>,
    /// The id of the hub's database, when it said (a new database at the
    /// same URL has another one).
    pub hub: Option<String>,
    /// What the hub holds at the sequence asked about, when it said (older
    /// hubs do not).
    pub at: Option<HeldOp>,
}

/// One pushed op the hub refused.
#[derive(Debug, Clone, Deserialize)]
pub struct Refusal {
    /// Its index in the request.
    pub index: usize,
    /// `clock_ahead`, `invalid` or `too_large`.
    pub code: String,
    /// Why, in words.
    pub reason: String,
    /// For `clock_ahead`: how far ahead of the hub's clock.
    #[serde(default)]
    pub ahead_ms: Option<u64>,
}

/// A push reply.
#[derive(Debug, Clone, Deserialize)]
pub struct PushReply {
    /// Ops that were new to the hub.
    pub new: usize,
    /// Sequence of each pushed op, `None` for refused ones.
    pub seqs: Vec<Option<i64>>,
    /// The ops the hub refused.
    #[serde(default)]
    pub refused: Vec<Refusal>,
}

#[derive(Serialize)]
struct PushBody<'a> {
    ops: &'a [Op],
}

/// The body of a push of `ops`.
pub fn encode_push(ops: &[Op]) -> Result<Vec<u8>, ClientError> {
    serde_json::to_vec(&PushBody { ops }).map_err(|e| ClientError::Garbage(e.to_string()))
}

/// A client for one hub.
pub struct HubClient {
    /// The hub as shown and stored (no userinfo).
    base: String,
    /// The hub as requests reach it (with userinfo, for a proxy that asks).
    connect: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl HubClient {
    /// A client for the hub at `url`.
    pub fn new(url: &str) -> Result<Self, ClientError> {
        let base = normalize_hub_url(url);
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::BadUrl {
                url: base,
                reason: "use http(s)://host:port".into(),
            });
        }
        let connect = url.trim().trim_end_matches('/').to_owned();
        // Checked here, not at the first request: a bad port or host is
        // the user's typo, not an unreachable hub to retry.
        reqwest::Url::parse(&connect).map_err(|e| ClientError::BadUrl {
            url: base.clone(),
            reason: e.to_string(),
        })?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ClientError::BadUrl {
                url: base.clone(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            base,
            connect,
            http,
            token: None,
        })
    }

    /// Sends `Authorization: Bearer` with every request.
    pub fn set_token(&mut self, token: Option<String>) {
        self.token = token;
    }

    /// The hub's URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        // A kept-alive connection that the hub (or a proxy) closed meanwhile
        // fails the next request sent on it before any answer; the hub does
        // that after refusing a body it did not read (413). Every route is
        // idempotent (a pushed op is stored once), so such a request goes
        // once more, on a new connection.
        let unreachable = |e, limit| ClientError::Unreachable {
            url: self.base.clone(),
            reason: reason(e, limit),
        };
        let request = request.build().map_err(|e| unreachable(e, None))?;
        // The request's time limit, to name it when it runs out.
        let limit = request.timeout().copied();
        let again = request.try_clone();
        let response = match (self.http.execute(request).await, again) {
            (Err(e), Some(again)) if e.is_request() && !e.is_connect() && !e.is_timeout() => {
                tracing::debug!(error = %e.without_url(), "connection closed under a request; sending it again");
                self.http.execute(again).await
            }
            (outcome, _) => outcome,
        }
        .map_err(|e| unreachable(e, limit))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        let from_hub = hub_error(&text).is_some();
        let message = match (status.as_u16(), text.trim().is_empty()) {
            // A proxy's or server's timeout says nothing: what it means.
            (408, true) => "the request took too long to send (a slow upload)".to_owned(),
            _ => error_text(&text),
        };
        if status.as_u16() == 401 {
            return Err(ClientError::Unauthorized(message));
        }
        Err(ClientError::Status {
            status: status.as_u16(),
            message,
            from_hub,
        })
    }

    /// `GET /v1/health`.
    pub async fn health(&self) -> Result<(), ClientError> {
        self.send(
            self.http
                .get(format!("{}/v1/health", self.connect))
                .timeout(BASE_TIMEOUT),
        )
        .await?;
        Ok(())
    }

    /// `POST /v1/ops`.
    pub async fn push(&self, ops: &[Op]) -> Result<PushReply, ClientError> {
        self.push_encoded(ops.len(), encode_push(ops)?).await
    }

    /// `POST /v1/ops` with a body [`encode_push`] made of `count` ops.
    pub async fn push_encoded(
        &self,
        count: usize,
        body: Vec<u8>,
    ) -> Result<PushReply, ClientError> {
        let response = self
            .send(
                self.http
                    .post(format!("{}/v1/ops", self.connect))
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .timeout(timeout_for(body.len()))
                    .body(body),
            )
            .await?;
        let reply: PushReply = response
            .json()
            .await
            .map_err(|e| ClientError::Garbage(e.without_url().to_string()))?;
        if reply.seqs.len() != count {
            return Err(ClientError::Garbage(format!(
                "pushed {count} ops but got {} sequence numbers",
                reply.seqs.len()
            )));
        }
        Ok(reply)
    }

    /// `GET /v1/ops?after=…&limit=…&max_bytes=…`.
    pub async fn pull(
        &self,
        after: i64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<PullReply, ClientError> {
        self.pull_asking(after, None, limit, max_bytes).await
    }

    /// [`HubClient::pull`], also asking which op the hub holds at sequence
    /// `at` (`&at=…`, answered in [`PullReply::at`]).
    pub async fn pull_asking(
        &self,
        after: i64,
        at: Option<i64>,
        limit: usize,
        max_bytes: usize,
    ) -> Result<PullReply, ClientError> {
        let text = self.pull_text(after, at, limit, max_bytes).await?;
        let reply = match serde_json::from_str::<WirePage>(&text) {
            Ok(page) => PullReply {
                ops: page
                    .ops
                    .into_iter()
                    .map(|o| heph_store::RawOp {
                        seq: o.seq,
                        raw: o.op.get().to_owned(),
                    })
                    .collect(),
                more: page.more,
                now: page.now,
                snapshot: page.snapshot,
                hub: page.hub,
                at: page.at,
            },
            Err(e) => {
                // The page is well formed but an op in it is not readable
                // (e.g. nested past the JSON reader's depth limit): learn the
                // sequence numbers, then take the ops one by one so only the
                // bad one is set aside.
                let skim: SkimPage = serde_json::from_str(&text).map_err(|_| {
                    // Not the protocol at all: a captive portal's or a web
                    // server's page says more than the parser's position.
                    ClientError::Garbage(if text.trim_start().starts_with('<') {
                        error_text(&text)
                    } else {
                        e.to_string()
                    })
                })?;
                let mut ops = Vec::with_capacity(skim.ops.len());
                if skim.ops.len() == 1 {
                    ops.push(heph_store::RawOp {
                        seq: skim.ops[0].seq,
                        raw: single_op_text(&text, skim.ops[0].seq),
                    });
                } else {
                    let mut prev = after;
                    for op in &skim.ops {
                        // A one-op page does not come back here (boxed
                        // only because the future refers to itself).
                        let one = Box::pin(self.pull(prev, 1, max_bytes)).await?;
                        match one.ops.into_iter().next() {
                            Some(o) if o.seq == op.seq => ops.push(o),
                            _ => {
                                return Err(ClientError::Garbage(format!(
                                    "the hub changed op {} between two reads",
                                    op.seq
                                )))
                            }
                        }
                        prev = op.seq;
                    }
                }
                PullReply {
                    ops,
                    more: skim.more,
                    now: skim.now,
                    snapshot: skim.snapshot,
                    hub: skim.hub,
                    at: skim.at,
                }
            }
        };
        let mut last = after;
        for op in &reply.ops {
            if op.seq <= last {
                return Err(ClientError::Garbage(format!(
                    "sequence numbers out of order ({} after {last})",
                    op.seq
                )));
            }
            last = op.seq;
        }
        Ok(reply)
    }

    /// `GET /v1/snapshot`: the stored snapshot's sequence and its bytes,
    /// to read piece by piece as they arrive; `Ok(None)` when the hub has
    /// none.
    pub async fn open_snapshot(&self) -> Result<Option<(i64, SnapshotDownload)>, ClientError> {
        let request = self.http.get(format!("{}/v1/snapshot", self.connect));
        let response = match tokio::time::timeout(BASE_TIMEOUT, self.send(request)).await {
            Err(_) => return Err(self.stalled("waiting for the snapshot")),
            Ok(Err(ClientError::Status { status: 404, .. })) => return Ok(None),
            Ok(other) => other?,
        };
        let seq = response
            .headers()
            .get(SNAPSHOT_SEQ_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|s| *s > 0)
            .ok_or_else(|| {
                ClientError::Garbage(format!(
                    "a snapshot without a valid {SNAPSHOT_SEQ_HEADER} header"
                ))
            })?;
        Ok(Some((
            seq,
            SnapshotDownload {
                response,
                base: self.base.clone(),
            },
        )))
    }

    /// `PUT /v1/snapshot?seq=…` with the bytes of the file `from`.
    pub async fn upload_snapshot(
        &self,
        seq: i64,
        from: &std::path::Path,
    ) -> Result<(), ClientError> {
        let local = |e: std::io::Error| {
            ClientError::Garbage(format!("cannot read {}: {e}", from.display()))
        };
        let file = tokio::fs::File::open(from).await.map_err(local)?;
        let len = file.metadata().await.map_err(local)?.len();
        self.send(
            self.http
                .put(format!("{}/v1/snapshot?seq={seq}", self.connect))
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .header(reqwest::header::CONTENT_LENGTH, len)
                .timeout(timeout_for(len as usize))
                .body(reqwest::Body::from(file)),
        )
        .await?;
        Ok(())
    }

    fn stalled(&self, what: &str) -> ClientError {
        stalled(&self.base, what)
    }

    async fn pull_text(
        &self,
        after: i64,
        at: Option<i64>,
        limit: usize,
        max_bytes: usize,
    ) -> Result<String, ClientError> {
        let at = at.map(|seq| format!("&at={seq}")).unwrap_or_default();
        let request = self.send(
            self.http
                .get(format!(
                    "{}/v1/ops?after={after}&limit={limit}&max_bytes={max_bytes}{at}",
                    self.connect
                ))
                .timeout(timeout_for(max_bytes)),
        );
        // The page's size buys time for its bytes, not for a hub that says
        // nothing at all: that one is given up on after the base timeout
        // (it kept the status line at "syncing…" for nearly five minutes).
        let response = match tokio::time::timeout(BASE_TIMEOUT, request).await {
            Err(_) => return Err(self.stalled("waiting for a page of ops")),
            Ok(response) => response?,
        };
        // The timeout covers the body too: a hub that stalls mid-page ends
        // the request.
        read_capped(response, page_cap(max_bytes))
            .await
            .map_err(|e| match e {
                Capped::Read(e) => ClientError::Unreachable {
                    url: self.base.clone(),
                    reason: reason(e, Some(timeout_for(max_bytes))),
                },
                Capped::TooLarge(cap) => ClientError::Garbage(format!(
                    "a page of ops larger than {} MiB, where at most {} MiB were asked for \
                     (a proxy or server in between?); nothing of it was applied",
                    cap >> 20,
                    max_bytes.div_ceil(1 << 20)
                )),
            })
    }
}

/// The most a pull reply may hold: the page's byte budget, once more for
/// one large op that starts a page (a page holds at least one), and the
/// JSON around them. A larger reply is no heph hub's: read whole, a broken
/// proxy's endless reply would take the device's memory with it.
fn page_cap(max_bytes: usize) -> usize {
    max_bytes
        .saturating_mul(2)
        .saturating_add(heph_core::op::MAX_BODY_BYTES * 2)
}

/// Why [`read_capped`] stopped.
enum Capped {
    Read(reqwest::Error),
    TooLarge(usize),
}

/// A reply's text, read chunk by chunk and given up past `cap` bytes.
async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<String, Capped> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(Capped::Read)? {
        if bytes.len() + chunk.len() > cap {
            return Err(Capped::TooLarge(cap));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// What a hub's error reply says: its JSON `error`. Anything else is not a
/// heph hub's answer (a web server or proxy at that URL): a one-line
/// excerpt of it, never a whole HTML page in a status line.
fn error_text(body: &str) -> String {
    if let Some(message) = hub_error(body) {
        return message;
    }
    let start = body.trim_start();
    let html = start.starts_with('<');
    let words: String = if html {
        // The page's title, or its text without tags.
        let title = start
            .split_once("<title>")
            .and_then(|(_, rest)| rest.split_once("</title>"))
            .map(|(title, _)| title.to_owned());
        title.unwrap_or_else(|| {
            let mut text = String::new();
            let mut in_tag = false;
            for c in start.chars() {
                match c {
                    '<' => in_tag = true,
                    '>' => {
                        in_tag = false;
                        text.push(' ');
                    }
                    c if !in_tag => text.push(c),
                    _ => {}
                }
            }
            text
        })
    } else {
        start.to_owned()
    };
    let words = words.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut excerpt: String = words.chars().take(120).collect();
    if words.chars().count() > 120 {
        excerpt.push('…');
    }
    match (html, excerpt.is_empty()) {
        (_, true) => "no message (not a heph hub at this URL?)".into(),
        (true, false) => format!("an HTML page \"{excerpt}\" (not a heph hub at this URL?)"),
        (false, false) => excerpt,
    }
}

/// A heph hub's error reply: its JSON `error`.
fn hub_error(body: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
}

/// The op's own text from a one-op page `{"ops":[{"seq":N,"op":…}],…}`, or
/// the whole page when it is not spelled that way.
fn single_op_text(page: &str, seq: i64) -> String {
    let prefix = format!("{{\"ops\":[{{\"seq\":{seq},\"op\":");
    if let Some(rest) = page.strip_prefix(&prefix) {
        if let Some(end) = rest.rfind("}],\"more\":") {
            return rest[..end].to_owned();
        }
    }
    page.to_owned()
}

/// Why a request failed, in words. reqwest's own message ("error sending
/// request") names no cause: a refused connection, a timeout and a reply
/// that is not HTTP all read the same. The cause is in its sources.
fn reason(e: reqwest::Error, limit: Option<Duration>) -> String {
    let e = e.without_url();
    if e.is_timeout() {
        return match limit {
            Some(limit) => format!("no answer within {} s (timed out)", limit.as_secs()),
            None => "no answer in time (timed out)".into(),
        };
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The error of a hub that stopped answering while doing `what`.
fn stalled(base: &str, what: &str) -> ClientError {
    ClientError::Unreachable {
        url: base.to_owned(),
        reason: format!("the hub stopped answering while {what}"),
    }
}

/// A snapshot being downloaded ([`HubClient::open_snapshot`]).
pub struct SnapshotDownload {
    response: reqwest::Response,
    base: String,
}

impl SnapshotDownload {
    /// The next piece of the snapshot; `Ok(None)` at its end. No limit on
    /// the whole download (snapshots are large), but on every wait for the
    /// next piece.
    pub async fn next_chunk(&mut self) -> Result<Option<bytes::Bytes>, ClientError> {
        match tokio::time::timeout(BASE_TIMEOUT, self.response.chunk()).await {
            Err(_) => Err(stalled(&self.base, "downloading the snapshot")),
            Ok(Err(e)) => Err(ClientError::Unreachable {
                url: self.base.clone(),
                reason: reason(e, None),
            }),
            Ok(Ok(chunk)) => Ok(chunk),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::error_text;

    /// A hub's JSON error is its message; a web server's page at the URL
    /// is named in one line, never pasted whole into a status line.
    /// A 401 says what to do once, not twice when the hub said it.
    #[test]
    fn a_refused_credential_is_told_what_to_do_once() {
        let hub_said = super::ClientError::Unauthorized(
            "a device credential is required: join this device with `heph join URL TOKEN`".into(),
        )
        .to_string();
        assert_eq!(hub_said.matches("heph join").count(), 1, "{hub_said}");
        let bare = super::ClientError::Unauthorized("token expired".into()).to_string();
        assert!(bare.contains("token expired; run :HephLogin"), "{bare}");
    }

    #[test]
    fn an_error_reply_is_said_in_one_line() {
        assert_eq!(
            error_text(r#"{"error":"bad query: after"}"#),
            "bad query: after"
        );
        let page = "<!DOCTYPE HTML>\n<html lang=\"en\">\n<head>\n<title>Error response</title>\n</head>\n<body>\n<h1>Error response</h1>\n<p>Error code: 404</p>\n</body>\n</html>\n";
        assert_eq!(
            error_text(page),
            "an HTML page \"Error response\" (not a heph hub at this URL?)"
        );
        let untitled = "<html><body><h1>Not\nFound</h1></body></html>";
        assert_eq!(
            error_text(untitled),
            "an HTML page \"Not Found\" (not a heph hub at this URL?)"
        );
        assert_eq!(error_text("  "), "no message (not a heph hub at this URL?)");
        let long = "x ".repeat(200);
        let said = error_text(&long);
        assert!(said.ends_with('…') && !said.contains('\n'), "{said}");
        assert_eq!(error_text("plain\ntext"), "plain text");
    }
}
