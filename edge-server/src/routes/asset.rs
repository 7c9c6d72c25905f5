//! `/m/<module>/<path>`: an asset, as the variant chosen for this client.
//!
//! The request's signals and the connection's estimate pick a tier
//! ([`crate::choose`]), the tier and the client's formats pick the variant,
//! `no-transform` may swap in the original, and the variant is sent with
//! the headers its manifest prepared, the `Vary` that names what chose it
//! and `Lowband-Variant` saying what was served and why. The master
//! playlist ([`super::hls`]) is negotiated the same way.

use std::net::IpAddr;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response};
use lowband_catalog::manifest::Variant;

use super::table::Served;
use crate::choose::select::select;
use crate::choose::signals::{self, Reason, Signals};
use crate::choose::transform::{self, NoTransform};
use crate::edge::Edge;
use crate::http::body::Body;
use crate::http::error::EdgeError;
use crate::http::response::{
    ACCEPT_CH, CRITICAL_CH, LOWBAND_VARIANT, RESPONSE_HEADERS, REVALIDATE, REVALIDATE_PRIVATE,
};
use crate::metrics::RouteLabel;
use crate::objects::prepared::{ObjectHeaders, Prepared};
use crate::objects::send::{self, ObjectSpec};

// Checked once, at compile time, not on every request.
pub(super) const ACCEPT_CH_VALUE: HeaderValue = HeaderValue::from_static(signals::ACCEPT_CH);

/// The variant chosen for a client, and the headers that say so.
pub(super) struct Negotiated<'a> {
    pub signals: Signals,
    /// The client's tier, as an index into the manifest's tiers.
    pub rank: usize,
    pub variant: &'a Variant,
    pub tier: &'a str,
    pub cache_control: HeaderValue,
    /// `Vary`, `Accept-CH`, `Critical-CH`, `Cache-Control` and `Lowband-Variant`.
    pub headers: HeaderMap,
}

/// Chooses the variant of the asset at `index` for the client; `playlist`
/// when the response is a playlist made here (no original for
/// `no-transform` to pick).
pub(super) fn negotiate<'a, B>(
    edge: &Edge,
    req: &Request<B>,
    client: Option<IpAddr>,
    prepared: &'a Prepared,
    index: usize,
    playlist: bool,
) -> Result<Negotiated<'a>, EdgeError> {
    let manifest = &prepared.manifest;
    let asset = &manifest.assets[index];
    let (signals, rank, reason) = edge.client(req, client, manifest);
    let selected = select(asset, &manifest.tiers, rank, &signals).ok_or(EdgeError::NotFound)?;
    let (variant, no_transform) = if playlist {
        (selected, None)
    } else {
        transform::apply(asset, selected, transform::requested(req.headers()))
    };
    let tier = manifest.tiers.get(rank).map_or("?", |t| t.name.as_str());
    edge.metrics().selection(Some(tier), reason.as_str());
    tracing::debug!(module = %manifest.module.id, asset = %asset.path, variant = %variant.name, tier, reason = reason.as_str(), connection_kbps = ?signals.connection.map(|e| e.kbps), "selected");

    let mut headers = HeaderMap::with_capacity(RESPONSE_HEADERS);
    // Where no-transform can pick the original, the request's Cache-Control selects too.
    headers.insert(header::VARY, prepared.vary(index, !playlist));
    headers.insert(ACCEPT_CH, ACCEPT_CH_VALUE);
    if let Some(critical) = signals::critical_ch(asset, &signals) {
        headers.insert(CRITICAL_CH, HeaderValue::from_static(critical));
    }
    let cache_control = if reason == Reason::Connection {
        REVALIDATE_PRIVATE
    } else {
        REVALIDATE
    };
    headers.insert(header::CACHE_CONTROL, cache_control.clone());
    if let Some(v) = variant_label(&variant.name, tier, reason, no_transform) {
        headers.insert(LOWBAND_VARIANT, v);
    }
    Ok(Negotiated {
        signals,
        rank,
        variant,
        tier,
        cache_control,
        headers,
    })
}

/// Sends the variant of the asset at `index` chosen for the client.
pub async fn asset<B>(
    edge: &Edge,
    req: &Request<B>,
    client: Option<IpAddr>,
    prepared: &Prepared,
    index: usize,
) -> Result<Response<Body>, EdgeError> {
    let chosen = negotiate(edge, req, client, prepared, index, false)?;
    let variant = chosen.variant;
    let mut response = send_variant(
        edge,
        req,
        prepared,
        index,
        variant,
        chosen.cache_control,
        chosen.headers,
    )
    .await?;
    let source_bytes = prepared.manifest.assets[index].source.bytes;
    response.extensions_mut().insert(Served {
        route: RouteLabel::Asset,
        tier: chosen.tier.to_owned(),
        saved: Some(source_bytes.saturating_sub(variant.bytes)),
    });
    Ok(response)
}

/// Sends `variant` of the asset at `index` with the headers its manifest
/// prepared for it, plus `headers`.
pub(super) async fn send_variant<B>(
    edge: &Edge,
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
        fixed,
        cache_control,
        head_only: req.method() == Method::HEAD,
    };
    send::send(edge.source(), edge.metrics(), req.headers(), spec, headers).await
}

/// `Lowband-Variant`: the variant served, its client's tier and why
/// (`144p; tier=2g; reason=ect`), and a no-transform override if any.
pub(super) fn variant_label(
    variant: &str,
    tier: &str,
    reason: Reason,
    no_transform: Option<NoTransform>,
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
