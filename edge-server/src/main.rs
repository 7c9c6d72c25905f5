//! `lowband-edge`: argument parsing, logging and signals over the library.
//!
//! Settings come from flags, then `LOWBAND_*` variables, then the TOML file
//! named by `--config`, then defaults (see `lowband_edge::config`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use lowband_catalog::Store;
use lowband_edge::config::{Resolved, Settings};
use lowband_edge::Edge;

/// mimalloc instead of glibc's malloc: a request makes a few dozen small,
/// short-lived allocations (headers, paths, labels), and glibc spent about
/// 8% of the edge's CPU on them under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    Serve(ServeArgs),
}

/// Every setting is optional here: what a flag or variable leaves out comes
/// from `--config`, then the default shown.
#[derive(Args)]
struct ServeArgs {
    /// TOML file of settings (keys as the flags, with `_`: `max_connections = 512`).
    #[arg(long, env = "LOWBAND_CONFIG")]
    config: Option<PathBuf>,
    /// Print the settings in force as TOML and exit.
    #[arg(long)]
    print_config: bool,
    /// Where published modules are: file://<dir> (or a bare path), s3://<bucket>[/<prefix>] (AWS_* variables) [default: file://.lowband/store].
    #[arg(long, env = "LOWBAND_STORE")]
    store: Option<String>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "LOWBAND_LISTEN")]
    listen: Option<SocketAddr>,
    /// Tier for clients that send no network hints (slow-2g, 2g, 3g, 4g in the default profile) [default: 3g].
    #[arg(long, env = "LOWBAND_DEFAULT_TIER")]
    default_tier: Option<String>,
    /// Seconds a manifest is used before the store is asked again [default: 5].
    #[arg(long, env = "LOWBAND_MANIFEST_TTL")]
    manifest_ttl: Option<u64>,
    /// Connections served at once [default: 4096].
    #[arg(long, env = "LOWBAND_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Seconds a new connection has to finish TLS and send its first request's headers [default: 10].
    #[arg(long, env = "LOWBAND_HEADER_TIMEOUT")]
    header_timeout: Option<u64>,
    /// Seconds a connection may stay open with no request in flight [default: 30].
    #[arg(long, env = "LOWBAND_IDLE_TIMEOUT")]
    idle_timeout: Option<u64>,
    /// Requests served on one connection before it is closed [default: 1000].
    #[arg(long, env = "LOWBAND_MAX_REQUESTS_PER_CONNECTION")]
    max_requests_per_connection: Option<u64>,
    /// Bound on one request's header bytes, at least 8192 [default: 16384].
    #[arg(long, env = "LOWBAND_MAX_HEADER_BYTES")]
    max_header_bytes: Option<usize>,
    /// Seconds in-flight responses get to finish at shutdown [default: 15].
    #[arg(long, env = "LOWBAND_SHUTDOWN_GRACE")]
    shutdown_grace: Option<u64>,
    /// PEM certificate chain, leaf first: serve HTTPS (HTTP/2 and HTTP/1.1 by ALPN). Needs --tls-key.
    #[arg(long, env = "LOWBAND_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(long, env = "LOWBAND_TLS_KEY")]
    tls_key: Option<PathBuf>,
}

impl ServeArgs {
    /// Flags and environment as one settings layer (clap puts a flag over its variable).
    fn layer(&self) -> Settings {
        Settings {
            store: self.store.clone(),
            listen: self.listen,
            default_tier: self.default_tier.clone(),
            manifest_ttl: self.manifest_ttl,
            max_connections: self.max_connections,
            header_timeout: self.header_timeout,
            idle_timeout: self.idle_timeout,
            max_requests_per_connection: self.max_requests_per_connection,
            max_header_bytes: self.max_header_bytes,
            shutdown_grace: self.shutdown_grace,
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
        }
    }

    fn resolve(&self) -> anyhow::Result<Resolved> {
        let cli = self.layer();
        cli.check("command line or environment")?;
        let file = match &self.config {
            Some(path) => Settings::from_file(path)?,
            None => Settings::default(),
        };
        Ok(cli.over(file).resolve()?)
    }
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
        Command::Serve(args) => args.resolve().and_then(|resolved| {
            if args.print_config {
                print!("{}", resolved.settings.to_toml());
                Ok(())
            } else {
                serve(resolved)
            }
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lowband-edge: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Blocking threads (store I/O) per core.
const BLOCKING_THREADS_PER_CORE: usize = 4;

fn serve(resolved: Resolved) -> anyhow::Result<()> {
    let Resolved {
        store,
        listen,
        edge,
        server,
        ..
    } = resolved;
    let store = Store::open(&store)?;
    // A `file://` store runs each open, stat and read on tokio's blocking
    // pool. Left at its default (512 threads), a busy edge grew ~60 of them
    // and spent ~40% of its core switching between them; a small pool per
    // core queues those short calls instead.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS_PER_CORE * cores)
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
        let scheme = if server.tls.is_some() {
            "https"
        } else {
            "http"
        };
        tracing::info!(%listen, scheme, store = store.url(), "serving");
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
