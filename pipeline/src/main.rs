//! `lowband-pipeline`: argument parsing, progress and exit codes over the library.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use lowband_catalog::manifest::AssetKind;
use lowband_catalog::profile::Profile;
use lowband_catalog::store::DEFAULT_STORE_URL;
use lowband_catalog::{ModuleId, Store};
use lowband_pipeline::service::api::{Api, ApiOptions, Tokens};
use lowband_pipeline::service::archive;
use lowband_pipeline::service::queue::Queue;
use lowband_pipeline::service::worker::WorkerOptions;
use lowband_pipeline::{IngestOptions, IngestReport, Progress, Silent};

#[derive(Parser)]
#[command(
    name = "lowband-pipeline",
    version,
    about = "Turn course modules into tiered low-bandwidth renditions in an object store"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log filter (tracing env-filter syntax), e.g. `info` or `lowband_pipeline=debug`.
    #[arg(long, global = true, env = "LOWBAND_LOG", default_value = "warn")]
    log: String,
}

#[derive(Subcommand)]
enum Command {
    /// Render every asset of a module directory and publish its manifest.
    Ingest {
        /// The module directory (videos, audio, images, pages; optional module.toml with id, title, language).
        module_dir: PathBuf,
        /// Where renditions go: file://<dir> (or a bare path), s3://<bucket>[/<prefix>] (AWS_* variables), memory://.
        #[arg(long, env = "LOWBAND_STORE", default_value = DEFAULT_STORE_URL)]
        store: String,
        /// Ladder profile: a name looked up in --profiles-dir, or a path to a TOML file.
        #[arg(long, env = "LOWBAND_PROFILE", default_value = "default")]
        profile: String,
        /// Directory of named profiles (<name>.toml).
        #[arg(long, env = "LOWBAND_PROFILES_DIR", default_value = "profiles")]
        profiles_dir: PathBuf,
        /// Module id, overriding module.toml and the directory name.
        #[arg(long)]
        module_id: Option<String>,
        /// Print the summary as JSON on stdout and no progress.
        #[arg(long)]
        json: bool,
    },
    /// Serve the authoring API: authors upload modules, workers render them.
    Serve {
        /// Where uploads, job state and renditions go (shared with the workers and the edge).
        #[arg(long, env = "LOWBAND_STORE")]
        store: String,
        /// NATS server with JetStream, e.g. nats://127.0.0.1:4222.
        #[arg(long, env = "LOWBAND_NATS")]
        nats: String,
        /// File of bearer tokens, one per line (`<token> [name]`, `#` comments).
        #[arg(long, env = "LOWBAND_TOKENS")]
        tokens: PathBuf,
        /// Address to listen on.
        #[arg(long, env = "LOWBAND_LISTEN", default_value = "127.0.0.1:8081")]
        listen: String,
        /// Ladder profile for uploaded modules: a name in --profiles-dir or a TOML file.
        #[arg(long, env = "LOWBAND_PROFILE", default_value = "default")]
        profile: String,
        /// Directory of named profiles (<name>.toml).
        #[arg(long, env = "LOWBAND_PROFILES_DIR", default_value = "profiles")]
        profiles_dir: PathBuf,
        /// Largest archive accepted, in bytes.
        #[arg(long, env = "LOWBAND_MAX_UPLOAD", default_value_t = 4 << 30)]
        max_upload_bytes: u64,
        /// Most entries an archive may hold.
        #[arg(long, env = "LOWBAND_MAX_ENTRIES", default_value_t = 10_000)]
        max_entries: usize,
        /// Most bytes an archive may expand to.
        #[arg(long, env = "LOWBAND_MAX_EXPANDED", default_value_t = 8 << 30)]
        max_expanded_bytes: u64,
    },
    /// Render queued assets: take jobs from NATS one at a time until stopped.
    Worker {
        /// The store the API and the edge use.
        #[arg(long, env = "LOWBAND_STORE")]
        store: String,
        /// NATS server with JetStream, e.g. nats://127.0.0.1:4222.
        #[arg(long, env = "LOWBAND_NATS")]
        nats: String,
        /// Seconds of silence after which a job goes to another worker (progress acks keep it).
        #[arg(long, env = "LOWBAND_ACK_WAIT", default_value_t = 60)]
        ack_wait: u64,
        /// Attempts before a job goes to the dead-letter subject.
        #[arg(long, env = "LOWBAND_MAX_ATTEMPTS", default_value_t = 5)]
        max_attempts: i64,
        /// Seconds before the second attempt; doubled for each further one.
        #[arg(long, env = "LOWBAND_RETRY_BACKOFF", default_value_t = 10)]
        retry_backoff: u64,
    },
    /// List the available profiles, or check one profile file.
    Profiles {
        /// Validate this profile file and print its ladder; exit 1 if invalid.
        #[arg(long)]
        check: Option<PathBuf>,
        /// Directory of named profiles (<name>.toml).
        #[arg(long, env = "LOWBAND_PROFILES_DIR", default_value = "profiles")]
        profiles_dir: PathBuf,
    },
}

fn main() -> ExitCode {
    // SVT-AV1 prints its configuration banner on stderr for every encoder it
    // opens unless told otherwise; keep errors only. Set before any thread
    // starts, so no other thread can be reading the environment.
    if std::env::var_os("SVT_LOG").is_none() {
        std::env::set_var("SVT_LOG", "1");
    }
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Ingest {
            module_dir,
            store,
            profile,
            profiles_dir,
            module_id,
            json,
        } => ingest(module_dir, &store, &profile, profiles_dir, module_id, json),
        Command::Profiles {
            check,
            profiles_dir,
        } => profiles(check, &profiles_dir),
        Command::Serve {
            store,
            nats,
            tokens,
            listen,
            profile,
            profiles_dir,
            max_upload_bytes,
            max_entries,
            max_expanded_bytes,
        } => Profile::resolve(&profile, &[profiles_dir])
            .map_err(anyhow::Error::from)
            .and_then(|profile| {
                let options = ApiOptions {
                    max_upload_bytes,
                    archive: archive::Limits {
                        max_entries,
                        max_expanded_bytes,
                    },
                    profile,
                };
                serve(&store, &nats, &tokens, &listen, options)
            }),
        Command::Worker {
            store,
            nats,
            ack_wait,
            max_attempts,
            retry_backoff,
        } => worker(
            &store,
            &nats,
            WorkerOptions {
                ack_wait: Duration::from_secs(ack_wait.max(1)),
                max_attempts: max_attempts.max(1),
                retry_backoff: Duration::from_secs(retry_backoff),
                id: WorkerOptions::default_id(),
            },
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "lowband-pipeline: {}",
                lowband_catalog::report::one_line(e.as_ref())
            );
            ExitCode::FAILURE
        }
    }
}

fn ingest(
    dir: PathBuf,
    store: &str,
    profile: &str,
    profiles_dir: PathBuf,
    module_id: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let profile = Profile::resolve(profile, &[profiles_dir])?;
    let store = Store::open(store)?;
    let progress: Arc<dyn Progress> = if !json && std::io::stderr().is_terminal() {
        Arc::new(Bars::new())
    } else {
        Arc::new(Silent)
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let options = IngestOptions {
        dir,
        profile,
        module_id,
    };
    let report = runtime.block_on(lowband_pipeline::ingest(
        &options,
        &store,
        Arc::clone(&progress),
    ));
    drop(progress);
    let report = report?;
    if json {
        stdout(&(serde_json::to_string_pretty(&report)? + "\n"))?;
    } else {
        let mut out = String::new();
        print_summary(&mut out, &report, store.url());
        stdout(&out)?;
    }
    Ok(())
}

fn serve(
    store: &str,
    nats: &str,
    tokens: &Path,
    listen: &str,
    options: ApiOptions,
) -> anyhow::Result<()> {
    let tokens = Tokens::from_file(tokens)?;
    let store = Store::open(store)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let queue = Queue::connect(nats).await?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("--listen {listen}"))?;
        eprintln!(
            "lowband-pipeline: API listening on http://{}",
            listener.local_addr()?
        );
        let api = Arc::new(Api::new(store, queue, tokens, options));
        tokio::select! {
            r = lowband_pipeline::service::api::serve(listener, api) => r?,
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok(())
    })
}

fn worker(store: &str, nats: &str, options: WorkerOptions) -> anyhow::Result<()> {
    let store = Store::open(store)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let result = runtime.block_on(async {
        let queue = Queue::connect(nats).await?;
        eprintln!("lowband-pipeline: worker {} waiting for jobs", options.id);
        // SIGTERM (systemctl stop) or Ctrl-C: hand the job in progress back and exit.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            let _ = stop.send(true);
            // Keep the sender alive: its drop would read as a second stop.
            std::future::pending::<()>().await;
        });
        lowband_pipeline::service::worker::run(store, queue, options, stopped).await?;
        Ok(())
    });
    // A transcode handed back may still be running on a blocking thread: its
    // output is not wanted, so do not wait for it.
    runtime.shutdown_background();
    result
}

fn profiles(check: Option<PathBuf>, profiles_dir: &Path) -> anyhow::Result<()> {
    let mut out = String::new();
    if let Some(file) = check {
        let p = Profile::from_file(&file)?;
        let _ = writeln!(out, "{}: valid profile {:?}", file.display(), p.name);
        print_ladder(&mut out, &p);
        return stdout(&out);
    }
    let mut found = vec![("default (built in)".to_owned(), Profile::builtin_default())];
    if let Ok(entries) = std::fs::read_dir(profiles_dir) {
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        {
            match Profile::from_file(&path) {
                Ok(p) => found.push((path.display().to_string(), p)),
                Err(e) => eprintln!("lowband-pipeline: {e}"),
            }
        }
    }
    for (source, p) in found {
        let _ = writeln!(out, "{} — {} [{}]", p.name, p.description, source);
        print_ladder(&mut out, &p);
    }
    stdout(&out)
}

/// Writes a command's output; a reader that stopped early (`| head`) is
/// no error, as for any Unix tool.
fn stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn print_ladder(out: &mut String, p: &Profile) {
    let tiers: Vec<_> = p
        .tiers
        .iter()
        .map(|t| match t.max_kbps {
            Some(k) => format!("{} ≤{k} kbit/s", t.name),
            None => t.name.clone(),
        })
        .collect();
    let _ = writeln!(out, "  tiers: {}", tiers.join(", "));
    for r in &p.video.rungs {
        let _ = writeln!(
            out,
            "  video {:>6}  {:<8} {}p ≤{} fps ≤{} kbit/s (audio {} kbit/s)",
            r.name, r.tier, r.height, r.fps, r.max_kbps, r.audio_kbps
        );
    }
    for a in &p.video.audio {
        let _ = writeln!(
            out,
            "  audio {:>6}  {:<8} {:?} {} kbit/s",
            a.name, a.tier, a.codec, a.kbps
        );
    }
    let widths: Vec<_> = p
        .image
        .rungs
        .iter()
        .map(|r| format!("{} {}px q{}", r.tier, r.width, r.quality))
        .collect();
    let _ = writeln!(
        out,
        "  images: {} as {:?}",
        widths.join(", "),
        p.image.formats
    );
}

fn print_summary(out: &mut String, r: &IngestReport, store: &str) {
    let verb = if r.published {
        "Published"
    } else {
        "Unchanged"
    };
    let _ = writeln!(
        out,
        "{verb} {} ({}) → {store} {}",
        r.module, r.title, r.manifest_key
    );
    let _ = writeln!(
        out,
        "  {} assets ({} reused), {} variants, {} objects uploaded ({})",
        r.assets,
        r.assets_reused,
        r.variants,
        r.objects_uploaded,
        human(r.bytes_uploaded)
    );
    let tiers: Vec<_> = r
        .bytes_out_by_tier
        .iter()
        .map(|t| format!("{} {}", t.tier, human(t.bytes)))
        .collect();
    let _ = writeln!(
        out,
        "  bytes in {} · bytes out per tier: {}",
        human(r.bytes_in),
        tiers.join(" · ")
    );
    if r.media_seconds > 0.0 {
        let _ = writeln!(
            out,
            "  video and sound: {:.1} min rendered in {:.1} min, {:.1} s per source minute",
            r.media_seconds / 60.0,
            r.media_render_seconds / 60.0,
            r.media_render_seconds / (r.media_seconds / 60.0)
        );
    }
    for s in &r.skipped {
        let _ = writeln!(out, "  skipped {}: {}", s.path, s.reason);
    }
}

fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{:.0} KB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

/// A terminal progress bar: one step per asset, the current one named.
struct Bars {
    bar: ProgressBar,
}

impl Bars {
    fn new() -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} assets {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        Self { bar }
    }
}

impl Progress for Bars {
    fn start(&self, module: &ModuleId, assets: usize) {
        self.bar.set_length(assets as u64);
        self.bar.println(format!("Ingesting {module}"));
    }
    fn asset_started(&self, path: &str, kind: AssetKind) {
        self.bar
            .set_message(format!("{kind:?} {path}").to_lowercase());
    }
    fn asset_progress(&self, path: &str, fraction: f64) {
        self.bar
            .set_message(format!("video {path} {:.0}%", fraction * 100.0));
    }
    fn asset_finished(&self, path: &str, reused: bool) {
        if reused {
            self.bar.println(format!("  {path}: unchanged, reused"));
        }
        self.bar.inc(1);
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
