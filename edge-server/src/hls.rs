//! HLS master playlists, made per client from the manifest.
//!
//! The pipeline stores one media playlist per rendition (byte ranges into
//! the rendition's own fragmented MP4). The master playlist lists only the
//! renditions this client's tier can carry, the selected one first (players
//! start with the first entry), then the rest from the smallest up.

use lowband_catalog::manifest::{Asset, Variant, VariantKind};
use lowband_catalog::Tier;

/// A subtitle rendition for the master playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptionTrack {
    /// URI of its subtitle playlist.
    pub uri: String,
    pub language: Option<String>,
}

/// The master playlist of a video asset for a client of tier `client_rank`;
/// `None` if the asset has no HLS renditions.
pub fn master_playlist(
    asset: &Asset,
    tiers: &[Tier],
    client_rank: usize,
    chosen: Option<&Variant>,
    captions: &[CaptionTrack],
    playable: &dyn Fn(&Variant) -> bool,
) -> Option<String> {
    let rank = |v: &Variant| {
        tiers
            .iter()
            .position(|t| t.name == v.tier)
            .unwrap_or(usize::MAX)
    };
    // Slides rungs keep keyframes far apart: they play alone, never switched to.
    let streamable = |v: &&Variant| {
        playable(v)
            && v.playlist.is_some()
            && v.mode.is_none()
            && matches!(v.kind, VariantKind::Video | VariantKind::Audio)
    };
    let mut listed: Vec<&Variant> = asset
        .variants
        .iter()
        .filter(streamable)
        .filter(|v| rank(v) <= client_rank)
        .collect();
    if listed.is_empty() {
        listed.extend(
            asset
                .variants
                .iter()
                .filter(streamable)
                .min_by_key(|v| v.bytes),
        );
    }
    if listed.is_empty() {
        return None;
    }
    listed.sort_by_key(|v| (chosen.is_none_or(|c| c.name != v.name), bandwidth(v)));
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for (i, c) in captions.iter().enumerate() {
        let name = c.language.as_deref().unwrap_or("captions");
        out.push_str(&format!("#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"{name}\",DEFAULT={},AUTOSELECT=YES", if i == 0 { "YES" } else { "NO" }));
        if let Some(lang) = &c.language {
            out.push_str(&format!(",LANGUAGE=\"{lang}\""));
        }
        out.push_str(&format!(",URI=\"{}\"\n", c.uri));
    }
    for v in listed {
        let Some(playlist) = &v.playlist else {
            continue;
        };
        out.push_str(&format!("#EXT-X-STREAM-INF:BANDWIDTH={}", bandwidth(v)));
        if let Some(avg) = v.bitrate {
            out.push_str(&format!(",AVERAGE-BANDWIDTH={avg}"));
        }
        if let (Some(w), Some(h)) = (v.width, v.height) {
            out.push_str(&format!(",RESOLUTION={w}x{h}"));
        }
        if let Some(fps) = v.fps {
            out.push_str(&format!(",FRAME-RATE={fps:.3}"));
        }
        if let Some(codecs) = &v.codecs {
            out.push_str(&format!(",CODECS=\"{}\"", codecs.replace(' ', "")));
        }
        if !captions.is_empty() {
            out.push_str(",SUBTITLES=\"subs\"");
        }
        out.push_str(&format!("\n/o/{playlist}\n"));
    }
    Some(out)
}

/// A one-segment VOD playlist for a WebVTT file lasting `duration` seconds.
pub fn subtitle_playlist(vtt_uri: &str, duration: f64) -> String {
    let duration = if duration.is_finite() && duration > 0.0 {
        duration
    } else {
        1.0
    };
    format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{}\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:{duration:.3},\n{vtt_uri}\n#EXT-X-ENDLIST\n",
        duration.ceil() as u64
    )
}

fn bandwidth(v: &Variant) -> u64 {
    v.peak_bitrate.or(v.bitrate).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lowband_catalog::manifest::{AssetKind, SourceInfo};
    use lowband_catalog::{ContentHash, ObjectKey, Profile};

    fn variant(
        name: &str,
        kind: VariantKind,
        tier: &str,
        peak: u64,
        height: Option<u32>,
    ) -> Variant {
        let codecs = if height.is_some() {
            "avc1.4d400b, mp4a.40.2"
        } else {
            "mp4a.40.2"
        };
        let key = ObjectKey::for_bytes(name.as_bytes(), "mp4");
        Variant {
            codecs: Some(codecs.into()),
            width: height.map(|h| h * 16 / 9),
            height,
            fps: height.map(|_| 10.0),
            bitrate: Some(peak * 3 / 4),
            duration: Some(60.0),
            playlist: Some(ObjectKey::for_bytes(
                format!("{name}.m3u8").as_bytes(),
                "m3u8",
            )),
            peak_bitrate: Some(peak),
            ..Variant::new(name, kind, tier, key, peak, "video/mp4")
        }
    }

    fn asset() -> Asset {
        Asset {
            path: "v.mp4".into(),
            kind: AssetKind::Video,
            source: SourceInfo {
                bytes: 1,
                hash: ContentHash::of(b""),
                mime: "video/mp4".into(),
            },
            derivation: ContentHash::of(b""),
            captions: Vec::new(),
            placeholder: None,
            duration: Some(60.0),
            variants: vec![
                variant("144p", VariantKind::Video, "2g", 60_000, Some(144)),
                variant("480p", VariantKind::Video, "4g", 800_000, Some(480)),
                variant("audio-aac", VariantKind::Audio, "slow-2g", 34_000, None),
            ],
        }
    }

    #[test]
    fn lists_only_what_the_tier_carries_chosen_first() {
        let tiers = Profile::builtin_default().tiers;
        let a = asset();
        let two_g = master_playlist(&a, &tiers, 1, a.variants.first(), &[], &|_| true).unwrap();
        assert!(two_g.starts_with("#EXTM3U\n"));
        assert!(!two_g.contains("RESOLUTION=853x480"), "{two_g}");
        let first = two_g
            .lines()
            .find(|l| l.starts_with("#EXT-X-STREAM-INF"))
            .unwrap();
        assert_eq!(
            first,
            "#EXT-X-STREAM-INF:BANDWIDTH=60000,AVERAGE-BANDWIDTH=45000,RESOLUTION=256x144,FRAME-RATE=10.000,CODECS=\"avc1.4d400b,mp4a.40.2\""
        );
        assert!(
            two_g.contains("CODECS=\"mp4a.40.2\"\n/o/objects/"),
            "audio-only listed: {two_g}"
        );

        let four_g = master_playlist(&a, &tiers, 3, a.variants.get(1), &[], &|_| true).unwrap();
        let order: Vec<_> = four_g
            .lines()
            .filter(|l| l.starts_with("#EXT-X-STREAM-INF"))
            .map(|l| l.split(',').next().unwrap().to_owned())
            .collect();
        assert_eq!(
            order,
            [
                "#EXT-X-STREAM-INF:BANDWIDTH=800000",
                "#EXT-X-STREAM-INF:BANDWIDTH=34000",
                "#EXT-X-STREAM-INF:BANDWIDTH=60000"
            ]
        );
    }

    #[test]
    fn captions_are_listed_and_referenced() {
        let tiers = Profile::builtin_default().tiers;
        let a = asset();
        let tracks = [
            CaptionTrack {
                uri: "/m/x/v.mp4/captions/0.m3u8".into(),
                language: Some("km".into()),
            },
            CaptionTrack {
                uri: "/m/x/v.mp4/captions/1.m3u8".into(),
                language: None,
            },
        ];
        let m = master_playlist(&a, &tiers, 3, None, &tracks, &|_| true).unwrap();
        assert!(m.contains("#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"km\",DEFAULT=YES,AUTOSELECT=YES,LANGUAGE=\"km\",URI=\"/m/x/v.mp4/captions/0.m3u8\"\n"), "{m}");
        assert!(m.contains("NAME=\"captions\",DEFAULT=NO"), "{m}");
        assert!(
            m.lines()
                .filter(|l| l.starts_with("#EXT-X-STREAM-INF"))
                .all(|l| l.ends_with(",SUBTITLES=\"subs\"")),
            "{m}"
        );
        let sub = subtitle_playlist("/o/objects/ab/x.vtt", 71.5);
        assert_eq!(sub, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:72\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:71.500,\n/o/objects/ab/x.vtt\n#EXT-X-ENDLIST\n");
    }

    #[test]
    fn none_without_playlists() {
        let mut a = asset();
        for v in &mut a.variants {
            v.playlist = None;
        }
        assert!(
            master_playlist(&a, &Profile::builtin_default().tiers, 3, None, &[], &|_| {
                true
            })
            .is_none()
        );
    }
}
