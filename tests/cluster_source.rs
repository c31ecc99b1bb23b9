//! The live Kubernetes RBAC source inside the server, fed through the same event path the
//! kube-rs watchers use: not ready (no opinion) until every kind has listed, then bindings
//! from the cluster decide next to the files, and a deleted binding stops granting.

mod support;

use kube::runtime::watcher::Event;
use scopegate::cluster::{ClusterSource, Kind};
use serde_json::{Value, json};
use support::*;

fn request(user: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "metadata": {},
        "spec": {"user": user, "groups": ["system:authenticated"],
                 "resourceAttributes": {"namespace": "team-a", "verb": "list", "resource": "configmaps", "version": "v1"}},
        "status": {"allowed": false}
    }))
    .unwrap()
}

fn binding() -> Value {
    // As the API serves it: no apiVersion/kind on list items.
    json!({"metadata": {"name": "bob-view", "namespace": "team-a", "resourceVersion": "42"},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
           "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob"}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_bindings_decide_once_synced() {
    let pki = Pki::new();
    let policies = policy_dir();
    let source = ClusterSource::new();
    let server = serve_tls_with_cluster(
        &pki,
        policies.path(),
        &["--reload-interval-seconds", "3600"],
        Some(source.clone()),
    )
    .await;
    let config = client_config(&pki.ca.pem.cert, Some(&pki.client));
    let mut conn = connect(server.addr, config.clone()).await.unwrap();

    // Files loaded, cluster not listed yet: not ready, and no answer (503), so the request
    // meets kube-apiserver's failure policy rather than the next authorizer.
    let (status, text) = admin_get(server.admin_addr, "/readyz").await;
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("cluster"));
    let (status, answer) = conn.post(request("bob")).await.unwrap();
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["kind"], "Status");
    assert!(
        answer["message"].as_str().unwrap().contains("RBAC"),
        "{answer}"
    );

    // The initial list: the `view` ClusterRole comes from the policy files' bootstrap set,
    // the binding from the cluster.
    for kind in Kind::ALL {
        source.apply(kind, Event::Init);
        if kind == Kind::RoleBinding {
            source.apply(kind, Event::InitApply(binding()));
        }
        source.apply(kind, Event::InitDone);
    }
    assert!(
        eventually(10, || async {
            admin_get(server.admin_addr, "/readyz").await.0 == 200
        })
        .await
    );
    let allowed = || {
        let config = config.clone();
        let addr = server.addr;
        async move {
            let mut c = connect(addr, config).await.unwrap();
            c.post(request("bob")).await.unwrap().1["status"].clone()
        }
    };
    assert!(eventually(10, || async { allowed().await["allowed"] == true }).await);
    assert_eq!(
        allowed().await["reason"],
        "RBAC: allowed by RoleBinding \"bob-view/team-a\" of ClusterRole \"view\" to User \"bob\""
    );

    // The binding is deleted in the cluster: access ends within seconds.
    source.apply(Kind::RoleBinding, Event::Delete(binding()));
    assert!(eventually(10, || async { allowed().await["allowed"] == false }).await);
    let (_, m) = admin_get(server.admin_addr, "/metrics").await;
    assert!(
        metric(
            &m,
            "scopegate_policy_reloads_total{result=\"success\",trigger=\"cluster\"}"
        )
        .unwrap()
            >= 2.0,
        "{m}"
    );
    server.stop().await;
}
