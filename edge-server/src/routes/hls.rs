//! `/m/<module>/<video>/master.m3u8` and `<video>/captions/<n>.m3u8`: the
//! HLS playlists of a video, made here from its manifest
//! ([`crate::pages::hls`]); the media playlists and segments they name are
//! stored objects at `/o/`.

use std::net::IpAddr;

use http::header::HeaderMap;
use http::{Request, Response};
use lowband_catalog::urls::encode_path;

use super::asset::negotiate;
use super::table::Served;
use crate::choose::select::playable;
use crate::edge::Edge;
use crate::http::body::Body;
use crate::http::error::EdgeError;
use crate::http::response::small_response;
use crate::metrics::RouteLabel;
use crate::objects::prepared::Prepared;
use crate::pages::captions;
use crate::pages::hls::{master_playlist, subtitle_playlist, CaptionTrack};

const PLAYLIST: &str = "application/vnd.apple.mpegurl";

/// The master playlist of the video at `index`, listing what the client's tier carries.
pub fn master<B>(
    edge: &Edge,
    req: &Request<B>,
    client: Option<IpAddr>,
    prepared: &Prepared,
    index: usize,
) -> Result<Response<Body>, EdgeError> {
    let chosen = negotiate(edge, req, client, prepared, index, true)?;
    let manifest = &prepared.manifest;
    let asset = &manifest.assets[index];
    let module = &manifest.module.id;
    let tracks: Vec<_> = asset
        .captions
        .iter()
        .enumerate()
        .filter(|(_, c)| captions::vtt_object(manifest, c).is_some())
        .map(|(i, c)| CaptionTrack {
            uri: format!("/m/{module}/{}/captions/{i}.m3u8", encode_path(&asset.path)),
            language: c.language.clone(),
        })
        .collect();
    let playlist = master_playlist(
        asset,
        &manifest.tiers,
        chosen.rank,
        Some(chosen.variant),
        manifest.module.language.as_deref(),
        &tracks,
        &|v| playable(v, &chosen.signals),
    )
    .ok_or(EdgeError::NotFound)?;
    let mut response = small_response(
        req.headers(),
        playlist.into_bytes(),
        PLAYLIST,
        Some(prepared.published),
        chosen.headers,
    )?;
    response.extensions_mut().insert(Served {
        route: RouteLabel::Playlist,
        tier: chosen.tier.to_owned(),
        saved: None,
    });
    Ok(response)
}

/// The subtitle playlist of the `caption`-th caption of the video at `index`.
pub fn captions(
    req_headers: &HeaderMap,
    prepared: &Prepared,
    index: usize,
    caption: usize,
) -> Result<Response<Body>, EdgeError> {
    let manifest = &prepared.manifest;
    let asset = &manifest.assets[index];
    let vtt = asset
        .captions
        .get(caption)
        .and_then(|c| captions::vtt_object(manifest, c))
        .ok_or(EdgeError::NotFound)?;
    let text = subtitle_playlist(&format!("/o/{vtt}"), asset.duration.unwrap_or(0.0));
    let mut response = small_response(
        req_headers,
        text.into_bytes(),
        PLAYLIST,
        Some(prepared.published),
        HeaderMap::new(),
    )?;
    response.extensions_mut().insert(Served {
        route: RouteLabel::Playlist,
        tier: "none".into(),
        saved: None,
    });
    Ok(response)
}
