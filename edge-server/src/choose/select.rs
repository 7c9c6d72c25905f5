//! Choosing the variant of an asset for a client: a pure function.
//!
//! A variant *fits* a client when its tier is the client's tier or slower.
//! Of the fitting variants the best (highest tier, then largest) is served;
//! if none fits, the smallest variant is, because a slow lesson beats none.
//! Videos fall back to their audio-only rendition when even the lowest
//! picture rung is above the client's tier; images pick a format the client
//! accepts and, when the client said how wide the image is shown
//! (`Sec-CH-Width`, or the viewport and DPR), the narrowest fitting width
//! that still covers it; pages and files pick the best content-coding the
//! client accepts.
//! AV1 rungs go only to clients that said they decode AV1 ([`playable`]),
//! and are preferred over H.264 of the same tier when they did.
//! A video's further sound tracks (`alternate` variants, a second language)
//! are never chosen: they are offered beside the picture in the HLS master
//! playlist, and the asset's own sound is its main audio rendition.

use lowband_catalog::manifest::{Asset, AssetKind, Variant, VariantKind, ORIGINAL_VARIANT};
use lowband_catalog::Tier;

use super::signals::Signals;

/// Content-codings in order of preference (smallest first: brotli at
/// quality 11 beats zstd at 19 on text, which beats gzip).
const CODINGS: [&str; 3] = ["br", "zstd", "gzip"];

/// Picks the variant of `asset` for a client of tier `client_rank`.
pub fn select<'a>(
    asset: &'a Asset,
    tiers: &[Tier],
    client_rank: usize,
    signals: &Signals,
) -> Option<&'a Variant> {
    let ladder = Ladder {
        asset,
        tiers,
        client_rank,
    };
    let plays = |v: &Variant| playable(v, signals);
    match asset.kind {
        AssetKind::Video => ladder
            .best_fitting(VariantKind::Video, &plays)
            .or_else(|| ladder.best_fitting(VariantKind::Audio, &plays))
            .or_else(|| ladder.smallest(VariantKind::Video, &plays)),
        AssetKind::Audio => ladder
            .best_fitting(VariantKind::Audio, &plays)
            .or_else(|| ladder.smallest(VariantKind::Audio, &plays)),
        AssetKind::Image => ladder.image(signals),
        AssetKind::Page => ladder.coded(VariantKind::Page, signals),
        AssetKind::File => ladder.coded(VariantKind::File, signals),
    }
}

/// An asset's variants as seen by a client of tier `client_rank`.
struct Ladder<'a, 't> {
    asset: &'a Asset,
    tiers: &'t [Tier],
    client_rank: usize,
}

impl<'a> Ladder<'a, '_> {
    /// The variant's tier, as an index into the tiers (unknown: above all).
    fn rank(&self, v: &Variant) -> usize {
        self.tiers
            .iter()
            .position(|t| t.name == v.tier)
            .unwrap_or(usize::MAX)
    }

    fn fits(&self, v: &Variant) -> bool {
        self.rank(v) <= self.client_rank
    }

    /// The variants of `kind` an asset's own URL may serve (not further sound tracks).
    fn candidates(&self, kind: VariantKind) -> impl Iterator<Item = &'a Variant> {
        self.asset
            .variants
            .iter()
            .filter(move |v| v.kind == kind && !v.alternate)
    }

    /// The best variant of `kind` that fits: the highest tier, then (where
    /// playable) AV1 before H.264, better per byte, then the largest.
    fn best_fitting(
        &self,
        kind: VariantKind,
        ok: &dyn Fn(&Variant) -> bool,
    ) -> Option<&'a Variant> {
        self.candidates(kind)
            .filter(|v| ok(v) && self.fits(v))
            .max_by_key(|v| (self.rank(v), is_av1(v), v.bytes))
    }

    fn smallest(&self, kind: VariantKind, ok: &dyn Fn(&Variant) -> bool) -> Option<&'a Variant> {
        self.candidates(kind)
            .filter(|v| ok(v))
            .min_by_key(|v| v.bytes)
    }

    /// One format per response, the smallest the client decodes: AVIF,
    /// then WebP, then the rest (JPEG), each only when the client's tier
    /// has it; then the width the client needs, or else the tier's best.
    fn image(&self, signals: &Signals) -> Option<&'a Variant> {
        let has = |mime: &str| {
            self.asset
                .variants
                .iter()
                .any(|v| v.mime == mime && self.fits(v))
        };
        let wanted = if signals.accept_avif && has("image/avif") {
            Some("image/avif")
        } else if signals.accept_webp && has("image/webp") {
            Some("image/webp")
        } else {
            None
        };
        let format_ok = |v: &Variant| match wanted {
            Some(mime) => v.mime == mime,
            None => v.mime != "image/avif" && v.mime != "image/webp",
        };
        signals
            .image_width_px()
            .and_then(|need| self.sized(need, &format_ok))
            .or_else(|| self.best_fitting(VariantKind::Image, &format_ok))
            .or_else(|| self.smallest(VariantKind::Image, &format_ok))
    }

    /// The narrowest fitting image whose width covers `need`; if none
    /// does, the widest the tier allows (never one wider than that).
    fn sized(&self, need: u32, format_ok: &dyn Fn(&Variant) -> bool) -> Option<&'a Variant> {
        let widths = || {
            self.candidates(VariantKind::Image)
                .filter(|v| format_ok(v) && self.fits(v))
                .filter_map(|v| Some((v.width?, v)))
        };
        widths()
            .filter(|(w, _)| *w >= need)
            .min_by_key(|(w, v)| (*w, v.bytes))
            .or_else(|| widths().max_by_key(|(w, v)| (*w, v.bytes)))
            .map(|(_, v)| v)
    }

    /// A page or file: its copies for the best tier that fits (a page may
    /// have one set per tier), then the best content-coding the client accepts.
    fn coded(&self, kind: VariantKind, signals: &Signals) -> Option<&'a Variant> {
        let copies = || self.candidates(kind).filter(|v| v.name != ORIGINAL_VARIANT);
        let tier = copies()
            .map(|v| self.rank(v))
            .filter(|r| *r <= self.client_rank)
            .max()
            .or_else(|| copies().map(|v| self.rank(v)).min());
        let coded = |coding: Option<&str>| {
            copies().find(|v| Some(self.rank(v)) == tier && v.encoding.as_deref() == coding)
        };
        CODINGS
            .iter()
            .filter(|c| signals.accepts_encoding(c))
            .find_map(|c| coded(Some(c)))
            .or_else(|| coded(None))
    }
}

/// Whether the client can decode this variant: AV1 only for clients that
/// said they decode it; everything else lowband makes plays everywhere.
pub fn playable(variant: &Variant, signals: &Signals) -> bool {
    !is_av1(variant) || signals.av1
}

fn is_av1(variant: &Variant) -> bool {
    variant
        .codecs
        .as_deref()
        .is_some_and(|c| c.starts_with("av01"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lowband_catalog::manifest::SourceInfo;
    use lowband_catalog::{ContentHash, ObjectKey, Profile};
    use proptest::prelude::*;

    fn variant(
        name: &str,
        kind: VariantKind,
        tier: &str,
        bytes: u64,
        mime: &str,
        encoding: Option<&str>,
    ) -> Variant {
        let key = ObjectKey::for_bytes(name.as_bytes(), "bin");
        Variant {
            encoding: encoding.map(Into::into),
            ..Variant::new(name, kind, tier, key, bytes, mime)
        }
    }

    fn asset(kind: AssetKind, variants: Vec<Variant>) -> Asset {
        Asset {
            path: "x".into(),
            kind,
            source: SourceInfo {
                bytes: 1,
                hash: ContentHash::of(b""),
                mime: "x".into(),
            },
            derivation: ContentHash::of(b""),
            captions: Vec::new(),
            placeholder: None,
            duration: None,
            variants,
        }
    }

    fn video() -> Asset {
        asset(
            AssetKind::Video,
            vec![
                variant("144p", VariantKind::Video, "2g", 400, "video/mp4", None),
                variant("240p", VariantKind::Video, "3g", 900, "video/mp4", None),
                variant("360p", VariantKind::Video, "3g", 1500, "video/mp4", None),
                variant("480p", VariantKind::Video, "4g", 3000, "video/mp4", None),
                variant(
                    "audio-aac",
                    VariantKind::Audio,
                    "slow-2g",
                    200,
                    "audio/mp4",
                    None,
                ),
            ],
        )
    }

    fn pick(asset: &Asset, rank: usize, signals: &Signals) -> String {
        let tiers = Profile::builtin_default().tiers;
        select(asset, &tiers, rank, signals)
            .map(|v| v.name.clone())
            .unwrap_or_default()
    }

    #[test]
    fn video_by_tier() {
        let s = Signals::default();
        let a = video();
        assert_eq!(pick(&a, 0, &s), "audio-aac");
        assert_eq!(pick(&a, 1, &s), "144p");
        assert_eq!(pick(&a, 2, &s), "360p");
        assert_eq!(pick(&a, 3, &s), "480p");
    }

    /// [`video`] with two further sound tracks, smaller and in a higher
    /// tier than the main audio: whatever ranks variants must skip them.
    fn video_with_alternates() -> Asset {
        let mut a = video();
        for (name, lang, tier, bytes) in [
            ("audio-eng", Some("eng"), "slow-2g", 150),
            ("audio-3", None, "2g", 100),
        ] {
            a.variants.push(Variant {
                language: lang.map(Into::into),
                alternate: true,
                ..variant(name, VariantKind::Audio, tier, bytes, "audio/mp4", None)
            });
        }
        a
    }

    #[test]
    fn alternate_sound_is_never_chosen() {
        let s = Signals::default();
        let a = video_with_alternates();
        assert_eq!(pick(&a, 0, &s), "audio-aac");
        assert_eq!(pick(&a, 1, &s), "144p");
        // Only sound fits, and an alternate is both smaller and of a higher tier.
        let mut no_picture = video_with_alternates();
        no_picture.variants.retain(|v| v.kind == VariantKind::Audio);
        for rank in 0..4 {
            assert_eq!(pick(&no_picture, rank, &s), "audio-aac", "rank {rank}");
        }
        let mut audio_asset = no_picture.clone();
        audio_asset.kind = AssetKind::Audio;
        assert_eq!(pick(&audio_asset, 3, &s), "audio-aac");
        // Nothing fits but alternates: still never one of them.
        let only_alternates = asset(
            AssetKind::Audio,
            a.variants.into_iter().filter(|v| v.alternate).collect(),
        );
        assert_eq!(pick(&only_alternates, 0, &s), "");
    }

    #[test]
    fn av1_only_for_clients_that_decode_it() {
        let mut a = video();
        for (name, tier, bytes) in [("144p-av1", "2g", 300), ("360p-av1", "3g", 1100)] {
            a.variants.push(Variant {
                codecs: Some("av01.0.00M.08, mp4a.40.2".into()),
                ..variant(name, VariantKind::Video, tier, bytes, "video/mp4", None)
            });
        }
        for v in &mut a.variants {
            if v.codecs.is_none() && v.kind == VariantKind::Video {
                v.codecs = Some("avc1.4d401e, mp4a.40.2".into());
            }
        }
        let plain = Signals::default();
        assert_eq!(pick(&a, 1, &plain), "144p");
        assert_eq!(pick(&a, 2, &plain), "360p");
        let av1 = Signals {
            av1: true,
            ..Default::default()
        };
        assert_eq!(pick(&a, 1, &av1), "144p-av1");
        assert_eq!(pick(&a, 2, &av1), "360p-av1");
        // No AV1 rung at 4g: H.264 is still served there.
        assert_eq!(pick(&a, 3, &av1), "480p");
        // Nothing fits and only AV1 would: never an undecodable picture.
        let only_av1 = asset(AssetKind::Video, a.variants[5..].to_vec());
        assert_eq!(pick(&only_av1, 0, &plain), "");
        assert_eq!(pick(&only_av1, 0, &av1), "144p-av1");
    }

    #[test]
    fn nothing_fits_gives_smallest() {
        let a = asset(
            AssetKind::Video,
            vec![
                variant("480p", VariantKind::Video, "4g", 3000, "video/mp4", None),
                variant("360p", VariantKind::Video, "3g", 1500, "video/mp4", None),
            ],
        );
        assert_eq!(pick(&a, 0, &Signals::default()), "360p");
    }

    #[test]
    fn images_respect_accept() {
        let a = asset(
            AssetKind::Image,
            vec![
                variant(
                    "w320-webp",
                    VariantKind::Image,
                    "slow-2g",
                    10,
                    "image/webp",
                    None,
                ),
                variant(
                    "w320-jpeg",
                    VariantKind::Image,
                    "slow-2g",
                    14,
                    "image/jpeg",
                    None,
                ),
                variant(
                    "w800-webp",
                    VariantKind::Image,
                    "3g",
                    40,
                    "image/webp",
                    None,
                ),
                variant(
                    "w800-jpeg",
                    VariantKind::Image,
                    "3g",
                    30,
                    "image/jpeg",
                    None,
                ),
                variant(
                    "w800-avif",
                    VariantKind::Image,
                    "3g",
                    20,
                    "image/avif",
                    None,
                ),
            ],
        );
        let webp = Signals {
            accept_webp: true,
            ..Default::default()
        };
        assert_eq!(pick(&a, 0, &webp), "w320-webp");
        assert_eq!(pick(&a, 3, &webp), "w800-webp");
        assert_eq!(pick(&a, 3, &Signals::default()), "w800-jpeg");
        // AVIF only for clients that name it, and only where the tier has one.
        let avif = Signals {
            accept_avif: true,
            ..webp.clone()
        };
        assert_eq!(pick(&a, 3, &avif), "w800-avif");
        assert_eq!(pick(&a, 0, &avif), "w320-webp");
    }

    /// The default profile's image ladder in both formats, with widths.
    fn image_ladder() -> Asset {
        let mut variants = Vec::new();
        for (w, tier) in [(320, "slow-2g"), (480, "2g"), (800, "3g"), (1280, "4g")] {
            for (fmt, mime, per_px) in [("webp", "image/webp", 20), ("jpeg", "image/jpeg", 30)] {
                variants.push(Variant {
                    width: Some(w),
                    ..variant(
                        &format!("w{w}-{fmt}"),
                        VariantKind::Image,
                        tier,
                        u64::from(w) * per_px,
                        mime,
                        None,
                    )
                });
            }
        }
        asset(AssetKind::Image, variants)
    }

    fn hinted(width: Option<u32>, dpr: Option<f64>, viewport: Option<u32>) -> Signals {
        Signals {
            accept_webp: true,
            width_px: width,
            dpr,
            viewport_width: viewport,
            ..Default::default()
        }
    }

    #[test]
    fn images_sized_by_client_hints() {
        let a = image_ladder();
        // A 360 px wide phone at DPR 1.5 needs 540 physical px: 800 covers it.
        assert_eq!(
            pick(&a, 3, &hinted(None, Some(1.5), Some(360))),
            "w800-webp"
        );
        // Sec-CH-Width is already physical pixels.
        assert_eq!(
            pick(&a, 3, &hinted(Some(300), Some(3.0), None)),
            "w320-webp"
        );
        assert_eq!(pick(&a, 3, &hinted(Some(481), None, None)), "w800-webp");
        // The tier caps the width: a 2g client gets 480 however wide its screen.
        assert_eq!(pick(&a, 1, &hinted(Some(1200), None, None)), "w480-webp");
        // Wider than any: the widest the tier allows.
        assert_eq!(pick(&a, 3, &hinted(Some(4000), None, None)), "w1280-webp");
        // No width to go by: the tier decides alone, as before.
        assert_eq!(pick(&a, 3, &hinted(None, Some(2.0), None)), "w1280-webp");
        // JPEG for clients without WebP, sized the same way.
        let jpeg = Signals {
            accept_webp: false,
            ..hinted(Some(400), None, None)
        };
        assert_eq!(pick(&a, 3, &jpeg), "w480-jpeg");
        // Variants without a recorded width fall back to the tier choice.
        let mut unsized_ = image_ladder();
        for v in &mut unsized_.variants {
            v.width = None;
        }
        assert_eq!(
            pick(&unsized_, 2, &hinted(Some(100), None, None)),
            "w800-webp"
        );
    }

    #[test]
    fn pages_by_encoding() {
        let a = asset(
            AssetKind::Page,
            vec![
                variant(
                    "identity",
                    VariantKind::Page,
                    "slow-2g",
                    100,
                    "text/html",
                    None,
                ),
                variant(
                    "br",
                    VariantKind::Page,
                    "slow-2g",
                    20,
                    "text/html",
                    Some("br"),
                ),
                variant(
                    "zstd",
                    VariantKind::Page,
                    "slow-2g",
                    24,
                    "text/html",
                    Some("zstd"),
                ),
                variant(
                    "gzip",
                    VariantKind::Page,
                    "slow-2g",
                    30,
                    "text/html",
                    Some("gzip"),
                ),
            ],
        );
        let enc = |list: &[&str]| Signals {
            encodings: list.iter().map(std::string::ToString::to_string).collect(),
            ..Default::default()
        };
        assert_eq!(pick(&a, 1, &enc(&["gzip", "br"])), "br");
        assert_eq!(pick(&a, 1, &enc(&["gzip"])), "gzip");
        // Chromium on plain HTTP: no br, but zstd.
        assert_eq!(pick(&a, 1, &enc(&["gzip", "deflate", "zstd"])), "zstd");
        assert_eq!(pick(&a, 1, &enc(&[])), "identity");
        assert_eq!(pick(&a, 1, &enc(&["*"])), "br");
    }

    fn width_of(a: &Asset, rank: usize, s: &Signals) -> u32 {
        let tiers = Profile::builtin_default().tiers;
        select(a, &tiers, rank, s)
            .and_then(|v| v.width)
            .unwrap_or(0)
    }

    #[test]
    fn pages_by_tier_then_encoding() {
        let page = |name: &str, tier: &str, bytes: u64, coding: Option<&str>| {
            variant(name, VariantKind::Page, tier, bytes, "text/html", coding)
        };
        let a = asset(
            AssetKind::Page,
            vec![
                page("slow-2g-identity", "slow-2g", 50, None),
                page("slow-2g-br", "slow-2g", 10, Some("br")),
                page("3g-identity", "3g", 60, None),
                page("3g-br", "3g", 12, Some("br")),
                page("3g-gzip", "3g", 15, Some("gzip")),
                page(ORIGINAL_VARIANT, "slow-2g", 90, None),
            ],
        );
        let br = Signals {
            encodings: vec!["br".into(), "gzip".into()],
            ..Default::default()
        };
        let gzip = Signals {
            encodings: vec!["gzip".into()],
            ..Default::default()
        };
        assert_eq!(pick(&a, 0, &br), "slow-2g-br");
        assert_eq!(pick(&a, 1, &br), "slow-2g-br");
        assert_eq!(pick(&a, 2, &br), "3g-br");
        assert_eq!(pick(&a, 3, &br), "3g-br");
        // The tier holds before the coding: no gzip copy at slow-2g, so identity.
        assert_eq!(pick(&a, 1, &gzip), "slow-2g-identity");
        assert_eq!(pick(&a, 3, &gzip), "3g-gzip");
        assert_eq!(pick(&a, 3, &Signals::default()), "3g-identity");
        // What decides the tier now decides the page too.
        assert_eq!(
            crate::choose::signals::vary_for(&a),
            "Accept-Encoding, Save-Data, ECT, Downlink, RTT, Cookie"
        );
        let one_form = asset(AssetKind::Page, a.variants[..2].to_vec());
        assert_eq!(
            crate::choose::signals::vary_for(&one_form),
            "Accept-Encoding"
        );
    }

    proptest! {
        #[test]
        fn a_wider_need_never_gets_a_narrower_image(
            rank in 0usize..4,
            w in proptest::option::of(1u32..3000),
            vw in proptest::option::of(1u32..3000),
            dpr in proptest::option::of(0.5f64..4.0),
            grow_w in 0u32..2000,
            grow_vw in 0u32..2000,
            grow_dpr in 0.0f64..3.0,
        ) {
            let a = image_ladder();
            let small = hinted(w, dpr, vw);
            let large = hinted(
                w.map(|w| w + grow_w),
                dpr.map(|d| d + grow_dpr),
                vw.map(|v| v + grow_vw),
            );
            prop_assert!(width_of(&a, rank, &small) <= width_of(&a, rank, &large));
        }

        #[test]
        fn an_image_never_exceeds_the_tier_unless_nothing_fits(
            rank in 0usize..4,
            w in proptest::option::of(1u32..5000),
            webp in any::<bool>(),
        ) {
            let a = image_ladder();
            let tiers = Profile::builtin_default().tiers;
            let s = Signals { accept_webp: webp, ..hinted(w, None, None) };
            let v = select(&a, &tiers, rank, &s).unwrap();
            prop_assert!(tiers.iter().position(|t| t.name == v.tier).unwrap() <= rank);
            prop_assert_eq!(v.mime == "image/webp", webp);
            // With a width hint, the choice covers it or is the widest the tier allows.
            let widest = width_of(&a, rank, &Signals { accept_webp: webp, ..Default::default() });
            if let Some(need) = w {
                prop_assert!(v.width.unwrap() >= need.min(widest));
            }
        }

        #[test]
        fn a_slower_measured_link_never_gets_more_bytes(
            a in 0u32..20_000,
            b in 0u32..20_000,
            rtt in proptest::option::of(0u32..3_000),
            hint in proptest::option::of(0u32..20_000),
        ) {
            // From the connection estimate (or a Downlink hint over it) to bytes.
            use crate::choose::estimate::Estimate;
            use crate::choose::signals::client_tier;
            let tiers = Profile::builtin_default().tiers;
            let a_video = video();
            let bytes = |kbps: u32| {
                let s = Signals {
                    downlink_kbps: hint,
                    connection: Some(Estimate { kbps, min_rtt_ms: rtt }),
                    ..Default::default()
                };
                let (rank, _) = client_tier(&s, &tiers, 2);
                select(&a_video, &tiers, rank, &s).unwrap().bytes
            };
            let (lo, hi) = (a.min(b), a.max(b));
            prop_assert!(bytes(lo) <= bytes(hi));
        }

        #[test]
        fn an_alternate_is_never_selected(
            rank in 0usize..4,
            av1 in any::<bool>(),
            keep in proptest::collection::vec(any::<bool>(), 5),
        ) {
            // Any subset of the ladder, the alternates always kept.
            let mut a = video_with_alternates();
            let mut keep = keep.into_iter();
            a.variants.retain(|v| v.alternate || keep.next().unwrap_or(true));
            let tiers = Profile::builtin_default().tiers;
            let s = Signals { av1, ..Default::default() };
            if let Some(v) = select(&a, &tiers, rank, &s) {
                prop_assert!(!v.alternate, "{} chosen", v.name);
            }
        }

        #[test]
        fn a_faster_client_never_gets_fewer_bytes(lo in 0usize..4, hi in 0usize..4) {
            let (lo, hi) = (lo.min(hi), lo.max(hi));
            let a = video();
            let tiers = Profile::builtin_default().tiers;
            let s = Signals::default();
            let slow = select(&a, &tiers, lo, &s).unwrap();
            let fast = select(&a, &tiers, hi, &s).unwrap();
            prop_assert!(slow.bytes <= fast.bytes);
            let fits = tiers.iter().position(|t| t.name == fast.tier).unwrap() <= hi;
            prop_assert!(fits);
        }
    }
}
