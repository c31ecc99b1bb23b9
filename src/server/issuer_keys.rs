//! The token issuers' signing keys, held for [`crate::identity::token::verify`] and kept
//! current: read from an offline JWKS file, or by OIDC discovery (`/.well-known/
//! openid-configuration` -> `jwks_uri`) over HTTPS, with the system roots or `--authn-ca-file`.
//! An unknown `kid` triggers a re-read at most once per [`UNKNOWN_KID_INTERVAL`]; when the
//! issuer cannot be reached the keys held keep working.

use crate::identity::KeySet;
use crate::identity::token::entra_tenant;
use crate::metrics::Metrics;
use crate::outbound::{error_chain, https_client};
use arc_swap::ArcSwap;
use axum::body::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Least time between two re-reads caused by tokens naming an unknown `kid`.
pub const UNKNOWN_KID_INTERVAL: Duration = Duration::from_secs(300);
/// How often the keys are re-read anyway (Entra rotates keys; it advises a daily check).
pub const ROUTINE_INTERVAL: Duration = Duration::from_secs(3600);
/// How soon the keys are read again while none could be read (an issuer not up yet).
pub const RETRY_INTERVAL: Duration = Duration::from_secs(30);
/// Time allowed for one HTTPS request.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest discovery or JWKS document read.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// Where the keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A JWKS file (offline, or kept current by other means).
    File(PathBuf),
    /// OIDC discovery of each issuer.
    Discovery {
        issuers: Vec<String>,
        ca_file: Option<PathBuf>,
    },
}

type HttpsClient = crate::outbound::HttpsClient<Empty<Bytes>>;

/// The keys in use and how to read them again.
pub struct IssuerKeys {
    source: KeySource,
    client: Option<HttpsClient>,
    current: ArcSwap<KeySet>,
    /// When the last read caused by an unknown `kid` started.
    last_forced: std::sync::Mutex<Option<Instant>>,
    /// One read at a time.
    reading: tokio::sync::Mutex<()>,
    metrics: Option<Metrics>,
}

impl IssuerKeys {
    /// Prepares the source; no key is read yet ([`IssuerKeys::refresh`]).
    pub fn new(source: KeySource, metrics: Option<Metrics>) -> anyhow::Result<IssuerKeys> {
        let client = match &source {
            KeySource::File(_) => None,
            KeySource::Discovery { ca_file, .. } => {
                Some(https_client(ca_file.as_deref(), "--authn-ca-file")?)
            }
        };
        Ok(IssuerKeys {
            source,
            client,
            current: ArcSwap::from_pointee(KeySet::default()),
            last_forced: std::sync::Mutex::new(None),
            reading: tokio::sync::Mutex::new(()),
            metrics,
        })
    }

    /// The keys in use.
    pub fn keys(&self) -> Arc<KeySet> {
        self.current.load_full()
    }

    /// Reads the keys again. On success a set that differs (keys, their material or their
    /// issuers) replaces the one held, as its next generation; on failure the keys held stay.
    /// Returns whether the set changed.
    pub async fn refresh(&self) -> Result<bool, String> {
        let _one = self.reading.lock().await;
        let read = match &self.source {
            KeySource::File(path) => read_file(path).await,
            KeySource::Discovery { issuers, .. } => match &self.client {
                Some(client) => discover_all(client, issuers).await,
                None => Err("no HTTPS client".to_string()),
            },
        };
        let result = match read {
            Ok(set) => {
                let current = self.current.load();
                let changed = set.fingerprint() != current.fingerprint();
                if let Some(m) = &self.metrics {
                    m.issuer_keys.set(set.len() as i64);
                }
                if changed {
                    self.current.store(Arc::new(set.succeeding(&current)));
                }
                Ok(changed)
            }
            Err(e) => Err(e),
        };
        if let Some(m) = &self.metrics {
            let label = match &result {
                Ok(true) => "success",
                Ok(false) => "unchanged",
                Err(_) => "error",
            };
            m.issuer_key_refreshes.with_label_values(&[label]).inc();
        }
        result
    }

    /// A token named a `kid` not held: reads the keys again unless that was done less than
    /// [`UNKNOWN_KID_INTERVAL`] ago. Keys that changed carry a new generation.
    pub async fn refresh_for_unknown_kid(&self) {
        {
            let Ok(mut last) = self.last_forced.lock() else {
                return;
            };
            if last.is_some_and(|at| at.elapsed() < UNKNOWN_KID_INTERVAL) {
                return;
            }
            *last = Some(Instant::now());
        }
        if let Err(e) = self.refresh().await {
            tracing::warn!(error = %e, "cannot read the issuers' signing keys; the keys held stay in use");
        }
    }
}

async fn read_file(path: &std::path::Path) -> Result<KeySet, String> {
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let (set, skipped) =
        KeySet::from_jwks(&bytes).map_err(|e| format!("`{}`: {e}", path.display()))?;
    for why in skipped {
        tracing::warn!(file = %path.display(), "signing key left out: {why}");
    }
    if set.is_empty() {
        return Err(format!("`{}` holds no usable signing key", path.display()));
    }
    Ok(set)
}

/// The union of every issuer's keys, each tied to the issuers that publish it; any issuer
/// failing fails the read (the keys held stay).
async fn discover_all(client: &HttpsClient, issuers: &[String]) -> Result<KeySet, String> {
    let mut all = KeySet::default();
    for issuer in issuers {
        let set = discover(client, issuer).await?;
        all.extend(&set);
    }
    Ok(all)
}

/// Where an issuer's discovery document is. Entra's v1 issuer (`https://sts.windows.net/
/// {tid}/`) publishes it under `login.microsoftonline.com/{tid}/`.
pub fn discovery_url(issuer: &str) -> String {
    if issuer.starts_with("https://sts.windows.net/")
        && let Some(tenant) = entra_tenant(issuer)
    {
        return format!(
            "https://login.microsoftonline.com/{tenant}/.well-known/openid-configuration"
        );
    }
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

async fn discover(client: &HttpsClient, issuer: &str) -> Result<KeySet, String> {
    #[derive(serde::Deserialize)]
    struct Discovery {
        issuer: String,
        jwks_uri: String,
    }
    let url = discovery_url(issuer);
    let document = get(client, &url).await?;
    let discovery: Discovery = serde_json::from_slice(&document)
        .map_err(|e| format!("`{url}` is not an OpenID provider configuration: {e}"))?;
    if discovery.issuer != issuer {
        return Err(format!(
            "`{url}` names issuer `{}`, not `{issuer}`",
            discovery.issuer
        ));
    }
    let jwks = get(client, &discovery.jwks_uri).await?;
    let (set, skipped) =
        KeySet::from_jwks(&jwks).map_err(|e| format!("`{}`: {e}", discovery.jwks_uri))?;
    for why in skipped {
        tracing::debug!(jwks_uri = %discovery.jwks_uri, "signing key left out: {why}");
    }
    Ok(set.published_by(issuer))
}

async fn get(client: &HttpsClient, url: &str) -> Result<Bytes, String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("`{url}`: {e}"))?;
    if uri.scheme_str() != Some("https") {
        return Err(format!("`{url}`: keys are read over HTTPS only"));
    }
    let request = async {
        let response = client
            .get(uri)
            .await
            .map_err(|e| format!("`{url}`: {}", error_chain(&e)))?;
        if !response.status().is_success() {
            return Err(format!("`{url}` answered {}", response.status()));
        }
        Limited::new(response.into_body(), MAX_DOCUMENT_BYTES)
            .collect()
            .await
            .map(|body| body.to_bytes())
            .map_err(|e| format!("`{url}`: {e}"))
    };
    tokio::time::timeout(FETCH_TIMEOUT, request)
        .await
        .map_err(|_| format!("`{url}`: no answer in {}s", FETCH_TIMEOUT.as_secs()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_a_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.crt");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let source = KeySource::Discovery {
            issuers: Vec::new(),
            ca_file: Some(path.clone()),
        };
        let Err(e) = IssuerKeys::new(source, None) else {
            panic!("a CA file without a certificate was accepted");
        };
        let message = e.to_string();
        assert!(message.starts_with("--authn-ca-file"), "{message}");
        assert!(message.contains("holds no certificate"), "{message}");
        assert!(message.contains(&path.display().to_string()), "{message}");
    }

    #[test]
    fn entra_v1_issuers_are_discovered_under_login_microsoftonline() {
        let t = "11111111-2222-4333-8444-555555555555";
        assert_eq!(
            discovery_url(&format!("https://sts.windows.net/{t}/")),
            format!("https://login.microsoftonline.com/{t}/.well-known/openid-configuration")
        );
        assert_eq!(
            discovery_url(&format!("https://login.microsoftonline.com/{t}/v2.0")),
            format!("https://login.microsoftonline.com/{t}/v2.0/.well-known/openid-configuration")
        );
    }
}
