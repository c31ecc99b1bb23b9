//! The webhook listener out of file descriptors (a real `EMFILE` from `accept`): `/readyz`
//! fails with the reason while `/livez` stays alive, and both recover once descriptors are
//! free. Alone in its test binary: it lowers the open file limit of the whole process.

mod support;

use std::time::Duration;
use support::*;
use tokio::net::TcpStream;

fn open_file_limit() -> libc::rlimit {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
        0
    );
    limit
}

fn set_open_file_limit(soft: libc::rlim_t, hard: libc::rlim_t) {
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
}

fn highest_open_fd() -> u64 {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .max()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_fails_while_accept_runs_out_of_file_descriptors() {
    let (pki, _policies, server) = serve_examples(&[
        "--max-connections",
        "100000",
        "--tls-handshake-timeout-seconds",
        "30",
        "--reload-interval-seconds",
        "3600",
    ])
    .await;
    // GETs on a kept-open admin connection (a new one would need a descriptor).
    let mut admin = connect_plain(server.admin_addr).await;
    assert_eq!(admin.get("/readyz").await.0, 200);

    let original = open_file_limit();
    set_open_file_limit(highest_open_fd() + 24, original.rlim_max);
    let mut clients = Vec::new();
    let mut refused = None;
    for _ in 0..200 {
        match TcpStream::connect(server.addr).await {
            Ok(s) => clients.push(s),
            // The test took the last descriptor's place: give one back and try again.
            Err(_) => {
                clients.remove(0);
                continue;
            }
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
        let (status, text) = admin.get("/readyz?verbose").await;
        if status == 503 {
            refused = Some(text);
            break;
        }
    }
    let (live, _) = admin.get("/livez").await;
    let (_, m) = admin.get("/metrics").await;
    set_open_file_limit(original.rlim_cur, original.rlim_max);
    let text = refused.expect("/readyz stayed ready while accept failed");
    assert!(text.contains("cannot accept"), "{text}");
    assert!(text.contains("Too many open files"), "{text}");
    assert_eq!(
        live, 200,
        "the listener is alive, only short of descriptors"
    );
    let errors = metric(&m, "scopegate_webhook_accept_errors_total").unwrap();
    assert!(errors >= 1.0, "{errors}");

    // Descriptors back: ready again once the failure is a few seconds old.
    drop(clients);
    assert!(readyz_becomes(server.admin_addr, 200, 15).await);
    let mut conn = connect_apiserver(server.addr, &pki).await;
    let body = request_fixture("alice-create-deployment.json");
    assert_eq!(conn.post(body).await.unwrap().0, 200);
    server.stop().await;
}
