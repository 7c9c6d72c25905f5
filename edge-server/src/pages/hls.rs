//! HLS master playlists, made per client from the manifest.
//!
//! The pipeline stores one media playlist per rendition (byte ranges into
//! the rendition's own fragmented MP4). The master playlist lists only the
//! renditions this client's tier can carry, the selected one first (players
//! start with the first entry), then the rest from the smallest up.
//! A video's further sound tracks (`alternate` variants) are never variant
//! streams of their own: they are alternative audio renditions (RFC 8216
//! §4.3.4.1) in the group `aud`, beside the main sound that every picture
//! rung carries, and the picture rungs name that group. Names and
//! languages from the manifest are reduced to what a language tag holds,
//! so none can close its quotes.

use lowband_catalog::manifest::{Asset, Variant, VariantKind};
use lowband_catalog::Tier;

/// GROUP-ID of the alternative audio renditions.
const AUDIO_GROUP: &str = "aud";

/// A subtitle rendition for the master playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptionTrack {
    /// URI of its subtitle playlist.
    pub uri: String,
    pub language: Option<String>,
}

/// The master playlist of a video asset for a client of tier `client_rank`;
/// `None` if the asset has no HLS renditions. `main_language` (the
/// module's) names the sound the picture rungs carry, when the asset has
/// further sound tracks to offer beside it.
pub fn master_playlist(
    asset: &Asset,
    tiers: &[Tier],
    client_rank: usize,
    chosen: Option<&Variant>,
    main_language: Option<&str>,
    captions: &[CaptionTrack],
    playable: &dyn Fn(&Variant) -> bool,
) -> Option<String> {
    let rank = |v: &Variant| {
        tiers
            .iter()
            .position(|t| t.name == v.tier)
            .unwrap_or(usize::MAX)
    };
    let hls = |v: &&Variant| playable(v) && v.playlist.is_some();
    // Slides rungs keep keyframes far apart: they play alone, never switched to.
    let streamable = |v: &&Variant| {
        hls(v)
            && !v.alternate
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
    // Alternative sound only where a listed picture rung can name the group.
    let alternates: Vec<&Variant> = if listed.iter().any(|v| v.kind == VariantKind::Video) {
        asset
            .variants
            .iter()
            .filter(hls)
            .filter(|v| v.alternate && v.kind == VariantKind::Audio)
            .collect()
    } else {
        Vec::new()
    };
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    let group = (!alternates.is_empty()).then(|| audio_group(&mut out, main_language, alternates));
    let mut names = Vec::new();
    for (i, c) in captions.iter().enumerate() {
        let lang = c.language.as_deref().and_then(language_tag);
        let name = unique_name(&mut names, lang, "captions");
        media(&mut out, "SUBTITLES", "subs", &name);
        out.push_str(if i == 0 {
            ",DEFAULT=YES,AUTOSELECT=YES"
        } else {
            ",DEFAULT=NO,AUTOSELECT=YES"
        });
        if let Some(lang) = lang {
            out.push_str(&format!(",LANGUAGE=\"{lang}\""));
        }
        out.push_str(&format!(",URI=\"{}\"\n", c.uri));
    }
    for v in listed {
        let group = group.as_ref().filter(|_| v.kind == VariantKind::Video);
        stream_inf(&mut out, v, group, !captions.is_empty());
    }
    Some(out)
}

/// The alternative audio renditions a picture rung is played with.
struct AudioGroup<'a> {
    alternates: Vec<&'a Variant>,
}

impl AudioGroup<'_> {
    /// What the dearest rendition adds to a rung's bitrate: a rung plays
    /// with any one of them, and its BANDWIDTH and AVERAGE-BANDWIDTH count
    /// the largest combination (RFC 8216 §4.3.4.2).
    fn extra(&self, of: impl Fn(&Variant) -> Option<u64>) -> u64 {
        self.alternates
            .iter()
            .filter_map(|a| of(a))
            .max()
            .unwrap_or(0)
    }

    /// Adds to `codecs` (the rung's, comma-separated) the formats of the
    /// renditions it lacks: CODECS names every format a rung may play.
    fn add_codecs(&self, codecs: &mut String) {
        let theirs = self.alternates.iter().filter_map(|a| a.codecs.as_deref());
        for c in theirs.flat_map(|c| c.split(',')).map(str::trim) {
            if is_codec(c) && !codecs.split(',').any(|have| have == c) {
                codecs.push(',');
                codecs.push_str(c);
            }
        }
    }
}

/// Writes the `aud` group: first the main sound, inside the picture rungs
/// (no URI), the default; then each further track with its own playlist.
fn audio_group<'a>(
    out: &mut String,
    main_language: Option<&str>,
    alternates: Vec<&'a Variant>,
) -> AudioGroup<'a> {
    let mut names = Vec::new();
    let lang = main_language.and_then(language_tag);
    let name = unique_name(&mut names, lang, "main");
    media(out, "AUDIO", AUDIO_GROUP, &name);
    if let Some(lang) = lang {
        out.push_str(&format!(",LANGUAGE=\"{lang}\""));
    }
    out.push_str(",DEFAULT=YES,AUTOSELECT=YES\n");
    for v in &alternates {
        let Some(playlist) = &v.playlist else {
            continue;
        };
        let lang = v.language.as_deref().and_then(language_tag);
        let name = unique_name(&mut names, lang, &token(&v.name));
        media(out, "AUDIO", AUDIO_GROUP, &name);
        if let Some(lang) = lang {
            out.push_str(&format!(",LANGUAGE=\"{lang}\""));
        }
        out.push_str(&format!(
            ",DEFAULT=NO,AUTOSELECT=YES,URI=\"/o/{playlist}\"\n"
        ));
    }
    AudioGroup { alternates }
}

/// Starts an `EXT-X-MEDIA` line: its type, group and (already sanitised)
/// name; the caller adds the attributes that differ.
fn media(out: &mut String, kind: &str, group: &str, name: &str) {
    out.push_str(&format!(
        "#EXT-X-MEDIA:TYPE={kind},GROUP-ID=\"{group}\",NAME=\"{name}\""
    ));
}

/// Writes the variant stream of `v`, played with `group` if it has one.
fn stream_inf(out: &mut String, v: &Variant, group: Option<&AudioGroup<'_>>, subtitles: bool) {
    let Some(playlist) = &v.playlist else {
        return;
    };
    let extra = |of: fn(&Variant) -> Option<u64>| group.map_or(0, |g| g.extra(of));
    let peak = bandwidth(v).saturating_add(extra(|a| Some(bandwidth(a))));
    out.push_str(&format!("#EXT-X-STREAM-INF:BANDWIDTH={peak}"));
    if let Some(avg) = v.bitrate {
        let avg = avg.saturating_add(extra(|a| a.bitrate));
        out.push_str(&format!(",AVERAGE-BANDWIDTH={avg}"));
    }
    if let (Some(w), Some(h)) = (v.width, v.height) {
        out.push_str(&format!(",RESOLUTION={w}x{h}"));
    }
    if let Some(fps) = v.fps {
        out.push_str(&format!(",FRAME-RATE={fps:.3}"));
    }
    if let Some(codecs) = &v.codecs {
        let mut codecs = codecs.replace(' ', "");
        if let Some(g) = group {
            g.add_codecs(&mut codecs);
        }
        out.push_str(&format!(",CODECS=\"{codecs}\""));
    }
    if group.is_some() {
        out.push_str(&format!(",AUDIO=\"{AUDIO_GROUP}\""));
    }
    if subtitles {
        out.push_str(",SUBTITLES=\"subs\"");
    }
    out.push_str(&format!("\n/o/{playlist}\n"));
}

/// `tag` if it has the shape of a BCP 47 or ISO 639 language tag (`km`,
/// `eng`, `pt-BR`): subtags of 1 to 8 ASCII letters or digits joined by
/// `-`, the first of 2 to 8 letters, 35 characters at most.
fn language_tag(tag: &str) -> Option<&str> {
    let mut subtags = tag.split('-');
    let first = subtags.next()?;
    let ok = tag.len() <= 35
        && (2..=8).contains(&first.len())
        && first.bytes().all(|b| b.is_ascii_alphabetic())
        && subtags
            .all(|s| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()));
    ok.then_some(tag)
}

/// A variant name reduced to the characters of a language tag
/// (`audio-eng`): anything else becomes `-`.
fn token(name: &str) -> String {
    let t: String = name
        .chars()
        .take(64)
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    if t.is_empty() {
        "audio".into()
    } else {
        t
    }
}

/// `preferred` if no other rendition of the group is called so, else
/// `fallback`, else `fallback` numbered: NAMEs in a group differ (RFC 8216
/// §4.3.4.1.1).
fn unique_name(taken: &mut Vec<String>, preferred: Option<&str>, fallback: &str) -> String {
    let free = |n: &str| !taken.iter().any(|t| t == n);
    let name = match preferred.filter(|n| free(n)) {
        Some(n) => n.to_owned(),
        None if free(fallback) => fallback.to_owned(),
        None => (2..)
            .map(|i| format!("{fallback}-{i}"))
            .find(|n| free(n))
            .unwrap_or_default(),
    };
    taken.push(name.clone());
    name
}

/// An RFC 6381 codec entry (`mp4a.40.2`): letters, digits and dots.
fn is_codec(c: &str) -> bool {
    !c.is_empty() && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.')
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
        let two_g =
            master_playlist(&a, &tiers, 1, a.variants.first(), None, &[], &|_| true).unwrap();
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

        let four_g =
            master_playlist(&a, &tiers, 3, a.variants.get(1), None, &[], &|_| true).unwrap();
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
        let m = master_playlist(&a, &tiers, 3, None, None, &tracks(), &|_| true).unwrap();
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

    fn tracks() -> [CaptionTrack; 2] {
        [
            CaptionTrack {
                uri: "/m/x/v.mp4/captions/0.m3u8".into(),
                language: Some("km".into()),
            },
            CaptionTrack {
                uri: "/m/x/v.mp4/captions/1.m3u8".into(),
                language: None,
            },
        ]
    }

    /// [`asset`] with further sound tracks: `eng`, and one without a tag.
    fn with_alternates(tracks: &[(&str, Option<&str>)]) -> Asset {
        let mut a = asset();
        for (name, lang) in tracks {
            a.variants.push(Variant {
                language: lang.map(Into::into),
                alternate: true,
                ..variant(name, VariantKind::Audio, "slow-2g", 36_000, None)
            });
        }
        a
    }

    fn playlist_of<'a>(a: &'a Asset, name: &str) -> &'a ObjectKey {
        let v = a.variants.iter().find(|v| v.name == name).unwrap();
        v.playlist.as_ref().unwrap()
    }

    /// The attributes of a tag line, checked to be a well-formed attribute
    /// list (RFC 8216 §4.2): a stray quote in a value cannot pass.
    fn attributes(line: &str) -> Vec<(String, String)> {
        let (_, mut rest) = line.split_once(':').unwrap();
        let mut out = Vec::new();
        while !rest.is_empty() {
            let (key, after) = rest.split_once('=').unwrap();
            assert!(
                key.bytes().all(|b| b.is_ascii_uppercase() || b == b'-'),
                "{line}"
            );
            let (value, after) = match after.strip_prefix('"') {
                Some(quoted) => {
                    let (value, after) = quoted.split_once('"').unwrap();
                    assert!(!value.contains(['\n', '\r']), "{line}");
                    (value, after)
                }
                None => after.split_at(after.find(',').unwrap_or(after.len())),
            };
            out.push((key.to_owned(), value.to_owned()));
            rest = after.strip_prefix(',').unwrap_or(after);
            assert!(after.is_empty() || after.starts_with(','), "{line}");
        }
        out
    }

    fn is_attribute_tag(line: &str) -> bool {
        line.starts_with("#EXT-X-MEDIA:") || line.starts_with("#EXT-X-STREAM-INF:")
    }

    #[test]
    fn alternates_are_alternative_audio_of_the_picture_rungs() {
        let tiers = Profile::builtin_default().tiers;
        let a = with_alternates(&[("audio-eng", Some("eng")), ("audio-3", None)]);
        let m = master_playlist(
            &a,
            &tiers,
            3,
            a.variants.first(),
            Some("km"),
            &tracks(),
            &|_| true,
        )
        .unwrap();
        let media: Vec<&str> = m
            .lines()
            .filter(|l| l.starts_with("#EXT-X-MEDIA:TYPE=AUDIO"))
            .collect();
        let eng = playlist_of(&a, "audio-eng");
        let untagged = playlist_of(&a, "audio-3");
        assert_eq!(
            media,
            [
                "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"km\",LANGUAGE=\"km\",DEFAULT=YES,AUTOSELECT=YES".to_owned(),
                format!("#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"eng\",LANGUAGE=\"eng\",DEFAULT=NO,AUTOSELECT=YES,URI=\"/o/{eng}\""),
                format!("#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"audio-3\",DEFAULT=NO,AUTOSELECT=YES,URI=\"/o/{untagged}\""),
            ],
            "{m}"
        );
        // Each alternate once, and never as a variant stream of its own.
        for key in [eng, untagged] {
            assert_eq!(m.matches(&key.to_string()).count(), 1, "{m}");
        }
        let lines: Vec<&str> = m.lines().collect();
        let streams: Vec<(&str, &str)> = lines
            .windows(2)
            .filter(|w| w[0].starts_with("#EXT-X-STREAM-INF"))
            .map(|w| (w[0], w[1]))
            .collect();
        assert_eq!(streams.len(), 3, "{m}");
        for (inf, uri) in &streams {
            let attrs = attributes(inf);
            let audio = attrs
                .iter()
                .find(|(k, _)| k == "AUDIO")
                .map(|(_, v)| v.as_str());
            let picture = attrs.iter().any(|(k, _)| k == "RESOLUTION");
            assert_eq!(audio, picture.then_some("aud"), "{inf}");
            assert!(!uri.contains(&eng.to_string()) && !uri.contains(&untagged.to_string()));
        }
        // The chosen rung still leads; its BANDWIDTH counts the dearer sound on top.
        assert!(
            streams[0].0.starts_with("#EXT-X-STREAM-INF:BANDWIDTH=96000,AVERAGE-BANDWIDTH=72000,RESOLUTION=256x144,FRAME-RATE=10.000,CODECS=\"avc1.4d400b,mp4a.40.2\",AUDIO=\"aud\",SUBTITLES=\"subs\""),
            "{m}"
        );
        assert!(
            streams[1]
                .0
                .starts_with("#EXT-X-STREAM-INF:BANDWIDTH=34000,"),
            "{m}"
        );
        for line in m.lines().filter(|l| is_attribute_tag(l)) {
            attributes(line);
        }
    }

    #[test]
    fn no_audio_group_without_a_picture_rung_to_carry_it() {
        let tiers = Profile::builtin_default().tiers;
        let a = with_alternates(&[("audio-eng", Some("eng"))]);
        // slow-2g: only the main audio-only rendition, which names no group.
        let m =
            master_playlist(&a, &tiers, 0, a.variants.get(2), Some("km"), &[], &|_| true).unwrap();
        assert!(!m.contains("TYPE=AUDIO") && !m.contains("AUDIO=\""), "{m}");
        assert!(
            !m.contains(&playlist_of(&a, "audio-eng").to_string()),
            "{m}"
        );
        assert_eq!(m.matches("#EXT-X-STREAM-INF").count(), 1, "{m}");
        // Only alternates have playlists: nothing to play.
        let mut only = a.clone();
        for v in only.variants.iter_mut().filter(|v| !v.alternate) {
            v.playlist = None;
        }
        assert!(master_playlist(&only, &tiers, 3, None, None, &[], &|_| true).is_none());
    }

    #[test]
    fn names_and_languages_never_break_their_quotes() {
        let tiers = Profile::builtin_default().tiers;
        let mut a = with_alternates(&[
            ("audio-eng", Some("eng")),
            ("audio-eng-3", Some("eng")),
            ("audio \"x\",URI=\"evil", Some("fr\",URI=\"evil")),
        ]);
        a.variants[0].codecs = Some("avc1.4d400b, opus".into());
        let hostile = [CaptionTrack {
            uri: "/m/x/v.mp4/captions/0.m3u8".into(),
            language: Some("km\"\n#EXT-X-ENDLIST".into()),
        }];
        let m = master_playlist(&a, &tiers, 3, None, Some("eng"), &hostile, &|_| true).unwrap();
        for line in m.lines().filter(|l| is_attribute_tag(l)) {
            for (k, v) in attributes(line) {
                assert_ne!(v, "evil", "{k} in {line}");
            }
        }
        assert!(!m.contains("ENDLIST"), "{m}");
        let names: Vec<String> = m
            .lines()
            .filter(|l| l.starts_with("#EXT-X-MEDIA:TYPE=AUDIO"))
            .map(|l| {
                attributes(l)
                    .into_iter()
                    .find(|(k, _)| k == "NAME")
                    .unwrap()
                    .1
            })
            .collect();
        // The module's language names the main sound; a track sharing it goes by its own name.
        assert_eq!(
            names,
            ["eng", "audio-eng", "audio-eng-3", "audio--x--URI--evil"]
        );
        assert!(!m.contains("LANGUAGE=\"fr"), "{m}");
        assert!(
            m.contains("NAME=\"captions\",DEFAULT=YES,AUTOSELECT=YES,URI="),
            "{m}"
        );
        // Every format the group holds is in the rung's CODECS.
        assert!(
            m.contains("CODECS=\"avc1.4d400b,opus,mp4a.40.2\",AUDIO=\"aud\""),
            "{m}"
        );
    }

    #[test]
    fn language_tags_are_recognised_by_shape() {
        for ok in ["km", "khm", "eng", "pt-BR", "zh-Hant-TW", "es-419"] {
            assert_eq!(language_tag(ok), Some(ok));
        }
        for bad in [
            "",
            "e",
            "1a",
            "en--US",
            "en_US",
            "en-",
            "toolongtag",
            "km\"",
            "e n",
        ] {
            assert_eq!(language_tag(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn without_alternates_the_playlist_is_as_before() {
        let tiers = Profile::builtin_default().tiers;
        let a = asset();
        let tracks = tracks();
        let m = master_playlist(&a, &tiers, 3, None, Some("km"), &tracks, &|_| true).unwrap();
        assert_eq!(
            m,
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"km\",DEFAULT=YES,AUTOSELECT=YES,LANGUAGE=\"km\",URI=\"/m/x/v.mp4/captions/0.m3u8\"\n\
             #EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"captions\",DEFAULT=NO,AUTOSELECT=YES,URI=\"/m/x/v.mp4/captions/1.m3u8\"\n\
             #EXT-X-STREAM-INF:BANDWIDTH=34000,AVERAGE-BANDWIDTH=25500,CODECS=\"mp4a.40.2\",SUBTITLES=\"subs\"\n\
             /o/objects/5f/5f87367242a4e622057ffd5322bfd8b9a7e2237328e7b83b870b7c0271d2decf.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=60000,AVERAGE-BANDWIDTH=45000,RESOLUTION=256x144,FRAME-RATE=10.000,CODECS=\"avc1.4d400b,mp4a.40.2\",SUBTITLES=\"subs\"\n\
             /o/objects/3c/3c2d35db4454267c656ad5d72dc0447fe5b9cc5a69b5e452f31114e6e3bb7b0e.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=800000,AVERAGE-BANDWIDTH=600000,RESOLUTION=853x480,FRAME-RATE=10.000,CODECS=\"avc1.4d400b,mp4a.40.2\",SUBTITLES=\"subs\"\n\
             /o/objects/5c/5cfecdee2bbc2f968a93770a6a68879dbb152254756a5a8b372eabbd935d5475.m3u8\n"
        );
        // Every tier, choice and caption set: the digest of what the
        // playlist made before alternative audio existed.
        let mut all = String::new();
        for rank in 0..4 {
            for chosen in [None, a.variants.first()] {
                for captions in [&tracks[..], &[]] {
                    let lang = Some("km");
                    all.push_str(
                        &master_playlist(&a, &tiers, rank, chosen, lang, captions, &|_| true)
                            .unwrap(),
                    );
                }
            }
        }
        assert_eq!(
            ContentHash::of(all.as_bytes()).to_string(),
            "8076f6ca0004856fbc9d21794128ab494bd4f6573c4fa96ebf763b9c0e5894ab"
        );
    }

    #[test]
    fn none_without_playlists() {
        let mut a = asset();
        for v in &mut a.variants {
            v.playlist = None;
        }
        assert!(master_playlist(
            &a,
            &Profile::builtin_default().tiers,
            3,
            None,
            None,
            &[],
            &|_| { true }
        )
        .is_none());
    }
}
