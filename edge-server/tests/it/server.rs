//! The server over real loopback sockets: connection limits against slow
//! and greedy clients, many keep-alive connections at once, and TLS with
//! HTTP/1.1 and HTTP/2 by ALPN.

#![allow(
    unsafe_code,
    reason = "getrlimit, to size the many-connections test to the descriptors allowed"
)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use lowband_catalog::{ObjectKey, Store};
use lowband_edge::{Edge, EdgeConfig, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::Serving;

/// An edge with `config` on loopback, serving `store`.
async fn start(store: Store, config: ServerConfig) -> Serving {
    let edge = Edge::new(store, EdgeConfig::default());
    Serving::start(edge, Ipv4Addr::LOCALHOST, config).await
}

/// A metric of the edge once it reaches `at_least` (the server counts a
/// closed connection just after the client sees it close), or its value
/// after 2 s.
async fn metric_reaches(edge: &Edge, series: &str, at_least: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let value = metric(edge, series);
        if value >= at_least || Instant::now() > deadline {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn metric(edge: &Edge, series: &str) -> u64 {
    let text = edge.metrics().render();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

/// GETs `path` on a fresh connection with a real HTTP/1.1 client.
async fn get_once(addr: SocketAddr, path: &str) -> (StatusCode, Bytes) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    send(&mut sender, path).await
}

async fn send(
    sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    path: &str,
) -> (StatusCode, Bytes) {
    let req = Request::get(path)
        .header("host", "edge")
        .body(Empty::new())
        .unwrap();
    sender.ready().await.unwrap();
    let response = sender.send_request(req).await.unwrap();
    let status = response.status();
    (
        status,
        response.into_body().collect().await.unwrap().to_bytes(),
    )
}

/// Reads until the peer closes; `None` if it stays open past `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(seen),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

/// A request for `/healthz` on a kept-alive HTTP/1.1 connection.
const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: edge\r\n\r\n";
/// A request whose head is long enough to dribble for seconds.
const PADDED: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: edge\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";

/// Writes `request` a byte every `pause`, as a slowloris client does;
/// returns how long it took the server to cut the connection off, or
/// `None` if it let the whole request through. An answer is a failure.
async fn dribble(stream: &mut TcpStream, request: &[u8], pause: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 256];
    for byte in request {
        if stream.write_all(&[*byte]).await.is_err() {
            return Some(started.elapsed());
        }
        // A closed connection shows as EOF (or a reset) while waiting.
        if let Ok(read) = tokio::time::timeout(pause, stream.read(&mut buf)).await {
            let n = read.unwrap_or(0);
            assert_eq!(n, 0, "the slow client got an answer: {:?}", &buf[..n]);
            return Some(started.elapsed());
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_is_dropped_while_a_good_client_is_served() {
    let config = ServerConfig {
        header_timeout: Duration::from_secs(1),
        ..ServerConfig::default()
    };
    let server = start(Store::open("memory://").unwrap(), config).await;
    let addr = server.addr;
    let slow = tokio::spawn(async move {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        dribble(&mut stream, PADDED, Duration::from_millis(100)).await
    });
    // Meanwhile a good client is served, repeatedly.
    let good_started = Instant::now();
    let mut served = 0;
    while good_started.elapsed() < Duration::from_millis(1500) {
        let (status, body) = get_once(addr, "/healthz").await;
        assert_eq!((status, &body[..]), (StatusCode::OK, &b"ok\n"[..]));
        served += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = slow
        .await
        .unwrap()
        .expect("the slow client was never cut off");
    // Cut at the header deadline (1 s), long before its ~9 s of dribbling would end.
    assert!(
        after >= Duration::from_millis(900) && after < Duration::from_secs(3),
        "{after:?}"
    );
    assert!(served >= 10, "good client served {served} times");
    assert!(
        metric_reaches(
            &server.edge,
            "lowband_edge_connections_closed_total{reason=\"timeout\"}",
            1
        )
        .await
            >= 1,
        "{}",
        server.edge.metrics().render()
    );
    server.stop().await;
}

#[tokio::test]
async fn a_silent_connection_is_dropped_at_the_header_deadline() {
    let config = ServerConfig {
        header_timeout: Duration::from_millis(500),
        ..ServerConfig::default()
    };
    let server = start(Store::open("memory://").unwrap(), config).await;
    // The start of the HTTP/2 preface, then nothing: the protocol sniff
    // (before any HTTP timer runs) must not wait forever.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(b"PRI * HTTP").await.unwrap();
    let started = Instant::now();
    assert!(closed_within(&mut stream, Duration::from_secs(3))
        .await
        .is_some());
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(
        metric_reaches(
            &server.edge,
            "lowband_edge_connections_closed_total{reason=\"timeout\"}",
            1
        )
        .await,
        1
    );
    server.stop().await;
}

/// After a response on a kept-alive connection, the next request's head
/// is due within the header deadline too: dribbling it is cut off there,
/// even though the idle limit is far off.
#[tokio::test]
async fn slowloris_after_a_kept_alive_response_is_dropped() {
    let config = ServerConfig {
        header_timeout: Duration::from_millis(600),
        idle_timeout: Duration::from_secs(30),
        ..ServerConfig::default()
    };
    let server = start(Store::open("memory://").unwrap(), config).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(HEALTHZ).await.unwrap();
    let mut buf = [0u8; 1024];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200 OK"));
    let cut = dribble(&mut stream, PADDED, Duration::from_millis(50))
        .await
        .expect("the slow second request was never cut off");
    assert!(
        cut >= Duration::from_millis(500) && cut < Duration::from_secs(3),
        "{cut:?}"
    );
    assert!(
        metric_reaches(
            &server.edge,
            "lowband_edge_connections_closed_total{reason=\"timeout\"}",
            1
        )
        .await
            >= 1
    );
    server.stop().await;
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let config = ServerConfig {
        idle_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    };
    let server = start(Store::open("memory://").unwrap(), config).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(HEALTHZ).await.unwrap();
    let started = Instant::now();
    let seen = closed_within(&mut stream, Duration::from_secs(3))
        .await
        .expect("closed after idling");
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200 OK"));
    let idle = started.elapsed();
    assert!(
        idle >= Duration::from_millis(250) && idle < Duration::from_secs(2),
        "{idle:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_connection_serves_at_most_its_request_budget() {
    let config = ServerConfig {
        max_requests_per_connection: 3,
        ..ServerConfig::default()
    };
    let server = start(Store::open("memory://").unwrap(), config).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(&HEALTHZ.repeat(5)).await.unwrap();
    let seen = closed_within(&mut stream, Duration::from_secs(3))
        .await
        .expect("closed after its budget");
    let text = String::from_utf8_lossy(&seen);
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 3, "{text}");
    assert_eq!(text.matches("connection: close").count(), 1, "{text}");
    assert_eq!(
        metric_reaches(
            &server.edge,
            "lowband_edge_connections_closed_total{reason=\"max_requests\"}",
            1
        )
        .await,
        1
    );
    server.stop().await;
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let server = start(Store::open("memory://").unwrap(), ServerConfig::default()).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: edge\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    let _ = stream.write_all(big.as_bytes()).await;
    let seen = closed_within(&mut stream, Duration::from_secs(3))
        .await
        .unwrap();
    assert!(
        String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 431"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    // Just under the bound is served.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let fits = format!(
        "GET /healthz HTTP/1.1\r\nHost: edge\r\nConnection: close\r\nX-Big: {}\r\n\r\n",
        "a".repeat(12 * 1024)
    );
    stream.write_all(fits.as_bytes()).await.unwrap();
    let seen = closed_within(&mut stream, Duration::from_secs(3))
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200 OK"));
    server.stop().await;
}

/// Raises the soft open-files limit towards `want`; returns what it is now.
fn raise_fd_limit(want: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_cur < want {
            limit.rlim_cur = limit.rlim_max.min(want);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        }
    }
    limit.rlim_cur
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_keep_alive_connections_at_once() {
    const CONNECTIONS: usize = 1000;
    // Both ends of each connection live in this process, plus some slack.
    let needed = (CONNECTIONS * 2 + 200) as u64;
    let limit = raise_fd_limit(needed);
    assert!(
        limit >= needed,
        "open-files limit is {limit}; this test needs {needed} (raise `ulimit -n`)"
    );
    let server = start(Store::open("memory://").unwrap(), ServerConfig::default()).await;
    let addr = server.addr;
    let started = Instant::now();
    let mut senders = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        senders.push(sender);
    }
    // Every connection open at once, each used twice.
    let rounds = futures::future::join_all(senders.into_iter().map(|mut sender| async move {
        sender.ready().await.unwrap();
        let first = send(&mut sender, "/healthz").await;
        let second = send(&mut sender, "/healthz").await;
        (first, second, sender)
    }))
    .await;
    let open = metric(&server.edge, "lowband_edge_connections_open");
    let elapsed = started.elapsed();
    for ((a, _), (b, _), _) in &rounds {
        assert_eq!((*a, *b), (StatusCode::OK, StatusCode::OK));
    }
    assert_eq!(open, CONNECTIONS as u64, "all connections held open");
    eprintln!("{CONNECTIONS} keep-alive connections × 2 requests in {elapsed:?}");
    drop(rounds);
    server.stop().await;
}

/// A self-signed identity for `localhost`, written as PEM files.
fn identity(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, Vec<u8>) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    (cert, key, certified.cert.der().to_vec())
}

async fn tls_connect(
    addr: SocketAddr,
    ca: &[u8],
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(ca.to_vec()))
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await.unwrap()
}

#[tokio::test]
async fn tls_serves_http2_and_http1_by_alpn() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, ca) = identity(dir.path());
    let store = Store::open("memory://").unwrap();
    let payload = Bytes::from_static(b"a lesson over TLS");
    let (object, _): (ObjectKey, bool) = store.put_object(payload.clone(), "txt").await.unwrap();
    let config = ServerConfig {
        tls: Some(lowband_edge::http::tls::server_config(&cert, &key).unwrap()),
        ..ServerConfig::default()
    };
    let server = start(store, config).await;
    let uri = format!("https://localhost/o/{object}");

    let h2 = tls_connect(server.addr, &ca, &[b"h2", b"http/1.1"]).await;
    assert_eq!(h2.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(h2))
            .await
            .unwrap();
    tokio::spawn(conn);
    let response = sender
        .send_request(Request::get(&uri).body(Empty::<Bytes>::new()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        payload
    );

    let h1 = tls_connect(server.addr, &ca, &[b"http/1.1"]).await;
    assert_eq!(h1.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(h1))
        .await
        .unwrap();
    tokio::spawn(conn);
    let (status, body) = send(&mut sender, &format!("/o/{object}")).await;
    assert_eq!((status, body), (StatusCode::OK, payload));

    // Cleartext on the TLS port gets no answer, only a closed connection.
    let mut plain = TcpStream::connect(server.addr).await.unwrap();
    plain.write_all(HEALTHZ).await.unwrap();
    let seen = closed_within(&mut plain, Duration::from_secs(3))
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&seen).contains("200 OK"));
    assert!(
        metric_reaches(
            &server.edge,
            "lowband_edge_connections_closed_total{reason=\"tls\"}",
            1
        )
        .await
            >= 1
    );
    server.stop().await;
}
