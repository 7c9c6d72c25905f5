//! `lowband-edge`: argument parsing, logging and signals over the library.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use lowband_catalog::store::DEFAULT_STORE_URL;
use lowband_catalog::Store;
use lowband_edge::{Edge, EdgeConfig, ServerConfig};

#[derive(Parser)]
#[command(
    name = "lowband-edge",
    version,
    about = "Serve each client the smallest lowband variant its connection can carry"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log filter (tracing env-filter syntax), e.g. `info` or `lowband_edge=debug` to log every selection.
    #[arg(long, global = true, env = "LOWBAND_LOG", default_value = "info")]
    log: String,
}

#[derive(Subcommand)]
enum Command {
    /// Serve modules from a store.
    Serve {
        /// Where published modules are: file://<dir> (or a bare path), s3://<bucket>[/<prefix>] (AWS_* variables).
        #[arg(long, env = "LOWBAND_STORE", default_value = DEFAULT_STORE_URL)]
        store: String,
        /// Address to listen on.
        #[arg(long, env = "LOWBAND_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Tier for clients that send no network hints (slow-2g, 2g, 3g, 4g in the default profile).
        #[arg(long, env = "LOWBAND_DEFAULT_TIER", default_value = "3g")]
        default_tier: String,
        /// Seconds a manifest is used before the store is asked again.
        #[arg(long, env = "LOWBAND_MANIFEST_TTL", default_value_t = 5)]
        manifest_ttl: u64,
        /// Connections served at once.
        #[arg(long, env = "LOWBAND_MAX_CONNECTIONS", default_value_t = 4096)]
        max_connections: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Serve {
            store,
            listen,
            default_tier,
            manifest_ttl,
            max_connections,
        } => {
            let edge = EdgeConfig {
                default_tier,
                manifest_ttl: Duration::from_secs(manifest_ttl),
            };
            let server = ServerConfig {
                max_connections,
                ..ServerConfig::default()
            };
            serve(&store, listen, edge, server)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lowband-edge: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(
    store: &str,
    listen: SocketAddr,
    edge: EdgeConfig,
    server: ServerConfig,
) -> anyhow::Result<()> {
    let store = Store::open(store)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
        tracing::info!(%listen, store = store.url(), "serving");
        let edge = Arc::new(Edge::new(store, edge));
        lowband_edge::serve(edge, listener, server, shutdown_signal()).await?;
        tracing::info!("stopped");
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
