//! Calls to Azure Resource Manager, Microsoft Graph and the token endpoint, as their
//! documentation asks clients to behave: a 429 waits what `Retry-After` (or
//! `x-ms-retry-after-ms`) says, a 5xx or a broken connection is retried a bounded number of
//! times with exponential backoff and full jitter, a low `x-ms-ratelimit-remaining-*` header
//! slows the next call, and a 401 fetches a new token once (it expired mid-sync).

use crate::metrics::SyncMetrics;
use crate::outbound::{HttpsClient, error_chain, https_client};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::{HeaderMap, Method, StatusCode, header};
use serde::Deserialize;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// Largest response body read (one page of a list).
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// Time allowed for one request and its response.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How failed calls are retried and throttling is honoured.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Tries of one call in all (429, 5xx, broken connections).
    pub attempts: u32,
    /// First backoff after a 5xx; doubled per try, then jittered.
    #[serde(with = "humantime_serde")]
    pub base_delay: Duration,
    /// Longest backoff.
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
    /// Longest wait a `Retry-After` is honoured with (a longer one is cut to this).
    #[serde(with = "humantime_serde")]
    pub max_retry_after: Duration,
    /// Below this many remaining reads (`x-ms-ratelimit-remaining-*`) the next call waits.
    pub rate_limit_floor: u64,
    /// How long it waits.
    #[serde(with = "humantime_serde")]
    pub rate_limit_pause: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(300),
            rate_limit_floor: 10,
            rate_limit_pause: Duration::from_secs(2),
        }
    }
}

/// Durations in the config file as `humantime` writes them (`500ms`, `5m`).
pub mod humantime_serde {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|e| {
            serde::de::Error::custom(format!(
                "`{text}` is not a duration (like 500ms, 30s, 5m): {e}"
            ))
        })
    }
}

/// A call that failed for good.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{method} {url}: {message}")]
pub struct ApiError {
    pub method: Method,
    /// Without its query (a delta token or skip token means nothing to a reader).
    pub url: String,
    pub status: Option<StatusCode>,
    /// The service's error code (`AuthorizationFailed`, `syncStateNotFound`, `invalid_client`).
    pub code: Option<String>,
    pub message: String,
}

impl ApiError {
    /// A call to `url` refused without an answer from the service (or before one).
    pub fn of(method: &Method, url: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            method: method.clone(),
            url: without_query(url),
            status: None,
            code: None,
            message: message.into(),
        }
    }
}

/// A request body.
pub enum Body {
    Empty,
    Form(String),
    Json(Vec<u8>),
}

/// The client every source shares.
pub struct Api {
    client: HttpsClient<Full<Bytes>>,
    pub retry: RetryPolicy,
    metrics: SyncMetrics,
}

/// Where a call's bearer tokens come from (the Entra credential): the held token, or a new
/// one when `renew` says the held one was refused.
pub trait Bearer: Send + Sync {
    fn bearer_token<'a>(
        &'a self,
        api: &'a Api,
        scope: &'a str,
        renew: bool,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, ApiError>> + Send + 'a>>;
}

/// Which token a call carries.
#[derive(Clone, Copy)]
pub struct Auth<'a> {
    pub bearer: &'a dyn Bearer,
    /// `https://management.azure.com/.default`, `https://graph.microsoft.com/.default`.
    pub scope: &'a str,
}

impl Api {
    pub fn new(
        ca_file: Option<&Path>,
        retry: RetryPolicy,
        metrics: SyncMetrics,
    ) -> anyhow::Result<Api> {
        Ok(Api {
            client: https_client(ca_file, "sync caFile")?,
            retry,
            metrics,
        })
    }

    /// GETs a JSON document with a bearer token.
    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        source: &'static str,
        url: &str,
        auth: Auth<'_>,
    ) -> Result<T, ApiError> {
        self.json(source, Method::GET, url, Body::Empty, Some(auth))
            .await
    }

    /// Sends a request and reads its JSON answer, retrying as [`RetryPolicy`] says.
    pub async fn json<T: serde::de::DeserializeOwned>(
        &self,
        source: &'static str,
        method: Method,
        url: &str,
        body: Body,
        auth: Option<Auth<'_>>,
    ) -> Result<T, ApiError> {
        let bytes = self.call(source, method.clone(), url, body, auth).await?;
        serde_json::from_slice(&bytes).map_err(|e| ApiError {
            status: Some(StatusCode::OK),
            ..ApiError::of(
                &method,
                url,
                format!("answer is not the documented JSON: {e}"),
            )
        })
    }

    async fn call(
        &self,
        source: &'static str,
        method: Method,
        url: &str,
        body: Body,
        auth: Option<Auth<'_>>,
    ) -> Result<Bytes, ApiError> {
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e| ApiError::of(&method, url, format!("not a URL: {e}")))?;
        let (content_type, payload) = match body {
            Body::Empty => (None, Bytes::new()),
            Body::Form(text) => (Some("application/x-www-form-urlencoded"), Bytes::from(text)),
            Body::Json(bytes) => (Some("application/json"), Bytes::from(bytes)),
        };
        let fail = |status: Option<StatusCode>, code: Option<String>, message: String| ApiError {
            status,
            code,
            ..ApiError::of(&method, url, message)
        };
        let mut refreshed = false;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let token = match auth {
                Some(a) => Some(a.bearer.bearer_token(self, a.scope, false).await?),
                None => None,
            };
            let mut request = hyper::Request::builder()
                .method(method.clone())
                .uri(uri.clone())
                .header(header::ACCEPT, "application/json")
                .header(
                    header::USER_AGENT,
                    concat!("scopegate/", env!("CARGO_PKG_VERSION")),
                );
            if let Some(ct) = content_type {
                request = request.header(header::CONTENT_TYPE, ct);
            }
            if let Some(token) = &token {
                request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
            }
            let request = request
                .body(Full::new(payload.clone()))
                .map_err(|e| fail(None, None, e.to_string()))?;
            let sent = tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(request)).await;
            let last = attempt >= self.retry.attempts.max(1);
            let (status, headers, bytes) = match sent {
                Ok(Ok(answer)) => answer,
                Ok(Err(_)) | Err(_) if !last => {
                    let why = match &sent {
                        Ok(Err(message)) => message.clone(),
                        _ => format!("no answer in {}s", REQUEST_TIMEOUT.as_secs()),
                    };
                    tracing::info!(url = %without_query(url), attempt, "call failed, retrying: {why}");
                    self.metrics.retry(source, "network");
                    tokio::time::sleep(backoff(&self.retry, attempt)).await;
                    continue;
                }
                Ok(Err(message)) => {
                    self.metrics.request(source, "error");
                    return Err(fail(None, None, message));
                }
                Err(_) => {
                    self.metrics.request(source, "error");
                    return Err(fail(
                        None,
                        None,
                        format!("no answer in {}s", REQUEST_TIMEOUT.as_secs()),
                    ));
                }
            };
            self.metrics.request(source, status.as_str());
            if status.is_success() {
                self.pace(source, &headers).await;
                return Ok(bytes);
            }
            let (code, message) = error_body(&bytes);
            let described = describe(status, code.as_deref(), &message);
            if status == StatusCode::UNAUTHORIZED && auth.is_some() && !refreshed {
                // The token expired or was revoked mid-sync: one new token, then the same call.
                refreshed = true;
                self.metrics.retry(source, "unauthorized");
                if let Some(a) = auth {
                    a.bearer.bearer_token(self, a.scope, true).await?;
                }
                continue;
            }
            if status == StatusCode::TOO_MANY_REQUESTS && !last {
                self.metrics.retry(source, "throttled");
                let wait = retry_after(&headers, SystemTime::now())
                    .map(|w| w.min(self.retry.max_retry_after))
                    .unwrap_or_else(|| backoff(&self.retry, attempt));
                tracing::info!(url = %without_query(url), wait_ms = wait.as_millis() as u64, "throttled (429): waiting as Retry-After says");
                tokio::time::sleep(wait).await;
                continue;
            }
            if status.is_server_error() && !last {
                self.metrics.retry(source, "server_error");
                let wait = retry_after(&headers, SystemTime::now())
                    .map(|w| w.min(self.retry.max_retry_after))
                    .unwrap_or_else(|| backoff(&self.retry, attempt));
                tracing::info!(url = %without_query(url), %status, attempt, "server error: retrying");
                tokio::time::sleep(wait).await;
                continue;
            }
            let tries = if attempt > 1 {
                format!(" (after {attempt} tries)")
            } else {
                String::new()
            };
            return Err(fail(Some(status), code, format!("{described}{tries}")));
        }
    }

    async fn exchange(
        &self,
        request: hyper::Request<Full<Bytes>>,
    ) -> Result<(StatusCode, HeaderMap, Bytes), String> {
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| error_chain(&e))?;
        let (parts, body) = response.into_parts();
        let bytes = Limited::new(body, MAX_BODY_BYTES)
            .collect()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?
            .to_bytes();
        Ok((parts.status, parts.headers, bytes))
    }

    /// Waits before the next call when the service says few calls remain.
    async fn pace(&self, source: &str, headers: &HeaderMap) {
        if let Some(remaining) = remaining_calls(headers)
            && remaining < self.retry.rate_limit_floor
        {
            tracing::info!(
                remaining,
                pause_ms = self.retry.rate_limit_pause.as_millis() as u64,
                "few calls remain (x-ms-ratelimit-remaining-*): slowing down"
            );
            self.metrics.retry(source, "rate_limit");
            tokio::time::sleep(self.retry.rate_limit_pause).await;
        }
    }
}

/// The fewest calls any `x-ms-ratelimit-remaining-*` header says remain.
pub fn remaining_calls(headers: &HeaderMap) -> Option<u64> {
    headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("x-ms-ratelimit-remaining-"))
        .filter_map(|(_, value)| value.to_str().ok()?.trim().parse::<u64>().ok())
        .min()
}

/// How long a 429 or 503 asks to wait: `x-ms-retry-after-ms`, or `Retry-After` in seconds or
/// as an HTTP date.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if let Some(ms) = headers
        .get("x-ms-retry-after-ms")
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
    {
        return Some(Duration::from_millis(ms));
    }
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Exponential backoff with full jitter: a random wait between half and all of
/// `base_delay × 2^(attempt-1)`, at most `max_delay`.
pub fn backoff(retry: &RetryPolicy, attempt: u32) -> Duration {
    let exp = retry
        .base_delay
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let ceiling = exp.min(retry.max_delay);
    let half = ceiling / 2;
    half + half.mul_f64(fastrand::f64())
}

/// The service's error code and message from an ARM/Graph (`{"error": {"code", "message"}}`)
/// or OAuth (`{"error": "invalid_client", "error_description"}`) error body.
fn error_body(bytes: &[u8]) -> (Option<String>, String) {
    #[derive(Deserialize)]
    struct Inner {
        code: Option<String>,
        message: Option<String>,
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Error {
        Structured(Inner),
        OAuth(String),
    }
    #[derive(Deserialize)]
    struct Envelope {
        error: Option<Error>,
        error_description: Option<String>,
    }
    match serde_json::from_slice::<Envelope>(bytes) {
        Ok(Envelope {
            error: Some(Error::Structured(inner)),
            ..
        }) => (inner.code, inner.message.unwrap_or_default()),
        Ok(Envelope {
            error: Some(Error::OAuth(code)),
            error_description,
        }) => (Some(code), error_description.unwrap_or_default()),
        _ => {
            let text = String::from_utf8_lossy(bytes);
            (None, text.chars().take(200).collect())
        }
    }
}

fn describe(status: StatusCode, code: Option<&str>, message: &str) -> String {
    // The first line of the message: token endpoint descriptions carry trace ids below it.
    let message = message.lines().next().unwrap_or_default().trim();
    match (code, message.is_empty()) {
        (Some(code), false) => format!("{status} {code}: {message}"),
        (Some(code), true) => format!("{status} {code}"),
        (None, false) => format!("{status}: {message}"),
        (None, true) => status.to_string(),
    }
}

/// A URL as errors and logs show it: without its query (skip and delta tokens).
pub fn without_query(url: &str) -> String {
    url.split('?').next().unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn retry_after_reads_seconds_dates_and_milliseconds() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h, now), None);
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
        h.insert(
            header::RETRY_AFTER,
            HeaderValue::from_str(&httpdate::fmt_http_date(now + Duration::from_secs(30))).unwrap(),
        );
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(30)));
        h.insert("x-ms-retry-after-ms", HeaderValue::from_static("1500"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_millis(1500)));
        let mut past = HeaderMap::new();
        past.insert(
            header::RETRY_AFTER,
            HeaderValue::from_str(&httpdate::fmt_http_date(now - Duration::from_secs(30))).unwrap(),
        );
        assert_eq!(retry_after(&past, now), Some(Duration::ZERO));
    }

    #[test]
    fn the_fewest_remaining_calls_count() {
        let mut h = HeaderMap::new();
        assert_eq!(remaining_calls(&h), None);
        h.insert(
            "x-ms-ratelimit-remaining-subscription-reads",
            HeaderValue::from_static("11999"),
        );
        h.insert(
            "x-ms-ratelimit-remaining-tenant-reads",
            HeaderValue::from_static("3"),
        );
        h.insert("x-ms-request-id", HeaderValue::from_static("1"));
        assert_eq!(remaining_calls(&h), Some(3));
    }

    #[test]
    fn backoff_doubles_with_jitter_and_stays_below_the_ceiling() {
        let retry = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            ..RetryPolicy::default()
        };
        for attempt in 1..=10 {
            let ceiling = (Duration::from_millis(100) * (1 << (attempt - 1))).min(retry.max_delay);
            for _ in 0..50 {
                let wait = backoff(&retry, attempt);
                assert!(
                    wait >= ceiling / 2 && wait <= ceiling,
                    "{attempt}: {wait:?}"
                );
            }
        }
        let spread: std::collections::HashSet<_> =
            (0..50).map(|_| backoff(&retry, 3).as_micros()).collect();
        assert!(spread.len() > 10, "no jitter: {spread:?}");
    }

    #[test]
    fn error_bodies_of_arm_graph_and_the_token_endpoint_are_read() {
        let (code, message) = error_body(
            br#"{"error":{"code":"AuthorizationFailed","message":"The client has no access"}}"#,
        );
        assert_eq!(code.as_deref(), Some("AuthorizationFailed"));
        assert_eq!(message, "The client has no access");
        let (code, message) = error_body(
            br#"{"error":"invalid_client","error_description":"AADSTS700213: No matching federated identity record found\r\nTrace ID: x"}"#,
        );
        assert_eq!(code.as_deref(), Some("invalid_client"));
        assert_eq!(
            describe(StatusCode::BAD_REQUEST, code.as_deref(), &message),
            "400 Bad Request invalid_client: AADSTS700213: No matching federated identity record found"
        );
        let (code, message) = error_body(b"<html>gateway</html>");
        assert_eq!(code, None);
        assert_eq!(message, "<html>gateway</html>");
    }

    #[test]
    fn urls_lose_their_query_in_messages() {
        assert_eq!(
            without_query("https://graph.microsoft.com/v1.0/users/delta?$deltatoken=SECRET"),
            "https://graph.microsoft.com/v1.0/users/delta"
        );
    }
}
