//! The directory snapshot at size: 100,000 users and 20,000 groups nested three deep,
//! written as `entra-users.json` and `entra-groups.json` the way Graph pages print them,
//! loaded as a reload does (parse, validate, resolve transitive membership), three times.
//! Reports the load time and the heap the loaded directory holds per resolved membership
//! (counted by the allocator; same allocator as the server).
//! `cargo bench -F bench-support --bench directory [-- USERS GROUPS]`.

#[path = "support/counting.rs"]
mod counting;

use counting::LIVE;
use std::sync::atomic::Ordering;

fn guid(kind: u32, i: usize) -> String {
    format!("{kind:08x}-0000-4000-8000-{i:012x}")
}

fn member(kind: &str, id: &str) -> serde_json::Value {
    serde_json::json!({"@odata.type": format!("#microsoft.graph.{kind}"), "id": id})
}

/// Groups in three levels: 1/20 top, 1/4 middle (each in one top group), the rest leaves
/// (each in one middle group). Every user is a direct member of three leaf groups.
fn write_directory(dir: &std::path::Path, users: usize, groups: usize) -> usize {
    let tops = (groups / 20).max(1);
    let middles = (groups / 4).max(1);
    let leaves = groups.saturating_sub(tops + middles).max(1);
    let mut members: Vec<Vec<serde_json::Value>> = vec![Vec::new(); groups];
    for m in 0..middles {
        members[m % tops].push(member("group", &guid(0xb, tops + m)));
    }
    for l in 0..leaves {
        members[tops + l % middles].push(member("group", &guid(0xb, tops + middles + l)));
    }
    let mut direct = 0;
    for u in 0..users {
        for k in 0..3 {
            let leaf = tops + middles + (u * 3 + k * 7919) % leaves;
            if let Some(list) = members.get_mut(leaf) {
                list.push(member("user", &guid(0xa, u)));
                direct += 1;
            }
        }
    }
    let groups_page = serde_json::json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#groups",
        "value": members.into_iter().enumerate().map(|(i, m)| serde_json::json!({
            "id": guid(0xb, i), "displayName": format!("group {i}"), "securityEnabled": true, "members": m,
        })).collect::<Vec<_>>(),
    });
    let users_page = serde_json::json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users(id,userPrincipalName,accountEnabled)",
        "value": (0..users).map(|u| serde_json::json!({
            "id": guid(0xa, u), "userPrincipalName": format!("user{u}@contoso.com"), "accountEnabled": u % 50 != 0,
        })).collect::<Vec<_>>(),
    });
    std::fs::write(dir.join("entra-users.json"), users_page.to_string()).expect("write");
    std::fs::write(dir.join("entra-groups.json"), groups_page.to_string()).expect("write");
    direct
}

fn main() {
    let mut numbers = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse::<usize>().ok());
    let users = numbers.next().unwrap_or(100_000);
    let groups = numbers.next().unwrap_or(20_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let direct = write_directory(dir.path(), users, groups);
    let size: u64 = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    let options = scopegate::policy::IndexOptions::default();
    let mut times = Vec::new();
    let mut held = 0;
    let mut memberships = 0;
    for _ in 0..3 {
        let live_before = LIVE.load(Ordering::Relaxed);
        let started = std::time::Instant::now();
        let loaded = scopegate::load_snapshot(&[dir.path().to_path_buf()], None, &options, 1)
            .expect("directory loads");
        times.push(started.elapsed().as_secs_f64());
        held = LIVE.load(Ordering::Relaxed).saturating_sub(live_before);
        let directory = loaded.snapshot.directory.as_ref().expect("a directory");
        assert_eq!(directory.user_count(), users);
        assert_eq!(directory.group_count(), groups);
        memberships = directory.membership_count();
    }
    times.sort_by(f64::total_cmp);
    println!("users, groups:            {users}, {groups} (three levels of nesting)");
    println!(
        "export files:             {:.1} MiB",
        size as f64 / 1048576.0
    );
    println!("direct memberships:       {direct}");
    println!("resolved memberships:     {memberships} (transitive, groups included)");
    println!(
        "load (parse+validate+resolve): best {:.2} s, median {:.2} s of 3",
        times.first().copied().unwrap_or(0.0),
        times.get(1).copied().unwrap_or(0.0)
    );
    println!(
        "heap held by the snapshot: {:.1} MiB = {} bytes per resolved membership",
        held as f64 / 1048576.0,
        held / memberships.max(1)
    );
}
