//! The webhook listener out of file descriptors (a real `EMFILE` from `accept`): `/readyz`
//! fails with the reason while `/livez` stays alive, and both recover once descriptors are
//! free. Alone in its test binary: it lowers the open file limit of the whole process.

mod support;

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
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

/// GET on a kept-open admin connection (a new one would need a descriptor).
async fn get(conn: &mut Conn, path: &str) -> (u16, String) {
    conn.sender.ready().await.unwrap();
    let req = hyper::Request::get(path)
        .header("host", "127.0.0.1")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = conn.sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_fails_while_accept_runs_out_of_file_descriptors() {
    let pki = Pki::new();
    let policies = policy_dir();
    let server = serve_tls(
        &pki,
        policies.path(),
        &[
            "--max-connections",
            "100000",
            "--tls-handshake-timeout-seconds",
            "30",
            "--reload-interval-seconds",
            "3600",
        ],
    )
    .await;
    let mut admin = connect_plain(server.admin_addr).await;
    assert_eq!(get(&mut admin, "/readyz").await.0, 200);

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
        let (status, text) = get(&mut admin, "/readyz?verbose").await;
        if status == 503 {
            refused = Some(text);
            break;
        }
    }
    let (live, _) = get(&mut admin, "/livez").await;
    let (_, m) = get(&mut admin, "/metrics").await;
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
    assert!(
        eventually(15, || async {
            admin_get(server.admin_addr, "/readyz").await.0 == 200
        })
        .await
    );
    let mut conn = connect(
        server.addr,
        client_config(&pki.ca.pem.cert, Some(&pki.client)),
    )
    .await
    .unwrap();
    let body =
        std::fs::read(root().join("tests/fixtures/requests/alice-create-deployment.json")).unwrap();
    assert_eq!(conn.post(body).await.unwrap().0, 200);
    server.stop().await;
}
