//! `lowband-edge`: argument parsing, logging and signals over the library.
//!
//! Settings come from flags, then `LOWBAND_*` variables, then the TOML file
//! named by `--config`, then defaults (see `lowband_edge::config`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use lowband_catalog::{ModuleId, Store};
use lowband_edge::cache::sync::{Counters, SyncPlan};
use lowband_edge::cache::{parse_bytes, Cache, CacheConfig};
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
    /// Serve modules from a store, or as a cache node of an upstream (--upstream).
    Serve(Box<ServeArgs>),
    /// Fill a cache node's directory with chosen tiers ahead of need.
    Sync(SyncArgs),
}

/// `sync` fetches the variants clients on the chosen tiers are sent, for
/// every module (or those named), into a cache directory; objects already
/// there are checked against their hash. An interrupted sync resumes where
/// it stopped. Exits non-zero if any object could not be fetched.
#[derive(Args)]
struct SyncArgs {
    /// Where to fetch from: s3://<bucket>[/<prefix>], file://<dir> or http(s):// of a lowband edge.
    #[arg(long, env = "LOWBAND_UPSTREAM")]
    upstream: String,
    /// The cache node's directory (the one `serve --cache-dir` uses).
    #[arg(long, env = "LOWBAND_CACHE_DIR")]
    cache_dir: PathBuf,
    /// Tiers to fetch, comma-separated (e.g. slow-2g,2g,3g) [default: every tier but the fastest].
    #[arg(long, value_delimiter = ',')]
    tiers: Option<Vec<String>>,
    /// Modules to fetch, comma-separated [default: every module in the upstream's index].
    #[arg(long, value_delimiter = ',')]
    modules: Option<Vec<String>>,
    /// Most bytes per second read from the upstream, e.g. 500kB or 2MB, so teachers are not starved [default: no limit].
    #[arg(long, env = "LOWBAND_SYNC_RATE")]
    rate: Option<String>,
    /// Byte budget of the cache (as `serve --cache-size`): the sync refuses to need more [default: no limit].
    #[arg(long, env = "LOWBAND_CACHE_SIZE")]
    cache_size: Option<String>,
    /// Objects fetched at once.
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Seconds to wait for the upstream's answer, and between its chunks.
    #[arg(long, default_value_t = 30)]
    upstream_timeout: u64,
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
    /// Be a cache node of this upstream instead of serving a store: s3://<bucket>[/<prefix>], file://<dir>, or http(s):// of another lowband edge.
    #[arg(long, env = "LOWBAND_UPSTREAM")]
    upstream: Option<String>,
    /// A cache node's directory: objects, manifests and partial downloads (kept across restarts).
    #[arg(long, env = "LOWBAND_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// A cache node's byte budget for objects, e.g. 20GB or 512MiB; least recently used go first.
    #[arg(long, env = "LOWBAND_CACHE_SIZE")]
    cache_size: Option<String>,
    /// Seconds a cache node waits for its upstream before answering 504 (what it holds is still served) [default: 5].
    #[arg(long, env = "LOWBAND_UPSTREAM_TIMEOUT")]
    upstream_timeout: Option<u64>,
    /// File of bearer tokens (one per line, at least 16 characters) allowed to call POST /admin/v1/purge/<module>.
    #[arg(long, env = "LOWBAND_ADMIN_TOKEN_FILE")]
    admin_token_file: Option<PathBuf>,
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
            upstream: self.upstream.clone(),
            cache_dir: self.cache_dir.clone(),
            cache_size: self.cache_size.clone(),
            upstream_timeout: self.upstream_timeout,
            admin_token_file: self.admin_token_file.clone(),
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
        Command::Sync(args) => sync(args),
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
        cache,
        ..
    } = resolved;
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
        let edge = match &cache {
            Some(config) => {
                let cache = Cache::open(config, None)?;
                tracing::info!(%listen, scheme, upstream = cache.upstream().url(), cache_dir = %cache.dir().root().display(), "serving as a cache node");
                Edge::with_cache(cache, edge)?
            }
            None => {
                let store = Store::open(&store)?;
                tracing::info!(%listen, scheme, store = store.url(), "serving");
                Edge::new(store, edge)
            }
        };
        let edge = Arc::new(edge);
        lowband_edge::serve(edge, listener, server, shutdown_signal()).await?;
        tracing::info!("stopped");
        Ok(())
    })
}

fn sync(args: SyncArgs) -> anyhow::Result<()> {
    let size = match &args.cache_size {
        Some(s) => parse_bytes(s).map_err(|e| anyhow::anyhow!("--cache-size: {e}"))?,
        None => u64::MAX,
    };
    let rate = match &args.rate {
        Some(r) => Some(
            parse_bytes(r.trim_end_matches("/s")).map_err(|e| anyhow::anyhow!("--rate: {e}"))?,
        ),
        None => None,
    };
    let modules = match &args.modules {
        Some(names) => Some(
            names
                .iter()
                .map(|m| ModuleId::parse(m).map_err(|e| anyhow::anyhow!("--modules: {m:?}: {e}")))
                .collect::<anyhow::Result<Vec<_>>>()?,
        ),
        None => None,
    };
    let config = CacheConfig {
        upstream: args.upstream.clone(),
        dir: args.cache_dir.clone(),
        size,
        timeout: Duration::from_secs(args.upstream_timeout.max(1)),
        ttl: Duration::ZERO,
    };
    let plan = SyncPlan {
        tiers: args.tiers.clone(),
        modules,
        jobs: args.jobs,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let summary = runtime.block_on(async {
        let cache = Cache::open(&config, rate)?;
        let counters = Counters::default();
        let report = async {
            let start = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
                let secs = start.elapsed().as_secs_f64();
                eprintln!(
                    "sync: {}/{} objects, {:.1}/{:.1} MB, {:.2} MB/s from the upstream",
                    n(&counters.done),
                    n(&counters.total),
                    n(&counters.bytes_done) as f64 / 1e6,
                    n(&counters.bytes_total) as f64 / 1e6,
                    cache.stats().upstream_bytes_total() as f64 / 1e6 / secs,
                );
            }
        };
        tokio::select! {
            summary = lowband_edge::cache::sync::run(&cache, &plan, &counters) => Ok::<_, anyhow::Error>(summary?),
            () = report => unreachable!("the report loop never ends"),
        }
    })?;
    for (what, why) in &summary.failed {
        eprintln!("sync: failed: {what}: {why}");
    }
    println!("{summary}");
    if summary.failed.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(
            "{} of {} objects or modules failed",
            summary.failed.len(),
            summary.objects
        )
    }
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
