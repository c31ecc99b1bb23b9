//! `scopegate certs`: a throwaway CA with a serving certificate and a client certificate for
//! kube-apiserver, for trying scopegate out and for tests. Production certificates come from
//! your PKI (cert-manager, kubeadm's CA).

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use std::path::Path;
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

    /// A serving certificate for the given DNS names and IP addresses, valid `days`.
    pub fn server(&self, hosts: &[String], days: i64) -> Result<Pem, rcgen::Error> {
        let mut p = params(hosts.first().map_or("scopegate", String::as_str), days);
        p.subject_alt_names = hosts
            .iter()
            .map(|h| match h.parse::<std::net::IpAddr>() {
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

/// Writes ca.crt, ca.key, server.crt, server.key, client.crt and client.key into `dir`.
pub fn write_all(dir: &Path, hosts: &[String], client_name: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let ca = Authority::new("scopegate-ca")?;
    let server = ca.server(hosts, 365)?;
    let client = ca.client(client_name, 365)?;
    for (name, text) in [
        ("ca.crt", &ca.pem.cert),
        ("ca.key", &ca.pem.key),
        ("server.crt", &server.cert),
        ("server.key", &server.key),
        ("client.crt", &client.cert),
        ("client.key", &client.key),
    ] {
        write_private(&dir.join(name), text)?;
    }
    Ok(())
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}
