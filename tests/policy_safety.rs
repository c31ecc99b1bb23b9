//! A policy change never turns into a wrong allow: a file being written is not read, a cut
//! file that could be read is rejected or no more permissive than the whole one, a file that
//! holds nothing (or is not a file) is an error, and a change that would remove every deny
//! assignment or half of a kind of object is held back.

mod support;

use scopegate::engine::{self, EngineOptions};
use scopegate::model::{Scope, Verdict};
use scopegate::policy::IndexOptions;
use scopegate::server::reload::Reloader;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use support::{CLUSTER, policy_dir, root};

fn options() -> EngineOptions {
    EngineOptions {
        principal_claim: "scopegate.io/oid".into(),
        ..EngineOptions::default()
    }
}

/// The example cluster's index options.
fn index() -> IndexOptions {
    IndexOptions::for_cluster(Scope::parse(CLUSTER).expect("cluster id"))
}

/// A reloader of `dir` with the example cluster's options.
fn reloader(dir: &Path, settle: Duration) -> Reloader {
    support::reloader(dir, index(), settle)
}

/// Every policy file below `dir`, relative to it.
fn policy_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("json" | "yaml" | "yml")
            ) {
                out.push(path.strip_prefix(dir).expect("below").to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// Writes `bytes` over `path` in place (truncate, then write), as a careless writer does.
fn write_in_place(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .expect("open for writing");
    f.write_all(bytes).expect("write");
}

/// Every cut point of every example file, written in place: the first part, a reload by a
/// trigger while the writer pauses, then the rest. The settle time is longer than the whole
/// sweep, so no trigger may read the file: the policy served keeps the fingerprint of the
/// files as they were (anything read from a cut would change it), and nothing new is built
/// except on SIGHUP, which rebuilds the same content.
#[test]
fn no_cut_point_of_an_example_file_is_ever_published() {
    let dir = policy_dir();
    let mut r = reloader(dir.path(), Duration::ZERO);
    assert!(r.reload("startup", true), "the examples load");
    let served = r.store.fingerprint();
    let stats = r.store.load().stats();
    r.settle = Duration::from_secs(3600);

    let triggers = [
        "watch", "poll", "settle", "watch", "poll", "settle", "sighup",
    ];
    let mut checked = 0usize;
    let mut read = Vec::new();
    for file in policy_files(dir.path()) {
        let path = dir.path().join(&file);
        let whole = std::fs::read(&path).expect("read");
        for cut in 0..whole.len() {
            write_in_place(&path, &whole[..cut]);
            // SIGHUP rebuilds (from the kept content); a few of them show that is all it does.
            let trigger = triggers[checked % triggers.len()];
            let trigger = if trigger == "sighup" && checked % 500 != 6 {
                "poll"
            } else {
                trigger
            };
            r.reload(trigger, trigger == "sighup");
            if r.store.fingerprint() != served || r.store.load().stats() != stats {
                read.push(format!("{} cut at {cut} by {trigger}", file.display()));
                break;
            }
            write_in_place(&path, &whole);
            checked += 1;
        }
    }
    assert!(read.is_empty(), "cut files were read: {read:?}");
    assert!(checked > 60_000, "only {checked} cut points");
    assert!(r.store.is_ready());
}

/// The requests every cut policy is asked: the example users and groups, reading, writing and
/// deleting secrets, pods and deployments in the app's namespace and in kube-system.
fn probes() -> Vec<(String, scopegate::model::AccessRequest)> {
    let people = [
        (
            "alice",
            "11111111-2222-4333-8444-555555555555",
            vec!["6f0b7e4a-1c2d-4e5f-8a9b-000000000f1d"],
        ),
        (
            "platform",
            "22222222-2222-4333-8444-555555555555",
            vec!["9c8d7e6f-5a4b-4c3d-8e2f-00000000a11a"],
        ),
        ("auditor", "2a3b4c5d-6e7f-4a8b-9c0d-0000000a0d17", vec![]),
        (
            "viewer",
            "33333333-2222-4333-8444-555555555555",
            vec!["4c3b2a19-0f8e-4d7c-9b6a-00000000f1e5"],
        ),
        ("nobody", "44444444-2222-4333-8444-555555555555", vec![]),
    ];
    let targets = [("", "secrets"), ("", "pods"), ("apps", "deployments")];
    let mut out = Vec::new();
    for (who, oid, groups) in &people {
        for (group, resource) in targets {
            for verb in ["get", "list", "create", "delete"] {
                for ns in ["finance-app", "kube-system", ""] {
                    let mut all_groups: Vec<&str> = groups.clone();
                    all_groups.push("system:authenticated");
                    let body = serde_json::json!({
                        "apiVersion": "authorization.k8s.io/v1",
                        "kind": "SubjectAccessReview",
                        "spec": {
                            "user": format!("{who}@contoso.com"),
                            "groups": all_groups,
                            "extra": {"scopegate.io/oid": [oid]},
                            "resourceAttributes": {"namespace": ns, "verb": verb, "group": group, "resource": resource},
                        }
                    });
                    let request = scopegate::sar::decode(body.to_string().as_bytes())
                        .expect("probe decodes")
                        .request;
                    out.push((format!("{who} {verb} {resource} in `{ns}`"), request));
                }
            }
        }
    }
    out
}

/// Every cut point of YAML renderings of the Azure example files (and of the Kubernetes one),
/// loaded as `check` would if it were read: each cut is rejected, or answers every probe no
/// more permissively than the whole file (no allow that was not, no deny lost).
#[test]
fn a_cut_policy_file_that_loads_is_never_more_permissive_than_the_whole_one() {
    let examples = root().join("policies");
    let options = options();
    let index = index();
    let probes = probes();
    let verdicts = |dir: &Path, parsed: &mut scopegate::policy::load::ParsedFiles| {
        let sources = scopegate::read_sources(&[dir.to_path_buf()], None, Some(parsed));
        let snapshot = Arc::new(sources.build(Some(parsed), &index, 1).ok()?.snapshot);
        Some(
            probes
                .iter()
                .map(|(_, r)| engine::authorize(&snapshot, &options, r).verdict)
                .collect::<Vec<_>>(),
        )
    };

    let mut wrong = Vec::new();
    let mut loaded = 0;
    let mut cuts = 0;
    let subjects = [
        ("azure/role-assignments.json", true),
        ("azure/deny-assignments.json", true),
        ("azure/management-groups.json", true),
        ("kubernetes/finance-app.yaml", false),
    ];
    for (subject, render) in subjects {
        let text = std::fs::read_to_string(examples.join(subject)).expect("example");
        // In the file's own key order, as a converter would write it.
        let yaml = if render {
            let value: serde_yaml::Value = serde_json::from_str(&text).expect("JSON");
            serde_yaml::to_string(&value).expect("YAML")
        } else {
            text
        };
        // The subject as `cut.yaml` beside the other Azure files, whole, then cut.
        let dir = tempfile::tempdir().expect("temp dir");
        for other in policy_files(&examples.join("azure")) {
            if Path::new("azure").join(&other) != Path::new(subject) {
                std::fs::copy(examples.join("azure").join(&other), dir.path().join(&other))
                    .expect("copy");
            }
        }
        let target = dir.path().join("cut.yaml");
        // The other files are parsed once, as the server keeps their parses.
        let mut parsed = scopegate::policy::load::ParsedFiles::default();
        std::fs::write(&target, &yaml).expect("write");
        let expected = verdicts(dir.path(), &mut parsed).expect("the whole file loads");
        assert!(
            expected.contains(&Verdict::Allow),
            "{subject}: nothing to widen from"
        );
        for cut in (0..yaml.len()).filter(|i| yaml.is_char_boundary(*i)) {
            std::fs::write(&target, &yaml[..cut]).expect("write");
            cuts += 1;
            let Some(after) = verdicts(dir.path(), &mut parsed) else {
                continue;
            };
            loaded += 1;
            for (((what, _), before), after) in probes.iter().zip(&expected).zip(after) {
                let widened = (after == Verdict::Allow && *before != Verdict::Allow)
                    || (*before == Verdict::Deny && after != Verdict::Deny);
                if widened {
                    wrong.push(format!(
                        "{subject} cut at {cut}: {what}: {before:?} -> {after:?}"
                    ));
                }
            }
        }
    }
    assert!(cuts > 4_000, "only {cuts} cuts");
    assert!(
        loaded > 0,
        "no cut loaded at all: the sweep would prove nothing"
    );
    assert!(
        wrong.is_empty(),
        "{} wrong answers, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(10)]
    );
}

/// How many reloads ended with `result` (any trigger).
fn reloads(r: &Reloader, result: &str) -> u64 {
    ["startup", "watch", "poll", "sighup", "settle"]
        .iter()
        .map(|t| r.metrics.reloads.with_label_values(&[result, t]).get())
        .sum()
}

/// Alice reading a secret in her namespace: the example deny assignment denies it.
fn alice_reads_a_secret(r: &Reloader) -> Verdict {
    let body = std::fs::read(root().join("tests/fixtures/requests/alice-get-secret.json"))
        .expect("fixture");
    let request = scopegate::sar::decode(&body).expect("decodes").request;
    engine::authorize(&r.store.load(), &options(), &request).verdict
}

/// Runs `f` on a thread of its own and fails the test if it does not return within 10 s
/// (a FIFO opened for reading blocks until a writer comes).
fn within_10s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the reload did not return: a file blocked it")
}

/// Loading `dir` as `check` does fails with an error that names `file`.
fn assert_rejected_naming(dir: &Path, file: &str, what: &str) {
    let Err(e) = scopegate::load_snapshot(&[dir.to_path_buf()], None, &index(), 1) else {
        panic!("{what} loads");
    };
    assert!(e.to_string().contains(file), "{what}: {e}");
}

/// The deny assignment file replaced by something that holds no object, or is not a file:
/// each is an error naming it (never "no deny assignments"), the reload is rejected and the
/// deny keeps applying.
#[test]
fn files_that_hold_nothing_or_are_not_files_are_errors_not_empty_policy() {
    let dir = policy_dir();
    let r = Arc::new(reloader(dir.path(), Duration::ZERO));
    assert!(r.reload("startup", true));
    assert_eq!(alice_reads_a_secret(&r), Verdict::Deny);
    let deny = dir.path().join("azure/deny-assignments.json");
    let original = std::fs::read(&deny).expect("read");
    let fifo = dir.path().join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());

    type Setup = Box<dyn Fn(&Path)>;
    let write = |text: &'static str| -> Setup {
        Box::new(move |p: &Path| std::fs::write(p, text).expect("write"))
    };
    let link = |to: PathBuf| -> Setup {
        Box::new(move |p: &Path| std::os::unix::fs::symlink(&to, p).expect("symlink"))
    };
    let cases: Vec<(&str, Setup)> = vec![
        ("`null`", write("null")),
        ("an empty file", write("")),
        ("only whitespace", write("  \n")),
        ("a list of `null`", write("[null]")),
        ("a link to /dev/null", link(PathBuf::from("/dev/null"))),
        ("a link to a FIFO", link(fifo.clone())),
        (
            "an empty directory",
            Box::new(|p: &Path| std::fs::create_dir(p).expect("mkdir")),
        ),
    ];
    let yaml = dir.path().join("azure/deny-assignments.yaml");
    let yaml_cases: Vec<(&str, &str)> = vec![
        ("an empty YAML file", ""),
        ("YAML with only comments", "# nothing yet\n"),
        ("YAML with only document markers", "---\n---\n"),
        ("a YAML list cut after its dash", "-"),
    ];
    let mut errors = reloads(&r, "error");
    for (what, setup) in &cases {
        std::fs::remove_file(&deny).expect("remove");
        setup(&deny);
        let r2 = r.clone();
        let published = within_10s(move || r2.reload("sighup", true));
        assert!(!published, "{what} was published");
        assert_eq!(reloads(&r, "error"), errors + 1, "{what} is not an error");
        errors += 1;
        assert_eq!(alice_reads_a_secret(&r), Verdict::Deny, "{what}");
        assert_rejected_naming(dir.path(), "deny-assignments.json", what);
        if deny.is_dir() {
            std::fs::remove_dir(&deny).expect("rmdir");
        } else {
            std::fs::remove_file(&deny).expect("remove");
        }
        std::fs::write(&deny, &original).expect("restore");
    }
    // A YAML file beside the deny assignments that holds nothing.
    for (what, text) in yaml_cases {
        std::fs::write(&yaml, text).expect("write");
        assert!(!r.reload("sighup", true), "{what} was published");
        assert_eq!(reloads(&r, "error"), errors + 1, "{what} is not an error");
        errors += 1;
        assert_rejected_naming(dir.path(), "deny-assignments.yaml", what);
        std::fs::remove_file(&yaml).expect("remove");
    }
    // A file that says "none" on purpose loads.
    std::fs::write(&yaml, "[]\n").expect("write");
    assert!(
        scopegate::load_snapshot(&[dir.path().to_path_buf()], None, &r.options, 1).is_ok(),
        "an empty list is a file that holds no object on purpose"
    );
}

/// A dangling link that is not a policy file is ignored; one that is, is an error naming it.
#[test]
fn a_dangling_link_blocks_nothing_unless_it_is_a_policy_file() {
    let dir = policy_dir();
    let r = reloader(dir.path(), Duration::ZERO);
    std::os::unix::fs::symlink("/nonexistent", dir.path().join("NOTES.txt")).expect("symlink");
    std::os::unix::fs::symlink("/nonexistent", dir.path().join("azure/README")).expect("symlink");
    assert!(
        r.reload("startup", true),
        "a dangling NOTES.txt blocks the load"
    );
    std::os::unix::fs::symlink("/nonexistent", dir.path().join("azure/extra.yaml"))
        .expect("symlink");
    assert!(!r.reload("sighup", true));
    let Err(e) = scopegate::load_snapshot(&[dir.path().to_path_buf()], None, &r.options, 1) else {
        panic!("a dangling policy file loads");
    };
    let text = e.to_string();
    assert!(
        text.contains("extra.yaml") && text.contains("dangling"),
        "{text}"
    );
    assert!(!text.contains("NOTES.txt"), "{text}");
    // A file named as the policy path itself must be a policy file, not skipped as one.
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, "[]").expect("write");
    let Err(e) = scopegate::load_snapshot(&[notes], None, &r.options, 1) else {
        panic!("a named file without a policy file's name loads as nothing");
    };
    assert!(e.to_string().contains("notes.txt"), "{e}");
}

/// Removing every deny assignment (or more than half of a kind of object) is held back: the
/// last policy keeps serving, the metric and `/readyz?verbose` say why, and the next change
/// is judged afresh. `--allow-large-removals` publishes it.
#[test]
fn a_change_that_removes_too_much_is_held_back() {
    let dir = policy_dir();
    let r = reloader(dir.path(), Duration::ZERO);
    assert!(r.reload("startup", true));
    let generation = r.store.load().generation;
    let deny = dir.path().join("azure/deny-assignments.json");
    let original = std::fs::read(&deny).expect("read");
    std::fs::remove_file(&deny).expect("remove");

    assert!(
        !r.reload("watch", false),
        "removing every deny assignment was published"
    );
    assert_eq!(reloads(&r, "held"), 1);
    assert_eq!(r.metrics.reload_held.get(), 1);
    assert_eq!(r.store.load().generation, generation);
    assert_eq!(alice_reads_a_secret(&r), Verdict::Deny);
    let pending = r.store.pending().join("\n");
    assert!(pending.contains("every deny assignment"), "{pending}");
    // Unchanged sources: still held, not rebuilt.
    assert!(!r.reload("poll", false));
    assert_eq!(reloads(&r, "held"), 1);

    // The next change puts it back: nothing is held any more.
    std::fs::write(&deny, &original).expect("restore");
    r.reload("watch", false);
    assert_eq!(r.metrics.reload_held.get(), 0);
    assert!(r.store.pending().is_empty(), "{:?}", r.store.pending());

    // All role assignments but one gone: held. One gone: published.
    let assignments = dir.path().join("azure/role-assignments.json");
    let all: Vec<Value> =
        serde_json::from_slice(&std::fs::read(&assignments).expect("read")).expect("JSON");
    let n = all.len();
    assert!(n >= 3, "the example policy has {n} role assignments");
    std::fs::write(
        &assignments,
        serde_json::to_string(&all[..1]).expect("JSON"),
    )
    .expect("write");
    assert!(!r.reload("watch", false));
    assert!(
        r.store
            .pending()
            .join("")
            .contains(&format!("{} of {n} role assignments", n - 1))
    );
    std::fs::write(
        &assignments,
        serde_json::to_string(&all[..n - 1]).expect("JSON"),
    )
    .expect("write");
    assert!(
        r.reload("watch", false),
        "removing one of {n} is an ordinary change"
    );
    assert_eq!(r.metrics.reload_held.get(), 0);

    // Allowed: the removal is published.
    let mut allowing = reloader(dir.path(), Duration::ZERO);
    allowing.allow_large_removals = true;
    assert!(allowing.reload("startup", true));
    std::fs::remove_file(&deny).expect("remove");
    assert!(allowing.reload("watch", false));
    assert_eq!(allowing.store.load().stats().deny_assignments, 0);
}

/// A file written just now is not read: a new one waits (nothing is published until it has
/// been still), a changed one keeps its previous content serving, and a reload is due when
/// it has settled.
#[test]
fn a_file_is_read_only_once_it_has_been_still_for_the_settle_time() {
    let dir = policy_dir();
    let settle = Duration::from_millis(1500);
    let r = reloader(dir.path(), settle);
    // Freshly copied: the first load waits.
    assert!(!r.reload("startup", true));
    assert!(!r.store.is_ready());
    assert!(
        r.store
            .pending()
            .iter()
            .any(|p| p.contains("being written"))
    );
    let due = r.retry_at().expect("a reload is due");
    std::thread::sleep(due.saturating_duration_since(std::time::Instant::now()));
    assert!(r.reload("settle", false));
    assert!(r.store.pending().is_empty());
    assert_eq!(alice_reads_a_secret(&r), Verdict::Deny);

    // Changed: the previous content keeps serving until the new one has settled.
    let deny = dir.path().join("azure/deny-assignments.json");
    let text = std::fs::read_to_string(&deny).expect("read");
    let excluding_alice = text.replace(
        r#""excludePrincipals": ["#,
        r#""excludePrincipals": [{ "id": "6f0b7e4a-1c2d-4e5f-8a9b-000000000f1d", "type": "Group" },"#,
    );
    assert_ne!(excluding_alice, text);
    std::fs::write(&deny, &excluding_alice).expect("write");
    for trigger in ["watch", "poll", "sighup"] {
        r.reload(trigger, trigger == "sighup");
        assert_eq!(
            alice_reads_a_secret(&r),
            Verdict::Deny,
            "read early by {trigger}"
        );
    }
    let due = r.retry_at().expect("a reload is due");
    std::thread::sleep(due.saturating_duration_since(std::time::Instant::now()));
    assert!(r.reload("settle", false));
    assert_eq!(alice_reads_a_secret(&r), Verdict::Allow);
}

/// The server, watching the directory: a writer that truncates a file and writes it in two
/// parts with a pause (shorter than the settle time), and one that appends every 100 ms,
/// never has a part read (a read of the cut JSON would be a rejected reload); the finished
/// file is published once still. A change removing every deny assignment is held, and
/// `/metrics` and `/readyz?verbose` say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_reads_a_file_only_after_its_writer_has_finished() {
    use std::io::Write;
    let dir = policy_dir();
    let p = dir.path().display().to_string();
    let server = support::serve(&[
        "--policies",
        &p,
        "--insecure-http",
        "--policy-settle-ms",
        "700",
        "--reload-interval-seconds",
        "1",
    ])
    .await;
    assert!(
        server.state.0.store.is_ready(),
        "the startup load waited for the fresh files"
    );
    let metrics = || support::metrics(server.admin_addr);
    let count = |text: &str, result: &str| -> f64 {
        ["watch", "poll", "sighup", "settle"]
            .iter()
            .filter_map(|t| {
                support::metric(
                    text,
                    &format!(
                        "scopegate_policy_reloads_total{{result=\"{result}\",trigger=\"{t}\"}}"
                    ),
                )
            })
            .sum()
    };
    let generation = server.state.0.store.load().generation;

    // Two parts with a pause: one role assignment more when done.
    let path = dir.path().join("azure/role-assignments.json");
    let mut all: Vec<Value> =
        serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("JSON");
    let mut extra = all[0].clone();
    let extra_name = "0b1f1c9e-7a43-4c36-9a54-0f6f1e2d3c41";
    extra["name"] = Value::from(extra_name);
    extra["id"] = Value::from(
        all[0]["id"]
            .as_str()
            .expect("id")
            .replace(all[0]["name"].as_str().expect("name"), extra_name),
    );
    all.push(extra);
    let expected = all.len();
    let text = serde_json::to_vec_pretty(&all).expect("JSON");
    let (first, rest) = text.split_at(text.len() / 2);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .expect("open");
    file.write_all(first).expect("write");
    file.flush().expect("flush");
    tokio::time::sleep(Duration::from_millis(400)).await;
    file.write_all(rest).expect("write");
    drop(file);
    let published = support::eventually(10, || async {
        server.state.0.store.load().stats().role_assignments == expected
    })
    .await;
    assert!(published, "the finished file was not published");
    assert_eq!(server.state.0.store.load().generation, generation + 1);
    assert_eq!(
        count(&metrics().await, "error"),
        0.0,
        "a part of the file was read"
    );

    // Appending 64 bytes every 100 ms (whitespace, so the file is whole at every step, but
    // still being written): not read until the appends stop.
    let generation = server.state.0.store.load().generation;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open");
    for _ in 0..15 {
        file.write_all(&[b' '; 64]).expect("append");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            server.state.0.store.load().generation,
            generation,
            "read while appending"
        );
    }
    drop(file);

    // Every deny assignment gone at once: held back, said in the metric and readyz.
    std::fs::remove_file(dir.path().join("azure/deny-assignments.json")).expect("remove");
    let held = support::eventually(10, || async {
        support::admin_metric(server.admin_addr, "scopegate_policy_change_held").await == Some(1.0)
    })
    .await;
    assert!(held, "the removal was not held back");
    assert_eq!(server.state.0.store.load().stats().deny_assignments, 1);
    let (status, text) = support::admin_get(server.admin_addr, "/readyz?verbose").await;
    assert_eq!(status, 200, "{text}");
    assert!(
        text.contains("held back") && text.contains("every deny assignment"),
        "{text}"
    );
    let (_, plain) = support::admin_get(server.admin_addr, "/readyz").await;
    assert!(!plain.contains("held back"), "{plain}");
    server.stop().await;
}

#[test]
fn only_close_after_write_rename_create_and_remove_events_reload_at_once() {
    use notify::EventKind;
    use notify::event::{
        AccessKind, AccessMode, CreateKind, DataChange, MetadataKind, ModifyKind, RemoveKind,
        RenameMode,
    };
    use scopegate::server::reload::{FileSignal, signal_of};
    let cases = [
        (
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            FileSignal::Changed,
        ),
        (
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            FileSignal::Changed,
        ),
        (
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
            FileSignal::Changed,
        ),
        (EventKind::Create(CreateKind::File), FileSignal::Changed),
        (EventKind::Remove(RemoveKind::File), FileSignal::Changed),
        (
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            FileSignal::Writing,
        ),
        (
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any)),
            FileSignal::Writing,
        ),
        (EventKind::Modify(ModifyKind::Any), FileSignal::Writing),
        (
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            FileSignal::Ignored,
        ),
        (
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            FileSignal::Ignored,
        ),
    ];
    for (kind, signal) in cases {
        assert_eq!(signal_of(&kind), signal, "{kind:?}");
    }
}

/// A file whose times lie in the future (`cp -p` from a host with a skewed clock) is read once
/// this process has seen it unchanged for the settle time: its times cannot hold it forever.
#[test]
fn a_file_dated_in_the_future_is_read_once_it_has_been_seen_still() {
    let dir = policy_dir();
    let settle = Duration::from_millis(300);
    let r = reloader(dir.path(), settle);
    let hours_ahead = std::time::SystemTime::now() + Duration::from_secs(7200);
    for file in policy_files(dir.path()) {
        std::fs::File::options()
            .write(true)
            .open(dir.path().join(file))
            .and_then(|f| f.set_modified(hours_ahead))
            .expect("set mtime");
    }
    assert!(!r.reload("startup", true), "read at once");
    let due = r.retry_at().expect("a reload is due");
    assert!(due <= std::time::Instant::now() + settle + Duration::from_millis(100));
    std::thread::sleep(due.saturating_duration_since(std::time::Instant::now()));
    assert!(r.reload("settle", false), "still held by its future time");
    assert_eq!(alice_reads_a_secret(&r), Verdict::Deny);
}
