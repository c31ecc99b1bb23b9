//! Hot reload with real files: a policy change takes effect, a ConfigMap `..data` swap is
//! seen, a broken change leaves the last good policy serving, SIGHUP reloads, and under a
//! bounded concurrent load with many rewrites every answer comes from one whole generation.

mod support;

use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use support::*;

const PAYMENTS_OID: &str = "7d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6";

/// A role assignment granting RBAC Reader in `payments` to one user.
fn payments_assignment(id: &str) -> Value {
    json!([{
        "id": format!("/subscriptions/3f2a6b1c-5d4e-4f70-8a9b-0c1d2e3f4a5b/providers/Microsoft.Authorization/roleAssignments/{id}"),
        "principalId": PAYMENTS_OID, "principalType": "User",
        "roleDefinitionId": "/providers/Microsoft.Authorization/roleDefinitions/7f6c6a51-bcf8-42ba-9220-52d62157d7db",
        "scope": format!("{CLUSTER}/namespaces/payments"),
    }])
}

fn payments_request() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "metadata": {},
        "spec": {"user": "pat@contoso.com", "groups": ["system:authenticated"], "extra": {"scopegate.io/oid": [PAYMENTS_OID]},
                 "resourceAttributes": {"namespace": "payments", "verb": "list", "resource": "pods", "version": "v1"}},
        "status": {"allowed": false}
    }))
    .unwrap()
}

fn write_json(path: &Path, v: &Value) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(v).unwrap()).unwrap();
    std::fs::rename(tmp, path).unwrap();
}

async fn allowed(conn: &mut Conn) -> bool {
    conn.post(payments_request()).await.unwrap().1["status"]["allowed"] == true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_changes_apply_and_broken_changes_keep_the_last_good_policy() {
    let (pki, policies, server) = serve_examples(&["--reload-interval-seconds", "3600"]).await;
    let mut conn = connect_apiserver(server.addr, &pki).await;
    assert!(!allowed(&mut conn).await);
    // Add a file: picked up by the directory watch within seconds.
    let file = policies.path().join("azure/payments.json");
    write_json(
        &file,
        &payments_assignment("11111111-0000-4000-8000-000000000001"),
    );
    assert!(
        eventually(10, || async {
            allowed(&mut connect_apiserver(server.addr, &pki).await).await
        })
        .await
    );
    let m = metrics(server.admin_addr).await;
    let generation = metric(&m, "scopegate_policy_generation").unwrap();
    assert!(generation >= 2.0);
    // Break it: syntax error. Rejected whole; the last good policy still answers.
    std::fs::write(&file, "[{\"id\": ").unwrap();
    assert!(
        eventually(10, || async {
            let m = metrics(server.admin_addr).await;
            metric(
                &m,
                "scopegate_policy_reloads_total{result=\"error\",trigger=\"watch\"}",
            )
            .unwrap_or(0.0)
                >= 1.0
        })
        .await
    );
    assert!(allowed(&mut conn).await, "last good policy keeps serving");
    // A semantic error (a scope that does not parse) is rejected the same way.
    let errors = || async {
        let m = metrics(server.admin_addr).await;
        ["watch", "settle", "poll"]
            .iter()
            .filter_map(|t| {
                metric(
                    &m,
                    &format!("scopegate_policy_reloads_total{{result=\"error\",trigger=\"{t}\"}}"),
                )
            })
            .sum::<f64>()
    };
    let errors_before = errors().await;
    let mut bad = payments_assignment("11111111-0000-4000-8000-000000000002");
    bad[0]["scope"] = json!("namespaces/payments");
    write_json(&file, &bad);
    assert!(eventually(10, || async { errors().await > errors_before }).await);
    assert!(allowed(&mut conn).await);
    let m = metrics(server.admin_addr).await;
    assert_eq!(
        metric(&m, "scopegate_policy_generation"),
        Some(generation),
        "no broken generation published"
    );
    assert_eq!(admin_get(server.admin_addr, "/readyz").await.0, 200);
    // Remove the grant: access is revoked at once, no cache keeps it alive.
    std::fs::remove_file(&file).unwrap();
    assert!(
        eventually(10, || async {
            !allowed(&mut connect_apiserver(server.addr, &pki).await).await
        })
        .await
    );
    server.stop().await;
}

/// Lays out `dir` as kubelet does for a ConfigMap volume and returns a function that swaps
/// in a new version.
fn configmap_version(dir: &Path, version: u32, files: &[(&str, Vec<u8>)]) {
    let real = dir.join(format!("..2026_11_28_v{version}"));
    std::fs::create_dir(&real).unwrap();
    for (name, bytes) in files {
        std::fs::write(real.join(name), bytes).unwrap();
    }
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(real.file_name().unwrap(), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for (name, _) in files {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new("..data").join(name), &link).unwrap();
        }
    }
    if version > 1 {
        let _ = std::fs::remove_dir_all(dir.join(format!("..2026_11_28_v{}", version - 1)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_data_symlink_swap_is_seen() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let roles = std::fs::read(root().join("policies/azure/aks-builtin-roles.json")).unwrap();
    configmap_version(
        dir.path(),
        1,
        &[
            ("roles.json", roles.clone()),
            ("assignments.json", b"[]".to_vec()),
        ],
    );
    let server = serve_tls(&pki, dir.path(), &["--reload-interval-seconds", "3600"]).await;
    let config = pki.apiserver_config();
    assert!(!allowed(&mut connect(server.addr, config.clone()).await.unwrap()).await);
    let grant =
        serde_json::to_vec(&payments_assignment("22222222-0000-4000-8000-000000000001")).unwrap();
    configmap_version(
        dir.path(),
        2,
        &[("roles.json", roles), ("assignments.json", grant)],
    );
    assert!(
        eventually(10, || async {
            allowed(&mut connect(server.addr, config.clone()).await.unwrap()).await
        })
        .await,
        "..data swap not picked up"
    );
    let m = metrics(server.admin_addr).await;
    assert_eq!(
        metric(&m, "scopegate_policy_objects{kind=\"role_definitions\"}"),
        Some(8.0),
        "each file loaded once"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_under_load_comes_from_one_whole_generation() {
    let (pki, policies, server) = serve_examples(&["--reload-interval-seconds", "3600"]).await;
    let config = pki.apiserver_config();
    let file = policies.path().join("azure/payments.json");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Writer: alternates between granting and not granting, eight times, each time waiting
    // until the server has published the new generation (reloads run at the lowest CPU
    // priority, so how soon depends on the machine; the wait does not).
    let admin = server.admin_addr;
    let generation = move || async move {
        let (_, m) = admin_get(admin, "/metrics").await;
        metric(&m, "scopegate_policy_generation").unwrap_or(0.0)
    };
    let writer = {
        let file = file.clone();
        tokio::spawn(async move {
            for i in 0..8 {
                let before = generation().await;
                if i % 2 == 0 {
                    write_json(
                        &file,
                        &payments_assignment("33333333-0000-4000-8000-000000000001"),
                    );
                } else {
                    write_json(&file, &json!([]));
                }
                if !eventually(60, || async { generation().await > before }).await {
                    return Err(i);
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Ok(())
        })
    };
    let (allows, others) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (config, stop, allows, others) =
            (config.clone(), stop.clone(), allows.clone(), others.clone());
        let addr = server.addr;
        clients.push(tokio::spawn(async move {
            let mut conn = connect(addr, config).await.unwrap();
            for _ in 0..20_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let (status, answer) = conn
                    .post(payments_request())
                    .await
                    .expect("no request fails during reloads");
                assert_eq!(status, 200, "{answer}");
                let s = &answer["status"];
                let reason = s["reason"].as_str().unwrap();
                if s["allowed"] == true {
                    assert!(
                        reason.contains("33333333-0000-4000-8000-000000000001")
                            && reason.contains("RBAC Reader"),
                        "{reason}"
                    );
                    allows.fetch_add(1, Ordering::Relaxed);
                } else {
                    assert!(s.get("denied").is_none(), "{answer}");
                    assert!(
                        reason.starts_with("Azure RBAC: no role assignment grants action"),
                        "{reason}"
                    );
                    others.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let published = writer.await.unwrap();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let (a, o) = (
        allows.load(Ordering::Relaxed),
        others.load(Ordering::Relaxed),
    );
    assert!(
        a > 0 && o > 0,
        "both generations answered: {a} allowed, {o} not"
    );
    if let Err(i) = published {
        panic!("change {i} of 8 was not published as a generation within 60 s");
    }
    let m = metrics(server.admin_addr).await;
    assert_eq!(
        metric(
            &m,
            "scopegate_policy_reloads_total{result=\"error\",trigger=\"watch\"}"
        )
        .unwrap_or(0.0),
        0.0
    );
    server.stop().await;
}

#[test]
fn sighup_reloads_the_serve_process() {
    let policies = policy_dir();
    let dir = tempfile::tempdir().unwrap();
    let admin = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .args([
            "serve",
            "--insecure-http",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            &admin.to_string(),
        ])
        .args([
            "--policies",
            policies.path().to_str().unwrap(),
            "--cluster-resource-id",
            CLUSTER,
            "--log-format",
            "json",
        ])
        .stderr(std::fs::File::create(dir.path().join("log")).unwrap())
        .spawn()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sighups = |rt: &tokio::runtime::Runtime| {
        rt.block_on(async {
            let (_, m) = admin_get(admin, "/metrics").await;
            metric(
                &m,
                "scopegate_policy_reloads_total{result=\"success\",trigger=\"sighup\"}",
            )
            .unwrap_or(0.0)
        })
    };
    let ready = rt.block_on(eventually(10, || async {
        tokio::net::TcpStream::connect(admin).await.is_ok()
            && admin_get(admin, "/readyz").await.0 == 200
    }));
    assert!(ready);
    // Huge pages are off for the serving process (a fresh 2 MiB page is zeroed on first touch,
    // inside whichever request touches it). Checked after the process is stopped.
    let proc_status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let huge_pages_off = proc_status
        .lines()
        .any(|l| l.split_whitespace().eq(["THP_enabled:", "0"]));
    assert_eq!(sighups(&rt), 0.0);
    std::process::Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    let reloaded = rt.block_on(eventually(10, || async {
        let (_, m) = admin_get(admin, "/metrics").await;
        metric(
            &m,
            "scopegate_policy_reloads_total{result=\"success\",trigger=\"sighup\"}",
        )
        .unwrap_or(0.0)
            >= 1.0
    }));
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(reloaded, "SIGHUP did not reload");
    assert!(huge_pages_off, "{proc_status}");
    assert!(status.success(), "SIGTERM is a clean shutdown");
    let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
    assert!(
        log.lines()
            .any(|l| serde_json::from_str::<Value>(l).is_ok_and(|v| v["trigger"] == "sighup")),
        "{log}"
    );
}

/// A reloader of one policy directory with default options. Files are read however
/// recently they changed (the settle time is tested on its own).
fn reloader_of(dir: &Path) -> scopegate::server::reload::Reloader {
    reloader(dir, Default::default(), std::time::Duration::ZERO)
}

/// Which reloads may take an unchanged file by its metadata: file events (and cluster
/// changes) do, once the file has settled; SIGHUP and the periodic re-read read every byte.
#[test]
fn only_file_event_reloads_take_settled_files_unread() {
    let dir = policy_dir();
    let reloader = reloader_of(dir.path());
    let files = || {
        reloader
            .parsed
            .lock()
            .map(|p| (p.len(), p.unread()))
            .unwrap_or_default()
    };
    assert!(
        reloader.reload("startup", true),
        "the example policies load"
    );
    let (kept, _) = files();
    assert!(kept >= 3, "{kept} files kept");
    // The copies were just written: read again until they have been still for 3 s.
    reloader.reload("watch", true);
    assert_eq!(files().1, 0);
    std::thread::sleep(std::time::Duration::from_millis(3_300));
    reloader.reload("watch", true);
    for (trigger, unread) in [
        ("watch", kept),
        ("cluster", kept),
        ("sighup", 0),
        ("poll", 0),
    ] {
        reloader.reload(trigger, true);
        assert_eq!(files(), (kept, unread), "after a {trigger} reload");
    }
    // A new file is read; the settled ones still are not.
    write_json(
        &dir.path().join("azure/zz-new.json"),
        &payments_assignment("b7c1e4a2-0d3f-4e5a-9b6c-7d8e9f0a1b2c"),
    );
    assert!(
        reloader.reload("watch", false),
        "the new assignment changes the policy"
    );
    assert_eq!(files(), (kept + 1, kept));
}

/// A reload whose sources are those of the policy being served (the periodic re-read, a file
/// rewritten with the same bytes, a broken change put back) publishes nothing; any other
/// change publishes a generation, and a broken one is rejected whole.
#[test]
fn only_a_change_of_the_sources_publishes_a_generation() {
    let dir = policy_dir();
    let reloader = reloader_of(dir.path());
    let count = |result: &str, trigger: &str| {
        reloader
            .metrics
            .reloads
            .with_label_values(&[result, trigger])
            .get()
    };
    let generation = || reloader.store.load().generation;
    let file = dir.path().join("azure/zz-change.json");
    let first = payments_assignment("b7c1e4a2-0d3f-4e5a-9b6c-7d8e9f0a1b2c");
    write_json(&file, &first);
    assert!(reloader.reload("startup", false));
    assert_eq!(generation(), 1);
    assert!(!reloader.reload("poll", false));
    write_json(&file, &first);
    assert!(!reloader.reload("watch", false));
    assert_eq!(
        (count("unchanged", "poll"), count("unchanged", "watch")),
        (1, 1)
    );
    assert_eq!(generation(), 1);
    // SIGHUP publishes whatever the sources.
    assert!(reloader.reload("sighup", true));
    assert_eq!(generation(), 2);
    let second = payments_assignment("c8d2f5b3-1e4a-4f6b-8c7d-8e9fa0b1c2d3");
    write_json(&file, &second);
    assert!(reloader.reload("watch", false));
    assert_eq!(generation(), 3);
    let failed = || reloader.metrics.last_reload_failed.get();
    assert_eq!(failed(), 0);
    std::fs::write(&file, "[{").unwrap();
    assert!(!reloader.reload("watch", false));
    assert_eq!((count("error", "watch"), generation()), (1, 3));
    assert_eq!(failed(), 1, "the rejected reload shows");
    assert!(!reloader.reload("poll", false));
    assert_eq!(failed(), 1, "still failing on the next re-read");
    write_json(&file, &second);
    assert!(!reloader.reload("watch", false));
    assert_eq!((count("unchanged", "watch"), generation()), (2, 3));
    assert_eq!(failed(), 0, "the broken change was put back");
    std::fs::write(&file, "[{").unwrap();
    assert!(!reloader.reload("watch", false));
    assert_eq!(failed(), 1);
    write_json(&file, &first);
    assert!(reloader.reload("watch", false));
    assert_eq!(failed(), 0, "a published change clears it");
    assert!(
        reloader
            .metrics
            .render()
            .contains("\nscopegate_policy_last_reload_failed 0\n")
    );
    assert_eq!((count("success", "watch"), generation()), (2, 4));
}

/// With `--groups-from directory`, taking a user out of a group in the directory export
/// revokes what the group's assignment granted at the next reload, though the request still
/// lists the group; the directory is swapped with the rest of the policy.
#[test]
fn removing_a_user_from_a_directory_group_revokes_the_grant_after_reload() {
    const ALICE: &str = "a11ce000-0000-4000-8000-000000000001";
    const TEAM: &str = "7ea70000-0000-4000-8000-00000000000b";
    let dir = policy_dir();
    copy_dir(
        &root().join("tests/fixtures/directory"),
        &dir.path().join("directory"),
    );
    let options = scopegate::policy::IndexOptions {
        cluster_resource_id: Some(scopegate::model::Scope::parse(CLUSTER).unwrap()),
        ..Default::default()
    };
    let reloader = reloader(dir.path(), options, std::time::Duration::ZERO);
    assert!(reloader.reload("startup", true));
    let engine = scopegate::engine::EngineOptions {
        principal_claim: "scopegate.io/oid".into(),
        groups_from: scopegate::engine::GroupsFrom::Directory,
        ..Default::default()
    };
    let mut body: Value = serde_json::from_slice(&payments_request()).unwrap();
    body["spec"]["extra"]["scopegate.io/oid"] = json!([ALICE]);
    body["spec"]["groups"] = json!([TEAM]);
    let request = scopegate::sar::decode(&serde_json::to_vec(&body).unwrap())
        .unwrap()
        .request;
    let verdict = |snapshot: &Arc<scopegate::policy::Snapshot>| {
        scopegate::engine::authorize(snapshot, &engine, &request).verdict
    };
    let before = reloader.store.load();
    assert_eq!(verdict(&before), scopegate::model::Verdict::Allow);
    // Alice leaves TEAM: its member file no longer lists her.
    write_json(
        &dir.path()
            .join(format!("directory/entra-group-members/{TEAM}.json")),
        &json!([]),
    );
    assert!(reloader.reload("watch", true));
    let after = reloader.store.load();
    assert!(after.generation > before.generation);
    assert_ne!(verdict(&after), scopegate::model::Verdict::Allow);
    assert_eq!(
        after.directory.as_ref().unwrap().member_of(ALICE),
        Some(&[][..]),
        "the new generation carries the new directory: Alice is a user in no group"
    );
    // The generation still served to in-flight requests keeps its own directory.
    assert_eq!(verdict(&before), scopegate::model::Verdict::Allow);
    // A broken export (an incomplete page) leaves the last good directory serving.
    write_json(
        &dir.path().join("directory/entra-users.json"),
        &json!({"value": [], "@odata.nextLink": "https://graph.microsoft.com/v1.0/users?$skiptoken=X"}),
    );
    assert!(!reloader.reload("watch", true));
    assert_eq!(reloader.store.load().generation, after.generation);
}
