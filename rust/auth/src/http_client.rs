//! Adapts reqwest to the `oauth2` crate's HTTP client interface.

use oauth2::{HttpRequest, HttpResponse};

/// An HTTP failure: no response, or a server error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(pub String);

/// Sends one oauth2 request with `http`.
pub async fn send(http: &reqwest::Client, request: HttpRequest) -> Result<HttpResponse, HttpError> {
    let (parts, body) = request.into_parts();
    let response = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| HttpError(format!("cannot reach the issuer: {}", e.without_url())))?;
    let status = response.status();
    // OAuth errors are 4xx with a JSON body; a 5xx is an outage (a proxy, a
    // restart), so callers treat it like no answer: the device flow retries.
    if status.is_server_error() {
        return Err(HttpError(format!("the issuer answered {status}")));
    }
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .map_err(|e| HttpError(format!("reply cut off: {}", e.without_url())))?;
    let mut out = http::Response::builder()
        .status(status)
        .body(body.to_vec())
        .map_err(|e| HttpError(e.to_string()))?;
    *out.headers_mut() = headers;
    Ok(out)
}
