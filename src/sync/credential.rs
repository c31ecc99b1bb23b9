//! Entra tokens for `sync`, by the OAuth 2.0 client credentials grant
//! (`POST {authority}/{tenant}/oauth2/v2.0/token`). The recommended credential is workload
//! identity: the pod's projected ServiceAccount token (`AZURE_FEDERATED_TOKEN_FILE`, re-read
//! for each token since the kubelet rotates it) is the client assertion, so no secret is in
//! the pod. A client secret or a certificate (a client assertion signed with its key, `x5t`
//! naming it) are the fallbacks. Tokens are kept per scope until shortly before they expire.

use super::http::{Api, ApiError, Auth, Bearer, Body};
use hyper::Method;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Entra's public cloud (`AZURE_AUTHORITY_HOST` names another).
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com/";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// A token is replaced this long before it expires (or at half its life, if shorter).
const EXPIRY_MARGIN: Duration = Duration::from_secs(300);
/// Longest a token is kept, whatever `expires_in` says.
const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Lifetime of a certificate's client assertion.
const ASSERTION_LIFETIME_SECONDS: u64 = 600;

/// How the application proves who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// A projected ServiceAccount token, exchanged by federation (workload identity).
    FederatedToken(PathBuf),
    /// A file holding the client secret.
    Secret(PathBuf),
    /// A PEM file with the certificate and its RSA private key.
    Certificate(PathBuf),
}

/// The `credential:` section of the sync config; each unset field falls back to the
/// variable the workload identity webhook injects.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CredentialConfig {
    /// `AZURE_TENANT_ID`.
    pub tenant_id: Option<String>,
    /// `AZURE_CLIENT_ID`.
    pub client_id: Option<String>,
    /// `AZURE_AUTHORITY_HOST` [default: https://login.microsoftonline.com/].
    pub authority_host: Option<String>,
    /// `AZURE_FEDERATED_TOKEN_FILE`.
    pub federated_token_file: Option<PathBuf>,
    /// Fallback: a file holding a client secret.
    pub client_secret_file: Option<PathBuf>,
    /// Fallback: a PEM file with a certificate and its private key
    /// (`AZURE_CLIENT_CERTIFICATE_PATH`).
    pub certificate_file: Option<PathBuf>,
}

/// An application's identity in a tenant and its tokens.
pub struct Credential {
    pub tenant_id: String,
    pub client_id: String,
    /// The token endpoint.
    pub token_url: String,
    pub proof: Proof,
    tokens: tokio::sync::Mutex<HashMap<String, Token>>,
}

struct Token {
    value: String,
    renew_at: Instant,
}

impl Credential {
    /// The credential the config and the environment (`env`, e.g. `std::env::var`) describe.
    pub fn from_config(
        config: &CredentialConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Credential, String> {
        let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let tenant_id = config
            .tenant_id
            .clone()
            .or_else(|| var("AZURE_TENANT_ID"))
            .ok_or("no tenant: set credential.tenantId or AZURE_TENANT_ID")?;
        let client_id = config
            .client_id
            .clone()
            .or_else(|| var("AZURE_CLIENT_ID"))
            .ok_or("no client id: set credential.clientId or AZURE_CLIENT_ID")?;
        for (what, id) in [("tenant", &tenant_id), ("client id", &client_id)] {
            // A GUID or a domain name: labels of letters, digits and `-`, never empty.
            let name_like = id.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
            if !name_like {
                return Err(format!("{what} `{id}` is not a GUID or domain name"));
            }
        }
        let authority = config
            .authority_host
            .clone()
            .or_else(|| var("AZURE_AUTHORITY_HOST"))
            .unwrap_or_else(|| DEFAULT_AUTHORITY.to_string());
        if !authority.starts_with("https://") {
            return Err(format!(
                "authority host `{authority}` is not an https:// URL"
            ));
        }
        // What the config names wins; then the variables (workload identity first).
        let proof = if let Some(file) = config.federated_token_file.clone() {
            Proof::FederatedToken(file)
        } else if let Some(file) = config.client_secret_file.clone() {
            Proof::Secret(file)
        } else if let Some(file) = config.certificate_file.clone() {
            Proof::Certificate(file)
        } else if let Some(file) = var("AZURE_FEDERATED_TOKEN_FILE") {
            Proof::FederatedToken(PathBuf::from(file))
        } else if let Some(file) = var("AZURE_CLIENT_CERTIFICATE_PATH") {
            Proof::Certificate(PathBuf::from(file))
        } else {
            return Err(
                "no credential: run with workload identity (AZURE_FEDERATED_TOKEN_FILE, \
                        injected by the azure-workload-identity webhook), or set \
                        credential.clientSecretFile or credential.certificateFile"
                    .into(),
            );
        };
        Ok(Credential {
            token_url: format!(
                "{}/{tenant_id}/oauth2/v2.0/token",
                authority.trim_end_matches('/')
            ),
            tenant_id,
            client_id,
            proof,
            tokens: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    /// A token for `scope`: the one held unless it is near its expiry or `renew` asks for a
    /// new one (a call was refused with 401).
    pub async fn token(&self, api: &Api, scope: &str, renew: bool) -> Result<String, ApiError> {
        let mut tokens = self.tokens.lock().await;
        if !renew
            && let Some(token) = tokens.get(scope)
            && Instant::now() < token.renew_at
        {
            return Ok(token.value.clone());
        }
        let token = self.request(api, scope).await?;
        let value = token.value.clone();
        tokens.insert(scope.to_string(), token);
        Ok(value)
    }

    async fn request(&self, api: &Api, scope: &str) -> Result<Token, ApiError> {
        let refused = |message: String| ApiError::of(&Method::POST, &self.token_url, message);
        let form = self.form(scope).map_err(refused)?;
        let answer: TokenAnswer = api
            .json(
                "token",
                Method::POST,
                &self.token_url,
                Body::Form(form),
                None::<Auth<'_>>,
            )
            .await?;
        let lifetime =
            Duration::from_secs(answer.expires_in.seconds().unwrap_or(0)).min(MAX_TOKEN_LIFETIME);
        if answer.access_token.is_empty() || lifetime.is_zero() {
            return Err(refused(
                "the token endpoint answered without an access token or its lifetime".into(),
            ));
        }
        let keep = lifetime.saturating_sub(EXPIRY_MARGIN).max(lifetime / 2);
        Ok(Token {
            value: answer.access_token,
            renew_at: Instant::now() + keep,
        })
    }

    /// The token request's form: the client credentials grant with this credential's proof.
    fn form(&self, scope: &str) -> Result<String, String> {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials")
            .append_pair("client_id", &self.client_id)
            .append_pair("scope", scope);
        match &self.proof {
            Proof::FederatedToken(file) => {
                let token = read_trimmed(file)?;
                form.append_pair("client_assertion_type", ASSERTION_TYPE)
                    .append_pair("client_assertion", &token);
            }
            Proof::Secret(file) => {
                let secret = read_trimmed(file)?;
                form.append_pair("client_secret", &secret);
            }
            Proof::Certificate(file) => {
                let assertion = certificate_assertion(file, &self.client_id, &self.token_url)?;
                form.append_pair("client_assertion_type", ASSERTION_TYPE)
                    .append_pair("client_assertion", &assertion);
            }
        }
        Ok(form.finish())
    }
}

impl Bearer for Credential {
    fn bearer_token<'a>(
        &'a self,
        api: &'a Api,
        scope: &'a str,
        renew: bool,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, ApiError>> + Send + 'a>>
    {
        Box::pin(self.token(api, scope, renew))
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    expires_in: Lifetime,
}

/// `expires_in`: a number (v2.0 endpoint) or a string of one (v1.0).
#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Lifetime {
    Number(u64),
    Text(String),
    #[default]
    Missing,
}

impl Lifetime {
    fn seconds(&self) -> Option<u64> {
        match self {
            Lifetime::Number(n) => Some(*n),
            Lifetime::Text(t) => t.trim().parse().ok(),
            Lifetime::Missing => None,
        }
    }
}

fn read_trimmed(file: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read `{}`: {e}", file.display()))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("`{}` is empty", file.display()));
    }
    Ok(text.to_string())
}

/// A client assertion signed with the certificate's key (RS256), naming the certificate by
/// its SHA-1 thumbprint (`x5t`), as Entra's certificate credentials document it.
fn certificate_assertion(
    file: &std::path::Path,
    client_id: &str,
    token_url: &str,
) -> Result<String, String> {
    let name = file.display();
    let pem = std::fs::read(file).map_err(|e| format!("cannot read `{name}`: {e}"))?;
    let cert = CertificateDer::pem_slice_iter(&pem)
        .next()
        .ok_or_else(|| format!("`{name}` holds no certificate"))?
        .map_err(|e| format!("`{name}`: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| format!("`{name}` holds no private key: {e}"))?;
    let label = match &key {
        PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
        PrivateKeyDer::Pkcs8(_) => "PRIVATE KEY",
        _ => {
            return Err(format!(
                "`{name}`: the private key must be RSA (PKCS#1 or PKCS#8)"
            ));
        }
    };
    let key_pem = pem_block(label, key.secret_der());
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(key_pem.as_bytes())
        .map_err(|e| format!("`{name}`: the private key is not an RSA key: {e}"))?;
    let thumbprint = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, cert.as_ref());
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.x5t = Some(base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        thumbprint.as_ref(),
    ));
    let now = crate::model::Timestamp::from_system(std::time::SystemTime::now()).unix_seconds();
    let claims = serde_json::json!({
        "aud": token_url,
        "iss": client_id,
        "sub": client_id,
        "jti": random_id(),
        "iat": now,
        "nbf": now,
        "exp": now + ASSERTION_LIFETIME_SECONDS,
    });
    jsonwebtoken::encode(&header, &claims, &key).map_err(|e| format!("`{name}`: {e}"))
}

fn pem_block(label: &str, der: &[u8]) -> String {
    let body = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

fn random_id() -> String {
    let mut bytes = [0u8; 16];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn workload_identity_comes_from_the_webhooks_variables() {
        let c = Credential::from_config(
            &CredentialConfig::default(),
            env(&[
                ("AZURE_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
                ("AZURE_CLIENT_ID", "9c1c1a6e-0b7e-4b8e-9f1e-000000000001"),
                (
                    "AZURE_FEDERATED_TOKEN_FILE",
                    "/var/run/secrets/azure/tokens/azure-identity-token",
                ),
                ("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us/"),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.proof,
            Proof::FederatedToken("/var/run/secrets/azure/tokens/azure-identity-token".into())
        );
        assert_eq!(
            c.token_url,
            "https://login.microsoftonline.us/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token"
        );
    }

    #[test]
    fn the_config_wins_over_the_environment_and_nothing_is_an_error() {
        let config = CredentialConfig {
            tenant_id: Some("contoso.onmicrosoft.com".into()),
            client_id: Some("app".into()),
            client_secret_file: Some("/s".into()),
            ..CredentialConfig::default()
        };
        let c = Credential::from_config(&config, env(&[])).unwrap();
        assert_eq!(c.proof, Proof::Secret("/s".into()));
        assert!(c.token_url.starts_with(DEFAULT_AUTHORITY));
        // A secret the config names is what the operator chose, even where a workload
        // identity webhook injects its variables.
        let c =
            Credential::from_config(&config, env(&[("AZURE_FEDERATED_TOKEN_FILE", "/t")])).unwrap();
        assert_eq!(c.proof, Proof::Secret("/s".into()));
        let bare = CredentialConfig {
            tenant_id: Some("t".into()),
            client_id: Some("c".into()),
            ..CredentialConfig::default()
        };
        let e = Credential::from_config(&bare, env(&[])).err().unwrap();
        assert!(e.starts_with("no credential"), "{e}");
        let e = Credential::from_config(&CredentialConfig::default(), env(&[]))
            .err()
            .unwrap();
        assert!(e.contains("AZURE_TENANT_ID"), "{e}");
        let c =
            Credential::from_config(&bare, env(&[("AZURE_FEDERATED_TOKEN_FILE", "/t")])).unwrap();
        assert_eq!(c.proof, Proof::FederatedToken("/t".into()));
        for tenant in ["../evil", "..", ".", "a..b", "t/x", "t?x", ""] {
            let odd = CredentialConfig {
                tenant_id: Some(tenant.into()),
                ..bare.clone()
            };
            assert!(
                Credential::from_config(&odd, env(&[("AZURE_FEDERATED_TOKEN_FILE", "/t")]))
                    .is_err(),
                "{tenant}"
            );
        }
        let plain = CredentialConfig {
            authority_host: Some("http://login".into()),
            ..bare
        };
        assert!(
            Credential::from_config(&plain, env(&[("AZURE_FEDERATED_TOKEN_FILE", "/t")])).is_err()
        );
    }

    #[test]
    fn lifetimes_are_numbers_or_strings() {
        let a: TokenAnswer =
            serde_json::from_str(r#"{"access_token":"x","expires_in":3599}"#).unwrap();
        assert_eq!(a.expires_in.seconds(), Some(3599));
        let a: TokenAnswer =
            serde_json::from_str(r#"{"access_token":"x","expires_in":"3599"}"#).unwrap();
        assert_eq!(a.expires_in.seconds(), Some(3599));
        let a: TokenAnswer = serde_json::from_str(r#"{"access_token":"x"}"#).unwrap();
        assert_eq!(a.expires_in.seconds(), None);
    }
}
