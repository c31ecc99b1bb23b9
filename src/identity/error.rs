//! Why a token is not accepted. Each message starts with its tag (spec `identity.md` B5);
//! the tag alone labels the metric. Messages never contain the token.

/// A rejected token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token too large: {bytes} bytes, at most {limit}")]
    TooLarge { bytes: usize, limit: usize },
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    #[error("unsupported alg: `{0}`")]
    UnsupportedAlg(String),
    #[error("unsupported token type: `{0}`")]
    UnsupportedType(String),
    #[error("missing kid: the header names no signing key")]
    MissingKid,
    #[error("unknown kid: `{0}` is not among the issuers' signing keys")]
    UnknownKid(String),
    #[error("invalid signature")]
    InvalidSignature,
    #[error("issuer mismatch: `{0}` is not a configured issuer")]
    IssuerMismatch(String),
    #[error("issuer mismatch: key `{kid}` is not one `{issuer}` publishes")]
    KeyOfAnotherIssuer { issuer: String, kid: String },
    #[error("audience mismatch: `{0}` contains no configured audience")]
    AudienceMismatch(String),
    #[error("missing exp: the token has no expiry time")]
    MissingExp,
    #[error("token expired: exp {exp}, now {now}")]
    Expired { exp: u64, now: u64 },
    #[error("token not yet valid: nbf {nbf}, now {now}")]
    NotYetValid { nbf: u64, now: u64 },
    #[error("token not yet valid: `nbf` is not a NumericDate")]
    InvalidNbf,
    #[error("tenant mismatch: tid `{tid}` is not the issuer's tenant `{issuer_tenant}`")]
    TenantMismatch { issuer_tenant: String, tid: String },
    #[error("missing oid: the token names no object id")]
    MissingOid,
    #[error("invalid oid: `{0}` is not a GUID")]
    InvalidOid(String),
    #[error("invalid username claim: `{0}` is not a string")]
    InvalidUsernameClaim(String),
    #[error("invalid username claim: `{0}` is a Kubernetes system name")]
    SystemUsername(String),
    #[error("invalid groups claim: `groups` is not an array of strings")]
    InvalidGroupsClaim,
    #[error("invalid subject: `{0}` is not `system:serviceaccount:<namespace>:<name>`")]
    InvalidSubject(String),
    #[error("invalid subject: `sub` is `{subject}` but the kubernetes.io claim names `{claimed}`")]
    SubjectClaimMismatch { subject: String, claimed: String },
    #[error("account disabled: the directory lists `{0}` with accountEnabled false")]
    AccountDisabled(String),
}

impl TokenError {
    /// The error tag: the start of `status.error` and the metric's `reason`.
    pub fn tag(&self) -> &'static str {
        match self {
            TokenError::TooLarge { .. } => "token too large",
            TokenError::Malformed(_) => "malformed token",
            TokenError::UnsupportedAlg(_) => "unsupported alg",
            TokenError::UnsupportedType(_) => "unsupported token type",
            TokenError::MissingKid => "missing kid",
            TokenError::UnknownKid(_) => "unknown kid",
            TokenError::InvalidSignature => "invalid signature",
            TokenError::IssuerMismatch(_) | TokenError::KeyOfAnotherIssuer { .. } => {
                "issuer mismatch"
            }
            TokenError::AudienceMismatch(_) => "audience mismatch",
            TokenError::MissingExp => "missing exp",
            TokenError::Expired { .. } => "token expired",
            TokenError::NotYetValid { .. } | TokenError::InvalidNbf => "token not yet valid",
            TokenError::TenantMismatch { .. } => "tenant mismatch",
            TokenError::MissingOid => "missing oid",
            TokenError::InvalidOid(_) => "invalid oid",
            TokenError::InvalidUsernameClaim(_) | TokenError::SystemUsername(_) => {
                "invalid username claim"
            }
            TokenError::InvalidGroupsClaim => "invalid groups claim",
            TokenError::InvalidSubject(_) | TokenError::SubjectClaimMismatch { .. } => {
                "invalid subject"
            }
            TokenError::AccountDisabled(_) => "account disabled",
        }
    }

    /// Every tag, for metrics that start at zero.
    pub const TAGS: [&'static str; 18] = [
        "token too large",
        "malformed token",
        "unsupported alg",
        "unsupported token type",
        "missing kid",
        "unknown kid",
        "invalid signature",
        "issuer mismatch",
        "audience mismatch",
        "missing exp",
        "token expired",
        "token not yet valid",
        "tenant mismatch",
        "missing oid",
        "invalid oid",
        "invalid username claim",
        "invalid groups claim",
        "account disabled",
    ];
}
