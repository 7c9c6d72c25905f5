//! The edge's settings: a TOML file (`--config`), environment (`LOWBAND_*`)
//! and flags, merged with that precedence: flag > environment > file >
//! default. The binary's clap arguments make one [`Settings`] layer (clap
//! itself puts a flag over its variable), the file another; [`Settings::over`]
//! stacks them and [`Settings::resolve`] fills in defaults and checks the
//! result. Every error names where the value came from, the key and why.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cache::CacheConfig;
use crate::server::{ServerConfig, MIN_HEADER_BYTES};
use crate::tls;
use crate::EdgeConfig;

/// Address the edge listens on when nothing says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Seconds a cache node waits for its upstream by default.
pub const DEFAULT_UPSTREAM_TIMEOUT: u64 = 5;

/// Bearer tokens, one per line (blank lines and `#` comments skipped).
pub fn read_tokens(path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let tokens: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    if tokens.is_empty() {
        return Err(format!("{}: holds no token", path.display()));
    }
    if let Some(short) = tokens.iter().find(|t| t.len() < 16) {
        return Err(format!(
            "{}: a token of {} characters is too easy to guess (at least 16)",
            path.display(),
            short.len()
        ));
    }
    Ok(tokens)
}

#[derive(Debug, thiserror::Error)]
#[error("{origin}: {key}: {reason}")]
pub struct ConfigError {
    /// The file, or "command line or environment".
    pub origin: String,
    pub key: String,
    pub reason: String,
}

/// One layer of settings; an absent key leaves the decision to the layer below.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where published modules are: `file://<dir>` (or a bare path),
    /// `s3://<bucket>[/<prefix>]` (AWS_* variables), `memory://`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// Address and port to listen on, e.g. `0.0.0.0:8080`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// Tier for clients that send no network hints (`slow-2g`, `2g`, `3g`, `4g` in the default profile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_tier: Option<String>,
    /// Seconds a manifest is used before the store is asked again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_ttl: Option<u64>,
    /// Connections served at once; more wait in the kernel's backlog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    /// Seconds a new connection has to finish TLS and send its first request's headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_timeout: Option<u64>,
    /// Seconds a connection may sit with no request in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<u64>,
    /// Requests served on one connection before it is closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests_per_connection: Option<u64>,
    /// Bound on one request's header bytes (at least 8192); larger gets 431.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_header_bytes: Option<usize>,
    /// Seconds in-flight responses get to finish at shutdown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown_grace: Option<u64>,
    /// PEM certificate chain (leaf first); with `tls_key`, serve HTTPS (HTTP/2 and HTTP/1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// Run as a cache node in front of this upstream: `s3://<bucket>[/<prefix>]`,
    /// `file://<dir>` or `http(s)://` of another lowband edge (instead of `store`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// A cache node's directory (objects, manifests, partial downloads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_dir: Option<PathBuf>,
    /// A cache node's byte budget for objects, e.g. `20GB`, `512MiB` or bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_size: Option<String>,
    /// Seconds a cache node waits for its upstream's answer (and between its chunks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_timeout: Option<u64>,
    /// File of bearer tokens (one per line) for the admin routes (`POST /admin/v1/purge/<module>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_token_file: Option<PathBuf>,
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

impl Settings {
    /// Reads a TOML file of settings.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            origin: origin.clone(),
            key: "-".into(),
            reason: format!("cannot read: {e}"),
        })?;
        Self::from_toml(&origin, &text)
    }

    /// Parses TOML settings; `origin` names them in errors.
    pub fn from_toml(origin: &str, text: &str) -> Result<Self, ConfigError> {
        let settings: Settings =
            lowband_catalog::strict_toml::from_str(text).map_err(|e| ConfigError {
                origin: origin.to_owned(),
                key: e.key,
                reason: e.reason,
            })?;
        settings.check(origin)?;
        Ok(settings)
    }

    /// This layer over `lower`: each key this layer sets wins.
    pub fn over(self, lower: Settings) -> Settings {
        Settings {
            store: self.store.or(lower.store),
            listen: self.listen.or(lower.listen),
            default_tier: self.default_tier.or(lower.default_tier),
            manifest_ttl: self.manifest_ttl.or(lower.manifest_ttl),
            max_connections: self.max_connections.or(lower.max_connections),
            header_timeout: self.header_timeout.or(lower.header_timeout),
            idle_timeout: self.idle_timeout.or(lower.idle_timeout),
            max_requests_per_connection: self
                .max_requests_per_connection
                .or(lower.max_requests_per_connection),
            max_header_bytes: self.max_header_bytes.or(lower.max_header_bytes),
            shutdown_grace: self.shutdown_grace.or(lower.shutdown_grace),
            tls_cert: self.tls_cert.or(lower.tls_cert),
            tls_key: self.tls_key.or(lower.tls_key),
            upstream: self.upstream.or(lower.upstream),
            cache_dir: self.cache_dir.or(lower.cache_dir),
            cache_size: self.cache_size.or(lower.cache_size),
            upstream_timeout: self.upstream_timeout.or(lower.upstream_timeout),
            admin_token_file: self.admin_token_file.or(lower.admin_token_file),
        }
    }

    /// Checks the values this layer sets; `origin` names it in errors.
    pub fn check(&self, origin: &str) -> Result<(), ConfigError> {
        let fail = |key: &str, reason: String| {
            Err(ConfigError {
                origin: origin.to_owned(),
                key: key.to_owned(),
                reason,
            })
        };
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
                return fail(key, "must be at least 1".into());
            }
        }
        if let Some(n) = self.max_header_bytes.filter(|&n| n < MIN_HEADER_BYTES) {
            return fail(
                "max_header_bytes",
                format!(
                    "{n} is below the smallest bound HTTP/1.1 parsing allows, {MIN_HEADER_BYTES}"
                ),
            );
        }
        if self.default_tier.as_deref() == Some("") {
            return fail("default_tier", "is empty".into());
        }
        if let Some(size) = &self.cache_size {
            if let Err(reason) = crate::cache::parse_bytes(size) {
                return fail("cache_size", reason);
            }
        }
        Ok(())
    }

    /// Fills in defaults, checks the combination and loads the TLS identity.
    pub fn resolve(self) -> Result<Resolved, ConfigError> {
        let fail = |key: &str, reason: &str| ConfigError {
            origin: "configuration".into(),
            key: key.into(),
            reason: reason.into(),
        };
        let cache = match (&self.upstream, &self.cache_dir, &self.cache_size) {
            (Some(_), _, _) if self.store.is_some() => {
                return Err(fail(
                    "upstream",
                    "a node serves either its own store or a cache of an upstream: give store or upstream, not both",
                ))
            }
            (Some(upstream), Some(dir), Some(size)) => Some(CacheConfig {
                upstream: upstream.clone(),
                dir: dir.clone(),
                size: crate::cache::parse_bytes(size).map_err(|r| fail("cache_size", &r))?,
                timeout: Duration::from_secs(self.upstream_timeout.unwrap_or(DEFAULT_UPSTREAM_TIMEOUT)),
                ttl: Duration::from_secs(
                    self.manifest_ttl
                        .unwrap_or(EdgeConfig::default().manifest_ttl.as_secs()),
                ),
            }),
            (Some(_), None, _) => return Err(fail("cache_dir", "a cache node (upstream) needs a directory for its cache: give --cache-dir (LOWBAND_CACHE_DIR, cache_dir)")),
            (Some(_), _, None) => return Err(fail("cache_size", "a cache node (upstream) needs a byte budget for its objects: give --cache-size, e.g. 20GB (LOWBAND_CACHE_SIZE, cache_size)")),
            (None, _, _) if self.cache_dir.is_some() || self.cache_size.is_some() => {
                return Err(fail("upstream", "cache_dir and cache_size are for a cache node: give its --upstream too, or drop them to serve --store"))
            }
            (None, _, _) => None,
        };
        let admin_tokens = match &self.admin_token_file {
            Some(path) => read_tokens(path).map_err(|r| fail("admin_token_file", &r))?,
            None => Vec::new(),
        };
        let edge_default = EdgeConfig::default();
        let server_default = ServerConfig::default();
        let secs = |s: u64| Duration::from_secs(s);
        let listen = match self.listen {
            Some(a) => a,
            None => DEFAULT_LISTEN.parse().map_err(|e| ConfigError {
                origin: "default".into(),
                key: "listen".into(),
                reason: format!("{e}"),
            })?,
        };
        let settings = Settings {
            store: match cache {
                Some(_) => None,
                None => Some(
                    self.store
                        .unwrap_or_else(|| lowband_catalog::store::DEFAULT_STORE_URL.into()),
                ),
            },
            listen: Some(listen),
            default_tier: Some(self.default_tier.unwrap_or(edge_default.default_tier)),
            manifest_ttl: Some(
                self.manifest_ttl
                    .unwrap_or(edge_default.manifest_ttl.as_secs()),
            ),
            max_connections: Some(
                self.max_connections
                    .unwrap_or(server_default.max_connections),
            ),
            header_timeout: Some(
                self.header_timeout
                    .unwrap_or(server_default.header_timeout.as_secs()),
            ),
            idle_timeout: Some(
                self.idle_timeout
                    .unwrap_or(server_default.idle_timeout.as_secs()),
            ),
            max_requests_per_connection: Some(
                self.max_requests_per_connection
                    .unwrap_or(server_default.max_requests_per_connection),
            ),
            max_header_bytes: Some(
                self.max_header_bytes
                    .unwrap_or(server_default.max_header_bytes),
            ),
            shutdown_grace: Some(
                self.shutdown_grace
                    .unwrap_or(server_default.shutdown_grace.as_secs()),
            ),
            tls_cert: self.tls_cert,
            tls_key: self.tls_key,
            upstream: self.upstream,
            cache_dir: self.cache_dir,
            cache_size: self.cache_size,
            upstream_timeout: cache.as_ref().map(|c| c.timeout.as_secs()),
            admin_token_file: self.admin_token_file,
        };
        settings.check("configuration")?;
        let tls = match (&settings.tls_cert, &settings.tls_key) {
            (Some(cert), Some(key)) => {
                Some(tls::server_config(cert, key).map_err(|e| ConfigError {
                    origin: "configuration".into(),
                    key: "tls_cert".into(),
                    reason: e.to_string(),
                })?)
            }
            (None, None) => None,
            (Some(_), None) | (None, Some(_)) => {
                return Err(ConfigError {
                    origin: "configuration".into(),
                    key: if settings.tls_cert.is_some() {
                        "tls_key"
                    } else {
                        "tls_cert"
                    }
                    .into(),
                    reason: "tls_cert and tls_key go together: give both or neither".into(),
                })
            }
        };
        let edge = EdgeConfig {
            default_tier: settings.default_tier.clone().unwrap_or_default(),
            manifest_ttl: secs(settings.manifest_ttl.unwrap_or_default()),
            admin_tokens,
        };
        let server = ServerConfig {
            max_connections: settings.max_connections.unwrap_or(1),
            header_timeout: secs(settings.header_timeout.unwrap_or(1)),
            idle_timeout: secs(settings.idle_timeout.unwrap_or(1)),
            max_requests_per_connection: settings.max_requests_per_connection.unwrap_or(1),
            max_header_bytes: settings.max_header_bytes.unwrap_or(MIN_HEADER_BYTES),
            shutdown_grace: secs(settings.shutdown_grace.unwrap_or_default()),
            tls,
        };
        Ok(Resolved {
            store: settings.store.clone().unwrap_or_default(),
            listen,
            edge,
            server,
            cache,
            settings,
        })
    }

    /// The layer as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot show settings: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_errors_name_the_file_key_and_reason() {
        let e = Settings::from_toml("edge.toml", "listen = \"0.0.0.0:80\"\nmax_conections = 5\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("edge.toml: "), "{e}");
        assert!(
            e.contains("unknown field `max_conections`") && e.contains("line 2"),
            "{e}"
        );

        let e = Settings::from_toml("edge.toml", "idle_timeout = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("edge.toml: idle_timeout: "), "{e}");

        let e = Settings::from_toml("edge.toml", "max_header_bytes = 100\n")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "edge.toml: max_header_bytes: 100 is below the smallest bound HTTP/1.1 parsing allows, 8192");

        let e = Settings::from_toml("edge.toml", "header_timeout = 0\n")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "edge.toml: header_timeout: must be at least 1");

        let e = Settings::from_file(Path::new("/nonexistent/edge.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/nonexistent/edge.toml: -: cannot read"),
            "{e}"
        );
    }

    #[test]
    fn layers_stack_and_defaults_fill_in() {
        let file = Settings::from_toml(
            "edge.toml",
            "listen = \"0.0.0.0:9000\"\nidle_timeout = 7\ndefault_tier = \"2g\"\n",
        )
        .unwrap();
        let cli = Settings {
            idle_timeout: Some(3),
            ..Settings::default()
        };
        let resolved = cli.over(file).resolve().unwrap();
        assert_eq!(resolved.listen, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(resolved.server.idle_timeout, Duration::from_secs(3));
        assert_eq!(resolved.edge.default_tier, "2g");
        assert_eq!(
            resolved.server.header_timeout,
            ServerConfig::default().header_timeout
        );
        assert!(resolved.server.tls.is_none());
        // The printed configuration reads back as the same settings.
        let again = Settings::from_toml("printed", &resolved.settings.to_toml()).unwrap();
        assert_eq!(again, resolved.settings);
    }

    #[test]
    fn tls_needs_both_files() {
        let half = Settings {
            tls_cert: Some("cert.pem".into()),
            ..Settings::default()
        };
        let e = half.resolve().unwrap_err().to_string();
        assert!(
            e.contains("tls_key: tls_cert and tls_key go together"),
            "{e}"
        );
    }
}
