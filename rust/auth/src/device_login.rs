//! OAuth 2.0 Device Authorization Grant (RFC 8628) against an OIDC issuer
//! found by discovery, with the `oauth2` crate. Progress is reported through
//! a callback so the CLI can print it and the sidecar can show it in Neovim.

use std::future::Future;
use std::time::Duration;

use oauth2::basic::BasicClient;
use oauth2::{
    ClientId, DeviceAuthorizationUrl, RequestTokenError, Scope,
    StandardDeviceAuthorizationResponse, TokenResponse, TokenUrl,
};
use serde::Deserialize;

use crate::http_client::{send, HttpError};
use crate::AuthError;

/// The longest wait between polls after failed requests.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What login needs to know.
#[derive(Debug, Clone)]
pub struct LoginConfig {
    /// The OIDC issuer.
    pub issuer: String,
    /// The public client's id.
    pub client_id: String,
    /// The hub's audience (resource indicator), when the issuer needs one
    /// to issue JWT access tokens for the hub.
    pub audience: Option<String>,
}

/// Progress of a login. As JSON (the sidecar's `login` notification,
/// doc/rpc.md) it is a map whose `state` is `code`, `polling` or
/// `retrying`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LoginEvent {
    /// Show these to the user.
    Code {
        /// Where to go.
        verification_uri: String,
        /// The same, with the code filled in, when the issuer gives one.
        verification_uri_complete: Option<String>,
        /// The code to type.
        user_code: String,
        /// Seconds until the code expires.
        expires_in: u64,
    },
    /// Waiting for the user (again, after the issuer was unreachable).
    Polling,
    /// A poll failed (no answer, or a 5xx): polling goes on, slower, until
    /// the code expires. Sent once per run of failures.
    Retrying {
        /// What went wrong, for the user.
        #[serde(rename = "message")]
        reason: String,
    },
}

/// Tokens from a successful login or refresh.
#[derive(Clone, PartialEq, Eq)]
pub struct Tokens {
    /// The access token.
    pub access_token: String,
    /// The refresh token, when issued.
    pub refresh_token: Option<String>,
    /// Unix time (s) when the access token expires.
    pub expires_at: u64,
}

impl Endpoints {
    fn token_url(&self) -> Result<TokenUrl, AuthError> {
        let url = self
            .token_endpoint
            .clone()
            .ok_or_else(|| AuthError::Issuer("the issuer has no token endpoint".into()))?;
        TokenUrl::new(url).map_err(|e| AuthError::Issuer(e.to_string()))
    }
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print tokens.
        f.debug_struct("Tokens")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The endpoints heph uses from the discovery document.
#[derive(Debug, Clone, Deserialize)]
pub struct Endpoints {
    /// The issuer, as the document states it.
    pub issuer: String,
    /// Device authorization endpoint.
    pub device_authorization_endpoint: Option<String>,
    /// Token endpoint.
    pub token_endpoint: Option<String>,
    /// The issuer's signing keys (for the hub's token checks).
    pub jwks_uri: Option<String>,
    /// Where tokens are revoked (RFC 7009), when the issuer offers it.
    pub revocation_endpoint: Option<String>,
}

/// A client that follows no redirects (auth traffic never should).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

/// Reads `/.well-known/openid-configuration`.
pub async fn discover(http: &reqwest::Client, issuer: &str) -> Result<Endpoints, AuthError> {
    let issuer = issuer.trim_end_matches('/');
    let url = format!("{issuer}/.well-known/openid-configuration");
    let response = http.get(&url).send().await.map_err(|e| {
        AuthError::Network(format!(
            "cannot reach the issuer at {issuer}: {}",
            e.without_url()
        ))
    })?;
    if !response.status().is_success() {
        return Err(AuthError::Issuer(format!(
            "discovery at {url} answered {}",
            response.status()
        )));
    }
    let endpoints: Endpoints = response
        .json()
        .await
        .map_err(|e| AuthError::Issuer(format!("bad discovery document: {}", e.without_url())))?;
    if endpoints.issuer.trim_end_matches('/') != issuer {
        return Err(AuthError::Issuer(format!(
            "the discovery document names issuer {} instead of {issuer}",
            endpoints.issuer
        )));
    }
    Ok(endpoints)
}

/// Unix time in seconds (token expiry is kept in it).
pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn tokens_from(response: &impl TokenResponse) -> Tokens {
    Tokens {
        access_token: response.access_token().secret().clone(),
        refresh_token: response.refresh_token().map(|r| r.secret().clone()),
        expires_at: now() + response.expires_in().map(|d| d.as_secs()).unwrap_or(300),
    }
}

fn explain<E: std::error::Error>(
    err: RequestTokenError<E, oauth2::DeviceCodeErrorResponse>,
) -> AuthError {
    use oauth2::DeviceCodeErrorResponseType as T;
    match err {
        RequestTokenError::ServerResponse(r) => match r.error() {
            T::ExpiredToken => {
                AuthError::Denied("the code expired before it was entered; run login again".into())
            }
            T::AccessDenied => AuthError::Denied("the request was denied at the issuer".into()),
            other => AuthError::Issuer(format!(
                "the issuer refused: {other}{}",
                r.error_description()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            )),
        },
        RequestTokenError::Request(e) => AuthError::Network(e.to_string()),
        RequestTokenError::Parse(e, _) => {
            AuthError::Issuer(format!("unreadable reply from the issuer: {e}"))
        }
        RequestTokenError::Other(e) => AuthError::Issuer(e),
    }
}

/// Runs the device flow: asks for a code, reports it, polls until the user
/// approves (handling `authorization_pending` and `slow_down`), and returns
/// the tokens. `sleep` is injectable so tests need not wait real seconds.
pub async fn device_login<S, SF>(
    config: &LoginConfig,
    on_event: impl Fn(LoginEvent),
    sleep: S,
) -> Result<Tokens, AuthError>
where
    S: Fn(Duration) -> SF,
    SF: Future<Output = ()>,
{
    let http = http();
    let endpoints = discover(&http, &config.issuer).await?;
    let device_url = endpoints
        .device_authorization_endpoint
        .clone()
        .ok_or_else(|| AuthError::Issuer("the issuer does not support the device flow".into()))?;
    let client = BasicClient::new(ClientId::new(config.client_id.clone()))
        .set_device_authorization_url(
            DeviceAuthorizationUrl::new(device_url)
                .map_err(|e| AuthError::Issuer(e.to_string()))?,
        )
        .set_token_uri(endpoints.token_url()?);
    let http_call = |request| send(&http, request);
    let mut request = client
        .exchange_device_code()
        .add_scope(Scope::new("openid".into()))
        .add_scope(Scope::new("offline_access".into()));
    if let Some(aud) = &config.audience {
        request = request.add_extra_param("resource", aud.clone());
    }
    let details: StandardDeviceAuthorizationResponse = request
        .request_async(&http_call)
        .await
        .map_err(|e| match e {
            RequestTokenError::Request(HttpError(msg)) => AuthError::Network(msg),
            RequestTokenError::ServerResponse(r) => {
                AuthError::Issuer(format!("device authorization refused: {}", r.error()))
            }
            other => AuthError::Issuer(other.to_string()),
        })?;
    on_event(LoginEvent::Code {
        verification_uri: details.verification_uri().to_string(),
        verification_uri_complete: details
            .verification_uri_complete()
            .map(|u| u.secret().clone()),
        user_code: details.user_code().secret().clone(),
        expires_in: details.expires_in().as_secs(),
    });
    on_event(LoginEvent::Polling);
    // The oauth2 crate keeps polling after a failed request, doubling the
    // interval; say so once per run of failures, and remember the last one
    // in case the code expires meanwhile.
    let last_failure = std::cell::RefCell::new(None::<String>);
    let (last_failure, on_event) = (&last_failure, &on_event);
    let poll_call = |request| {
        let reply = send(&http, request);
        async move {
            let reply = reply.await;
            match &reply {
                Err(HttpError(reason)) => {
                    if last_failure.replace(Some(reason.clone())).is_none() {
                        on_event(LoginEvent::Retrying {
                            reason: reason.clone(),
                        });
                    }
                }
                Ok(_) => {
                    if last_failure.take().is_some() {
                        on_event(LoginEvent::Polling);
                    }
                }
            }
            reply
        }
    };
    let mut token_request = client
        .exchange_device_access_token(&details)
        // Above the crate's 10 s, so a failure never polls faster than a
        // `slow_down` asked for (RFC 8628 §3.5).
        .set_max_backoff_interval(MAX_BACKOFF);
    if let Some(aud) = &config.audience {
        token_request = token_request.add_extra_param("resource", aud.clone());
    }
    let response = token_request
        .request_async(&poll_call, sleep, None)
        .await
        .map_err(|e| match (explain(e), last_failure.take()) {
            (AuthError::Denied(_), Some(reason)) => AuthError::Network(format!(
                "{reason}; the code expired while heph kept trying; run login again"
            )),
            (err, _) => err,
        })?;
    Ok(tokens_from(&response))
}

/// Uses a refresh token once. `invalid_grant` means the session is over.
pub async fn refresh(config: &LoginConfig, refresh_token: &str) -> Result<Tokens, AuthError> {
    let http = http();
    let endpoints = discover(&http, &config.issuer).await?;
    let client = BasicClient::new(ClientId::new(config.client_id.clone()))
        .set_token_uri(endpoints.token_url()?);
    // Each call owns its client handle (a cheap clone): a future that
    // borrowed the closure's client would not be `Send` for every lifetime,
    // and sync awaits this refresh inside its own `Send` futures.
    let http_call = |request| {
        let http = http.clone();
        async move { send(&http, request).await }
    };
    let refresh_token_value = oauth2::RefreshToken::new(refresh_token.to_owned());
    let mut request = client.exchange_refresh_token(&refresh_token_value);
    if let Some(aud) = &config.audience {
        request = request.add_extra_param("resource", aud.clone());
    }
    let response = request
        .request_async(&http_call)
        .await
        .map_err(|e| match e {
            RequestTokenError::ServerResponse(r)
                if *r.error() == oauth2::basic::BasicErrorResponseType::InvalidGrant =>
            {
                AuthError::LoginNeeded
            }
            RequestTokenError::ServerResponse(r) => {
                AuthError::Issuer(format!("refresh refused: {}", r.error()))
            }
            RequestTokenError::Request(HttpError(msg)) => AuthError::Network(msg),
            other => AuthError::Issuer(other.to_string()),
        })?;
    let mut tokens = tokens_from(&response);
    // Some issuers keep the refresh token when they do not rotate.
    if tokens.refresh_token.is_none() {
        tokens.refresh_token = Some(refresh_token.to_owned());
    }
    Ok(tokens)
}

/// Revokes a refresh token at the issuer (RFC 7009), as a logout does: a
/// copy of it left elsewhere (a keyring backup, an old disk) can no longer
/// get access tokens. `Ok(false)`: the issuer offers no revocation.
///
/// The request is made here rather than with the `oauth2` crate, which
/// refuses every revocation URL that is not HTTPS: an issuer on the same
/// machine (tests, a local provider) serves plain HTTP on loopback. Other
/// plain-HTTP endpoints are refused, as RFC 7009 asks.
pub async fn revoke_refresh_token(
    config: &LoginConfig,
    refresh_token: &str,
) -> Result<bool, AuthError> {
    let http = http();
    let endpoints = discover(&http, &config.issuer).await?;
    let Some(endpoint) = endpoints.revocation_endpoint else {
        return Ok(false);
    };
    let url = reqwest::Url::parse(&endpoint)
        .map_err(|e| AuthError::Issuer(format!("bad revocation endpoint {endpoint:?}: {e}")))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    };
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err(AuthError::Issuer(format!(
            "the revocation endpoint {endpoint} is not HTTPS"
        )));
    }
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("token", refresh_token)
        .append_pair("token_type_hint", "refresh_token")
        .append_pair("client_id", &config.client_id)
        .finish();
    let response = http
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .body(form)
        .send()
        .await
        .map_err(|e| AuthError::Network(format!("cannot reach the issuer: {}", e.without_url())))?;
    let status = response.status();
    if status.is_success() {
        return Ok(true);
    }
    // An OAuth error names itself in a small JSON body (RFC 6749 5.2).
    let body = response.text().await.unwrap_or_default();
    let error = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned));
    Err(AuthError::Issuer(match error {
        Some(error) => format!("revocation refused: {error}"),
        None => format!("the revocation endpoint answered {status}"),
    }))
}

#[cfg(test)]
mod event_tests {
    use super::LoginEvent;

    /// The sidecar forwards these maps to Neovim as they are (lua/heph/login.lua).
    #[test]
    fn events_serialize_as_the_login_notification() {
        let code = serde_json::to_value(LoginEvent::Code {
            verification_uri: "https://id/device".into(),
            verification_uri_complete: None,
            user_code: "ABCD-EFGH".into(),
            expires_in: 600,
        })
        .expect("json");
        assert_eq!(code["state"], "code");
        assert_eq!(code["user_code"], "ABCD-EFGH");
        assert_eq!(code["verification_uri"], "https://id/device");
        assert_eq!(code["expires_in"], 600);
        let retrying = serde_json::to_value(LoginEvent::Retrying {
            reason: "the issuer did not answer".into(),
        })
        .expect("json");
        assert_eq!(
            retrying,
            serde_json::json!({ "state": "retrying", "message": "the issuer did not answer" })
        );
        let polling = serde_json::to_value(LoginEvent::Polling).expect("json");
        assert_eq!(polling, serde_json::json!({ "state": "polling" }));
    }
}
