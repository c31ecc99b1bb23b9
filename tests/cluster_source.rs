//! The live Kubernetes RBAC source inside the server, fed through the same event path the
//! kube-rs watchers use: not ready (no opinion) until every kind has listed, then bindings
//! from the cluster decide next to the files, and a deleted binding stops granting.

mod support;

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::runtime::watcher::Event;
use scopegate::cluster::{ClusterSource, Kind};
use scopegate::server::Running;
use serde_json::{Value, json};
use std::sync::Arc;
use support::*;

/// Runs `$body` with `$k` the k8s-openapi type of `$kind`.
macro_rules! by_kind {
    ($kind:expr, $k:ident => $body:expr) => {
        match $kind {
            Kind::Role => {
                type $k = Role;
                $body
            }
            Kind::ClusterRole => {
                type $k = ClusterRole;
                $body
            }
            Kind::RoleBinding => {
                type $k = RoleBinding;
                $body
            }
            Kind::ClusterRoleBinding => {
                type $k = ClusterRoleBinding;
                $body
            }
            Kind::ServiceAccount => {
                type $k = ServiceAccount;
                $body
            }
        }
    };
}

/// A relist of `kind` starts.
fn init(source: &ClusterSource, kind: Kind) {
    by_kind!(kind, K => source.apply(Event::<K>::Init).unwrap())
}

/// One object of a relist of `kind`, as the API serves it (JSON into the typed object).
fn init_apply(source: &ClusterSource, kind: Kind, object: Value) {
    by_kind!(kind, K => source
        .apply(Event::InitApply(serde_json::from_value::<K>(object).unwrap()))
        .unwrap())
}

/// The relist of `kind` is complete.
fn init_done(source: &ClusterSource, kind: Kind) {
    by_kind!(kind, K => source.apply(Event::<K>::InitDone).unwrap())
}

fn typed(binding: Value) -> RoleBinding {
    serde_json::from_value(binding).unwrap()
}

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

/// A TLS server over a copy of the shipped policy with the live source (the poll an hour
/// away), and the client config kube-apiserver has.
async fn serve_live() -> (
    Pki,
    tempfile::TempDir,
    Arc<ClusterSource>,
    Running,
    Arc<rustls::ClientConfig>,
) {
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
    (pki, policies, source, server, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_bindings_decide_once_synced() {
    let (_pki, _policies, source, server, config) = serve_live().await;
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
        init(&source, kind);
        if kind == Kind::RoleBinding {
            init_apply(&source, kind, binding());
        }
        init_done(&source, kind);
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
    source.apply(Event::Delete(typed(binding()))).unwrap();
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

/// A source that can no longer vouch for the cluster's objects (a watcher stopped, a poisoned
/// lock) fails every reload: the policy last published keeps answering, with its live grants,
/// and `/readyz` says why; a later change from the cluster is not published over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_source_fails_the_reload_and_the_last_policy_keeps_answering() {
    let (_pki, _policies, source, server, config) = serve_live().await;
    for kind in Kind::ALL {
        init(&source, kind);
        if kind == Kind::RoleBinding {
            init_apply(&source, kind, binding());
        }
        init_done(&source, kind);
    }
    let status = || {
        let config = config.clone();
        let addr = server.addr;
        async move {
            let mut c = connect(addr, config).await.unwrap();
            let (code, answer) = c.post(request("bob")).await.unwrap();
            (code, answer["status"].clone())
        }
    };
    assert!(eventually(10, || async { status().await.1["allowed"] == true }).await);

    source.fail("RoleBinding: its watch ended");
    readyz_fails_with(
        server.admin_addr,
        "the cluster RBAC source failed: RoleBinding: its watch ended",
    )
    .await;
    let (_, m) = admin_get(server.admin_addr, "/metrics").await;
    assert!(
        metric(
            &m,
            "scopegate_policy_reloads_total{result=\"error\",trigger=\"cluster\"}"
        )
        .unwrap()
            >= 1.0,
        "{m}"
    );
    // Bob's grant from the cluster still answers: no empty cluster set was published.
    let (code, answer) = status().await;
    assert_eq!(code, 200);
    assert_eq!(answer["allowed"], true, "{answer}");

    // A deletion the failed source still takes in is not published over the last policy.
    let errors = || async {
        let (_, m) = admin_get(server.admin_addr, "/metrics").await;
        metric(
            &m,
            "scopegate_policy_reloads_total{result=\"error\",trigger=\"cluster\"}",
        )
        .unwrap_or(0.0)
    };
    let before = errors().await;
    source.apply(Event::Delete(typed(binding()))).unwrap();
    assert!(eventually(10, || async { errors().await > before }).await);
    assert_eq!(status().await.1["allowed"], true);
    server.stop().await;
}

/// The cluster's own RBAC objects as its watchers list them: the bootstrap defaults the
/// policy files also hold (no apiVersion/kind on list items), by kind.
fn bootstrap_listing() -> Vec<(Kind, Value)> {
    let files = [
        ("cluster-roles.yaml", Kind::ClusterRole),
        ("cluster-role-bindings.yaml", Kind::ClusterRoleBinding),
        ("namespace-roles.yaml", Kind::Role),
        ("namespace-role-bindings.yaml", Kind::RoleBinding),
    ];
    let mut listing = Vec::new();
    for (file, kind) in files {
        let text = std::fs::read_to_string(root().join("policies/kubernetes/bootstrap").join(file))
            .unwrap();
        let list: Value = serde_yaml::from_str(&text).unwrap();
        for mut item in list["items"].as_array().unwrap().clone() {
            let map = item.as_object_mut().unwrap();
            map.remove("apiVersion");
            map.remove("kind");
            listing.push((kind, item));
        }
    }
    assert!(listing.len() > 50, "the whole bootstrap set");
    listing
}

/// The cluster's copy of `finance-app.yaml`'s `pipeline-deployer` binding: in the cluster it
/// binds user carol, not the pipeline service account.
fn changed_pipeline_binding() -> Value {
    json!({"metadata": {"name": "pipeline-deployer", "namespace": "finance-app"},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pipeline-deployer"},
           "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "carol"}]})
}

fn scale_request(user: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "metadata": {},
        "spec": {"user": user, "groups": ["system:authenticated"],
                 "resourceAttributes": {"namespace": "finance-app", "verb": "patch", "group": "apps",
                                        "resource": "deployments", "subresource": "scale", "version": "v1"}},
        "status": {"allowed": false}
    }))
    .unwrap()
}

/// The shipped configuration's shape (the files hold the bootstrap defaults and app RBAC)
/// with the live source: the cluster's copies replace the files' (no duplicate error), the
/// first listing is published at once (the poll is an hour away), and `/readyz` says at
/// every step whether the cluster's objects are serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_source_over_bootstrap_files_wins_and_readiness_follows_publication() {
    let (_pki, policies, source, server, config) = serve_live().await;
    assert!(policies.path().join("kubernetes/bootstrap").is_dir());
    let status_of = |body: Vec<u8>| {
        let config = config.clone();
        let addr = server.addr;
        async move {
            let mut c = connect(addr, config).await.unwrap();
            let (code, answer) = c.post(body).await.unwrap();
            (code, answer["status"].clone())
        }
    };

    // Files serving, cluster not listed: not ready.
    let (status, text) = admin_get(server.admin_addr, "/readyz").await;
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("cluster"), "{text}");

    // The first full listing: every bootstrap object the files also hold, the changed
    // pipeline binding and bob's binding.
    for kind in Kind::ALL {
        init(&source, kind);
    }
    for (kind, object) in bootstrap_listing() {
        init_apply(&source, kind, object);
    }
    init_apply(&source, Kind::RoleBinding, changed_pipeline_binding());
    init_apply(&source, Kind::RoleBinding, binding());
    for kind in Kind::ALL {
        init_done(&source, kind);
    }
    // Ready only once the listing serves: from the first 200 on, bob's binding answers.
    assert!(
        eventually(10, || async {
            admin_get(server.admin_addr, "/readyz").await.0 == 200
        })
        .await,
        "{}",
        admin_get(server.admin_addr, "/readyz?verbose").await.1
    );
    let (code, answer) = status_of(request("bob")).await;
    assert_eq!(code, 200);
    assert_eq!(answer["allowed"], true, "{answer}");
    // The cluster's copy of the pipeline binding replaced the file's.
    let (_, answer) = status_of(scale_request("carol")).await;
    assert_eq!(answer["allowed"], true, "{answer}");
    assert_eq!(
        answer["reason"],
        "RBAC: allowed by RoleBinding \"pipeline-deployer/finance-app\" of Role \"pipeline-deployer\" to User \"carol\""
    );
    let (_, answer) = status_of(scale_request("system:serviceaccount:finance-app:pipeline")).await;
    assert_ne!(answer["allowed"], true, "{answer}");
    let (_, m) = admin_get(server.admin_addr, "/metrics").await;
    assert_eq!(
        metric(
            &m,
            "scopegate_policy_reloads_total{result=\"error\",trigger=\"cluster\"}"
        ),
        None,
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "scopegate_policy_reloads_total{result=\"success\",trigger=\"poll\"}"
        ),
        None,
        "published by the cluster event, not the poll: {m}"
    );

    // A merge that fails (a RoleBinding without a namespace): not ready, with the reason.
    let broken = json!({"metadata": {"name": "broken"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "dave"}]});
    source.apply(Event::Apply(typed(broken.clone()))).unwrap();
    readyz_fails_with(server.admin_addr, "RoleBinding has no namespace").await;

    // Fixed in the cluster: ready again.
    source.apply(Event::Delete(typed(broken))).unwrap();
    assert!(
        eventually(10, || async {
            admin_get(server.admin_addr, "/readyz").await.0 == 200
        })
        .await
    );
    server.stop().await;
}

/// A listing that completes between the startup load and the reload loop's subscription is
/// published at once, not by the next poll (an hour away here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_done_before_the_loop_subscribes_is_published_at_once() {
    use scopegate::server::reload::{Reloader, watch_paths, watch_policies};
    use std::time::Duration;
    let policies = policy_dir();
    let source = ClusterSource::new();
    let store = Arc::new(scopegate::policy::store::PolicyStore::new());
    let options = scopegate::policy::IndexOptions::default();
    let mut reloader = Reloader::new(
        store.clone(),
        vec![policies.path().to_path_buf()],
        options,
        scopegate::metrics::Metrics::new(),
        Some(source.clone()),
    );
    // The files were copied just now: read them at once.
    reloader.settle = Duration::ZERO;
    let reloader = Arc::new(reloader);
    let watch = watch_paths(&[policies.path().to_path_buf()]);
    let first = reloader.clone();
    tokio::task::spawn_blocking(move || first.reload("startup", true))
        .await
        .unwrap();
    assert!(store.is_ready());
    assert!(!source.is_served());
    for kind in Kind::ALL {
        init(&source, kind);
        if kind == Kind::RoleBinding {
            init_apply(&source, kind, binding());
        }
        init_done(&source, kind);
    }
    let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(watch_policies(
        reloader,
        watch,
        Duration::from_secs(3600),
        shutdown_rx,
    ));
    let served = eventually(5, || async { source.is_served() }).await;
    let _ = shutdown.send(true);
    task.await.unwrap();
    assert!(served, "the listing waits for the poll");
    assert_eq!(store.load().stats().k8s_bindings, {
        // The files' bindings and bob's.
        let files = scopegate::load_snapshot(
            &[policies.path().to_path_buf()],
            None,
            &scopegate::policy::IndexOptions::default(),
            1,
        )
        .unwrap();
        files.snapshot.stats().k8s_bindings + 1
    });
}

/// The shipped configuration loads the bootstrap copies of the cluster's RBAC only while the
/// live source is off, and the same decisions come from it as from the whole `policies/`.
#[test]
fn shipped_config_loads_bootstrap_copies_only_without_the_live_source() {
    use clap::Parser;
    use scopegate::cli::{Cli, Command};
    let resolve = |extra: &[&str]| {
        let config = root().join("deploy/scopegate.yaml");
        let mut argv = vec![
            "scopegate",
            "validate",
            "--config",
            config.to_str().unwrap(),
        ];
        argv.extend_from_slice(extra);
        let Command::Validate(args) = Cli::try_parse_from(argv).unwrap().command else {
            unreachable!()
        };
        args.engine.resolve().unwrap()
    };
    let bootstrap = |r: &scopegate::config::Resolved| {
        r.policies
            .iter()
            .any(|p| p.ends_with("policies/kubernetes/bootstrap"))
    };
    let files = resolve(&[]);
    assert!(!files.watch_cluster_rbac);
    assert!(bootstrap(&files), "{:?}", files.policies);
    let live = resolve(&["--watch-cluster-rbac"]);
    assert!(live.watch_cluster_rbac);
    assert!(!bootstrap(&live), "{:?}", live.policies);
    assert!(!live.policies.is_empty());
    // The split loads what the whole directory did (paths relative to the crate root, where
    // tests run).
    let load = |paths: &[std::path::PathBuf]| {
        scopegate::load_snapshot(paths, None, &files.index, 1)
            .unwrap()
            .snapshot
            .stats()
    };
    let (split, whole) = (load(&files.policies), load(&[root().join("policies")]));
    assert_eq!(split.k8s_bindings, whole.k8s_bindings);
    assert_eq!(split.k8s_roles, whole.k8s_roles);
    assert_eq!(split.role_assignments, whole.role_assignments);
}

/// Without the live source a rejected file edit leaves `/readyz` ok (the last good policy is
/// what the files said before), and `?verbose` names the failure until a reload succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_file_edit_without_the_live_source_keeps_ready_and_says_why() {
    let (_pki, policies, server) = serve_examples(&["--reload-interval-seconds", "3600"]).await;
    assert_eq!(admin_get(server.admin_addr, "/readyz").await.0, 200);
    let broken = policies.path().join("kubernetes/broken.yaml");
    std::fs::write(
        &broken,
        "kind: RoleBinding\nmetadata: {name: b}\nroleRef: {kind: ClusterRole, name: view}\n",
    )
    .unwrap();
    assert!(
        eventually(10, || async {
            admin_get(server.admin_addr, "/readyz?verbose")
                .await
                .1
                .contains("last reload failed")
        })
        .await
    );
    let (status, text) = admin_get(server.admin_addr, "/readyz?verbose").await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("RoleBinding has no namespace"), "{text}");
    std::fs::remove_file(&broken).unwrap();
    assert!(
        eventually(10, || async {
            !admin_get(server.admin_addr, "/readyz?verbose")
                .await
                .1
                .contains("last reload failed")
        })
        .await
    );
    server.stop().await;
}

/// Waits (10 s at most) for `/readyz` to fail, then checks it names a failed reload and `why`.
async fn readyz_fails_with(admin: std::net::SocketAddr, why: &str) {
    assert!(eventually(10, || async { admin_get(admin, "/readyz").await.0 == 503 }).await);
    let (_, text) = admin_get(admin, "/readyz").await;
    assert!(text.contains("last reload failed"), "{text}");
    assert!(text.contains(why), "{text}");
}
