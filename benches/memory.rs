//! Memory per indexed assignment: generate N assignments (default 1,000,000) as policy files,
//! load them as a reload does, and report the heap the snapshot holds (counted by the
//! allocator), the RSS it keeps once the parsed files are dropped, and the peak RSS during the
//! load above the process before it (the peak is reset through `/proc/self/clear_refs` once
//! the files are written). Same allocator as the server (mimalloc).
//! `cargo bench -F bench-support --bench memory [-- N]`.

use scopegate::synthetic::{self, Shape};

#[path = "support/counting.rs"]
mod counting;

use counting::LIVE;
use std::sync::atomic::Ordering;

/// Returns freed memory to the OS, so RSS shows what is live.
fn collect() {
    // SAFETY: mi_collect has no preconditions.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)
                .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0))
        })
        .unwrap_or(0)
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let roles: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("policies/azure/aks-builtin-roles.json"),
        )
        .expect("roles"),
    )
    .expect("JSON");
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let g = synthetic::generate(
            Shape {
                assignments: n,
                groups_per_user: 10,
                rbac_bindings: 0,
            },
            &roles,
        );
        std::fs::write(
            dir.path().join("roles.json"),
            serde_json::to_vec(&g.role_definitions).expect("JSON"),
        )
        .expect("write");
        std::fs::write(
            dir.path().join("assignments.json"),
            serde_json::to_vec(&g.role_assignments).expect("JSON"),
        )
        .expect("write");
        std::fs::write(
            dir.path().join("mg.json"),
            serde_json::to_vec(&g.management_groups).expect("JSON"),
        )
        .expect("write");
    }
    let size: u64 = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    collect();
    let before = rss_kib("VmRSS:");
    // Peak from here on: generating the files above is not part of a load.
    if let Err(e) = std::fs::write("/proc/self/clear_refs", "5") {
        eprintln!("cannot reset the peak RSS (/proc/self/clear_refs): {e}");
    }
    let live_before = LIVE.load(Ordering::Relaxed);
    let options = scopegate::policy::IndexOptions::for_cluster(
        scopegate::model::Scope::parse(synthetic::CLUSTER).expect("cluster"),
    );
    let started = std::time::Instant::now();
    let loaded = scopegate::load_snapshot(&[dir.path().to_path_buf()], None, &options, 1)
        .expect("policy loads");
    let took = started.elapsed();
    // Give freed parse buffers back to the OS, so RSS shows what the snapshot keeps.
    collect();
    let after = rss_kib("VmRSS:");
    let heap = LIVE.load(Ordering::Relaxed).saturating_sub(live_before) as u64;
    let peak = rss_kib("VmHWM:");
    let retained = after.saturating_sub(before) * 1024;
    println!("assignments:            {n}");
    println!("policy files:           {:.1} MiB", size as f64 / 1048576.0);
    println!("load+validate+index:    {:.2} s", took.as_secs_f64());
    println!(
        "indexed assignments:    {}",
        loaded.snapshot.stats().role_assignments
    );
    println!(
        "heap held by index:     {:.1} MiB = {} bytes per assignment",
        heap as f64 / 1048576.0,
        heap / n.max(1) as u64
    );
    println!(
        "RSS retained by index:  {:.1} MiB = {} bytes per assignment",
        retained as f64 / 1048576.0,
        retained / n.max(1) as u64
    );
    let peak_above = peak.saturating_sub(before) * 1024;
    println!(
        "peak RSS during load:   {:.1} MiB = {} bytes per assignment (above the {:.1} MiB before it)",
        peak_above as f64 / 1048576.0,
        peak_above / n.max(1) as u64,
        (before * 1024) as f64 / 1048576.0
    );
}
