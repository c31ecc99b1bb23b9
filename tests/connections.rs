//! Connection limits over real sockets and real TLS: a silent TCP connection is closed after
//! the handshake timeout; at the connection cap the oldest idle connection makes room for a
//! new one; when nothing can make room, new connections are refused and `/readyz` says why.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn body() -> Vec<u8> {
    request_fixture("alice-create-deployment.json")
}

/// Whether the server has closed `stream` within `wait` (end of file or reset).
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 64];
    match tokio::time::timeout(wait, stream.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) => false,
        Err(_) => false,
    }
}

/// Opens `n` TCP connections that never send a byte, one after the other (oldest first).
async fn silent(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(TcpStream::connect(addr).await.unwrap());
        // Accepted in this order, so the first is the oldest on the server too.
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_nothing_is_closed_after_the_handshake_timeout() {
    let (pki, _policies, server) = serve_examples(&["--tls-handshake-timeout-seconds", "1"]).await;
    let started = Instant::now();
    let mut quiet = TcpStream::connect(server.addr).await.unwrap();
    // A client that starts a handshake and stalls is cut off the same way.
    let mut stalled = TcpStream::connect(server.addr).await.unwrap();
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00])
        .await
        .unwrap();
    assert!(
        closed_within(&mut quiet, Duration::from_secs(4)).await,
        "a silent connection was held past the handshake timeout"
    );
    assert!(closed_within(&mut stalled, Duration::from_secs(1)).await);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "closed after {waited:?}"
    );
    assert_eq!(
        admin_metric(server.admin_addr, "scopegate_tls_handshake_timeouts_total").await,
        Some(2.0)
    );
    // A real client is unaffected.
    let mut conn = connect_apiserver(server.addr, &pki).await;
    assert_eq!(conn.post(body()).await.unwrap().0, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_the_oldest_idle_connection_makes_room() {
    let (pki, _policies, server) = serve_examples(&[
        "--max-connections",
        "8",
        "--tls-handshake-timeout-seconds",
        "30",
    ])
    .await;
    let config = pki.apiserver_config();
    // A keep-alive client between requests, then seven connections stuck before TLS.
    let mut keep_alive = connect(server.addr, config.clone()).await.unwrap();
    assert_eq!(keep_alive.post(body()).await.unwrap().0, 200);
    let mut idle = silent(server.addr, 7).await;
    assert!(
        eventually(5, || async {
            admin_metric(server.admin_addr, "scopegate_webhook_connections_open").await == Some(8.0)
        })
        .await
    );

    // Full: a new client is served; the keep-alive connection, idle the longest, made room.
    let mut fresh = connect(server.addr, config.clone()).await.unwrap();
    assert_eq!(fresh.post(body()).await.unwrap().0, 200);
    assert!(
        keep_alive.post(body()).await.is_err(),
        "the oldest idle connection was kept"
    );
    // The next one takes the place of the oldest silent connection, and only that one.
    let mut next = connect(server.addr, config.clone()).await.unwrap();
    assert_eq!(next.post(body()).await.unwrap().0, 200);
    let (first, rest) = idle.split_first_mut().unwrap();
    assert!(
        closed_within(first, Duration::from_secs(2)).await,
        "the oldest silent connection is still open"
    );
    for s in rest.iter_mut() {
        assert!(!closed_within(s, Duration::from_millis(50)).await);
    }
    let m = metrics(server.admin_addr).await;
    assert_eq!(
        metric(&m, "scopegate_webhook_connections_evicted_total"),
        Some(2.0)
    );
    assert_eq!(
        metric(&m, "scopegate_webhook_connections_rejected_total"),
        Some(0.0)
    );
    assert!(metric(&m, "scopegate_webhook_connections_open").unwrap() <= 8.0);
    // Both new clients keep being served.
    assert_eq!(fresh.post(body()).await.unwrap().0, 200);
    assert_eq!(next.post(body()).await.unwrap().0, 200);
    server.stop().await;
}

/// A TLS connection in the middle of a request: headers sent, body not finished.
async fn busy(
    addr: SocketAddr,
    config: std::sync::Arc<rustls::ClientConfig>,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut tls = tls_connect(addr, config).await.unwrap();
    tls.write_all(
        b"POST /authorize HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{",
    )
    .await
    .unwrap();
    tls.flush().await.unwrap();
    tls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_fails_while_every_connection_is_busy_and_new_ones_are_refused() {
    let (pki, _policies, server) = serve_examples(&["--max-connections", "2"]).await;
    let config = pki.apiserver_config();
    assert_eq!(admin_get(server.admin_addr, "/readyz").await.0, 200);
    let mut first = busy(server.addr, config.clone()).await;
    let _second = busy(server.addr, config.clone()).await;
    assert!(
        readyz_becomes(server.admin_addr, 503, 5).await,
        "ready while the listener cannot take a connection"
    );
    let (_, text) = admin_get(server.admin_addr, "/readyz?verbose").await;
    assert!(text.contains("connection limit"), "{text}");
    // Still alive: the listener works, it is full.
    assert_eq!(admin_get(server.admin_addr, "/livez").await.0, 200);
    // Nothing is idle, so a new client is refused rather than queued.
    let refused = connect_and_post(server.addr, config.clone(), body()).await;
    assert!(refused.is_err(), "a connection above the cap was served");
    let rejected = admin_metric(
        server.admin_addr,
        "scopegate_webhook_connections_rejected_total",
    );
    assert!(rejected.await.unwrap() >= 1.0);

    // One request completes: that connection is idle, so there is room again.
    first.write_all(b"}").await.unwrap();
    let mut answer = [0u8; 9];
    first.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 ");
    assert!(readyz_becomes(server.admin_addr, 200, 5).await);
    let mut conn = connect(server.addr, config).await.unwrap();
    assert_eq!(conn.post(body()).await.unwrap().0, 200);
    server.stop().await;
}
