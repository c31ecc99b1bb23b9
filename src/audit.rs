//! The decision log: one event per decision on the `audit` tracing target, so it can be
//! routed and filtered apart from operational logs (`RUST_LOG=audit=info`).

use crate::model::{AccessRequest, Decision};

/// What one audit line says.
pub struct AuditEvent<'a> {
    pub request: &'a AccessRequest,
    pub decision: &'a Decision,
    pub generation: u64,
    pub cached: bool,
    pub latency_us: u64,
    /// `Some(answer)` in shadow mode: what was actually answered.
    pub answered: Option<&'static str>,
}

/// Writes the event.
pub fn record(event: &AuditEvent<'_>) {
    let r = event.request;
    let (resource, subresource, namespace, name) =
        r.resource_attributes
            .as_ref()
            .map_or(("", "", "", ""), |a| {
                (
                    a.resource.as_str(),
                    a.subresource.as_str(),
                    a.namespace.as_str(),
                    a.name.as_str(),
                )
            });
    let path = r
        .non_resource_attributes
        .as_ref()
        .map_or("", |n| n.path.as_str());
    tracing::info!(
        target: "audit",
        uid = %r.uid,
        user = %r.user,
        groups = r.groups.len(),
        verb = %r.verb(),
        resource,
        subresource,
        namespace,
        name,
        path,
        decision = %event.decision.verdict,
        source = event.decision.source.as_str(),
        reason = %event.decision.reason,
        generation = event.generation,
        cached = event.cached,
        latency_us = event.latency_us,
        answered = event.answered.unwrap_or(event.decision.verdict.as_str()),
        "decision"
    );
}
