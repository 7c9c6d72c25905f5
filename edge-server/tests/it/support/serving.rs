//! An edge on a real socket, for the tests that need a client of their own
//! (curl, Chromium, REDbot, raw TCP, TLS) rather than `Edge::handle`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use lowband_edge::{Edge, ServerConfig};

/// An edge serving on a free port until stopped.
pub struct Serving {
    pub edge: Arc<Edge>,
    pub addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Serving {
    /// Serves `edge` on a free port of `ip`: loopback, or every address
    /// (`Ipv4Addr::UNSPECIFIED`) so that a namespace's end of a link can
    /// reach it.
    pub async fn start(edge: Edge, ip: impl Into<IpAddr>, config: ServerConfig) -> Self {
        let listener = tokio::net::TcpListener::bind((ip.into(), 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let edge = Arc::new(edge);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(lowband_edge::serve(
            Arc::clone(&edge),
            listener,
            config,
            async {
                let _ = stopped.await;
            },
        ));
        Self {
            edge,
            addr,
            stop,
            server,
        }
    }

    /// Shuts the server down gracefully; it must stop, without an error,
    /// within 20 s (its grace period for open connections is 15 s).
    pub async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(20), self.server)
            .await
            .expect("the server stops")
            .unwrap()
            .unwrap();
    }
}
