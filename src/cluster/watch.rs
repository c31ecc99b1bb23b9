//! The kube-rs watcher per kind, its events applied to the kind's store by `reflector`.

use super::ClusterSource;
use super::stores::RbacObject;
use crate::metrics::Metrics;
use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher::{self, Event};
use std::sync::Arc;

/// Watches every object of `K` into `writer` until the stream ends (it retries with backoff,
/// so it ends only with the task). A task that stops — ended or panicked — fails the source:
/// its store would no longer follow the cluster.
pub(super) fn spawn<K: RbacObject>(
    source: &Arc<ClusterSource>,
    writer: Writer<K>,
    client: kube::Client,
    metrics: Option<Metrics>,
) {
    let task = tokio::spawn(run(source.clone(), writer, client, metrics));
    let source = source.clone();
    tokio::spawn(async move {
        let why = match task.await {
            Ok(()) => "its watch ended".to_string(),
            Err(e) => format!("its watcher stopped: {e}"),
        };
        source.fail(format!("{}: {why}", K::KIND.as_str()));
    });
}

fn label<K>(event: &Event<K>) -> &'static str {
    match event {
        Event::Apply(_) => "apply",
        Event::Delete(_) => "delete",
        Event::Init => "init",
        Event::InitApply(_) => "init_apply",
        Event::InitDone => "init_done",
    }
}

async fn run<K: RbacObject>(
    source: Arc<ClusterSource>,
    writer: Writer<K>,
    client: kube::Client,
    metrics: Option<Metrics>,
) {
    let kind = K::KIND.as_str();
    let api = kube::Api::<K>::all(client);
    let events = watcher::watcher(api, watcher::Config::default()).default_backoff();
    let mut stream = reflector::reflector(writer, events).boxed();
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => {
                if let Some(m) = &metrics {
                    m.cluster_events
                        .with_label_values(&[kind, label(&event)])
                        .inc();
                }
                source.observe(super::publishes(&event));
                if let Some(m) = &metrics {
                    for (k, n) in source.counts() {
                        m.cluster_objects
                            .with_label_values(&[k.as_str()])
                            .set(n as i64);
                    }
                }
            }
            Err(e) => {
                if let Some(m) = &metrics {
                    m.cluster_events.with_label_values(&[kind, "error"]).inc();
                }
                tracing::warn!(kind, error = %e, "cluster RBAC watch failed; keeping the last state and retrying");
            }
        }
    }
}
