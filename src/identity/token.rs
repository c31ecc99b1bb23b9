//! Validation of an Entra access token (a compact JWS), in the order of spec `identity.md`
//! B4: size, shape, `alg`/`typ`/`kid`, key, signature, `iss`, `aud`, `exp`/`nbf`, `tid`,
//! `oid`, username, groups. The signature is checked by `jsonwebtoken` (ring underneath);
//! this module only decides which key and algorithm may be used, and reads the claims.
//! Pure: the keys and "now" are inputs.

use super::error::TokenError;
use super::keys::{KeyKind, KeySet};
use crate::model::SYSTEM_PREFIX;
use crate::model::name_hash::is_hyphenated_guid;
use base64::Engine;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

/// Compact tokens longer than this are refused before any decoding (200 groups is ~10 KB).
pub const MAX_TOKEN_BYTES: usize = 32 * 1024;

/// Clock skew allowed on `exp` and `nbf`, in seconds.
pub const DEFAULT_SKEW_SECONDS: u64 = 300;

/// What a token must satisfy.
#[derive(Debug, Clone)]
pub struct TokenRules {
    /// Exact `iss` values accepted (e.g. the v1 and v2 forms of one tenant).
    pub issuers: Vec<Issuer>,
    /// The token's `aud` must contain one of these.
    pub audiences: Vec<String>,
    /// Signature algorithms accepted; RS256 unless configured otherwise. Never `none` or HMAC.
    pub algorithms: Vec<Algorithm>,
    pub skew_seconds: u64,
    pub max_token_bytes: usize,
    /// Claim read as the username; absent or empty falls back to `oid`.
    pub username_claim: String,
    pub username_prefix: String,
}

impl Default for TokenRules {
    fn default() -> Self {
        TokenRules {
            issuers: Vec::new(),
            audiences: Vec::new(),
            algorithms: vec![Algorithm::RS256],
            skew_seconds: DEFAULT_SKEW_SECONDS,
            max_token_bytes: MAX_TOKEN_BYTES,
            username_claim: "upn".to_string(),
            username_prefix: String::new(),
        }
    }
}

/// An accepted issuer, with the tenant its URL names when it is an Entra issuer (read once,
/// not at every token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer {
    name: String,
    tenant: Option<String>,
}

impl Issuer {
    pub fn new(name: impl Into<String>) -> Issuer {
        let name = name.into();
        let tenant = entra_tenant(&name).map(str::to_string);
        Issuer { name, tenant }
    }

    /// The issuer exactly as tokens' `iss` spells it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tenant GUID of an Entra issuer ([`entra_tenant`]).
    pub fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }
}

/// The algorithms an operator may allow: Entra signs with RS256; ES256 for other issuers.
pub fn parse_algorithm(name: &str) -> Option<Algorithm> {
    match name {
        "RS256" => Some(Algorithm::RS256),
        "ES256" => Some(Algorithm::ES256),
        _ => None,
    }
}

/// The token's groups as the claims give them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenGroups {
    /// The `groups` claim, duplicates dropped, order kept.
    Listed(Vec<String>),
    /// No `groups`, but the overage marker (`_claim_names.groups` or `hasgroups`).
    Overage,
    /// Neither.
    Absent,
}

/// A token whose signature and claims passed: everything the answer needs that does not
/// depend on the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub oid: String,
    pub tid: Option<String>,
    pub username: String,
    pub groups: TokenGroups,
    /// Every value of `aud`.
    pub audiences: Vec<String>,
    /// `exp` + skew: the first second at which the token is no longer accepted.
    pub valid_until: u64,
}

struct Header {
    alg: String,
    kid: Option<Value>,
    typ: Option<Value>,
}

/// A token whose signature, issuer, audience and lifetime passed, with its claims.
struct SignedClaims<'r> {
    claims: Map<String, Value>,
    issuer: &'r Issuer,
    audiences: Vec<String>,
    valid_until: u64,
}

/// Validates a compact Entra access token at Unix time `now`.
pub fn verify(
    token: &str,
    keys: &KeySet,
    rules: &TokenRules,
    now: u64,
) -> Result<VerifiedToken, TokenError> {
    let SignedClaims {
        claims,
        issuer,
        audiences,
        valid_until,
    } = verify_signed(token, keys, rules, now)?;
    entra_claims(claims, issuer, audiences, valid_until, rules)
}

/// A Kubernetes service account's projected token that passed: who it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccountToken {
    pub namespace: String,
    pub name: String,
    pub issuer: String,
    pub audiences: Vec<String>,
    pub valid_until: u64,
}

/// Validates a projected service-account token (the one the workload identity webhook mounts)
/// at Unix time `now`: signed by the cluster issuer's keys, `iss` and `aud` as `rules` say,
/// `sub` = `system:serviceaccount:<ns>:<name>`, and the `kubernetes.io` claim, when present,
/// naming the same account.
pub fn verify_service_account(
    token: &str,
    keys: &KeySet,
    rules: &TokenRules,
    now: u64,
) -> Result<ServiceAccountToken, TokenError> {
    let SignedClaims {
        claims,
        issuer,
        audiences,
        valid_until,
    } = verify_signed(token, keys, rules, now)?;
    let subject = match claims.get("sub") {
        Some(Value::String(sub)) => sub.as_str(),
        other => {
            return Err(TokenError::InvalidSubject(
                other.map(plain).unwrap_or_default(),
            ));
        }
    };
    let (namespace, name) = crate::model::workload::parse_service_account_user(subject)
        .map_err(|_| TokenError::InvalidSubject(bounded(subject)))?;
    if let Some(kubernetes) = claims.get("kubernetes.io") {
        let said_namespace = kubernetes.get("namespace").and_then(Value::as_str);
        let said_name = kubernetes
            .get("serviceaccount")
            .and_then(|sa| sa.get("name"))
            .and_then(Value::as_str);
        if said_namespace != Some(namespace.as_str()) || said_name != Some(name.as_str()) {
            return Err(TokenError::SubjectClaimMismatch {
                subject: bounded(subject),
                claimed: bounded(&format!(
                    "{}/{}",
                    said_namespace.unwrap_or_default(),
                    said_name.unwrap_or_default()
                )),
            });
        }
    }
    Ok(ServiceAccountToken {
        namespace,
        name,
        issuer: issuer.name.clone(),
        audiences,
        valid_until,
    })
}

/// The checks every token passes, in the order of spec B4 up to `nbf`.
fn verify_signed<'r>(
    token: &str,
    keys: &KeySet,
    rules: &'r TokenRules,
    now: u64,
) -> Result<SignedClaims<'r>, TokenError> {
    if token.len() > rules.max_token_bytes {
        return Err(TokenError::TooLarge {
            bytes: token.len(),
            limit: rules.max_token_bytes,
        });
    }
    let (signed, signature) = token.rsplit_once('.').ok_or(TokenError::Malformed(
        "a compact token has three base64url segments",
    ))?;
    let (header_b64, payload_b64) = signed.split_once('.').ok_or(TokenError::Malformed(
        "a compact token has three base64url segments",
    ))?;
    if payload_b64.contains('.') {
        return Err(TokenError::Malformed(
            "a compact token has three base64url segments",
        ));
    }
    let header = json_object(header_b64).ok_or(TokenError::Malformed(
        "the header is not base64url-encoded JSON object",
    ))?;
    let claims = json_object(payload_b64).ok_or(TokenError::Malformed(
        "the payload is not base64url-encoded JSON object",
    ))?;
    if base64url(signature).is_none() {
        return Err(TokenError::Malformed("the signature is not base64url"));
    }
    let header = Header {
        alg: match header.get("alg") {
            Some(Value::String(alg)) => alg.clone(),
            _ => String::new(),
        },
        kid: header.get("kid").cloned(),
        typ: header.get("typ").cloned(),
    };

    let algorithm = parse_algorithm(&header.alg)
        .filter(|a| rules.algorithms.contains(a))
        .ok_or_else(|| TokenError::UnsupportedAlg(bounded(&header.alg)))?;
    match &header.typ {
        None => {}
        Some(Value::String(typ)) if typ.eq_ignore_ascii_case("JWT") => {}
        Some(other) => return Err(TokenError::UnsupportedType(plain(other))),
    }
    let kid = match &header.kid {
        Some(Value::String(kid)) if !kid.is_empty() => kid.as_str(),
        _ => return Err(TokenError::MissingKid),
    };
    // Only keys of the algorithm's kind: an RSA key never checks an HMAC or an EC signature.
    let mut candidates = keys
        .get(kid)
        .iter()
        .filter(|key| {
            matches!(
                (algorithm, key.kind),
                (Algorithm::RS256, KeyKind::Rsa) | (Algorithm::ES256, KeyKind::EcP256)
            )
        })
        .peekable();
    if candidates.peek().is_none() {
        return Err(TokenError::UnknownKid(bounded(kid)));
    }
    let key = candidates
        .find(|key| {
            jsonwebtoken::crypto::verify(signature, signed.as_bytes(), &key.key, algorithm)
                .unwrap_or(false)
        })
        .ok_or(TokenError::InvalidSignature)?;

    // The issuer must be configured, and the key one its own key set published.
    let claimed = claims.get("iss");
    let Some(issuer) = claimed
        .and_then(Value::as_str)
        .and_then(|iss| rules.issuers.iter().find(|i| i.name == iss))
    else {
        return Err(TokenError::IssuerMismatch(
            claimed.map(plain).unwrap_or_default(),
        ));
    };
    if !key.serves(&issuer.name) {
        return Err(TokenError::KeyOfAnotherIssuer {
            issuer: bounded(&issuer.name),
            kid: bounded(kid),
        });
    }
    let audiences = audiences(claims.get("aud"));
    if !audiences
        .iter()
        .any(|aud| rules.audiences.iter().any(|a| a == aud))
    {
        return Err(TokenError::AudienceMismatch(bounded(&audiences.join(", "))));
    }
    let exp = match claims.get("exp") {
        None => return Err(TokenError::MissingExp),
        Some(value) => numeric_date(value).ok_or(TokenError::MissingExp)?,
    };
    let valid_until = exp.saturating_add(rules.skew_seconds);
    if now >= valid_until {
        return Err(TokenError::Expired { exp, now });
    }
    if let Some(value) = claims.get("nbf") {
        let nbf = numeric_date(value).ok_or(TokenError::InvalidNbf)?;
        if now.saturating_add(rules.skew_seconds) < nbf {
            return Err(TokenError::NotYetValid { nbf, now });
        }
    }
    Ok(SignedClaims {
        claims,
        issuer,
        audiences,
        valid_until,
    })
}

/// The Entra claims of a signed token: tenant, object id, username and groups.
fn entra_claims(
    claims: Map<String, Value>,
    issuer: &Issuer,
    audiences: Vec<String>,
    valid_until: u64,
    rules: &TokenRules,
) -> Result<VerifiedToken, TokenError> {
    let tid = match claims.get("tid") {
        Some(Value::String(tid)) => Some(tid.clone()),
        _ => None,
    };
    if let Some(tenant) = issuer.tenant()
        && !tid
            .as_deref()
            .is_some_and(|tid| tid.eq_ignore_ascii_case(tenant))
    {
        return Err(TokenError::TenantMismatch {
            issuer_tenant: tenant.to_string(),
            tid: tid.unwrap_or_default(),
        });
    }
    let oid = match claims.get("oid") {
        None => return Err(TokenError::MissingOid),
        Some(Value::String(oid)) if is_hyphenated_guid(oid.as_bytes()) => oid.clone(),
        Some(other) => return Err(TokenError::InvalidOid(plain(other))),
    };
    let username = match claims.get(&rules.username_claim) {
        None => oid.clone(),
        Some(Value::String(name)) if name.is_empty() => oid.clone(),
        // `system:` names are Kubernetes' own (nodes, controllers, service accounts): a
        // token claim never becomes one.
        Some(Value::String(name)) if name.starts_with(SYSTEM_PREFIX) => {
            return Err(TokenError::SystemUsername(bounded(name)));
        }
        Some(Value::String(name)) => name.clone(),
        Some(_) => {
            return Err(TokenError::InvalidUsernameClaim(
                rules.username_claim.clone(),
            ));
        }
    };
    let username = format!("{}{username}", rules.username_prefix);
    let groups = token_groups(&claims)?;
    Ok(VerifiedToken {
        oid,
        tid,
        username,
        groups,
        audiences,
        valid_until,
    })
}

fn token_groups(claims: &Map<String, Value>) -> Result<TokenGroups, TokenError> {
    if let Some(value) = claims.get("groups") {
        let Value::Array(items) = value else {
            return Err(TokenError::InvalidGroupsClaim);
        };
        let mut groups: Vec<String> = Vec::with_capacity(items.len());
        let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for item in items {
            let Value::String(group) = item else {
                return Err(TokenError::InvalidGroupsClaim);
            };
            // `system:masters` and the like are granted by Kubernetes, never by a token.
            if !group.starts_with(SYSTEM_PREFIX) && seen.insert(group) {
                groups.push(group.clone());
            }
        }
        return Ok(TokenGroups::Listed(groups));
    }
    let named_source = claims
        .get("_claim_names")
        .and_then(|names| names.get("groups"))
        .and_then(Value::as_str)
        .is_some_and(|source| {
            claims
                .get("_claim_sources")
                .and_then(|sources| sources.get(source))
                .is_some()
        });
    let has_groups = claims.get("hasgroups") == Some(&Value::Bool(true));
    Ok(if named_source || has_groups {
        TokenGroups::Overage
    } else {
        TokenGroups::Absent
    })
}

/// The tenant GUID of an Entra issuer (`https://sts.windows.net/{tid}/`,
/// `https://login.microsoftonline.com/{tid}/v2.0`, and the same forms of other clouds).
pub fn entra_tenant(issuer: &str) -> Option<&str> {
    let rest = issuer.strip_prefix("https://")?;
    let (_host, path) = rest.split_once('/')?;
    let (tenant, tail) = path.split_once('/')?;
    (is_hyphenated_guid(tenant.as_bytes()) && (tail.is_empty() || tail == "v2.0")).then_some(tenant)
}

fn audiences(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(aud)) => vec![aud.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// A NumericDate (RFC 7519): seconds since the epoch; fractions are cut, negatives refused.
fn numeric_date(value: &Value) -> Option<u64> {
    let number = value.as_number()?;
    number.as_u64().or_else(|| {
        number
            .as_f64()
            .filter(|f| *f >= 0.0 && f.is_finite())
            .map(|f| f as u64)
    })
}

fn base64url(segment: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment)
        .ok()
}

fn json_object(segment: &str) -> Option<Map<String, Value>> {
    match serde_json::from_slice(&base64url(segment)?).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// A claim value for a message, bounded.
fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => bounded(s),
        other => bounded(&other.to_string()),
    }
}

/// Token text for a message: at most 128 bytes of it.
fn bounded(text: &str) -> String {
    crate::model::excerpt::excerpt_of(text, 128).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entra_issuer_forms_name_their_tenant() {
        let t = "11111111-2222-4333-8444-555555555555";
        assert_eq!(
            entra_tenant(&format!("https://sts.windows.net/{t}/")),
            Some(t)
        );
        assert_eq!(
            entra_tenant(&format!("https://login.microsoftonline.com/{t}/v2.0")),
            Some(t)
        );
        assert_eq!(entra_tenant("https://accounts.example.com/"), None);
        assert_eq!(
            Issuer::new(format!("https://sts.windows.net/{t}/")).tenant(),
            Some(t)
        );
        assert_eq!(Issuer::new("https://accounts.example.com/").tenant(), None);
        assert_eq!(entra_tenant(&format!("https://sts.windows.net/{t}")), None);
        assert_eq!(
            entra_tenant(&format!("https://login.microsoftonline.com/{t}/v2.0/x")),
            None
        );
    }

    #[test]
    fn structure_is_checked_before_anything_else() {
        let rules = TokenRules::default();
        let keys = KeySet::default();
        let tag = |t: &str| verify(t, &keys, &rules, 0).unwrap_err().tag();
        assert_eq!(tag("a.b"), "malformed token");
        assert_eq!(tag("a.b.c.d"), "malformed token");
        assert_eq!(tag("!!.e30.sig"), "malformed token");
        // `{}` header: no alg.
        assert_eq!(tag("e30.e30.c2ln"), "unsupported alg");
        // `[]` payload is not an object.
        assert_eq!(tag("e30.W10.c2ln"), "malformed token");
        let huge = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(tag(&huge), "token too large");
    }
}
