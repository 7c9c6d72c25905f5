//! The edge's settings, each declared once in [`Settings`]: its flag and
//! variable (clap), its key in the TOML file named by `--config` (serde)
//! and its line in `--print-config` (serde again).
//!
//! Layers stack with the precedence flag > environment > file > default:
//! clap puts a flag over its variable, [`layered`] puts both over the file,
//! and a key the file leaves out takes its value from [`Settings::default`].
//! [`Settings::resolve`] then checks the combination and makes the edge's,
//! the server's and a cache node's configurations. Every error names where
//! the value came from, the key and why.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{ArgMatches, FromArgMatches};
use lowband_catalog::tokens::{Tokens, TokensError};
use serde::{Deserialize, Serialize};

use crate::cache::CacheConfig;
use crate::http::tls::{self, TlsError};
use crate::server::{ServerConfig, MIN_HEADER_BYTES};
use crate::EdgeConfig;

/// Address the edge listens on when nothing says otherwise.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);
/// Seconds a cache node waits for its upstream by default.
pub const DEFAULT_UPSTREAM_TIMEOUT: u64 = 5;

/// The origin of flags and their variables, in errors.
pub const FLAGS: &str = "command line or environment";
/// The origin of the layers stacked, in errors.
const STACKED: &str = "configuration";

/// The settings of `lowband-edge serve`, as one layer: an absent value
/// leaves the decision to the layer below. Flags and variables leave out
/// what they do not set; a file's absent keys take the defaults
/// ([`Settings::default`], which the `[default: …]` of each help repeats).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Where published modules are: file://<dir> (or a bare path), s3://<bucket>[/<prefix>] (AWS_* variables) [default: file://.lowband/store].
    #[arg(long, env = "LOWBAND_STORE")]
    pub store: Option<String>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "LOWBAND_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Tier for clients that send no network hints (slow-2g, 2g, 3g, 4g in the default profile) [default: 3g].
    #[arg(long, env = "LOWBAND_DEFAULT_TIER")]
    pub default_tier: Option<String>,
    /// Seconds a manifest is used before the store is asked again [default: 5].
    #[arg(long, env = "LOWBAND_MANIFEST_TTL")]
    pub manifest_ttl: Option<u64>,
    /// Connections served at once [default: 4096].
    #[arg(long, env = "LOWBAND_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Seconds a new connection has to finish TLS and send its first request's headers [default: 10].
    #[arg(long, env = "LOWBAND_HEADER_TIMEOUT")]
    pub header_timeout: Option<u64>,
    /// Seconds a connection may stay open with no request in flight [default: 30].
    #[arg(long, env = "LOWBAND_IDLE_TIMEOUT")]
    pub idle_timeout: Option<u64>,
    /// Requests served on one connection before it is closed [default: 1000].
    #[arg(long, env = "LOWBAND_MAX_REQUESTS_PER_CONNECTION")]
    pub max_requests_per_connection: Option<u64>,
    /// Bound on one request's header bytes, at least 8192 [default: 16384].
    #[arg(long, env = "LOWBAND_MAX_HEADER_BYTES")]
    pub max_header_bytes: Option<usize>,
    /// Seconds in-flight responses get to finish at shutdown [default: 15].
    #[arg(long, env = "LOWBAND_SHUTDOWN_GRACE")]
    pub shutdown_grace: Option<u64>,
    /// PEM certificate chain, leaf first: serve HTTPS (HTTP/2 and HTTP/1.1 by ALPN). Needs --tls-key.
    #[arg(long, env = "LOWBAND_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(long, env = "LOWBAND_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Be a cache node of this upstream instead of serving a store: s3://<bucket>[/<prefix>], file://<dir>, or http(s):// of another lowband edge.
    #[arg(long, env = "LOWBAND_UPSTREAM")]
    pub upstream: Option<String>,
    /// A cache node's directory: objects, manifests and partial downloads (kept across restarts).
    #[arg(long, env = "LOWBAND_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// A cache node's byte budget for objects, e.g. 20GB or 512MiB; least recently used go first.
    #[arg(long, env = "LOWBAND_CACHE_SIZE")]
    pub cache_size: Option<String>,
    /// Seconds a cache node waits for its upstream before answering 504 (what it holds is still served) [default: 5].
    #[arg(long, env = "LOWBAND_UPSTREAM_TIMEOUT")]
    pub upstream_timeout: Option<u64>,
    /// File of bearer tokens allowed to call POST /admin/v1/purge/<module>: one per line, `<token> [name]`, at least 16 characters.
    #[arg(long, env = "LOWBAND_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
}

impl Default for Settings {
    /// The defaults: those of the edge and the server, and of a cache node.
    /// The store's depends on the rest (a cache node has none), so
    /// [`Settings::resolve`] decides it.
    fn default() -> Self {
        let edge = EdgeConfig::default();
        let server = ServerConfig::default();
        Self {
            store: None,
            listen: Some(DEFAULT_LISTEN),
            default_tier: Some(edge.default_tier),
            manifest_ttl: Some(edge.manifest_ttl.as_secs()),
            max_connections: Some(server.max_connections),
            header_timeout: Some(server.header_timeout.as_secs()),
            idle_timeout: Some(server.idle_timeout.as_secs()),
            max_requests_per_connection: Some(server.max_requests_per_connection),
            max_header_bytes: Some(server.max_header_bytes),
            shutdown_grace: Some(server.shutdown_grace.as_secs()),
            tls_cert: None,
            tls_key: None,
            upstream: None,
            cache_dir: None,
            cache_size: None,
            upstream_timeout: Some(DEFAULT_UPSTREAM_TIMEOUT),
            admin_token_file: None,
        }
    }
}

/// Settings with every value decided.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub store: String,
    pub listen: SocketAddr,
    pub edge: EdgeConfig,
    pub server: ServerConfig,
    /// Set on a cache node.
    pub cache: Option<CacheConfig>,
    /// The decided values, as a complete TOML layer (for `--print-config`).
    pub settings: Settings,
}

/// A setting that cannot be used: where it came from, its key, and why.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {key}")]
pub struct ConfigError {
    /// The file, [`FLAGS`], or "configuration" for the layers stacked.
    pub origin: String,
    /// The key, or `-` for the whole layer.
    pub key: String,
    /// Boxed: a TLS or clap error is large, and a `Result` carries its error's size.
    #[source]
    pub problem: Box<Problem>,
}

/// What is wrong with a setting.
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error("cannot read")]
    Unreadable(#[source] io::Error),
    /// The file's TOML, as `lowband_catalog::strict_toml` reads it (with the line).
    #[error("{0}")]
    Toml(String),
    #[error("cannot be read from the command line")]
    Flags(#[source] clap::Error),
    #[error("must be at least 1")]
    Zero,
    #[error("{0} is below the smallest bound HTTP/1.1 parsing allows, {MIN_HEADER_BYTES}")]
    HeaderBytes(usize),
    #[error("is empty")]
    Empty,
    #[error("has no value")]
    Missing,
    #[error(transparent)]
    Size(#[from] SizeError),
    #[error(transparent)]
    Tokens(#[from] TokensError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("tls_cert and tls_key go together: give both or neither")]
    HalfTls,
    #[error("a node serves either its own store or a cache of an upstream: give store or upstream, not both")]
    StoreAndUpstream,
    #[error("a cache node (upstream) needs a directory for its cache: give --cache-dir (LOWBAND_CACHE_DIR, cache_dir)")]
    NoCacheDir,
    #[error("a cache node (upstream) needs a byte budget for its objects: give --cache-size, e.g. 20GB (LOWBAND_CACHE_SIZE, cache_size)")]
    NoCacheSize,
    #[error("cache_dir and cache_size are for a cache node: give its --upstream too, or drop them to serve --store")]
    NoUpstream,
}

impl ConfigError {
    fn new(origin: &str, key: &str, problem: impl Into<Problem>) -> Self {
        Self {
            origin: origin.to_owned(),
            key: key.to_owned(),
            problem: Box::new(problem.into()),
        }
    }
}

/// The settings in force: `flags` (clap's reading of the flags and their
/// variables, `matches`) over the file, if one is named, over the defaults.
pub fn layered(
    file: Option<&Path>,
    flags: &Settings,
    matches: &ArgMatches,
) -> Result<Settings, ConfigError> {
    flags.check(FLAGS)?;
    let mut settings = match file {
        Some(path) => Settings::from_file(path)?,
        None => Settings::default(),
    };
    // Sets exactly the fields a flag or variable gave, as clap read them into `flags`.
    settings
        .update_from_arg_matches(matches)
        .map_err(|e| ConfigError::new(FLAGS, "-", Problem::Flags(e)))?;
    Ok(settings)
}

impl Settings {
    /// Reads a TOML file of settings.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(&origin, "-", Problem::Unreadable(e)))?;
        Self::from_toml(&origin, &text)
    }

    /// Parses TOML settings (absent keys take the defaults); `origin` names them in errors.
    pub fn from_toml(origin: &str, text: &str) -> Result<Self, ConfigError> {
        let settings: Settings = lowband_catalog::strict_toml::from_str(text)
            .map_err(|e| ConfigError::new(origin, &e.key, Problem::Toml(e.reason)))?;
        settings.check(origin)?;
        Ok(settings)
    }

    /// Checks the values this layer sets; `origin` names it in errors.
    pub fn check(&self, origin: &str) -> Result<(), ConfigError> {
        let fail = |key: &str, problem: Problem| Err(ConfigError::new(origin, key, problem));
        for (key, value) in [
            ("max_connections", self.max_connections.map(|n| n as u64)),
            ("upstream_timeout", self.upstream_timeout),
            ("header_timeout", self.header_timeout),
            ("idle_timeout", self.idle_timeout),
            (
                "max_requests_per_connection",
                self.max_requests_per_connection,
            ),
        ] {
            if value == Some(0) {
                return fail(key, Problem::Zero);
            }
        }
        if let Some(n) = self.max_header_bytes.filter(|&n| n < MIN_HEADER_BYTES) {
            return fail("max_header_bytes", Problem::HeaderBytes(n));
        }
        if self.default_tier.as_deref() == Some("") {
            return fail("default_tier", Problem::Empty);
        }
        if let Some(size) = &self.cache_size {
            if let Err(e) = parse_bytes(size) {
                return fail("cache_size", e.into());
            }
        }
        Ok(())
    }

    /// Checks the combination, decides what depends on it (a cache node or
    /// a store; its timeout), reads the admin tokens and the TLS identity.
    pub fn resolve(mut self) -> Result<Resolved, ConfigError> {
        let cache = self.cache_node()?;
        if cache.is_some() {
            self.store = None;
        } else {
            let store = self.store.take();
            self.store =
                Some(store.unwrap_or_else(|| lowband_catalog::store::DEFAULT_STORE_URL.into()));
            self.upstream_timeout = None;
        }
        let admin_tokens = match &self.admin_token_file {
            Some(path) => Tokens::from_file(path)
                .map_err(|e| ConfigError::new(STACKED, "admin_token_file", e))?,
            None => Tokens::default(),
        };
        self.check(STACKED)?;
        let tls = self.tls()?;
        let secs = |key, value| given(key, value).map(Duration::from_secs);
        let edge = EdgeConfig {
            default_tier: given("default_tier", self.default_tier.clone())?,
            manifest_ttl: secs("manifest_ttl", self.manifest_ttl)?,
            admin_tokens,
        };
        let server = ServerConfig {
            max_connections: given("max_connections", self.max_connections)?,
            header_timeout: secs("header_timeout", self.header_timeout)?,
            idle_timeout: secs("idle_timeout", self.idle_timeout)?,
            max_requests_per_connection: given(
                "max_requests_per_connection",
                self.max_requests_per_connection,
            )?,
            max_header_bytes: given("max_header_bytes", self.max_header_bytes)?,
            shutdown_grace: secs("shutdown_grace", self.shutdown_grace)?,
            tls,
        };
        Ok(Resolved {
            store: self.store.clone().unwrap_or_default(),
            listen: given("listen", self.listen)?,
            edge,
            server,
            cache,
            settings: self,
        })
    }

    /// A cache node's configuration, when the settings make one.
    fn cache_node(&self) -> Result<Option<CacheConfig>, ConfigError> {
        let fail = |key, problem| Err(ConfigError::new(STACKED, key, problem));
        match (&self.upstream, &self.cache_dir, &self.cache_size) {
            (Some(_), _, _) if self.store.is_some() => fail("upstream", Problem::StoreAndUpstream),
            (Some(upstream), Some(dir), Some(size)) => Ok(Some(CacheConfig {
                upstream: upstream.clone(),
                dir: dir.clone(),
                size: parse_bytes(size).map_err(|e| ConfigError::new(STACKED, "cache_size", e))?,
                timeout: Duration::from_secs(given("upstream_timeout", self.upstream_timeout)?),
                ttl: Duration::from_secs(given("manifest_ttl", self.manifest_ttl)?),
            })),
            (Some(_), None, _) => fail("cache_dir", Problem::NoCacheDir),
            (Some(_), _, None) => fail("cache_size", Problem::NoCacheSize),
            (None, None, None) => Ok(None),
            (None, _, _) => fail("upstream", Problem::NoUpstream),
        }
    }

    /// The TLS identity, if the settings name one.
    fn tls(&self) -> Result<Option<std::sync::Arc<rustls::ServerConfig>>, ConfigError> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => tls::server_config(cert, key)
                .map(Some)
                .map_err(|e| ConfigError::new(STACKED, "tls_cert", e)),
            (None, None) => Ok(None),
            (Some(_), None) => Err(ConfigError::new(STACKED, "tls_key", Problem::HalfTls)),
            (None, Some(_)) => Err(ConfigError::new(STACKED, "tls_cert", Problem::HalfTls)),
        }
    }

    /// The layer as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot show settings: {e}\n"))
    }
}

/// A value the defaults always give, unless a caller built settings without them.
fn given<T>(key: &str, value: Option<T>) -> Result<T, ConfigError> {
    value.ok_or_else(|| ConfigError::new(STACKED, key, Problem::Missing))
}

/// Why a text is not a size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error("{0:?} is not a size (say 20GB, 512MiB or a number of bytes)")]
    NotANumber(String),
    #[error("{text:?}: unknown unit {unit:?} (B, kB, MB, GB, TB, KiB, MiB, GiB, TiB)")]
    UnknownUnit { text: String, unit: String },
    #[error("{0:?} is not a usable size (at least 1 byte)")]
    Unusable(String),
}

/// Reads a size: bytes, or a number with a unit (`kB`, `MB`, `GB`, `TB` in
/// powers of 1000; `KiB`, `MiB`, `GiB`, `TiB` in powers of 1024).
pub fn parse_bytes(text: &str) -> Result<u64, SizeError> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| SizeError::NotANumber(text.to_owned()))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(SizeError::UnknownUnit {
                text: text.to_owned(),
                unit: other.to_owned(),
            })
        }
    };
    let bytes = number * scale;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(SizeError::Unusable(text.to_owned()));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Args;

    /// The error and its causes, as the binary prints them.
    fn chain(e: &dyn std::error::Error) -> String {
        let mut text = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            text = format!("{text}: {s}");
            source = s.source();
        }
        text
    }

    /// `args` read as `serve`'s flags would be (variables ignored).
    fn flags(args: &[&str]) -> (Settings, ArgMatches) {
        let command = Settings::augment_args(clap::Command::new("serve"))
            .mut_args(|arg| arg.env(None::<&str>));
        let matches = command
            .try_get_matches_from(std::iter::once("serve").chain(args.iter().copied()))
            .unwrap();
        (Settings::from_arg_matches(&matches).unwrap(), matches)
    }

    #[test]
    fn file_errors_name_the_file_key_and_reason() {
        let e = Settings::from_toml("edge.toml", "listen = \"0.0.0.0:80\"\nmax_conections = 5\n")
            .unwrap_err();
        let e = chain(&e);
        assert!(e.starts_with("edge.toml: "), "{e}");
        assert!(
            e.contains("unknown field `max_conections`") && e.contains("line 2"),
            "{e}"
        );

        let e = chain(&Settings::from_toml("edge.toml", "idle_timeout = \"soon\"\n").unwrap_err());
        assert!(e.starts_with("edge.toml: idle_timeout: "), "{e}");

        let e = chain(&Settings::from_toml("edge.toml", "max_header_bytes = 100\n").unwrap_err());
        assert_eq!(e, "edge.toml: max_header_bytes: 100 is below the smallest bound HTTP/1.1 parsing allows, 8192");

        let e = chain(&Settings::from_toml("edge.toml", "header_timeout = 0\n").unwrap_err());
        assert_eq!(e, "edge.toml: header_timeout: must be at least 1");

        let e = chain(&Settings::from_file(Path::new("/nonexistent/edge.toml")).unwrap_err());
        assert!(
            e.starts_with("/nonexistent/edge.toml: -: cannot read"),
            "{e}"
        );
    }

    #[test]
    fn layers_stack_and_defaults_fill_in() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("edge.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:9000\"\nidle_timeout = 7\ndefault_tier = \"2g\"\n",
        )
        .unwrap();
        let (cli, matches) = flags(&["--idle-timeout", "3"]);
        let resolved = layered(Some(&file), &cli, &matches)
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!(resolved.listen, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(resolved.server.idle_timeout, Duration::from_secs(3));
        assert_eq!(resolved.edge.default_tier, "2g");
        assert_eq!(
            resolved.server.header_timeout,
            ServerConfig::default().header_timeout
        );
        assert!(resolved.server.tls.is_none());
        // The printed configuration, given as the file, makes the same settings.
        let again = Settings::from_toml("printed", &resolved.settings.to_toml())
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!(again.settings, resolved.settings);
    }

    #[test]
    fn tls_needs_both_files() {
        let half = Settings {
            tls_cert: Some("cert.pem".into()),
            ..Settings::default()
        };
        let e = chain(&half.resolve().unwrap_err());
        assert!(
            e.contains("tls_key: tls_cert and tls_key go together"),
            "{e}"
        );
    }

    #[test]
    fn the_help_shows_the_defaults_in_force() {
        let defaults = toml::Table::try_from(Settings::default()).unwrap();
        let mut shown = 0;
        for arg in Settings::augment_args(clap::Command::new("serve")).get_arguments() {
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            let Some(default) = help
                .split_once("[default: ")
                .and_then(|(_, rest)| rest.split_once(']'))
                .map(|(default, _)| default)
            else {
                continue;
            };
            let key = arg.get_id().as_str();
            let value = match key {
                "store" => lowband_catalog::store::DEFAULT_STORE_URL.to_owned(),
                key => match &defaults[key] {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                },
            };
            assert_eq!(default, value, "--{key}");
            shown += 1;
        }
        assert_eq!(shown, 11, "every setting with a default shows it");
    }

    #[test]
    fn sizes_read_with_units() {
        assert_eq!(parse_bytes("1000"), Ok(1000));
        assert_eq!(parse_bytes("20GB"), Ok(20_000_000_000));
        assert_eq!(parse_bytes("512MiB"), Ok(512 << 20));
        assert_eq!(parse_bytes(" 1.5 kB "), Ok(1500));
        for bad in ["", "GB", "-1", "0", "1 parsec", "1e999"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }
}
