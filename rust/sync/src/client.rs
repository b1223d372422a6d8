//! HTTP client for the hub's three routes. Blocking: sync runs on its own
//! thread (or the CLI's), and short timeouts keep it from hanging there.

use std::time::Duration;

use heph_auth::normalize_hub_url;
use heph_core::Op;
use serde::{Deserialize, Serialize};

/// Errors talking to the hub.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The hub URL is not usable.
    #[error("invalid hub URL {0:?}: use http(s)://host:port")]
    BadUrl(String),
    /// No connection (hub down, wrong address, network).
    #[error("hub unreachable at {url}: {reason}")]
    Unreachable {
        /// The hub.
        url: String,
        /// Why.
        reason: String,
    },
    /// The hub needs a (new) token.
    #[error("the hub refused the credentials (401): {0}; run :HephLogin or `heph login`")]
    Unauthorized(String),
    /// The hub answered with an error status.
    #[error("hub returned {status}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The hub's message.
        message: String,
    },
    /// The hub answered with something that is not the protocol.
    #[error("hub returned an invalid reply: {0}")]
    Garbage(String),
}

impl ClientError {
    /// Whether retrying later may help (network trouble, hub errors).
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Unreachable { .. } => true,
            ClientError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// One op of a pull reply.
#[derive(Debug, Clone, Deserialize)]
pub struct PulledOp {
    /// Hub sequence number.
    pub seq: i64,
    /// The op, still as JSON (parsed by the caller, with a clear error).
    pub op: serde_json::Value,
}

/// A pull reply.
#[derive(Debug, Clone, Deserialize)]
pub struct PullReply {
    /// Ops in sequence order.
    pub ops: Vec<PulledOp>,
    /// Whether more ops follow.
    pub more: bool,
}

/// A push reply.
#[derive(Debug, Clone, Deserialize)]
pub struct PushReply {
    /// Ops that were new to the hub.
    pub new: usize,
    /// Sequence of each pushed op.
    pub seqs: Vec<i64>,
}

#[derive(Serialize)]
struct PushBody<'a> {
    ops: &'a [Op],
}

/// A client for one hub.
pub struct HubClient {
    base: String,
    http: reqwest::blocking::Client,
    token: Option<String>,
}

impl HubClient {
    /// A client for the hub at `url`.
    pub fn new(url: &str) -> Result<Self, ClientError> {
        let base = normalize_hub_url(url);
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::BadUrl(url.to_owned()));
        }
        let http = reqwest::blocking::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ClientError::BadUrl(format!("{url}: {e}")))?;
        Ok(Self {
            base,
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

    fn send(
        &self,
        request: reqwest::blocking::RequestBuilder,
    ) -> Result<reqwest::blocking::Response, ClientError> {
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request.send().map_err(|e| ClientError::Unreachable {
            url: self.base.clone(),
            reason: e.without_url().to_string(),
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
            .unwrap_or_else(|| text.chars().take(200).collect());
        if status.as_u16() == 401 {
            return Err(ClientError::Unauthorized(message));
        }
        Err(ClientError::Status {
            status: status.as_u16(),
            message,
        })
    }

    /// `GET /v1/health`.
    pub fn health(&self) -> Result<(), ClientError> {
        self.send(self.http.get(format!("{}/v1/health", self.base)))?;
        Ok(())
    }

    /// `POST /v1/ops`.
    pub fn push(&self, ops: &[Op]) -> Result<PushReply, ClientError> {
        let response = self.send(
            self.http
                .post(format!("{}/v1/ops", self.base))
                .json(&PushBody { ops }),
        )?;
        let reply: PushReply = response
            .json()
            .map_err(|e| ClientError::Garbage(e.without_url().to_string()))?;
        if reply.seqs.len() != ops.len() {
            return Err(ClientError::Garbage(format!(
                "pushed {} ops but got {} sequence numbers",
                ops.len(),
                reply.seqs.len()
            )));
        }
        Ok(reply)
    }

    /// `GET /v1/ops?after=…&limit=…`.
    pub fn pull(&self, after: i64, limit: usize) -> Result<PullReply, ClientError> {
        let response = self.send(
            self.http
                .get(format!("{}/v1/ops?after={after}&limit={limit}", self.base)),
        )?;
        let reply: PullReply = response
            .json()
            .map_err(|e| ClientError::Garbage(e.without_url().to_string()))?;
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
}
