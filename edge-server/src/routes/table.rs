//! The route table: every URL the edge answers, and which file answers it.
//!
//! | path | answered in |
//! |---|---|
//! | `/` | [`super::catalog`]: the catalog page |
//! | `/healthz`, `/readyz`, `/metrics` | [`super::probes`] |
//! | `/api/v1/modules`, `/api/v1/modules/<module>` | [`super::api`]: the index and manifests as JSON |
//! | `POST /admin/v1/purge/<module>` | [`super::admin`] |
//! | `/o/<key>` | [`super::object`]: a stored object by key |
//! | `/m/<module>/<video>/watch`, `/play`, `/download` | [`super::lesson`] |
//! | `/m/<module>/<video>/master.m3u8`, `/captions/<n>.m3u8` | [`super::hls`] |
//! | `/m/<module>/<path>`, `/m/<module>/<dir>/` | [`super::asset`]: the variant chosen for the client |
//!
//! [`route`] reads the URL path alone: percent-decoded, normalised and
//! checked. Asset paths are looked up in the manifest, never on a
//! filesystem, but a path that tries to leave its module (`..`, encoded
//! slashes, NUL, invalid UTF-8) is refused outright with 400 so nothing
//! downstream has to care. A path inside a module means what its manifest
//! says ([`in_module`]): `<video>/watch` is a lesson only where `<video>`
//! is a video with something to play, and an asset of that name otherwise.

use lowband_catalog::{ModuleId, ObjectKey};
use percent_encoding::percent_decode_str;

use crate::http::error::EdgeError;
use crate::metrics::RouteLabel;
use crate::objects::prepared::Prepared;
use crate::pages::quality::is_lesson;

#[derive(Debug, PartialEq)]
pub enum Route {
    Catalog,
    Health,
    Ready,
    Metrics,
    Index,
    ModuleApi(ModuleId),
    Object(ObjectKey),
    /// `path` is `/`-joined, empty for the module's root.
    Asset {
        module: ModuleId,
        path: String,
    },
    /// `POST /admin/v1/purge/<module>`: forget a module's manifest (operators, with a token).
    Purge(ModuleId),
}

impl Route {
    /// How requests for the route are counted (an asset response may say
    /// more precisely what it served, see [`Served`]).
    pub fn label(&self) -> RouteLabel {
        match self {
            Route::Asset { .. } => RouteLabel::Asset,
            Route::Object(_) => RouteLabel::Object,
            Route::Index | Route::ModuleApi(_) => RouteLabel::Api,
            Route::Catalog => RouteLabel::Catalog,
            Route::Health => RouteLabel::Health,
            Route::Ready => RouteLabel::Ready,
            Route::Metrics => RouteLabel::Metrics,
            Route::Purge(_) => RouteLabel::Admin,
        }
    }
}

/// What a path inside a module names, once its manifest is known; each
/// holds the index of its asset in the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InModule {
    /// `<video>/watch`, `<video>/play` or `<video>/download` of a video
    /// with a lesson page.
    Lesson { asset: usize, action: Action },
    /// `<video>/captions/<n>.m3u8`: the subtitle playlist of its n-th caption.
    Captions { asset: usize, caption: usize },
    /// `<video>/master.m3u8`: the master playlist chosen for the client.
    Master { asset: usize },
    /// The asset at the path, or a directory's `index.html`: the variant
    /// chosen for the client.
    Asset { asset: usize },
}

/// What the lesson routes under a video's path ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The lesson page.
    Watch,
    /// The Auto player's source: a redirect to the rung chosen now.
    Play,
    /// One variant, as an attachment.
    Download,
}

/// What `path` (as [`route`] made it) names in the module `prepared` is of.
pub fn in_module(prepared: &Prepared, path: &str) -> Result<InModule, EdgeError> {
    if let Some((video, action)) = lesson_action(path) {
        if let Some((asset, _)) = prepared.asset(video).filter(|(_, a)| is_lesson(a)) {
            return Ok(InModule::Lesson { asset, action });
        }
    }
    if let Some((video, caption)) = caption_playlist(path) {
        if let Some((asset, _)) = prepared.asset(video) {
            return Ok(InModule::Captions { asset, caption });
        }
    }
    if let Some((asset, _)) = path
        .strip_suffix("/master.m3u8")
        .and_then(|video| prepared.asset(video))
    {
        return Ok(InModule::Master { asset });
    }
    let found = match prepared.asset(path) {
        Some(found) => Some(found),
        // `/m/<module>/` and `/m/<module>/dir/` mean the directory's index page.
        None if path.is_empty() || path.ends_with('/') => {
            prepared.asset(&format!("{path}index.html"))
        }
        None => None,
    };
    let (asset, _) = found.ok_or(EdgeError::NotFound)?;
    Ok(InModule::Asset { asset })
}

/// Splits `<video>/watch`, `<video>/play` or `<video>/download` into the
/// video's path and the action.
fn lesson_action(path: &str) -> Option<(&str, Action)> {
    let (video, action) = path.rsplit_once('/')?;
    let action = match action {
        "watch" => Action::Watch,
        "play" => Action::Play,
        "download" => Action::Download,
        _ => return None,
    };
    Some((video, action))
}

/// Splits `<video>/captions/<n>.m3u8` into the video's path and `n`.
fn caption_playlist(path: &str) -> Option<(&str, usize)> {
    let (video, rest) = path.rsplit_once("/captions/")?;
    Some((video, rest.strip_suffix(".m3u8")?.parse().ok()?))
}

/// What an asset response served, for the metrics (a response extension).
#[derive(Debug, Clone)]
pub struct Served {
    pub route: RouteLabel,
    pub tier: String,
    /// Source bytes less the variant's, counted when the whole variant is sent.
    pub saved: Option<u64>,
}

/// Longest path accepted, in bytes, before decoding.
const MAX_PATH: usize = 2048;

pub fn route(raw: &str) -> Result<Route, EdgeError> {
    if raw.len() > MAX_PATH {
        return Err(EdgeError::BadRequest("path too long"));
    }
    if raw == "/" {
        return Ok(Route::Catalog);
    }
    if raw == "/healthz" {
        return Ok(Route::Health);
    }
    if raw == "/readyz" {
        return Ok(Route::Ready);
    }
    if raw == "/metrics" {
        return Ok(Route::Metrics);
    }
    if raw == "/api/v1/modules" || raw == "/api/v1/modules/" {
        return Ok(Route::Index);
    }
    if let Some(rest) = raw.strip_prefix("/api/v1/modules/") {
        let id = decode_segment(rest)?;
        return ModuleId::parse(&id)
            .map(Route::ModuleApi)
            .map_err(|_| EdgeError::NotFound);
    }
    if let Some(rest) = raw.strip_prefix("/admin/v1/purge/") {
        return ModuleId::parse(&decode_segment(rest)?)
            .map(Route::Purge)
            .map_err(|_| EdgeError::NotFound);
    }
    if let Some(rest) = raw.strip_prefix("/o/") {
        return ObjectKey::parse(rest)
            .map(Route::Object)
            .map_err(|_| EdgeError::NotFound);
    }
    if let Some(rest) = raw.strip_prefix("/m/") {
        let (module, path) = rest.split_once('/').unwrap_or((rest, ""));
        let module = ModuleId::parse(&decode_segment(module)?).map_err(|_| EdgeError::NotFound)?;
        let trailing = path.ends_with('/') || path.is_empty();
        let segments = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(decode_segment)
            .collect::<Result<Vec<_>, _>>()?;
        let mut path = segments.join("/");
        if trailing && !path.is_empty() {
            path.push('/');
        }
        return Ok(Route::Asset { module, path });
    }
    Err(EdgeError::NotFound)
}

/// Decodes one path segment, refusing anything that could change which
/// directory the path names.
fn decode_segment(segment: &str) -> Result<String, EdgeError> {
    let decoded = percent_decode_str(segment)
        .decode_utf8()
        .map_err(|_| EdgeError::BadRequest("path is not valid UTF-8"))?;
    if decoded == "." || decoded == ".." {
        return Err(EdgeError::BadRequest("path leaves its directory"));
    }
    if decoded
        .chars()
        .any(|c| matches!(c, '/' | '\\' | '\0') || c.is_control())
    {
        return Err(EdgeError::BadRequest(
            "path segment holds a separator or control character",
        ));
    }
    Ok(decoded.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn asset(raw: &str) -> Option<(String, String)> {
        match route(raw) {
            Ok(Route::Asset { module, path }) => Some((module.to_string(), path)),
            _ => None,
        }
    }

    #[test]
    fn routes() {
        assert_eq!(route("/").unwrap(), Route::Catalog);
        assert_eq!(route("/healthz").unwrap(), Route::Health);
        assert_eq!(route("/readyz").unwrap(), Route::Ready);
        assert_eq!(route("/metrics").unwrap(), Route::Metrics);
        assert_eq!(route("/api/v1/modules").unwrap(), Route::Index);
        assert_eq!(
            route("/admin/v1/purge/m1").unwrap(),
            Route::Purge(lowband_catalog::ModuleId::parse("m1").unwrap())
        );
        assert!(route("/admin/v1/purge/..%2f").is_err());
        assert!(matches!(
            route("/api/v1/modules/m1").unwrap(),
            Route::ModuleApi(_)
        ));
        let key = ObjectKey::for_bytes(b"x", "mp4");
        assert_eq!(route(&format!("/o/{key}")).unwrap(), Route::Object(key));
        assert_eq!(
            asset("/m/m1/lessons/intro.mp4"),
            Some(("m1".into(), "lessons/intro.mp4".into()))
        );
        assert_eq!(asset("/m/m1/"), Some(("m1".into(), "".into())));
        assert_eq!(asset("/m/m1"), Some(("m1".into(), "".into())));
        assert_eq!(asset("/m/m1/img/"), Some(("m1".into(), "img/".into())));
        assert_eq!(
            asset("/m/m1/a%20b.jpg"),
            Some(("m1".into(), "a b.jpg".into()))
        );
        assert_eq!(
            asset("/m/m1/%E1%9E%80.html"),
            Some(("m1".into(), "ក.html".into()))
        );
        assert_eq!(asset("/m/m1//x.jpg"), Some(("m1".into(), "x.jpg".into())));
    }

    #[test]
    fn lesson_actions_split_only_on_the_last_segment() {
        assert_eq!(
            lesson_action("a/v.mp4/watch"),
            Some(("a/v.mp4", Action::Watch))
        );
        assert_eq!(lesson_action("v.mp4/play"), Some(("v.mp4", Action::Play)));
        assert_eq!(
            lesson_action("v.mp4/download"),
            Some(("v.mp4", Action::Download))
        );
        assert_eq!(lesson_action("v.mp4/watch/x"), None);
        assert_eq!(lesson_action("watch"), None);
        assert_eq!(
            caption_playlist("a/v.mp4/captions/1.m3u8"),
            Some(("a/v.mp4", 1))
        );
        assert_eq!(caption_playlist("v.mp4/captions/x.m3u8"), None);
        assert_eq!(caption_playlist("v.mp4/captions/1.vtt"), None);
    }

    #[test]
    fn traversal_corpus_is_refused() {
        for raw in [
            "/m/m1/../m2/index.html",
            "/m/m1/%2e%2e/secret",
            "/m/m1/%2E%2E/secret",
            "/m/m1/.%2e/x",
            "/m/m1/a%2fb",
            "/m/m1/a%2Fb",
            "/m/m1/a%5cb",
            "/m/m1/a%00b",
            "/m/m1/%c0%ae%c0%ae/x",
            "/m/m1/%ff",
            "/m/m1/./x",
            "/m/%2e%2e/x",
            "/o/objects/../../etc/passwd",
            "/m/..",
        ] {
            let r = route(raw);
            assert!(
                matches!(r, Err(EdgeError::BadRequest(_) | EdgeError::NotFound)),
                "{raw} routed to {r:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn routed_asset_paths_never_escape(raw in "/m/m1/[a-z./%0-9A-F]{0,40}") {
            if let Ok(Route::Asset { path, .. }) = route(&raw) {
                prop_assert!(path.split('/').all(|s| s != ".." && s != "."));
                prop_assert!(!path.contains('\0') && !path.contains('\\') && !path.starts_with('/'));
            }
        }
    }
}
