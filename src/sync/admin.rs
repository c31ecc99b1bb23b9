//! The admin listener of a standalone `scopegate sync` (a sidecar): `/livez`, `/readyz`
//! (ready once every source has published files; `?verbose` adds each source's state) and
//! `/metrics`.

use super::SyncStatus;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Clone)]
struct Admin {
    status: Arc<SyncStatus>,
    registry: prometheus::Registry,
}

pub fn app(status: Arc<SyncStatus>, registry: prometheus::Registry) -> Router {
    Router::new()
        .route("/livez", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(Admin { status, registry })
}

async fn readyz(
    State(admin): State<Admin>,
    Query(query): Query<HashMap<String, String>>,
) -> impl IntoResponse {
    let (status, mut text) = match admin.status.readiness() {
        Ok(()) => (StatusCode::OK, "ok\n".to_string()),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    };
    if query.contains_key("verbose") {
        text.push_str(&admin.status.detail());
    }
    (status, text)
}

async fn metrics(State(admin): State<Admin>) -> impl IntoResponse {
    use prometheus::Encoder;
    let mut out = Vec::new();
    let _ = prometheus::TextEncoder::new().encode(&admin.registry.gather(), &mut out);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        String::from_utf8(out).unwrap_or_default(),
    )
}
