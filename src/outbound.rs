//! HTTPS clients for the calls scopegate makes itself: issuer key discovery and `sync`
//! (Azure Resource Manager, Microsoft Graph, the Entra token endpoint). HTTPS only, rustls
//! with the system's roots or a given CA bundle.

use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::path::Path;
use std::sync::Arc;

pub type HttpsClient<B> = Client<hyper_rustls::HttpsConnector<HttpConnector>, B>;

/// A client trusting the CA bundle `ca_file` (named `flag` in errors), or the system's roots.
pub fn https_client<B>(ca_file: Option<&Path>, flag: &str) -> anyhow::Result<HttpsClient<B>>
where
    B: hyper::body::Body + Send + 'static + Unpin,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match ca_file {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("{flag} `{}`: {e}", path.display()))?;
            let certs = crate::server::tls::read_certs(path, &pem)
                .map_err(|e| anyhow::anyhow!("{flag}: {e}"))?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| anyhow::anyhow!("{flag} `{}`: {e}", path.display()))?;
            }
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots)
                .with_no_client_auth();
            builder.with_tls_config(config)
        }
        None => builder.with_provider_and_native_roots(provider)?,
    };
    let connector = builder.https_only().enable_http1().build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// An error and its sources, one line (`connect: tls handshake: certificate unknown`).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}
