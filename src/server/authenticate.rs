//! `POST /authenticate`: the TokenReview webhook (spec `identity.md` A). Reads the body like
//! `/authorize`, verifies the token (from the cache when seen before), applies the serving
//! snapshot's directory, counts and answers in the request's version. A rejected token is
//! HTTP 200 with `authenticated: false` and the reason, so kube-apiserver logs it; a token is
//! never logged, only the start of its SHA-256.

use super::authorize::{AppState, PeerIdentity, Shared, client_refusal, error, receive_body};
use super::issuer_keys::IssuerKeys;
use crate::identity::cache::{TokenCache, digest, log_name};
use crate::identity::{self, GroupsFrom, TokenError, TokenRules, VerifiedToken};
use crate::sar::token_review::{self, TokenReview};
use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Verified tokens held at most.
pub const TOKEN_CACHE_ENTRIES: u64 = 100_000;

/// Token authentication: the rules, the keys and the cache.
pub struct Authn {
    pub rules: TokenRules,
    pub keys: Arc<IssuerKeys>,
    pub cache: TokenCache,
    pub groups_from: GroupsFrom,
}

impl Authn {
    /// Verifies a token at `now`: from the cache, or against the keys held, reading the keys
    /// again (rate-limited) when the token names one not held.
    pub async fn verify(&self, token: &str, now: u64) -> Result<Arc<VerifiedToken>, TokenError> {
        let key = digest(token);
        if let Some(verified) = self.cache.get(&key, now) {
            return Ok(verified);
        }
        let keys = self.keys.keys();
        let verified = match identity::verify(token, &keys, &self.rules, now) {
            Err(TokenError::UnknownKid(kid)) => {
                if self.keys.refresh_for_unknown_kid().await {
                    self.cache.clear();
                    identity::verify(token, &self.keys.keys(), &self.rules, now)
                } else {
                    Err(TokenError::UnknownKid(kid))
                }
            }
            other => other,
        }?;
        let verified = Arc::new(verified);
        self.cache.insert(key, verified.clone(), now);
        Ok(verified)
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
    if !s.allowed_client_names.is_empty()
        && let Some(refused) = client_refusal(&s.allowed_client_names, peer.as_deref())
    {
        return refused;
    }
    let bytes = match receive_body(s, body).await {
        Ok(bytes) => bytes,
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
    let now = unix_now();
    let answer = review_token(authn, &review, s.store.load().directory.as_deref(), now).await;
    let token_name = log_name(&digest(&review.token));
    let body = match answer {
        Ok(user) => {
            let reason = user.warning.map_or("ok", |w| w.label());
            s.metrics
                .token_reviews
                .with_label_values(&["authenticated", reason])
                .inc();
            if let Some(warning) = user.warning {
                tracing::warn!(token = %token_name, oid = %user.oid, "{}", warning.message());
            } else {
                tracing::debug!(token = %token_name, user = %user.username, "token authenticated");
            }
            let audiences = token_review::answered_audiences(&review.audiences, &user.audiences);
            token_review::encode_authenticated(review.api_version, &user.user, &audiences)
        }
        Err(e) => {
            s.metrics
                .token_reviews
                .with_label_values(&["rejected", e.tag()])
                .inc();
            tracing::info!(token = %token_name, error = %e, "token rejected");
            token_review::encode_rejected(review.api_version, &e)
        }
    };
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A user with the token audiences the answer intersects with the request's.
pub struct Reviewed {
    pub user: identity::AuthenticatedUser,
    pub audiences: Vec<String>,
    pub warning: Option<identity::GroupsWarning>,
    pub oid: String,
    pub username: String,
}

/// Reviews one token at `now` against a directory: shared by the server and `check`.
pub async fn review_token(
    authn: &Authn,
    review: &TokenReview,
    directory: Option<&crate::policy::directory::Directory>,
    now: u64,
) -> Result<Reviewed, TokenError> {
    let verified = authn.verify(&review.token, now).await?;
    let user = identity::resolve(&verified, directory, authn.groups_from)?;
    Ok(Reviewed {
        audiences: verified.audiences.clone(),
        warning: user.warning,
        oid: user.oid.clone(),
        username: user.username.clone(),
        user,
    })
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
