//! `lowband-edge`: argument parsing, logging and signals over the library.
//!
//! Settings come from flags, then `LOWBAND_*` variables, then the TOML file
//! named by `--config`, then defaults (see `lowband_edge::config`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use lowband_catalog::{ModuleId, Store};
use lowband_edge::cache::sync::{Counters, SyncPlan};
use lowband_edge::cache::{Cache, CacheConfig};
use lowband_edge::config::{self, parse_bytes, Resolved, Settings};
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

/// `serve`'s settings are declared in `lowband_edge::config::Settings`
/// (flag, variable, file key); what a flag or variable leaves out comes from
/// `--config`, then the default shown.
#[derive(Args)]
struct ServeArgs {
    /// TOML file of settings (keys as the flags, with `_`: `max_connections = 512`).
    #[arg(long, env = "LOWBAND_CONFIG")]
    config: Option<PathBuf>,
    /// Print the settings in force as TOML and exit.
    #[arg(long)]
    print_config: bool,
    #[command(flatten)]
    settings: Settings,
}

fn main() -> ExitCode {
    // The matches are kept: the settings layered over `--config` are those they hold.
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Serve(args) => {
            let flags = matches.subcommand_matches("serve").unwrap_or(&matches);
            config::layered(args.config.as_deref(), &args.settings, flags)
                .and_then(Settings::resolve)
                .map_err(anyhow::Error::from)
                .and_then(|resolved| {
                    if args.print_config {
                        print!("{}", resolved.settings.to_toml());
                        Ok(())
                    } else {
                        serve(resolved)
                    }
                })
        }
        Command::Sync(args) => sync(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "lowband-edge: {}",
                lowband_catalog::report::one_line(e.as_ref())
            );
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
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS_PER_CORE * cores)
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
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

fn sync(args: &SyncArgs) -> anyhow::Result<()> {
    let size = match &args.cache_size {
        Some(s) => parse_bytes(s).context("--cache-size")?,
        None => u64::MAX,
    };
    let rate = match &args.rate {
        Some(r) => Some(parse_bytes(r.trim_end_matches("/s")).context("--rate")?),
        None => None,
    };
    let modules = match &args.modules {
        Some(names) => Some(
            names
                .iter()
                .map(|m| ModuleId::parse(m).with_context(|| format!("--modules: {m:?}")))
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
        let terminate = tokio::signal::unix::SignalKind::terminate();
        let Ok(mut term) = tokio::signal::unix::signal(terminate) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
