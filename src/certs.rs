//! `scopegate certs`: a throwaway CA with a serving certificate and a client certificate for
//! kube-apiserver, for trying scopegate out and for tests, or new leaves from an existing CA.
//! Production certificates come from your PKI (cert-manager, kubeadm's CA).

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

/// A generated certificate and its key, PEM-encoded.
pub struct Pem {
    pub cert: String,
    pub key: String,
}

/// A certificate authority that can issue more certificates.
pub struct Authority {
    pub pem: Pem,
    issuer: Issuer<'static, KeyPair>,
}

fn params(common_name: &str, days: i64) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    p.distinguished_name = dn;
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::hours(1);
    p.not_after = now + Duration::days(days);
    p
}

impl Authority {
    /// A new self-signed CA.
    pub fn new(common_name: &str) -> Result<Self, rcgen::Error> {
        let mut p = params(common_name, 3650);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate()?;
        let cert = p.self_signed(&key)?;
        let pem = Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        };
        Ok(Authority {
            pem,
            issuer: Issuer::new(p, key),
        })
    }

    /// An existing CA: its certificate and its private key (PKCS#8 or SEC1 PEM), which must
    /// belong together and the certificate must be a CA.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, CaError> {
        let key = KeyPair::from_pem(key_pem).map_err(CaError::Key)?;
        let der = pem_contents(cert_pem).ok_or(CaError::NotACertificate)?;
        let (_, cert) =
            x509_parser::parse_x509_certificate(&der).map_err(|_| CaError::NotACertificate)?;
        if !cert.is_ca() {
            return Err(CaError::NotACa);
        }
        if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(CaError::KeyMismatch);
        }
        let issuer =
            Issuer::from_ca_cert_der(&der.as_slice().into(), key).map_err(CaError::Certificate)?;
        Ok(Authority {
            pem: Pem {
                cert: cert_pem.to_string(),
                key: key_pem.to_string(),
            },
            issuer,
        })
    }

    /// A serving certificate for the given DNS names and IP addresses, valid `days`.
    pub fn server(&self, hosts: &[String], days: i64) -> Result<Pem, rcgen::Error> {
        let mut p = params(hosts.first().map_or("scopegate", String::as_str), days);
        p.subject_alt_names = hosts
            .iter()
            .map(|h| match h.parse::<IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => h.clone().try_into().map(SanType::DnsName),
            })
            .collect::<Result<_, _>>()?;
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        self.issue(p)
    }

    /// A client certificate with the given common name, valid `days`.
    pub fn client(&self, common_name: &str, days: i64) -> Result<Pem, rcgen::Error> {
        let mut p = params(common_name, days);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        self.issue(p)
    }

    fn issue(&self, p: CertificateParams) -> Result<Pem, rcgen::Error> {
        let key = KeyPair::generate()?;
        let cert = p.signed_by(&key, &self.issuer)?;
        Ok(Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }
}

/// Why an existing CA cannot issue certificates.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// The key file holds no private key rcgen can sign with.
    #[error("not a usable private key (PKCS#8 or SEC1 PEM expected): {0}")]
    Key(rcgen::Error),
    /// The certificate file holds no PEM certificate.
    #[error("not a PEM certificate")]
    NotACertificate,
    /// The certificate cannot sign others (no `basicConstraints` CA flag).
    #[error("the certificate is not a CA (basicConstraints CA is not set)")]
    NotACa,
    /// The key is not the certificate's key: leaves would not verify.
    #[error("the key does not belong to the CA certificate")]
    KeyMismatch,
    /// rcgen could not read the certificate's issuer fields.
    #[error("cannot read the CA certificate: {0}")]
    Certificate(rcgen::Error),
}

/// The DER of the first PEM `CERTIFICATE` block in `text`.
fn pem_contents(text: &str) -> Option<Vec<u8>> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::from_pem_slice(text.as_bytes())
        .ok()
        .map(|c| c.to_vec())
}

/// Checks a `--host` value: an IP address, or a DNS name of RFC 1123 labels (letters, digits,
/// inner hyphens, 1-63 bytes each, 253 in all) optionally led by `*.`. The last label may not be
/// all digits, so a mistyped IPv4 address such as `10.0.0.256` is refused rather than taken
/// for a name.
pub fn check_host(host: &str) -> Result<(), String> {
    if host.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let name = host.strip_prefix("*.").unwrap_or(host);
    let bad = |why: &str| {
        Err(format!(
            "`{host}` is neither an IP address nor a DNS name: {why}"
        ))
    };
    if name.is_empty() {
        return bad("no name");
    }
    if host.len() > 253 {
        return bad("longer than 253 bytes");
    }
    let labels: Vec<&str> = name.split('.').collect();
    for label in &labels {
        if label.is_empty() {
            return bad("empty label");
        }
        if label.len() > 63 {
            return bad("a label is longer than 63 bytes");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return bad("only letters, digits and `-` may appear in a label");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad("a label may not begin or end with `-`");
        }
    }
    if labels
        .last()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return bad("the last label is all digits");
    }
    Ok(())
}

/// What `scopegate certs` writes.
pub struct CertsRequest<'a> {
    pub dir: &'a Path,
    pub hosts: &'a [String],
    pub client_name: &'a str,
    /// Issue from this CA (certificate and key files) instead of a new one.
    pub ca: Option<(&'a Path, &'a Path)>,
    /// Replace files that exist.
    pub force: bool,
}

/// Writes server.crt, server.key, client.crt and client.key into the directory, with ca.crt and
/// ca.key of a new CA unless an existing CA is given. Keys are 0600, certificates 0644. Returns
/// the names written. Nothing is written when a file exists and `force` is off.
pub fn write_all(req: &CertsRequest<'_>) -> anyhow::Result<Vec<&'static str>> {
    use anyhow::Context;
    for host in req.hosts {
        check_host(host).map_err(|e| anyhow::anyhow!("--host: {e}"))?;
    }
    let ca = match req.ca {
        Some((cert, key)) => {
            let read = |p: &Path| {
                std::fs::read_to_string(p).with_context(|| format!("cannot read `{}`", p.display()))
            };
            Authority::from_pem(&read(cert)?, &read(key)?)
                .with_context(|| format!("CA `{}` with key `{}`", cert.display(), key.display()))?
        }
        None => Authority::new("scopegate-ca")?,
    };
    let server = ca.server(req.hosts, 365)?;
    let client = ca.client(req.client_name, 365)?;
    let mut files: Vec<(&'static str, &str, u32)> = Vec::new();
    if req.ca.is_none() {
        files.push(("ca.crt", &ca.pem.cert, 0o644));
        files.push(("ca.key", &ca.pem.key, 0o600));
    }
    files.extend([
        ("server.crt", server.cert.as_str(), 0o644),
        ("server.key", server.key.as_str(), 0o600),
        ("client.crt", client.cert.as_str(), 0o644),
        ("client.key", client.key.as_str(), 0o600),
    ]);
    std::fs::create_dir_all(req.dir)
        .with_context(|| format!("cannot create `{}`", req.dir.display()))?;
    if !req.force {
        let existing: Vec<PathBuf> = files
            .iter()
            .map(|(name, _, _)| req.dir.join(name))
            .filter(|p| p.symlink_metadata().is_ok())
            .collect();
        if !existing.is_empty() {
            let names: Vec<String> = existing
                .iter()
                .map(|p| format!("`{}`", p.display()))
                .collect();
            anyhow::bail!(
                "{} already exist; nothing written (--force replaces them)",
                names.join(", ")
            );
        }
    }
    for (name, text, mode) in &files {
        let path = req.dir.join(name);
        write_file(&path, text, *mode, req.force)
            .with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    Ok(files.iter().map(|(name, _, _)| *name).collect())
}

/// Writes `text` to `path` with `mode`. Without `replace` the file must not exist (checked by
/// the open itself); with it, an existing file gets `mode` before the new content goes in.
fn write_file(path: &Path, text: &str, mode: u32, replace: bool) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut options = std::fs::OpenOptions::new();
    options.write(true).mode(mode);
    if replace {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut f = options.open(path)?;
    // The umask may have narrowed a new file's mode, and an existing file keeps its own.
    f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    f.write_all(text.as_bytes())
}
