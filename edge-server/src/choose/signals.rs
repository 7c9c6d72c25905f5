//! What a request says about its client's link and abilities.
//!
//! Pure parsing, no I/O: `Save-Data`, the network client hints (`ECT`,
//! `Downlink`, `RTT`), the image client hints (`Sec-CH-Width`, `Sec-CH-DPR`,
//! `Sec-CH-Viewport-Width` and their legacy names), `Accept`,
//! `Accept-Encoding`, an explicit `?tier=` or the `lowband_tier` cookie set
//! by the quality picker. The server adds what the connection itself
//! measured ([`super::estimate`]). Then [`client_tier`] turns them into one
//! tier of the module's profile, with the reason.

use http::header::{HeaderMap, HeaderName, ACCEPT, ACCEPT_ENCODING, COOKIE};
use lowband_catalog::manifest::{Asset, AssetKind, VariantKind, ORIGINAL_VARIANT};
use lowband_catalog::Tier;

use super::estimate::Estimate;
use super::request::{cookies, query_values};
use lowband_catalog::profile::ect_for_http_rtt;

/// Name of the cookie the quality picker sets.
pub const TIER_COOKIE: &str = "lowband_tier";
/// Cookie a page sets (to `1`) once the browser said it plays AV1
/// (`MediaSource.isTypeSupported('video/mp4; codecs="av01.0.00M.08"')`).
pub const AV1_COOKIE: &str = "lowband_av1";

/// Request headers that can change which variant of an asset of this kind
/// is chosen, for `Vary`: no more than that, since every header listed
/// splits a shared cache's entries (the link hints, the tier cookie, and
/// `Accept` for AV1 or WebP; content-codings only for pages and files).
pub fn vary(kind: AssetKind) -> &'static str {
    match kind {
        AssetKind::Video | AssetKind::Audio => "Accept, Save-Data, ECT, Downlink, RTT, Cookie",
        AssetKind::Image => {
            "Accept, Save-Data, ECT, Downlink, RTT, Cookie, \
             Sec-CH-Width, Sec-CH-DPR, Sec-CH-Viewport-Width, Width, DPR, Viewport-Width"
        }
        AssetKind::Page | AssetKind::File => "Accept-Encoding",
    }
}
/// [`vary`] for one asset: a page made per tier (a lite page for slow
/// links) also varies with what decides the tier.
pub fn vary_for(asset: &Asset) -> &'static str {
    let mut tiers = asset
        .variants
        .iter()
        .filter(|v| v.kind == VariantKind::Page && v.name != ORIGINAL_VARIANT)
        .map(|v| v.tier.as_str());
    let first = tiers.next();
    if asset.kind == AssetKind::Page && tiers.any(|t| Some(t) != first) {
        "Accept-Encoding, Save-Data, ECT, Downlink, RTT, Cookie"
    } else {
        vary(asset.kind)
    }
}

/// The asset's bytes depend on the client's link: media, and pages made
/// in more than one form (a lite page for the slowest tiers).
fn link_dependent(asset: &Asset) -> bool {
    match asset.kind {
        AssetKind::Video | AssetKind::Audio | AssetKind::Image => true,
        AssetKind::Page => vary_for(asset) != vary(AssetKind::Page),
        AssetKind::File => false,
    }
}

/// Hints we ask Chromium to send from the next request on (and, from a
/// page, on the requests for its own images and videos). Chromium sends
/// client hints only over HTTPS (and to localhost): over plain HTTP the
/// connection estimate is all there is.
pub const ACCEPT_CH: &str =
    "ECT, Downlink, RTT, Save-Data, Sec-CH-Width, Sec-CH-DPR, Sec-CH-Viewport-Width";

/// `Critical-CH` for a negotiated response, if it pays.
///
/// Chromium, told that a hint it did not send was critical, drops the
/// response and asks again with the hint: one more round trip (1.5-2 s on
/// 2G, plus what was already in flight) on the first visit to the origin.
/// That pays only where the bytes depend on the hint: a navigation
/// without `ECT` and without an explicit choice, straight to a video, an
/// audio file or an image, where the wrong tier costs a 2G teacher
/// megabytes, or to a page made in a lite form for slow links, where the
/// full form would fetch its first-screen photos (tens of KB, many seconds
/// on 2G, against one round trip). A page made in one form only varies
/// with `Accept-Encoding` and never asks. Not in `Vary`: a cache that
/// serves it to a non-navigation, or leaves it out for one, costs nothing
/// but the retry.
pub fn critical_ch(asset: &Asset, signals: &Signals) -> Option<&'static str> {
    let chosen = signals.tier_query.is_some() || signals.tier_cookie.is_some();
    (link_dependent(asset) && signals.navigate && signals.ect.is_none() && !chosen).then_some("ECT")
}

/// Widest image a client can ask for, in physical pixels (16K).
const MAX_PX: u32 = 16_384;
/// Largest device pixel ratio believed.
const MAX_DPR: f64 = 16.0;

/// Everything parsed from one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Signals {
    pub save_data: bool,
    /// Effective connection type, as sent (`slow-2g`, `2g`, `3g`, `4g`).
    pub ect: Option<String>,
    /// Downlink estimate in kbit/s.
    pub downlink_kbps: Option<u32>,
    pub rtt_ms: Option<u32>,
    /// `?tier=` query parameter.
    pub tier_query: Option<String>,
    /// Tier from the picker's cookie.
    pub tier_cookie: Option<String>,
    pub accept_webp: bool,
    /// `Accept` names `image/avif` (Chromium 85+, Firefox 93+, Safari 16+).
    pub accept_avif: bool,
    /// Content-codings the client accepts (q > 0), lowercase.
    pub encodings: Vec<String>,
    /// The client decodes AV1 video: `?av1=1`, the `lowband_av1=1` cookie,
    /// or an `Accept` naming `codecs=av01`. Browsers send no such thing for
    /// media on their own, so without one of these a client gets H.264.
    pub av1: bool,
    /// `Sec-CH-Width` (or `Width`): the image's display width in physical pixels.
    pub width_px: Option<u32>,
    /// `Sec-CH-DPR` (or `DPR`): physical pixels per CSS pixel.
    pub dpr: Option<f64>,
    /// `Sec-CH-Viewport-Width` (or `Viewport-Width`), CSS pixels.
    pub viewport_width: Option<u32>,
    /// `Sec-Fetch-Mode: navigate`: the browser shows this response as a document.
    pub navigate: bool,
    /// What the client's connections measured (set by the server, never
    /// from a header).
    pub connection: Option<Estimate>,
}

/// The hint headers, named once: a lookup by `&str` parses the name on
/// every request.
mod hint {
    use http::header::HeaderName;

    pub const SAVE_DATA: HeaderName = HeaderName::from_static("save-data");
    pub const ECT: HeaderName = HeaderName::from_static("ect");
    pub const DOWNLINK: HeaderName = HeaderName::from_static("downlink");
    pub const RTT: HeaderName = HeaderName::from_static("rtt");
    pub const SEC_CH_WIDTH: HeaderName = HeaderName::from_static("sec-ch-width");
    pub const WIDTH: HeaderName = HeaderName::from_static("width");
    pub const SEC_CH_DPR: HeaderName = HeaderName::from_static("sec-ch-dpr");
    pub const DPR: HeaderName = HeaderName::from_static("dpr");
    pub const SEC_CH_VIEWPORT_WIDTH: HeaderName = HeaderName::from_static("sec-ch-viewport-width");
    pub const VIEWPORT_WIDTH: HeaderName = HeaderName::from_static("viewport-width");
    pub const SEC_FETCH_MODE: HeaderName = HeaderName::from_static("sec-fetch-mode");
}

impl Signals {
    pub fn from_request(headers: &HeaderMap, query: Option<&str>) -> Self {
        let text = |name: &HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let save_data = text(&hint::SAVE_DATA).is_some_and(|v| v.eq_ignore_ascii_case("on"));
        let ect = text(&hint::ECT)
            .map(|v| v.trim_matches('"').to_ascii_lowercase())
            .filter(|v| !v.is_empty() && v.len() <= 16);
        let downlink_kbps = text(&hint::DOWNLINK).and_then(parse_mbps);
        let rtt_ms = text(&hint::RTT).and_then(|v| v.parse::<u32>().ok());
        let width_px = text(&hint::SEC_CH_WIDTH)
            .or_else(|| text(&hint::WIDTH))
            .and_then(parse_px);
        let dpr = text(&hint::SEC_CH_DPR)
            .or_else(|| text(&hint::DPR))
            .and_then(parse_dpr);
        let viewport_width = text(&hint::SEC_CH_VIEWPORT_WIDTH)
            .or_else(|| text(&hint::VIEWPORT_WIDTH))
            .and_then(parse_px);
        let navigate =
            text(&hint::SEC_FETCH_MODE).is_some_and(|v| v.eq_ignore_ascii_case("navigate"));
        // Most requests hold neither: not looked through at all then.
        let query_token = |name| query.and_then(|q| token(query_values(Some(q), name)));
        let has_cookies = headers.contains_key(COOKIE);
        let cookie = |name| has_cookies.then(|| cookie_token(headers, name)).flatten();
        let tier_query = query_token("tier");
        let tier_cookie = cookie(TIER_COOKIE);
        let accepted = |mime: &str| {
            headers
                .get_all(ACCEPT)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .any(|item| accepts(item, mime))
        };
        let accept_webp = accepted("image/webp");
        let accept_avif = accepted("image/avif");
        let av1 = query_token("av1").as_deref() == Some("1")
            || cookie(AV1_COOKIE).as_deref() == Some("1")
            || headers
                .get_all(ACCEPT)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.to_ascii_lowercase().contains("av01"));
        let encodings = headers
            .get_all(ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|item| {
                let (name, q) = media_and_q(item)?;
                (q > 0.0).then(|| name.to_ascii_lowercase())
            })
            .collect();
        Self {
            save_data,
            ect,
            downlink_kbps,
            rtt_ms,
            tier_query,
            tier_cookie,
            accept_webp,
            accept_avif,
            encodings,
            av1,
            width_px,
            dpr,
            viewport_width,
            navigate,
            connection: None,
        }
    }

    /// Physical pixels an image must have across to look sharp here:
    /// `Sec-CH-Width` when sent, else the viewport's width times the DPR
    /// (an image is rarely wider than the screen); `None` when unknown.
    pub fn image_width_px(&self) -> Option<u32> {
        self.width_px.or_else(|| {
            let css = f64::from(self.viewport_width?);
            Some((css * self.dpr.unwrap_or(1.0)).ceil() as u32)
        })
    }

    pub fn accepts_encoding(&self, coding: &str) -> bool {
        self.encodings.iter().any(|e| e == coding || e == "*")
    }
}

/// Why a tier was chosen; shown in `Lowband-Variant` and the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// `?tier=` or the picker's cookie.
    Chosen,
    SaveData,
    Ect,
    Downlink,
    Rtt,
    /// No hint: what the client's connections measured (`TCP_INFO`).
    Connection,
    /// No signal at all: the edge's default tier.
    Default,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Chosen => "chosen",
            Self::SaveData => "save-data",
            Self::Ect => "ect",
            Self::Downlink => "downlink",
            Self::Rtt => "rtt",
            Self::Connection => "connection",
            Self::Default => "default",
        }
    }
}

/// The tier (index into `tiers`, slowest first) this client should get.
///
/// An explicit choice wins. Otherwise the most conservative of the link
/// hints decides, because a too-large variant on 2G costs the teacher
/// money and minutes while a too-small one costs a little sharpness. A
/// client that sends no hint gets what its connections measured, then the
/// default; `Save-Data: on` caps the result at the second-slowest tier (the
/// smallest video that still shows a picture).
pub fn client_tier(signals: &Signals, tiers: &[Tier], default_tier: usize) -> (usize, Reason) {
    let rank = |name: &str| tiers.iter().position(|t| t.name.eq_ignore_ascii_case(name));
    let last = tiers.len().saturating_sub(1);
    if let Some(r) = signals
        .tier_query
        .as_deref()
        .and_then(rank)
        .or_else(|| signals.tier_cookie.as_deref().and_then(rank))
    {
        return (r, Reason::Chosen);
    }
    let mut best: Option<(usize, Reason)> = None;
    let mut consider = |candidate: Option<usize>, reason: Reason| {
        if let Some(r) = candidate {
            if best.is_none_or(|(b, _)| r < b) {
                best = Some((r, reason));
            }
        }
    };
    consider(signals.ect.as_deref().and_then(rank), Reason::Ect);
    consider(
        signals
            .downlink_kbps
            .map(|kbps| Tier::rank_for_kbps(tiers, kbps)),
        Reason::Downlink,
    );
    consider(
        signals.rtt_ms.and_then(ect_for_http_rtt).and_then(rank),
        Reason::Rtt,
    );
    let measured = signals
        .connection
        .map(|e| (e.rank(tiers).min(last), Reason::Connection));
    let (mut tier, mut reason) = best
        .or(measured)
        .unwrap_or((default_tier.min(last), Reason::Default));
    let save_data_cap = 1.min(last);
    if signals.save_data && tier > save_data_cap {
        tier = save_data_cap;
        reason = Reason::SaveData;
    }
    (tier, reason)
}

/// `Downlink` is in Mbit/s with a fractional part (`0.15`).
fn parse_mbps(v: &str) -> Option<u32> {
    let mbps: f64 = v.parse().ok()?;
    (mbps.is_finite() && (0.0..=100_000.0).contains(&mbps)).then(|| (mbps * 1000.0).round() as u32)
}

/// A pixel count: a whole number in 1..=16384 (no fractions, no signs).
fn parse_px(v: &str) -> Option<u32> {
    if !v.bytes().all(|b| b.is_ascii_digit()) || v.len() > 5 {
        return None;
    }
    v.parse().ok().filter(|px| (1..=MAX_PX).contains(px))
}

/// A device pixel ratio: finite, above zero, at most 16.
fn parse_dpr(v: &str) -> Option<f64> {
    let dpr: f64 = v.parse().ok()?;
    (dpr.is_finite() && dpr > 0.0 && dpr <= MAX_DPR).then_some(dpr)
}

/// The first of `values` that can be a tier name or a flag (1 to 32
/// bytes), lowercased.
fn token<'a>(mut values: impl Iterator<Item = std::borrow::Cow<'a, str>>) -> Option<String> {
    values
        .find(|v| !v.is_empty() && v.len() <= 32)
        .map(|v| v.to_ascii_lowercase())
}

/// [`token`] of the cookie `name`.
fn cookie_token(headers: &HeaderMap, name: &str) -> Option<String> {
    token(
        cookies(headers)
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v.into()),
    )
}

/// Splits `type;q=0.5` into the type and its quality (1 when absent, None if malformed).
fn media_and_q(item: &str) -> Option<(&str, f32)> {
    let mut parts = item.split(';');
    let name = parts.next()?.trim();
    if name.is_empty() {
        return None;
    }
    let mut q = 1.0;
    for param in parts {
        if let Some((k, v)) = param.split_once('=') {
            if k.trim().eq_ignore_ascii_case("q") {
                q = v
                    .trim()
                    .parse()
                    .ok()
                    .filter(|q: &f32| (0.0..=1.0).contains(q))?;
            }
        }
    }
    Some((name, q))
}

fn accepts(item: &str, mime: &str) -> bool {
    media_and_q(item).is_some_and(|(name, q)| q > 0.0 && name.eq_ignore_ascii_case(mime))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use proptest::prelude::*;

    fn tiers() -> Vec<Tier> {
        lowband_catalog::Profile::builtin_default().tiers
    }

    fn signals(pairs: &[(&'static str, &'static str)], query: Option<&str>) -> Signals {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        Signals::from_request(&h, query)
    }

    fn tier_of(pairs: &[(&'static str, &'static str)], query: Option<&str>) -> (String, Reason) {
        let t = tiers();
        let (rank, reason) = client_tier(&signals(pairs, query), &t, 2);
        (t[rank].name.clone(), reason)
    }

    #[test]
    fn each_signal_decides() {
        assert_eq!(tier_of(&[], None), ("3g".into(), Reason::Default));
        assert_eq!(tier_of(&[("ect", "2g")], None), ("2g".into(), Reason::Ect));
        assert_eq!(tier_of(&[("ect", "4g")], None), ("4g".into(), Reason::Ect));
        assert_eq!(
            tier_of(&[("ect", "slow-2g")], None),
            ("slow-2g".into(), Reason::Ect)
        );
        assert_eq!(
            tier_of(&[("downlink", "0.1")], None),
            ("2g".into(), Reason::Downlink)
        );
        assert_eq!(
            tier_of(&[("downlink", "10")], None),
            ("4g".into(), Reason::Downlink)
        );
        assert_eq!(
            tier_of(&[("rtt", "1500")], None),
            ("2g".into(), Reason::Rtt)
        );
        assert_eq!(tier_of(&[("rtt", "50")], None), ("4g".into(), Reason::Rtt));
        assert_eq!(
            tier_of(&[("save-data", "on")], None),
            ("2g".into(), Reason::SaveData)
        );
        assert_eq!(
            tier_of(&[("save-data", "on"), ("ect", "slow-2g")], None),
            ("slow-2g".into(), Reason::Ect)
        );
        assert_eq!(
            tier_of(&[("ect", "2g")], Some("tier=4g")),
            ("4g".into(), Reason::Chosen)
        );
        assert_eq!(
            tier_of(&[("cookie", "a=b; lowband_tier=slow-2g")], None),
            ("slow-2g".into(), Reason::Chosen)
        );
        assert_eq!(
            tier_of(&[("cookie", "lowband_tier=2g")], Some("tier=3g")),
            ("3g".into(), Reason::Chosen)
        );
    }

    #[test]
    fn the_connection_decides_only_without_hints() {
        let t = tiers();
        let slow = Some(Estimate {
            kbps: 100,
            min_rtt_ms: Some(400),
        });
        let with = |pairs: &[(&'static str, &'static str)], query: Option<&str>| {
            let s = Signals {
                connection: slow,
                ..signals(pairs, query)
            };
            let (rank, reason) = client_tier(&s, &t, 2);
            (t[rank].name.clone(), reason)
        };
        assert_eq!(with(&[], None), ("2g".into(), Reason::Connection));
        // Hints, then explicit choices, outrank the measurement.
        assert_eq!(with(&[("ect", "4g")], None), ("4g".into(), Reason::Ect));
        assert_eq!(
            with(&[("downlink", "5")], None),
            ("4g".into(), Reason::Downlink)
        );
        assert_eq!(with(&[], Some("tier=4g")), ("4g".into(), Reason::Chosen));
        assert_eq!(
            with(&[("cookie", "lowband_tier=3g")], None),
            ("3g".into(), Reason::Chosen)
        );
        // Save-Data still caps it.
        let fast = Signals {
            connection: Some(Estimate {
                kbps: 50_000,
                min_rtt_ms: Some(5),
            }),
            save_data: true,
            ..Default::default()
        };
        assert_eq!(client_tier(&fast, &t, 2), (1, Reason::SaveData));
        assert_eq!(Reason::Connection.as_str(), "connection");
    }

    #[test]
    fn image_hints_are_bounded() {
        let s = signals(
            &[
                ("sec-ch-width", "412"),
                ("sec-ch-dpr", "2.625"),
                ("sec-ch-viewport-width", "360"),
                ("width", "9999"),
            ],
            None,
        );
        assert_eq!(
            (s.width_px, s.dpr, s.viewport_width),
            (Some(412), Some(2.625), Some(360))
        );
        assert_eq!(s.image_width_px(), Some(412));
        // Legacy names when the Sec-CH- ones are absent.
        let s = signals(&[("dpr", "2"), ("viewport-width", "360")], None);
        assert_eq!(s.image_width_px(), Some(720));
        let s = signals(&[("viewport-width", "400")], None);
        assert_eq!(s.image_width_px(), Some(400));
        assert_eq!(signals(&[("sec-ch-dpr", "3")], None).image_width_px(), None);
        for bad in [
            "NaN", "inf", "-1", "0", "1e9", "-0", "", "100000", "2.5", "+5", "0x10",
        ] {
            let mut h = HeaderMap::new();
            for name in ["sec-ch-width", "sec-ch-viewport-width"] {
                h.insert(name, HeaderValue::from_str(bad).unwrap());
            }
            let s = Signals::from_request(&h, None);
            assert_eq!((s.width_px, s.viewport_width), (None, None), "{bad:?}");
        }
        for bad in ["NaN", "inf", "-inf", "-1", "0", "17", "1e308", "x"] {
            let mut h = HeaderMap::new();
            h.insert("sec-ch-dpr", HeaderValue::from_str(bad).unwrap());
            assert_eq!(Signals::from_request(&h, None).dpr, None, "{bad:?}");
        }
    }

    #[test]
    fn critical_ch_only_where_a_retry_pays() {
        let of_kind = |kind: AssetKind, tiers: &[&str]| {
            let json = serde_json::json!({
                "path": "a",
                "kind": kind,
                "source": {"bytes": 1, "hash": "00".repeat(32), "mime": "x/y"},
                "derivation": "00".repeat(32),
                "variants": tiers.iter().map(|t| serde_json::json!({
                    "name": format!("{t}-br"), "kind": "page", "tier": t,
                    "key": format!("objects/00/{}.br", "00".repeat(32)),
                    "bytes": 1, "mime": "text/html",
                })).collect::<Vec<_>>(),
            });
            serde_json::from_value::<Asset>(json).unwrap()
        };
        let video = of_kind(AssetKind::Video, &[]);
        let nav = [("sec-fetch-mode", "navigate")];
        let s = signals(&nav, None);
        assert_eq!(critical_ch(&video, &s), Some("ECT"));
        assert_eq!(
            critical_ch(&of_kind(AssetKind::Image, &[]), &s),
            Some("ECT")
        );
        // A page in one form varies with Accept-Encoding only; with a lite form, with the link.
        assert_eq!(critical_ch(&of_kind(AssetKind::Page, &["2g"]), &s), None);
        let tiered = of_kind(AssetKind::Page, &["slow-2g", "3g"]);
        assert_eq!(critical_ch(&tiered, &s), Some("ECT"));
        assert_eq!(critical_ch(&of_kind(AssetKind::File, &[]), &s), None);
        // Not a navigation, ECT already sent, or an explicit choice: no retry.
        assert_eq!(critical_ch(&video, &signals(&[], None)), None);
        let sent = signals(&[("sec-fetch-mode", "navigate"), ("ect", "2g")], None);
        assert_eq!(critical_ch(&video, &sent), None);
        assert_eq!(critical_ch(&video, &signals(&nav, Some("tier=2g"))), None);
        for hint in ACCEPT_CH.split(", ") {
            assert!(!hint.is_empty());
        }
        assert!(ACCEPT_CH.contains("ECT") && ACCEPT_CH.contains("Sec-CH-DPR"));
        assert!(vary(AssetKind::Image).contains("Sec-CH-Width"));
        assert!(!vary(AssetKind::Video).contains("Sec-CH-Width"));
    }

    #[test]
    fn av1_only_when_the_client_says_so() {
        assert!(!signals(&[("accept", "*/*")], None).av1);
        assert!(!signals(&[], Some("av1=0")).av1);
        assert!(!signals(&[("cookie", "lowband_av1=0")], None).av1);
        assert!(signals(&[], Some("tier=2g&av1=1")).av1);
        assert!(signals(&[("cookie", "a=b; lowband_av1=1")], None).av1);
        assert!(signals(&[("accept", "video/mp4; codecs=\"av01.0.05M.08\"")], None).av1);
    }

    #[test]
    fn most_conservative_link_signal_wins() {
        assert_eq!(
            tier_of(&[("ect", "4g"), ("downlink", "0.12")], None),
            ("2g".into(), Reason::Downlink)
        );
        assert_eq!(
            tier_of(&[("ect", "2g"), ("downlink", "5")], None),
            ("2g".into(), Reason::Ect)
        );
    }

    #[test]
    fn junk_is_ignored() {
        assert_eq!(
            tier_of(
                &[("ect", "9g"), ("downlink", "fast"), ("rtt", "-1")],
                Some("tier=ultra")
            ),
            ("3g".into(), Reason::Default)
        );
        assert_eq!(
            tier_of(&[("save-data", "off")], None),
            ("3g".into(), Reason::Default)
        );
    }

    #[test]
    fn accept_and_encodings() {
        let s = signals(
            &[
                ("accept", "image/avif,image/webp;q=0.9,*/*"),
                ("accept-encoding", "gzip, br;q=1.0, zstd;q=0"),
            ],
            None,
        );
        assert!(s.accept_webp && s.accept_avif);
        assert!(
            s.accepts_encoding("br") && s.accepts_encoding("gzip") && !s.accepts_encoding("zstd")
        );
        let s = signals(&[("accept", "image/webp;q=0")], None);
        assert!(!s.accept_webp && !s.accept_avif);
    }

    proptest! {
        #[test]
        fn never_panics_and_stays_in_range(ect in "\\PC{0,20}", down in "\\PC{0,12}", rtt in "\\PC{0,8}", q in "\\PC{0,40}", cookie in "\\PC{0,40}", save in any::<bool>()) {
            let mut h = HeaderMap::new();
            for (k, v) in [("ect", ect), ("downlink", down), ("rtt", rtt), ("cookie", cookie)] {
                if let Ok(v) = HeaderValue::from_str(&v) { h.insert(k, v); }
            }
            if save { h.insert("save-data", HeaderValue::from_static("on")); }
            let s = Signals::from_request(&h, Some(&q));
            let t = tiers();
            let (rank, reason) = client_tier(&s, &t, 2);
            prop_assert!(rank < t.len());
            if save && reason != Reason::Chosen { prop_assert!(rank <= 1); }
        }

        #[test]
        fn image_hints_never_panic_and_stay_bounded(w in "\\PC{0,12}", dpr in "\\PC{0,12}", vw in "\\PC{0,12}") {
            let mut h = HeaderMap::new();
            for (k, v) in [("sec-ch-width", w), ("dpr", dpr), ("viewport-width", vw)] {
                if let Ok(v) = HeaderValue::from_str(&v) { h.insert(k, v); }
            }
            let s = Signals::from_request(&h, None);
            if let Some(px) = s.image_width_px() {
                prop_assert!(px >= 1 && u64::from(px) <= u64::from(MAX_PX) * 16);
            }
            if let Some(d) = s.dpr { prop_assert!(d.is_finite() && d > 0.0 && d <= MAX_DPR); }
        }

        #[test]
        fn more_bandwidth_never_gets_a_slower_tier(a in 0u32..20_000, b in 0u32..20_000, ect in proptest::option::of(0usize..4), rtt in proptest::option::of(0u32..4_000), save in any::<bool>()) {
            // With every other signal held, a faster Downlink or connection never lowers the tier.
            let t = tiers();
            let (lo, hi) = (a.min(b), a.max(b));
            let with = |kbps: u32, connection: bool| {
                let s = Signals {
                    ect: ect.map(|i| t[i].name.clone()),
                    rtt_ms: rtt,
                    save_data: save,
                    downlink_kbps: (!connection).then_some(kbps),
                    connection: connection.then_some(Estimate { kbps, min_rtt_ms: None }),
                    ..Default::default()
                };
                client_tier(&s, &t, 2).0
            };
            prop_assert!(with(lo, false) <= with(hi, false));
            prop_assert!(with(lo, true) <= with(hi, true));
        }

        #[test]
        fn an_explicit_tier_always_wins(pick in 0usize..4, ect in "\\PC{0,8}", down in "\\PC{0,8}", save in any::<bool>(), kbps in proptest::option::of(0u32..100_000)) {
            let t = tiers();
            let mut h = HeaderMap::new();
            for (k, v) in [("ect", ect), ("downlink", down)] {
                if let Ok(v) = HeaderValue::from_str(&v) { h.insert(k, v); }
            }
            if save { h.insert("save-data", HeaderValue::from_static("on")); }
            let s = Signals {
                connection: kbps.map(|kbps| Estimate { kbps, min_rtt_ms: None }),
                ..Signals::from_request(&h, Some(&format!("tier={}", t[pick].name)))
            };
            prop_assert_eq!(client_tier(&s, &t, 2), (pick, Reason::Chosen));
        }

        #[test]
        fn faster_downlink_never_gets_a_slower_tier(a in 0u32..20_000, b in 0u32..20_000) {
            let t = tiers();
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(Tier::rank_for_kbps(&t, lo) <= Tier::rank_for_kbps(&t, hi));
        }
    }
}
