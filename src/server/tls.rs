//! Serving TLS with rustls: TLS 1.2 and 1.3, the serving certificate and key from files,
//! optional client certificates verified against one or more CA files. The configuration
//! lives behind an `ArcSwap` and each new connection takes the current one, so rotated
//! files apply to new connections while open ones carry on; a bad new file is rejected and
//! the old configuration stays.

use arc_swap::ArcSwap;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The files TLS is built from.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_cas: Vec<PathBuf>,
}

impl TlsFiles {
    /// Every file the credentials are read from (what a reload watches).
    pub fn paths(&self) -> Vec<PathBuf> {
        [&self.cert, &self.key]
            .into_iter()
            .chain(&self.client_cas)
            .cloned()
            .collect()
    }
}

/// Why TLS credentials could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read certificates from `{0}`: {1}")]
    Certs(String, String),
    #[error("`{0}` holds no certificate")]
    NoCert(String),
    #[error("cannot read private key from `{0}`: {1}")]
    Key(String, String),
    #[error("client CA `{0}`: {1}")]
    ClientCa(String, String),
    #[error("invalid TLS configuration: {0}")]
    Config(String),
}

/// A built configuration with what the metrics report about it.
pub struct BuiltTls {
    pub config: Arc<ServerConfig>,
    /// Unix time the serving certificate expires.
    pub serving_expiry: Option<i64>,
    /// Earliest expiry among the client CAs.
    pub client_ca_expiry: Option<i64>,
    /// The files' bytes it was built from.
    source: Contents,
}

/// The bytes of every file the credentials are built from, in [`TlsFiles::paths`] order.
#[derive(Clone, PartialEq, Eq)]
struct Contents(Vec<Vec<u8>>);

impl Contents {
    fn read(files: &TlsFiles) -> Result<Self, TlsError> {
        files
            .paths()
            .iter()
            .map(|path| {
                std::fs::read(path)
                    .map_err(|e| TlsError::Certs(path.display().to_string(), e.to_string()))
            })
            .collect::<Result<_, _>>()
            .map(Contents)
    }

    fn get(&self, i: usize) -> &[u8] {
        self.0.get(i).map_or(&[], Vec::as_slice)
    }
}

/// The certificates of a PEM file's bytes (`path` names it in errors): at least one.
pub(crate) fn read_certs(
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let name = path.display().to_string();
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Certs(name.clone(), e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::NoCert(name));
    }
    Ok(certs)
}

/// Unix time a DER certificate expires.
pub fn expiry(cert: &CertificateDer<'_>) -> Option<i64> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    Some(parsed.validity().not_after.timestamp())
}

/// Why a client certificate's common name cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientNameError {
    /// More than one CN: readers disagree on which is the name (Go's crypto/x509 takes the
    /// last one, others the first), so none is taken.
    #[error(
        "client certificate has {0} subject common names; exactly one is required to check its name"
    )]
    Several(usize),
    #[error("client certificate's subject common name is not text")]
    NotText,
    #[error("client certificate cannot be parsed")]
    Unparsable,
}

/// The subject common name of a DER certificate: `None` without one, an error with several.
pub fn common_name(cert: &CertificateDer<'_>) -> Result<Option<String>, ClientNameError> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|_| ClientNameError::Unparsable)?;
    let mut names = parsed.subject().iter_common_name();
    let Some(first) = names.next() else {
        return Ok(None);
    };
    let more = names.count();
    if more > 0 {
        return Err(ClientNameError::Several(more + 1));
    }
    let name = first.as_str().map_err(|_| ClientNameError::NotText)?;
    Ok(Some(name.to_string()))
}

/// Builds a server configuration from the files.
pub fn build(files: &TlsFiles) -> Result<BuiltTls, TlsError> {
    build_from(files, &Contents::read(files)?)
}

fn build_from(files: &TlsFiles, contents: &Contents) -> Result<BuiltTls, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = read_certs(&files.cert, contents.get(0))?;
    let key = PrivateKeyDer::from_pem_slice(contents.get(1))
        .map_err(|e| TlsError::Key(files.key.display().to_string(), e.to_string()))?;
    let serving_expiry = certs.first().and_then(expiry);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let mut client_ca_expiry: Option<i64> = None;
    let builder = if files.client_cas.is_empty() {
        builder.with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        for (i, ca) in files.client_cas.iter().enumerate() {
            let name = ca.display().to_string();
            for cert in read_certs(ca, contents.get(2 + i))? {
                if let Some(t) = expiry(&cert) {
                    client_ca_expiry = Some(client_ca_expiry.map_or(t, |e| e.min(t)));
                }
                roots
                    .add(cert)
                    .map_err(|e| TlsError::ClientCa(name.clone(), e.to_string()))?;
            }
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        builder.with_client_cert_verifier(verifier)
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(BuiltTls {
        config: Arc::new(config),
        serving_expiry,
        client_ca_expiry,
        source: contents.clone(),
    })
}

/// The current TLS configuration, swapped on rotation.
pub struct TlsState {
    pub files: TlsFiles,
    current: ArcSwap<ServerConfig>,
    /// The files' bytes the current configuration was built from.
    in_use: std::sync::Mutex<Contents>,
}

/// What a reload did.
pub enum Reloaded {
    /// The files changed and the new credentials are in use.
    Changed(BuiltTls),
    /// The files hold the bytes already in use: nothing was rebuilt.
    Unchanged,
}

impl TlsState {
    pub fn new(files: TlsFiles, built: &BuiltTls) -> Self {
        TlsState {
            files,
            current: ArcSwap::new(built.config.clone()),
            in_use: std::sync::Mutex::new(built.source.clone()),
        }
    }

    /// The configuration a new connection uses.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current.load_full()
    }

    /// Re-reads the files and rebuilds when their bytes differ from the ones in use; on error
    /// the old configuration stays.
    pub fn reload(&self) -> Result<Reloaded, TlsError> {
        let contents = Contents::read(&self.files)?;
        let mut in_use = self.in_use.lock().unwrap_or_else(|e| e.into_inner());
        if *in_use == contents {
            return Ok(Reloaded::Unchanged);
        }
        let built = build_from(&self.files, &contents)?;
        self.current.store(built.config.clone());
        *in_use = contents;
        Ok(Reloaded::Changed(built))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::Authority;

    #[test]
    fn a_reload_of_the_same_bytes_is_unchanged() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let ca = Authority::new("test-ca").unwrap();
        let write = |pem: &crate::certs::Pem| {
            std::fs::write(dir.path().join("server.crt"), &pem.cert).unwrap();
            std::fs::write(dir.path().join("server.key"), &pem.key).unwrap();
        };
        let first = ca.server(&["127.0.0.1".into()], 30).unwrap();
        write(&first);
        std::fs::write(dir.path().join("ca.crt"), &ca.pem.cert).unwrap();
        let files = TlsFiles {
            cert: dir.path().join("server.crt"),
            key: dir.path().join("server.key"),
            client_cas: vec![dir.path().join("ca.crt")],
        };
        let state = TlsState::new(files.clone(), &build(&files).unwrap());
        let in_use = state.current();
        assert!(matches!(state.reload(), Ok(Reloaded::Unchanged)));
        assert!(Arc::ptr_eq(&in_use, &state.current()));
        // Rewritten with the same bytes (a periodic re-read, a touched file): still unchanged.
        write(&first);
        assert!(matches!(state.reload(), Ok(Reloaded::Unchanged)));
        // A new certificate is built and used, once.
        write(&ca.server(&["127.0.0.1".into()], 30).unwrap());
        assert!(matches!(state.reload(), Ok(Reloaded::Changed(_))));
        assert!(!Arc::ptr_eq(&in_use, &state.current()));
        assert!(matches!(state.reload(), Ok(Reloaded::Unchanged)));
        // A changed client CA counts as a change too.
        let other = Authority::new("other-ca").unwrap();
        std::fs::write(dir.path().join("ca.crt"), &other.pem.cert).unwrap();
        assert!(matches!(state.reload(), Ok(Reloaded::Changed(_))));
    }
}
