//! `POST /authenticate`: the TokenReview webhook (spec `identity.md` A). Reads the body like
//! `/authorize`, verifies the token (from the cache when seen before), applies the serving
//! snapshot's directory, counts and answers in the request's version. A rejected token is
//! HTTP 200 with `authenticated: false` and the reason, so kube-apiserver logs it; a token is
//! never logged, only the start of its SHA-256.

use super::authorize::{AppState, PeerIdentity, ReadBody, Shared, admitted_body, error, too_large};
use super::issuer_keys::IssuerKeys;
use crate::identity::cache::{TokenCache, TokenDigest, digest, log_name};
use crate::identity::{self, GroupsFrom, TokenError, TokenRules, VerifiedToken};
use crate::policy::directory::Directory;
use crate::sar::token_review::{self, TokenReview};
use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Bytes of verified tokens held at most (a 2 KB token takes about 2.5 KB: some 25,000).
pub const TOKEN_CACHE_BYTES: u64 = 64 << 20;

/// Token authentication: the rules, the keys and the cache.
pub struct Authn {
    pub rules: TokenRules,
    pub keys: Arc<IssuerKeys>,
    pub cache: TokenCache,
    pub groups_from: GroupsFrom,
}

impl Authn {
    /// Verifies a token at `now` from the cache or against the keys held, without reading
    /// the keys again. `digest` is the token's [`digest`] (the caller also names the token
    /// by it in logs).
    pub fn verify_with_keys_held(
        &self,
        token: &str,
        digest: &TokenDigest,
        now: u64,
    ) -> Result<Arc<VerifiedToken>, TokenError> {
        let keys = self.keys.keys();
        if let Some(verified) = self.cache.get(token, digest, keys.generation(), now) {
            return Ok(verified);
        }
        let verified = Arc::new(identity::verify(token, &keys, &self.rules, now)?);
        self.cache
            .insert(token, *digest, verified.clone(), keys.generation(), now);
        Ok(verified)
    }

    /// As [`Authn::verify_with_keys_held`], reading the keys again (rate-limited) when the
    /// token names one not held; the token is tried again whenever the keys changed since it
    /// arrived (by this read or by another one meanwhile).
    pub async fn verify(
        &self,
        token: &str,
        digest: &TokenDigest,
        now: u64,
    ) -> Result<Arc<VerifiedToken>, TokenError> {
        let before = self.keys.keys().generation();
        match self.verify_with_keys_held(token, digest, now) {
            Err(TokenError::UnknownKid(kid)) => {
                // A read that changed the keys gave them a new generation.
                self.keys.refresh_for_unknown_kid().await;
                if self.keys.keys().generation() != before {
                    self.verify_with_keys_held(token, digest, now)
                } else {
                    Err(TokenError::UnknownKid(kid))
                }
            }
            other => other,
        }
    }
}

pub async fn authenticate(
    State(state): State<AppState>,
    peer: Option<Extension<Arc<PeerIdentity>>>,
    body: Body,
) -> Response {
    let response = handle(&state.0, peer.map(|Extension(p)| p), body).await;
    state.0.metrics.count_http(response.status().as_u16());
    response
}

async fn handle(s: &Shared, peer: Option<Arc<PeerIdentity>>, body: Body) -> Response {
    let Some(authn) = &s.authn else {
        return error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "token authentication is not configured: start scopegate with --authn-issuer and --authn-audience",
        );
    };
    let bytes = match admitted_body(s, peer, body).await {
        Ok(ReadBody::Complete(bytes)) => bytes,
        // A deny has no meaning for a TokenReview: too large is an error status.
        Ok(ReadBody::TooLarge(_)) => {
            s.metrics
                .token_reviews
                .with_label_values(&["error", "too large"])
                .inc();
            return too_large(s);
        }
        Err(answered) => return answered,
    };
    let review = match token_review::decode(&bytes) {
        Ok(review) => review,
        Err(e) => {
            s.metrics
                .token_reviews
                .with_label_values(&["error", "bad request"])
                .inc();
            return error(StatusCode::BAD_REQUEST, "BadRequest", &e.to_string());
        }
    };
    // Disabled accounts and current groups come from the policy: without one, no answer.
    if !s.store.is_ready() {
        s.metrics
            .token_reviews
            .with_label_values(&["error", "no policy"])
            .inc();
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "scopegate has no policy loaded yet",
        );
    }
    let Some(now) = unix_now() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "the system clock is before 1970: token lifetimes cannot be checked",
        );
    };
    let token_digest = digest(&review.token);
    let token_name = log_name(&token_digest);
    let snapshot = s.store.load();
    let (body, outcome) = review_token(
        authn,
        &review,
        &token_digest,
        snapshot.directory.as_deref(),
        now,
    )
    .await;
    match &outcome {
        Outcome::Authenticated {
            warning,
            oid,
            username,
        } => {
            let reason = warning.map_or("ok", |w| w.label());
            s.metrics
                .token_reviews
                .with_label_values(&["authenticated", reason])
                .inc();
            match warning {
                Some(warning) => {
                    tracing::warn!(token = %token_name, oid = %oid, "{}", warning.message())
                }
                None => {
                    tracing::debug!(token = %token_name, user = %username, "token authenticated")
                }
            }
        }
        Outcome::Rejected(e) => {
            s.metrics
                .token_reviews
                .with_label_values(&["rejected", e.tag()])
                .inc();
            tracing::info!(token = %token_name, error = %e, "token rejected");
        }
    }
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// What a review found, for the log and the metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Authenticated {
        username: String,
        oid: String,
        warning: Option<identity::GroupsWarning>,
    },
    Rejected(TokenError),
}

/// Reviews a token at `now` against a directory (`digest` is the token's [`digest`]): the
/// answer's bytes and what happened. Shared by `/authenticate` and `scopegate check`.
pub async fn review_token(
    authn: &Authn,
    review: &TokenReview,
    digest: &TokenDigest,
    directory: Option<&Directory>,
    now: u64,
) -> (Vec<u8>, Outcome) {
    let verified = authn.verify(&review.token, digest, now).await;
    let answer = verified.as_deref().map_err(Clone::clone).and_then(|token| {
        identity::resolve(token, directory, authn.groups_from).map(|user| (token, user))
    });
    match answer {
        Ok((token, user)) => {
            let audiences = token_review::answered_audiences(&review.audiences, &token.audiences);
            let body = token_review::encode_authenticated(review.api_version, &user, &audiences);
            let outcome = Outcome::Authenticated {
                username: user.username().to_string(),
                oid: user.oid().to_string(),
                warning: user.warning,
            };
            (body, outcome)
        }
        Err(e) => (
            token_review::encode_rejected(review.api_version, &e),
            Outcome::Rejected(e),
        ),
    }
}

/// Unix seconds; `None` before 1970 (a clock that cannot judge `exp`).
fn unix_now() -> Option<u64> {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}
