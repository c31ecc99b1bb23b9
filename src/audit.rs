//! The decision log: one event per decision on the `audit` tracing target, so it can be
//! routed and filtered apart from operational logs (`RUST_LOG=audit=info`).
//!
//! Every value from the request is cut to [`FIELD_BYTES`] and the reason to [`REASON_BYTES`]
//! (a request can carry a megabyte in one field); the plain format quotes and escapes values
//! (`telemetry::Logfmt`), so a value cannot start a line of its own.

use crate::model::excerpt::capped;
use crate::model::{AccessRequest, Decision};

/// Most bytes of one request value (user, uid, namespace, name, path…) a log line keeps.
pub const FIELD_BYTES: usize = 1024;
/// Most bytes of a reason a log line keeps.
pub const REASON_BYTES: usize = 4096;

/// What one audit line says.
pub struct AuditEvent<'a> {
    pub request: &'a AccessRequest,
    pub decision: &'a Decision,
    pub generation: u64,
    pub cached: bool,
    pub latency_us: u64,
    /// `Some(answer)` in shadow mode: what was actually answered.
    pub answered: Option<&'static str>,
    /// The `extra` key that holds the principal's object id (`--principal-claim`).
    pub principal_claim: &'a str,
}

/// Writes the event.
pub fn record(event: &AuditEvent<'_>) {
    let r = event.request;
    let (api_group, resource, subresource, namespace, name) = r
        .resource_attributes
        .as_ref()
        .map_or(("", "", "", "", ""), |a| {
            (
                a.group.as_str(),
                a.resource.as_str(),
                a.subresource.as_str(),
                a.namespace.as_str(),
                a.name.as_str(),
            )
        });
    // kube-apiserver sends no request uid (`metadata` is empty in every capture): the only uid
    // is the user's, logged as such.
    // One value (the usual case) is logged as it is; several are joined.
    let oid: std::borrow::Cow<'_, str> = match r.extra.get(event.principal_claim).map(Vec::as_slice)
    {
        None | Some([]) => "".into(),
        Some([one]) => one.as_str().into(),
        Some(many) => many.join(",").into(),
    };
    let path = r
        .non_resource_attributes
        .as_ref()
        .map_or("", |n| n.path.as_str());
    let field = |value| capped(value, FIELD_BYTES);
    tracing::info!(
        target: "audit",
        user = &*field(&r.user),
        user_uid = &*field(&r.uid),
        oid = &*field(&oid),
        groups = r.groups.len(),
        verb = &*field(r.verb()),
        api_group = &*field(api_group),
        resource = &*field(resource),
        subresource = &*field(subresource),
        namespace = &*field(namespace),
        name = &*field(name),
        path = &*field(path),
        decision = event.decision.verdict.as_str(),
        source = event.decision.source.as_str(),
        reason = &*capped(&event.decision.reason.to_string(), REASON_BYTES),
        generation = event.generation,
        cached = event.cached,
        latency_us = event.latency_us,
        answered = event.answered.unwrap_or(event.decision.verdict.as_str()),
        "decision"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{NonResourceAttributes, ResourceAttributes, Source, Verdict};
    use crate::telemetry::{LogFormat, subscriber};
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    /// A log writer the test reads back.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The lines one decision writes in `format`.
    fn logged(format: LogFormat, request: &AccessRequest) -> String {
        // The decision the engine gives a namespace that is not a label: its reason quotes it.
        let error = crate::model::mapping::map_request(
            request.resource_attributes.as_deref(),
            None,
            "Microsoft.ContainerService/managedClusters",
        )
        .err()
        .unwrap();
        let decision = Decision::new(
            Verdict::Deny,
            Source::Request,
            format!("request not allowed: {error}"),
        );
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = subscriber(
            format,
            tracing_subscriber::EnvFilter::new("audit=info"),
            move || writer.clone(),
            false,
        );
        tracing::subscriber::with_default(subscriber, || {
            record(&AuditEvent {
                request,
                decision: &decision,
                generation: 7,
                cached: false,
                latency_us: 3,
                answered: None,
                principal_claim: "scopegate.io/oid",
            })
        });
        String::from_utf8(sink.0.lock().unwrap().clone()).unwrap()
    }

    fn request(namespace: &str, user: &str) -> AccessRequest {
        AccessRequest {
            resource_attributes: Some(Box::new(ResourceAttributes {
                namespace: namespace.into(),
                verb: "get".into(),
                resource: "secrets".into(),
                ..Default::default()
            })),
            non_resource_attributes: None,
            user: user.into(),
            uid: "u\n1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_plain_line_cannot_be_forged_from_request_values() {
        let forged = "x\n2024-01-01T00:00:00Z  INFO audit: decision user=mallory decision=allow";
        let text = logged(LogFormat::Plain, &request(forged, forged));
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains(r#" user_uid="u\n1" "#), "{text}");
        assert!(text.contains(r#" user="x\n2024-01-01T00:00:00Z  INFO audit: decision user=mallory decision=allow" "#), "{text}");
        assert!(
            text.contains(r#"reason="request not allowed: namespace `x\n2024"#),
            "{text}"
        );
        assert!(
            text.contains(" decision=deny ") && text.contains(" generation=7 "),
            "{text}"
        );
        // A non-resource path too.
        let mut path = request("", "alice");
        path.resource_attributes = None;
        path.non_resource_attributes = Some(NonResourceAttributes {
            path: "/api\r\nforged".into(),
            verb: "get".into(),
        });
        let text = logged(LogFormat::Plain, &AccessRequest { ..path });
        assert!(text.contains(r#" path="/api\r\nforged" "#), "{text}");
        assert_eq!(text.lines().count(), 1, "{text}");
    }

    #[test]
    fn the_line_names_the_group_and_the_principal_object_id() {
        let mut r = request("Team A", "alice");
        if let Some(a) = r.resource_attributes.as_deref_mut() {
            a.group = "apps".into();
            a.resource = "deployments".into();
        }
        r.extra.insert(
            "scopegate.io/oid".into(),
            vec!["11111111-2222-4333-8444-555555555555".into()],
        );
        r.extra.insert("oid".into(), vec!["not-the-claim".into()]);
        let line: serde_json::Value =
            serde_json::from_str(logged(LogFormat::Json, &r).trim()).unwrap();
        assert_eq!(line["api_group"], "apps");
        assert_eq!(line["resource"], "deployments");
        assert_eq!(line["oid"], "11111111-2222-4333-8444-555555555555");
        assert_eq!(line["user_uid"], "u\n1");
        assert!(line.get("uid").is_none(), "{line}");
        // Plain: the reason is one quoted logfmt value.
        let text = logged(LogFormat::Plain, &r);
        assert!(text.contains(" api_group=apps "), "{text}");
        assert!(text.contains(r#" reason="request not allowed: "#), "{text}");
    }

    #[test]
    fn long_values_are_cut_in_both_formats() {
        let long = "a".repeat(1 << 20);
        for format in [LogFormat::Plain, LogFormat::Json] {
            let text = logged(format, &request(&long, &long));
            assert!(text.len() < 8 * 1024, "{format:?}: {} bytes", text.len());
            assert!(text.contains(&format!("…(+{} bytes)", (1 << 20) - FIELD_BYTES)));
            if format == LogFormat::Json {
                let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
                assert_eq!(
                    line["user"].as_str().map(str::len),
                    Some(FIELD_BYTES + "…(+1047552 bytes)".len())
                );
                assert_eq!(line["decision"], "deny");
            }
        }
    }
}
