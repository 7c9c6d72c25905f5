//! What a request says about its client's link and abilities.
//!
//! Pure parsing, no I/O: `Save-Data`, the network client hints (`ECT`,
//! `Downlink`, `RTT`), `Accept`, `Accept-Encoding`, an explicit `?tier=` or
//! the `lowband_tier` cookie set by the quality picker. Then [`client_tier`]
//! turns them into one tier of the module's profile, with the reason.

use http::header::{HeaderMap, ACCEPT, ACCEPT_ENCODING, COOKIE};
use lowband_catalog::manifest::{Asset, AssetKind, VariantKind, ORIGINAL_VARIANT};
use lowband_catalog::Tier;

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
        AssetKind::Video | AssetKind::Audio | AssetKind::Image => {
            "Accept, Save-Data, ECT, Downlink, RTT, Cookie"
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
/// Hints we ask Chromium to send from the next request on.
pub const ACCEPT_CH: &str = "ECT, Downlink, RTT, Save-Data";

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
    /// Content-codings the client accepts (q > 0), lowercase.
    pub encodings: Vec<String>,
    /// The client decodes AV1 video: `?av1=1`, the `lowband_av1=1` cookie,
    /// or an `Accept` naming `codecs=av01`. Browsers send no such thing for
    /// media on their own, so without one of these a client gets H.264.
    pub av1: bool,
}

impl Signals {
    pub fn from_request(headers: &HeaderMap, query: Option<&str>) -> Self {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let save_data = text("save-data").is_some_and(|v| v.eq_ignore_ascii_case("on"));
        let ect = text("ect")
            .map(|v| v.trim_matches('"').to_ascii_lowercase())
            .filter(|v| !v.is_empty() && v.len() <= 16);
        let downlink_kbps = text("downlink").and_then(parse_mbps);
        let rtt_ms = text("rtt").and_then(|v| v.parse::<u32>().ok());
        let tier_query = query.and_then(|q| query_param(q, "tier"));
        let tier_cookie = headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| cookie_value(c, TIER_COOKIE));
        let accept_webp = headers
            .get_all(ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|item| accepts(item, "image/webp"));
        let av1 = query.and_then(|q| query_param(q, "av1")).as_deref() == Some("1")
            || headers
                .get_all(COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(|c| cookie_value(c, AV1_COOKIE))
                .as_deref()
                == Some("1")
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
            encodings,
            av1,
        }
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
            Self::Default => "default",
        }
    }
}

/// The tier (index into `tiers`, slowest first) this client should get.
///
/// An explicit choice wins. Otherwise the most conservative of the link
/// signals decides, because a too-large variant on 2G costs the teacher
/// money and minutes while a too-small one costs a little sharpness; and
/// `Save-Data: on` caps the result at the second-slowest tier (the smallest
/// video that still shows a picture).
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
        signals.downlink_kbps.map(|kbps| tier_for_kbps(kbps, tiers)),
        Reason::Downlink,
    );
    consider(
        signals.rtt_ms.and_then(ect_for_rtt).and_then(rank),
        Reason::Rtt,
    );
    let (mut tier, mut reason) = best.unwrap_or((default_tier.min(last), Reason::Default));
    let save_data_cap = 1.min(last);
    if signals.save_data && tier > save_data_cap {
        tier = save_data_cap;
        reason = Reason::SaveData;
    }
    (tier, reason)
}

/// The slowest tier whose bound covers a link of `kbps`.
pub fn tier_for_kbps(kbps: u32, tiers: &[Tier]) -> usize {
    tiers
        .iter()
        .position(|t| t.max_kbps.is_none_or(|max| kbps <= max))
        .unwrap_or(tiers.len().saturating_sub(1))
}

/// Chromium's effective-connection-type thresholds on round-trip time.
fn ect_for_rtt(rtt_ms: u32) -> Option<&'static str> {
    match rtt_ms {
        0 => None,
        2000.. => Some("slow-2g"),
        1400.. => Some("2g"),
        270.. => Some("3g"),
        _ => Some("4g"),
    }
}

/// `Downlink` is in Mbit/s with a fractional part (`0.15`).
fn parse_mbps(v: &str) -> Option<u32> {
    let mbps: f64 = v.parse().ok()?;
    (mbps.is_finite() && (0.0..=100_000.0).contains(&mbps)).then(|| (mbps * 1000.0).round() as u32)
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name && !v.is_empty() && v.len() <= 32).then(|| v.to_ascii_lowercase())
    })
}

fn cookie_value(header: &str, name: &str) -> Option<String> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name && !v.is_empty() && v.len() <= 32)
            .then(|| v.trim_matches('"').to_ascii_lowercase())
    })
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
        assert!(s.accept_webp);
        assert!(
            s.accepts_encoding("br") && s.accepts_encoding("gzip") && !s.accepts_encoding("zstd")
        );
        let s = signals(&[("accept", "image/webp;q=0")], None);
        assert!(!s.accept_webp);
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
        fn faster_downlink_never_gets_a_slower_tier(a in 0u32..20_000, b in 0u32..20_000) {
            let t = tiers();
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(tier_for_kbps(lo, &t) <= tier_for_kbps(hi, &t));
        }
    }
}
