//! Request handling: routes, variant negotiation and object responses.
//!
//! [`Edge::handle`] takes a plain `http::Request` and returns a response, so
//! tests drive it without sockets; `server` wires it to hyper.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use lowband_catalog::manifest::{Asset, Manifest, Variant};
use lowband_catalog::{ModuleId, ObjectKey, Store};

use crate::body::{self, Body};
use crate::cache::upstream::Doc;
use crate::cache::Cache;
use crate::captions;
use crate::conditional;
use crate::error::EdgeError;
use crate::estimate::{self, Estimator, TcpSample};
use crate::files::{KeyMap, OpenFiles};
use crate::hls;
use crate::lesson;
use crate::metrics::{Metrics, RouteLabel, StoreOp};
use crate::object::{self, with_headers, ObjectSpec};
use crate::paths::{self, Route};
use crate::prepared::{ObjectHeaders, Prepared};
use crate::select::{self, select};
use crate::signals::{self, client_tier, Signals};
use crate::transform;

/// `Cache-Control` of immutable, content-addressed objects.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of everything a manifest can change (negotiated assets,
/// playlists, manifests, the index, pages): short, then revalidate.
const REVALIDATE: &str = "public, max-age=60, must-revalidate";
/// `Cache-Control` of a choice made from the connection estimate: no request
/// header says what it depended on, so no `Vary` can keep a shared cache
/// from handing one client's measured tier to another.
const REVALIDATE_PRIVATE: &str = "private, max-age=60, must-revalidate";
/// `Cache-Control` of probes and errors: never stored.
pub const NO_STORE: &str = "no-store";
/// Names the variant served and why it was chosen.
pub const LOWBAND_VARIANT: HeaderName = HeaderName::from_static("lowband-variant");
const ACCEPT_CH: HeaderName = HeaderName::from_static("accept-ch");
const CRITICAL_CH: HeaderName = HeaderName::from_static("critical-ch");
// Header values checked once, at compile time, not on every request.
const ACCEPT_CH_VALUE: HeaderValue = HeaderValue::from_static(signals::ACCEPT_CH);
/// Room for the headers a response is built with, so that making one
/// never regrows its map.
const RESPONSE_HEADERS: usize = 16;
const IMMUTABLE_VALUE: HeaderValue = HeaderValue::from_static(IMMUTABLE);
const REVALIDATE_VALUE: HeaderValue = HeaderValue::from_static(REVALIDATE);
const REVALIDATE_PRIVATE_VALUE: HeaderValue = HeaderValue::from_static(REVALIDATE_PRIVATE);
/// Manifests cached at most this many at once (absent modules included).
const MANIFEST_CACHE_ENTRIES: usize = 4096;
/// Headers of `/o/` objects kept at most this many at once.
const OBJECT_HEADER_ENTRIES: usize = 4096;
/// On a cache node, a prepared manifest is used this long before the cache
/// is asked whether it still holds it (which revalidates it past its TTL).
const CACHE_RECHECK: Duration = Duration::from_millis(250);
/// Longest a readiness probe waits for the store.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Settings an operator gives the edge.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// Tier for clients that send no signal at all.
    pub default_tier: String,
    /// How long a manifest is used before the store is asked again.
    pub manifest_ttl: Duration,
    /// Bearer tokens that may call the admin routes (none: no admin routes).
    pub admin_tokens: Vec<String>,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self {
            default_tier: "3g".into(),
            manifest_ttl: Duration::from_secs(5),
            admin_tokens: Vec::new(),
        }
    }
}

/// When a manifest was read, and what was read (`None`: the module does not exist).
type CachedManifest = (Instant, Option<Arc<Prepared>>);

/// The edge: a store, a manifest cache and the configuration.
pub struct Edge {
    store: Store,
    /// Open objects of a `file://` store, read without object_store.
    files: Option<OpenFiles>,
    /// On a cache node: its cache (then `store` and `files` are the cache directory).
    cache: Option<Arc<Cache>>,
    config: EdgeConfig,
    manifests: Mutex<HashMap<ModuleId, CachedManifest>>,
    /// The fixed headers of objects asked for by key (immutable, like them).
    object_headers: Mutex<KeyMap<Arc<ObjectHeaders>>>,
    metrics: Arc<Metrics>,
    /// What each client's connections measured, for clients without hints.
    estimator: Mutex<Estimator>,
}

/// The address a request came from, as a request extension, for callers of
/// [`Edge::handle`] (the server passes it to [`Edge::handle_from`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub std::net::IpAddr);

/// What an asset response served, for the metrics (a response extension).
#[derive(Debug, Clone)]
struct Served {
    route: RouteLabel,
    tier: String,
    /// Source bytes less the variant's, counted when the whole variant is sent.
    saved: Option<u64>,
}

impl Edge {
    pub fn new(store: Store, config: EdgeConfig) -> Self {
        Self {
            files: store.local_dir().map(OpenFiles::new),
            cache: None,
            store,
            config,
            manifests: Mutex::new(HashMap::new()),
            object_headers: Mutex::new(KeyMap::default()),
            metrics: Arc::new(Metrics::default()),
            estimator: Mutex::new(Estimator::default()),
        }
    }

    /// A cache node: objects from `cache`'s directory, fetched from its
    /// upstream when missing; manifests and the index revalidated there.
    pub fn with_cache(cache: Arc<Cache>, config: EdgeConfig) -> Result<Self, EdgeError> {
        let dir = cache.dir().root().display().to_string();
        let store = Store::open(&format!("file://{dir}"))?;
        let mut edge = Self::new(store, config);
        edge.metrics = Arc::new(Metrics::with_cache(&cache));
        edge.cache = Some(cache);
        Ok(edge)
    }

    pub fn cache(&self) -> Option<&Arc<Cache>> {
        self.cache.as_ref()
    }

    fn source(&self) -> object::Source<'_> {
        object::Source {
            store: &self.store,
            files: self.files.as_ref(),
            cache: self.cache.as_ref(),
        }
    }

    /// Folds a reading of one of `client`'s connections into its estimate.
    pub fn record_connection(&self, client: std::net::IpAddr, sample: &TcpSample) {
        let Ok(mut estimator) = self.estimator.lock() else {
            return;
        };
        let recorded = estimator.record(client, sample, Instant::now());
        drop(estimator);
        self.metrics.connection_sample(recorded.as_str());
        tracing::trace!(
            %client,
            kbps = sample.rate * 8 / 1000,
            app_limited = sample.app_limited,
            min_rtt_us = sample.min_rtt_us,
            ?recorded,
            "connection sample"
        );
    }

    /// What `client`'s connections measured, if recent enough.
    pub fn connection_estimate(&self, client: std::net::IpAddr) -> Option<estimate::Estimate> {
        self.estimator.lock().ok()?.estimate(client, Instant::now())
    }

    /// The edge's metrics, shared with the server for connection counts.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Answers one request; never fails (errors become responses).
    pub async fn handle<B>(&self, req: Request<B>) -> Response<Body> {
        let client = req.extensions().get::<ClientAddr>().map(|c| c.0);
        self.handle_from(req, client).await
    }

    /// Answers `req` from `client` (whose connections' estimate selects
    /// variants for a request without hints).
    pub async fn handle_from<B>(&self, req: Request<B>, client: Option<IpAddr>) -> Response<Body> {
        let head = req.method() == Method::HEAD;
        let route = paths::route(req.uri().path());
        let mut label = match &route {
            Ok(Route::Asset { .. }) => RouteLabel::Asset,
            Ok(Route::Object(_)) => RouteLabel::Object,
            Ok(Route::Index | Route::ModuleApi(_)) => RouteLabel::Api,
            Ok(Route::Catalog) => RouteLabel::Catalog,
            Ok(Route::Health) => RouteLabel::Health,
            Ok(Route::Ready) => RouteLabel::Ready,
            Ok(Route::Metrics) => RouteLabel::Metrics,
            Ok(Route::Purge(_)) => RouteLabel::Admin,
            Err(_) => RouteLabel::Other,
        };
        let result = match route {
            Ok(Route::Purge(id)) if req.method() == Method::POST => self.purge(&req, &id),
            Ok(Route::Purge(_)) => Err(EdgeError::MethodNotAllowed { allow: "POST" }),
            Ok(route) if req.method() == Method::GET || head => {
                self.route(&req, route, client).await
            }
            Ok(_) => Err(EdgeError::MethodNotAllowed { allow: "GET, HEAD" }),
            Err(e) => Err(e),
        };
        let response = result.unwrap_or_else(EdgeError::into_response);
        let (mut parts, body) = response.into_parts();
        let served = parts.extensions.remove::<Served>();
        let mut tier = None;
        if let Some(served) = &served {
            label = served.route;
            tier = Some(served.tier.as_str());
            if let (Some(saved), false, StatusCode::OK) = (served.saved, head, parts.status) {
                self.metrics.saved(tier, saved);
            }
        }
        let body = if head { body::empty() } else { body };
        let body = self.metrics.response(label, tier, parts.status, body);
        Response::from_parts(parts, body)
    }

    async fn route<B>(
        &self,
        req: &Request<B>,
        route: Route,
        client: Option<IpAddr>,
    ) -> Result<Response<Body>, EdgeError> {
        match route {
            Route::Health => Ok(text(StatusCode::OK, "text/plain; charset=utf-8", "ok\n")),
            Route::Ready => Ok(self.ready().await),
            Route::Metrics => Ok(text(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                self.metrics.render(),
            )),
            // Answered before routing (it takes POST).
            Route::Purge(_) => Err(EdgeError::MethodNotAllowed { allow: "POST" }),
            Route::Index => self.module_index(req.headers()).await,
            Route::ModuleApi(id) => self.module_manifest(req.headers(), &id).await,
            Route::Object(key) => self.object(req, &key).await,
            Route::Asset { module, path } => self.asset(req, &module, &path, client).await,
            Route::Catalog => self.catalog(req).await,
        }
    }

    async fn manifest(&self, id: &ModuleId) -> Result<Option<Arc<Prepared>>, EdgeError> {
        let cached = self.manifests.lock().ok().and_then(|m| m.get(id).cloned());
        if let Some(cache) = &self.cache {
            if let Some((at, prepared)) = &cached {
                if at.elapsed() < CACHE_RECHECK {
                    return Ok(prepared.clone());
                }
            }
            // The cache revalidates; a manifest it still holds keeps its prepared headers.
            let held = self
                .metrics
                .time_store(StoreOp::Manifest, cache.docs().manifest(id))
                .await
                .map_err(upstream_error)?;
            let prepared = match (held, cached) {
                (Some(m), Some((_, Some(p)))) if Arc::ptr_eq(&m, &p.manifest) => Some(p),
                (Some(m), _) => Some(Arc::new(Prepared::new(m))),
                (None, _) => None,
            };
            self.remember(id, prepared.clone());
            return Ok(prepared);
        }
        if let Some((at, cached)) = cached {
            if at.elapsed() < self.config.manifest_ttl {
                return Ok(cached);
            }
        }
        let fresh = self
            .metrics
            .time_store(StoreOp::Manifest, self.store.manifest(id))
            .await?
            .map(|m| Arc::new(Prepared::new(Arc::new(m))));
        self.remember(id, fresh.clone());
        Ok(fresh)
    }

    fn remember(&self, id: &ModuleId, prepared: Option<Arc<Prepared>>) {
        if let Ok(mut cache) = self.manifests.lock() {
            if cache.len() >= MANIFEST_CACHE_ENTRIES {
                cache.clear();
            }
            cache.insert(id.clone(), (Instant::now(), prepared));
        }
    }

    /// The module index: from the store, or as the cache holds it.
    async fn index(&self) -> Result<Arc<lowband_catalog::ModuleIndex>, EdgeError> {
        match &self.cache {
            Some(cache) => self
                .metrics
                .time_store(StoreOp::Index, cache.docs().index())
                .await
                .map_err(upstream_error),
            None => Ok(Arc::new(
                self.metrics
                    .time_store(StoreOp::Index, self.store.index())
                    .await?,
            )),
        }
    }

    /// `POST /admin/v1/purge/<module>`: forgets the module's manifest (and
    /// the index) here and, on a cache node, on disk, so that its pages and
    /// assets are made from what the upstream holds now.
    fn purge<B>(&self, req: &Request<B>, id: &ModuleId) -> Result<Response<Body>, EdgeError> {
        if self.config.admin_tokens.is_empty() {
            return Err(EdgeError::NotFound);
        }
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(EdgeError::Unauthorized(
                "send Authorization: Bearer <token>",
            ))?;
        if !self
            .config
            .admin_tokens
            .iter()
            .any(|t| constant_time_eq(t.as_bytes(), token.trim().as_bytes()))
        {
            return Err(EdgeError::Unauthorized("the token is not an admin token"));
        }
        if let Ok(mut manifests) = self.manifests.lock() {
            manifests.remove(id);
        }
        let mut on_disk = false;
        if let Some(cache) = &self.cache {
            cache.forget_absent();
            for doc in [Doc::Manifest(id.clone()), Doc::Index] {
                let had = cache.docs().purge(&doc).map_err(|e| EdgeError::Upstream {
                    reason: format!("cannot purge {}: {e}", doc.key()),
                    timeout: false,
                })?;
                on_disk |= had && doc != Doc::Index;
            }
        }
        tracing::info!(module = %id, held = on_disk, "purged");
        let json = serde_json::json!({ "purged": id.as_str(), "held": on_disk });
        Ok(text(StatusCode::OK, "application/json", json.to_string()))
    }

    async fn asset<B>(
        &self,
        req: &Request<B>,
        module: &ModuleId,
        path: &str,
        client: Option<IpAddr>,
    ) -> Result<Response<Body>, EdgeError> {
        let prepared = self.manifest(module).await?.ok_or(EdgeError::NotFound)?;
        let manifest = &prepared.manifest;
        if let Some((video, action)) = lesson::split(path) {
            if let Some((index, _)) = prepared.asset(video).filter(|(_, a)| lesson::is_lesson(a)) {
                return self.lesson(req, client, &prepared, index, action).await;
            }
        }
        if let Some(response) = self.subtitle_playlist(req.headers(), manifest, path) {
            return response.map(|mut r| {
                r.extensions_mut().insert(Served {
                    route: RouteLabel::Playlist,
                    tier: "none".into(),
                    saved: None,
                });
                r
            });
        }
        let master = path
            .strip_suffix("/master.m3u8")
            .filter(|video| prepared.asset(video).is_some());
        let (index, asset): (usize, &Asset) = match prepared.asset(master.unwrap_or(path)) {
            Some(a) => a,
            // `/m/<module>/` and `/m/<module>/dir/` mean the directory's index page.
            None if path.is_empty() || path.ends_with('/') => prepared
                .asset(&format!("{path}index.html"))
                .ok_or(EdgeError::NotFound)?,
            None => return Err(EdgeError::NotFound),
        };
        let (signals, rank, reason) = self.client(req, client, manifest);
        let selected = select(asset, &manifest.tiers, rank, &signals).ok_or(EdgeError::NotFound)?;
        // A playlist is made here, not stored: no-transform has no original to pick.
        let (variant, no_transform) = if master.is_some() {
            (selected, None)
        } else {
            transform::apply(asset, selected, transform::requested(req.headers()))
        };
        let tier = manifest.tiers.get(rank).map_or("?", |t| t.name.as_str());
        self.metrics.selection(Some(tier), reason.as_str());
        tracing::debug!(module = %module, asset = path, variant = %variant.name, tier, reason = reason.as_str(), connection_kbps = ?signals.connection.map(|e| e.kbps), "selected");

        let mut headers = HeaderMap::with_capacity(RESPONSE_HEADERS);
        // Where no-transform can pick the original, the request's Cache-Control selects too.
        headers.insert(header::VARY, prepared.vary(index, master.is_none()));
        headers.insert(ACCEPT_CH, ACCEPT_CH_VALUE);
        if let Some(critical) = signals::critical_ch(asset, &signals) {
            headers.insert(CRITICAL_CH, HeaderValue::from_static(critical));
        }
        let cache_control = if reason == signals::Reason::Connection {
            REVALIDATE_PRIVATE_VALUE
        } else {
            REVALIDATE_VALUE
        };
        headers.insert(header::CACHE_CONTROL, cache_control.clone());
        if let Some(v) = variant_label(&variant.name, tier, reason, no_transform) {
            headers.insert(LOWBAND_VARIANT, v);
        }
        let published = Some(prepared.published);
        if master.is_some() {
            let tracks: Vec<_> = (0..asset.captions.len())
                .filter(|&i| caption_object(manifest, asset, i).is_some())
                .map(|i| hls::CaptionTrack {
                    uri: format!(
                        "/m/{module}/{}/captions/{i}.m3u8",
                        lowband_catalog::urls::encode_path(&asset.path)
                    ),
                    language: asset.captions[i].language.clone(),
                })
                .collect();
            let playlist = hls::master_playlist(
                asset,
                &manifest.tiers,
                rank,
                Some(variant),
                manifest.module.language.as_deref(),
                &tracks,
                &|v| select::playable(v, &signals),
            )
            .ok_or(EdgeError::NotFound)?;
            let mut response = small_response(
                req.headers(),
                playlist.into_bytes(),
                "application/vnd.apple.mpegurl",
                published,
                headers,
            )?;
            response.extensions_mut().insert(Served {
                route: RouteLabel::Playlist,
                tier: tier.to_owned(),
                saved: None,
            });
            return Ok(response);
        }
        let mut response = self
            .send_variant(req, &prepared, index, variant, cache_control, headers)
            .await?;
        response.extensions_mut().insert(Served {
            route: RouteLabel::Asset,
            tier: tier.to_owned(),
            saved: Some(asset.source.bytes.saturating_sub(variant.bytes)),
        });
        Ok(response)
    }

    /// Sends `variant` of the asset at `index` with the headers its manifest
    /// prepared for it, plus `headers`.
    async fn send_variant<B>(
        &self,
        req: &Request<B>,
        prepared: &Prepared,
        index: usize,
        variant: &Variant,
        cache_control: HeaderValue,
        headers: HeaderMap,
    ) -> Result<Response<Body>, EdgeError> {
        let made;
        let fixed = match prepared.object_headers(index, variant) {
            Some(fixed) => fixed,
            None => {
                made = ObjectHeaders::new(&variant.key, &variant.mime, variant.encoding.as_deref());
                &made
            }
        };
        let spec = ObjectSpec {
            key: &variant.key,
            known_len: Some(variant.bytes),
            last_modified: Some(prepared.published),
            last_modified_value: prepared.published_value(),
            mime: &variant.mime,
            fixed,
            cache_control,
            head_only: req.method() == Method::HEAD,
        };
        object::send(self.source(), &self.metrics, req.headers(), spec, headers).await
    }

    /// What the request says of its client (and what its connections
    /// measured), and the rank of the tier chosen for it in `manifest`, with why.
    fn client<B>(
        &self,
        req: &Request<B>,
        client: Option<IpAddr>,
        manifest: &Manifest,
    ) -> (Signals, usize, signals::Reason) {
        let mut signals = Signals::from_request(req.headers(), req.uri().query());
        signals.connection = client.and_then(|c| self.connection_estimate(c));
        let default_rank = manifest
            .tier_rank(&self.config.default_tier)
            .unwrap_or(manifest.tiers.len() / 2);
        let (rank, reason) = client_tier(&signals, &manifest.tiers, default_rank);
        (signals, rank, reason)
    }

    /// `<video>/captions/<n>.m3u8`: the subtitle playlist of a video's n-th caption file.
    fn subtitle_playlist(
        &self,
        req_headers: &HeaderMap,
        manifest: &Manifest,
        path: &str,
    ) -> Option<Result<Response<Body>, EdgeError>> {
        let (video, rest) = path.rsplit_once("/captions/")?;
        let index: usize = rest.strip_suffix(".m3u8")?.parse().ok()?;
        let asset = manifest.asset(video)?;
        let Some(vtt) = caption_object(manifest, asset, index) else {
            return Some(Err(EdgeError::NotFound));
        };
        let text = hls::subtitle_playlist(&format!("/o/{vtt}"), asset.duration.unwrap_or(0.0));
        Some(small_response(
            req_headers,
            text.into_bytes(),
            "application/vnd.apple.mpegurl",
            Some(conditional::from_unix(manifest.published_at)),
            HeaderMap::new(),
        ))
    }

    async fn object<B>(
        &self,
        req: &Request<B>,
        key: &ObjectKey,
    ) -> Result<Response<Body>, EdgeError> {
        let spec = ObjectSpec {
            key,
            known_len: None,
            last_modified: None,
            last_modified_value: None,
            mime: object_mime(key.ext()),
            fixed: &self.object_headers(key),
            cache_control: IMMUTABLE_VALUE,
            head_only: req.method() == Method::HEAD,
        };
        object::send(
            self.source(),
            &self.metrics,
            req.headers(),
            spec,
            HeaderMap::with_capacity(RESPONSE_HEADERS),
        )
        .await
    }

    /// The headers `key` is sent with at `/o/`: made once, then shared.
    fn object_headers(&self, key: &ObjectKey) -> Arc<ObjectHeaders> {
        let Ok(mut cache) = self.object_headers.lock() else {
            return Arc::new(ObjectHeaders::new(key, object_mime(key.ext()), None));
        };
        if let Some(made) = cache.get(key) {
            return Arc::clone(made);
        }
        if cache.len() >= OBJECT_HEADER_ENTRIES {
            cache.clear();
        }
        let made = Arc::new(ObjectHeaders::new(key, object_mime(key.ext()), None));
        cache.insert(key.clone(), Arc::clone(&made));
        made
    }

    async fn module_index(&self, req_headers: &HeaderMap) -> Result<Response<Body>, EdgeError> {
        let index = self.index().await?;
        let published = index.modules.iter().map(|m| m.published_at).max();
        json_response(
            req_headers,
            index.to_json(),
            published.map(conditional::from_unix),
        )
    }

    async fn module_manifest(
        &self,
        req_headers: &HeaderMap,
        id: &ModuleId,
    ) -> Result<Response<Body>, EdgeError> {
        let manifest = &self
            .manifest(id)
            .await?
            .ok_or(EdgeError::NotFound)?
            .manifest;
        json_response(
            req_headers,
            manifest.to_json(),
            Some(conditional::from_unix(manifest.published_at)),
        )
    }

    /// 200 when the store answers and the module index parses; else 503
    /// with a stable reason (detail goes to the log, not the prober).
    async fn ready(&self) -> Response<Body> {
        if self.cache.is_some() {
            // A cache node is ready when it can list modules: held, or from its upstream.
            let (status, json) = match tokio::time::timeout(READY_TIMEOUT, self.index()).await {
                Err(_) => not_ready(
                    "upstream_timeout",
                    "The cache holds no module index and the upstream did not answer in time.",
                ),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "not ready");
                    not_ready(
                        "upstream_unavailable",
                        "The cache holds no module index and the upstream cannot be reached.",
                    )
                }
                Ok(Ok(index)) => (
                    StatusCode::OK,
                    serde_json::json!({ "ready": true, "modules": index.modules.len() }),
                ),
            };
            return text(status, "application/json", json.to_string());
        }
        let key = lowband_catalog::keys::MODULE_INDEX_KEY;
        let read = self
            .metrics
            .time_store(StoreOp::Index, self.store.get_bytes(key));
        let (status, json) = match tokio::time::timeout(READY_TIMEOUT, read).await {
            Err(_) => not_ready("store_timeout", "The store did not answer in time."),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "not ready: store unavailable");
                not_ready("store_unavailable", "The store cannot be reached.")
            }
            Ok(Ok(None)) => not_ready(
                "index_missing",
                "The store has no module index: nothing is published there yet, or this is the wrong store.",
            ),
            Ok(Ok(Some(bytes))) => match lowband_catalog::ModuleIndex::from_json(key, &bytes) {
                Ok(index) => (
                    StatusCode::OK,
                    serde_json::json!({ "ready": true, "modules": index.modules.len() }),
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "not ready: module index unreadable");
                    not_ready("index_unreadable", "The module index cannot be read.")
                }
            },
        };
        text(status, "application/json", json.to_string())
    }

    /// The catalog page: every module with its lessons and what they cost.
    async fn catalog<B>(&self, req: &Request<B>) -> Result<Response<Body>, EdgeError> {
        let index = self.index().await?;
        let published = index.modules.iter().map(|m| m.published_at).max();
        let mut manifests = Vec::new();
        for m in index.modules.iter().take(lesson::CATALOG_MODULES) {
            if let Some(manifest) = self.manifest(&m.id).await? {
                manifests.push(manifest);
            }
        }
        let signals = Signals::from_request(req.headers(), req.uri().query());
        let entries: Vec<_> = manifests
            .iter()
            .map(|prepared| lesson::CatalogEntry {
                manifest: &prepared.manifest,
                signals: &signals,
            })
            .collect();
        let html = lesson::catalog_page(&entries);
        // Often a teacher's first page on this origin: ask for hints here.
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT_CH, ACCEPT_CH_VALUE);
        headers.insert(header::VARY, HeaderValue::from_static("Accept, Cookie"));
        small_response(
            req.headers(),
            html.into_bytes(),
            "text/html; charset=utf-8",
            published.map(conditional::from_unix),
            headers,
        )
    }

    /// A video's lesson page (`<video>/watch`, `?q=` to pick a quality), the
    /// Auto player's redirect to the rung chosen now (`<video>/play`) or a
    /// download (`<video>/download?v=<variant>`).
    async fn lesson<B>(
        &self,
        req: &Request<B>,
        client: Option<IpAddr>,
        prepared: &Prepared,
        index: usize,
        action: lesson::Action,
    ) -> Result<Response<Body>, EdgeError> {
        let manifest = &prepared.manifest;
        let asset = &manifest.assets[index];
        let query = req.uri().query();
        let published = Some(prepared.published);
        if action == lesson::Action::Download {
            let variant = lesson::download_variant(asset, query)?;
            let mut headers = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&lesson::content_disposition(asset, variant)) {
                headers.insert(header::CONTENT_DISPOSITION, v);
            }
            return self
                .send_variant(req, prepared, index, variant, REVALIDATE_VALUE, headers)
                .await;
        }
        if let Some(cookies) = lesson::pick(query, manifest)? {
            // Remember the choice, then show the page at its own URL.
            let mut headers = HeaderMap::new();
            for c in cookies {
                if let Ok(v) = HeaderValue::from_str(&c) {
                    headers.append(header::SET_COOKIE, v);
                }
            }
            if let Ok(v) = HeaderValue::from_str(req.uri().path()) {
                headers.insert(header::LOCATION, v);
            }
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_STORE));
            return Ok(with_headers(StatusCode::SEE_OTHER, headers, body::empty()));
        }
        let (signals, rank, reason) = self.client(req, client, manifest);
        let offers = lesson::offers(manifest, asset, &signals);
        let current = lesson::resolve_choice(
            lesson::current_choice(req.headers(), manifest, &signals),
            &offers,
            manifest,
            asset,
            &signals,
        );
        if action == lesson::Action::Play {
            let variant =
                select(asset, &manifest.tiers, rank, &signals).ok_or(EdgeError::NotFound)?;
            let tier = manifest.tiers.get(rank).map_or("?", |t| t.name.as_str());
            self.metrics.selection(Some(tier), reason.as_str());
            tracing::debug!(asset = %asset.path, variant = %variant.name, tier, reason = reason.as_str(), connection_kbps = ?signals.connection.map(|e| e.kbps), "selected for play");
            let mut headers = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&format!("/o/{}", variant.key)) {
                headers.insert(header::LOCATION, v);
            }
            if let Some(v) = variant_label(&variant.name, tier, reason, None) {
                headers.insert(LOWBAND_VARIANT, v);
            }
            // Decided for this client now; the object it names is what stays cached.
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_STORE));
            return Ok(with_headers(StatusCode::FOUND, headers, body::empty()));
        }
        let auto_now = select(asset, &manifest.tiers, rank, &signals)
            .map(|v| (v, reason != signals::Reason::Default));
        let html = lesson::lesson_page(&lesson::Lesson {
            manifest,
            asset,
            offers: &offers,
            current,
            auto_now,
            accept_webp: signals.accept_webp,
        });
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT_CH, ACCEPT_CH_VALUE);
        headers.insert(
            header::VARY,
            HeaderValue::from_static(signals::vary(lowband_catalog::manifest::AssetKind::Video)),
        );
        // It says what this client's link and cookies chose: revalidate every time.
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(lesson::PAGE_CACHE_CONTROL),
        );
        small_response(
            req.headers(),
            html.into_bytes(),
            "text/html; charset=utf-8",
            published,
            headers,
        )
    }
}

/// The stored WebVTT object of an asset's `index`-th caption.
fn caption_object<'a>(
    manifest: &'a Manifest,
    asset: &'a Asset,
    index: usize,
) -> Option<&'a ObjectKey> {
    captions::vtt_object(manifest, asset.captions.get(index)?)
}

fn upstream_error(e: Arc<crate::cache::upstream::UpstreamError>) -> EdgeError {
    EdgeError::Upstream {
        timeout: e.is_timeout(),
        reason: e.to_string(),
    }
}

/// Compares secrets in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn text(status: StatusCode, mime: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(body::full(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(NO_STORE));
    response
}

fn not_ready(reason: &str, message: &str) -> (StatusCode, serde_json::Value) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        serde_json::json!({ "ready": false, "reason": reason, "message": message }),
    )
}

/// JSON: see [`small_response`].
fn json_response(
    req_headers: &HeaderMap,
    json: Vec<u8>,
    changed: Option<SystemTime>,
) -> Result<Response<Body>, EdgeError> {
    small_response(
        req_headers,
        json,
        "application/json",
        changed,
        HeaderMap::new(),
    )
}

/// A small generated body (JSON, a playlist, a page) with a content-hash
/// ETag and the `Last-Modified` of what it was made from, answering
/// conditional requests.
/// `Lowband-Variant`: the variant served, its client's tier and why
/// (`144p; tier=2g; reason=ect`), and a no-transform override if any.
fn variant_label(
    variant: &str,
    tier: &str,
    reason: signals::Reason,
    no_transform: Option<transform::NoTransform>,
) -> Option<HeaderValue> {
    let mut label = String::with_capacity(96);
    for part in [variant, "; tier=", tier, "; reason=", reason.as_str()] {
        label.push_str(part);
    }
    if let Some(n) = no_transform {
        label.push_str("; no-transform=");
        label.push_str(n.as_str());
    }
    HeaderValue::from_maybe_shared(Bytes::from(label)).ok()
}

fn small_response(
    req_headers: &HeaderMap,
    bytes: Vec<u8>,
    mime: &'static str,
    changed: Option<SystemTime>,
    mut headers: HeaderMap,
) -> Result<Response<Body>, EdgeError> {
    let etag = format!("\"{}\"", lowband_catalog::ContentHash::of(&bytes));
    // A caller may have set a stricter one (a choice only this client's link explains).
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static(REVALIDATE));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    let last_modified = changed.map(|t| conditional::last_modified(t, SystemTime::now()));
    if let Some(t) = last_modified {
        object::set_last_modified(&mut headers, t, None);
    }
    if let Some(not_modified) =
        object::preconditions(req_headers, &mut headers, &etag, last_modified)?
    {
        return Ok(not_modified);
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    Ok(with_headers(StatusCode::OK, headers, body::full(bytes)))
}

/// MIME type of an object from its key's extension.
pub fn object_mime(ext: &str) -> &'static str {
    match ext {
        "mp4" => "video/mp4",
        "m4a" => "audio/mp4",
        "webm" => "video/webm",
        "jpg" => "image/jpeg",
        "webp" => "image/webp",
        // Every AVIF a page names is an object (`/o/<key>.avif`).
        "avif" => "image/avif",
        "gif" => "image/gif",
        "png" => "image/png",
        "mp3" => "audio/mpeg",
        "aac" => "audio/aac",
        "wav" => "audio/wav",
        "flac" => "audio/flac",
        "ogg" | "opus" => "audio/ogg",
        "woff2" => "font/woff2",
        "xml" => "application/xml",
        "html" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "vtt" => "text/vtt; charset=utf-8",
        "json" => "application/json",
        "m3u8" => "application/vnd.apple.mpegurl",
        "txt" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    }
}
