//! `/m/<module>/<video>/watch`, `/play` and `/download`: a video's lesson
//! page (`?q=` to pick a quality), the Auto player's redirect to the rung
//! chosen now, and a download of one variant (`?v=<variant>`).

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response, StatusCode};
use lowband_catalog::manifest::{Asset, AssetKind, Variant};
use lowband_catalog::urls::encode_segment;

use super::asset::{send_variant, variant_label, ACCEPT_CH_VALUE};
use super::table::Action;
use crate::choose::request::query_values;
use crate::choose::select::select;
use crate::choose::signals::{self, Reason};
use crate::edge::Edge;
use crate::http::body::{self, Body};
use crate::http::error::EdgeError;
use crate::http::response::{
    small_response, with_headers, ACCEPT_CH, LOWBAND_VARIANT, NO_STORE, PRIVATE_PAGE, REVALIDATE,
};
use crate::objects::prepared::Prepared;
use crate::pages::lesson::{lesson_page, Lesson, VARIANT_PARAM};
use crate::pages::quality::{current_choice, is_media, offers, pick, resolve_choice};
use crate::pages::words::{Words, VARY_LANGUAGE};

pub async fn lesson<B>(
    edge: &Edge,
    req: &Request<B>,
    client: Option<IpAddr>,
    prepared: &Prepared,
    index: usize,
    action: Action,
) -> Result<Response<Body>, EdgeError> {
    if action == Action::Download {
        return download(edge, req, prepared, index).await;
    }
    if let Some(cookies) = pick(req.uri().query(), &prepared.manifest)? {
        return Ok(remember(req.uri().path(), cookies));
    }
    match action {
        Action::Play => play(edge, req, client, prepared, index),
        _ => watch(edge, req, client, prepared, index),
    }
}

/// One variant as an attachment, named after the video and the variant.
async fn download<B>(
    edge: &Edge,
    req: &Request<B>,
    prepared: &Prepared,
    index: usize,
) -> Result<Response<Body>, EdgeError> {
    let asset = &prepared.manifest.assets[index];
    let variant = download_variant(asset, req.uri().query())?;
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&content_disposition(asset, variant)) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    send_variant(edge, req, prepared, index, variant, REVALIDATE, headers).await
}

/// The picker's answer: remember the choice, then show the page at its own URL.
fn remember(path: &str, cookies: Vec<String>) -> Response<Body> {
    let mut headers = HeaderMap::new();
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(&c) {
            headers.append(header::SET_COOKIE, v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(path) {
        headers.insert(header::LOCATION, v);
    }
    headers.insert(header::CACHE_CONTROL, NO_STORE);
    with_headers(StatusCode::SEE_OTHER, headers, body::empty())
}

/// The Auto player's source: a redirect to the immutable object of the rung
/// chosen for this client now, so the player's range requests that follow
/// all read the same bytes.
fn play<B>(
    edge: &Edge,
    req: &Request<B>,
    client: Option<IpAddr>,
    prepared: &Prepared,
    index: usize,
) -> Result<Response<Body>, EdgeError> {
    let manifest = &prepared.manifest;
    let asset = &manifest.assets[index];
    let (signals, rank, reason) = edge.client(req, client, manifest);
    let variant = select(asset, &manifest.tiers, rank, &signals).ok_or(EdgeError::NotFound)?;
    let tier = manifest.tiers.get(rank).map_or("?", |t| t.name.as_str());
    edge.metrics().selection(Some(tier), reason.as_str());
    tracing::debug!(asset = %asset.path, variant = %variant.name, tier, reason = reason.as_str(), connection_kbps = ?signals.connection.map(|e| e.kbps), "selected for play");
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("/o/{}", variant.key)) {
        headers.insert(header::LOCATION, v);
    }
    if let Some(v) = variant_label(&variant.name, tier, reason, None) {
        headers.insert(LOWBAND_VARIANT, v);
    }
    // Decided for this client now; the object it names is what stays cached.
    headers.insert(header::CACHE_CONTROL, NO_STORE);
    Ok(with_headers(StatusCode::FOUND, headers, body::empty()))
}

/// The lesson page, with what this client's link and cookies chose.
fn watch<B>(
    edge: &Edge,
    req: &Request<B>,
    client: Option<IpAddr>,
    prepared: &Prepared,
    index: usize,
) -> Result<Response<Body>, EdgeError> {
    let manifest = &prepared.manifest;
    let asset = &manifest.assets[index];
    let (signals, rank, reason) = edge.client(req, client, manifest);
    let offers = offers(manifest, asset, &signals);
    let current = resolve_choice(
        current_choice(req.headers(), manifest, &signals),
        &offers,
        manifest,
        asset,
        &signals,
    );
    let auto_now =
        select(asset, &manifest.tiers, rank, &signals).map(|v| (v, reason != Reason::Default));
    let html = lesson_page(&Lesson {
        manifest,
        asset,
        offers: &offers,
        current,
        auto_now,
        accept_webp: signals.accept_webp,
        words: Words::for_request(
            req.headers(),
            req.uri().query(),
            manifest.module.language.as_deref(),
        ),
    });
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT_CH, ACCEPT_CH_VALUE);
    // The page also speaks the reader's language.
    let vary = format!("{}, {VARY_LANGUAGE}", signals::vary(AssetKind::Video));
    headers.insert(
        header::VARY,
        HeaderValue::from_str(&vary).expect("header names are visible ASCII"),
    );
    // It says what this client's link and cookies chose: revalidate every time.
    headers.insert(header::CACHE_CONTROL, PRIVATE_PAGE);
    small_response(
        req.headers(),
        html.into_bytes(),
        "text/html; charset=utf-8",
        Some(prepared.published),
        headers,
    )
}

/// The variant `?v=` names for a download.
fn download_variant<'a>(asset: &'a Asset, query: Option<&str>) -> Result<&'a Variant, EdgeError> {
    let name = query_values(query, VARIANT_PARAM)
        .next()
        .ok_or(EdgeError::BadRequest(
            "a download names its variant: ?v= one of those the lesson page lists",
        ))?;
    asset
        .variants
        .iter()
        .find(|v| v.name == name && is_media(v))
        .ok_or(EdgeError::BadRequest(
            "no such variant of this video; the lesson page lists those there are",
        ))
}

/// `Content-Disposition` of a download: the video's file name with the
/// variant's name and extension, as ASCII (anything else becomes `_`) and
/// in full as RFC 8187 `filename*`.
fn content_disposition(asset: &Asset, variant: &Variant) -> String {
    let file = asset.path.rsplit('/').next().unwrap_or(&asset.path);
    let stem = file.rsplit_once('.').map_or(file, |(s, _)| s);
    let ext = variant.key.ext();
    let name = format!("{stem}-{}.{ext}", variant.name);
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        encode_segment(&name)
    )
}
