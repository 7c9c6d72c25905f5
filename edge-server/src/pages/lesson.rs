//! The lesson page of a video, at `/m/<module>/<video>/watch`: the player,
//! what the current choice costs before anything plays, the quality
//! picker (a plain GET form) and a download link per choice.

use lowband_catalog::manifest::{Asset, Manifest, Variant, VariantKind};
use lowband_catalog::urls::{asset_url as edge_url, encode_segment, megabytes as mb, module_url};
use maud::{html, Markup};

use super::captions;
use super::layout::{clock, document, lesson_name};
use super::quality::{Choice, Offer, PICK_PARAM};
use super::words::Words;

/// Query parameter naming the variant to download.
pub const VARIANT_PARAM: &str = "v";

/// What the lesson page shows and plays.
pub struct Lesson<'a> {
    pub manifest: &'a Manifest,
    pub asset: &'a Asset,
    pub offers: &'a [Offer<'a>],
    pub current: Choice,
    /// For Auto: what the edge would serve now, and whether it knew
    /// anything about the client (hints or a measured link) to decide it.
    pub auto_now: Option<(&'a Variant, bool)>,
    pub accept_webp: bool,
    /// The page's words, in the reader's language.
    pub words: Words,
}

/// The lesson page.
pub fn lesson_page(l: &Lesson<'_>) -> String {
    let m = l.manifest;
    let video_url = edge_url(m.module.id.as_str(), &l.asset.path);
    let title = &m.module.title;
    let name = lesson_name(&l.asset.path);
    let lang = m.module.language.as_deref().unwrap_or("en");
    let w = &l.words;
    let ui = w.lang();
    let playing = l
        .offers
        .iter()
        .find(|o| o.choice == l.current && l.current != Choice::Auto);
    let body = html! {
        nav lang=(ui) {
            a href="/" { (w.get("lesson-all-modules")) }
            @if m.asset("index.html").is_some() {
                " · " a href=(module_url(&m.module.id)) { (w.get("catalog-course-page")) }
            }
        }
        main {
            h1 { (title) }
            p lang=(ui) {
                (w.get("lesson-heading")) " " b lang=(lang) { (name) } " " (l.asset.duration.map(clock).unwrap_or_default())
            }
            (player(l, &video_url, playing))
            // What plays, and what it costs, before anything plays.
            p class="now" lang=(ui) id="now" { (now_playing(l, playing)) }
            p class="cost" lang=(ui) id="costs" {
                (w.with("lesson-costs", &[("costs", &costs(l))]))
            }
            (picker(l, &video_url))
            (downloads(l, &video_url))
        }
    };
    let description = format!("{name}: {title}");
    document(lang, &description, &format!("{name} · {title}"), &body).into_string()
}

/// The player: nothing is fetched before a tap but the poster (and the
/// default captions).
fn player(l: &Lesson<'_>, video_url: &str, playing: Option<&Offer<'_>>) -> Markup {
    let m = l.manifest;
    let src = match playing {
        Some(o) => format!("/o/{}", o.variant.key),
        None => format!("{video_url}/play"),
    };
    let poster = poster(l.asset, l.accept_webp).map(|p| format!("/o/{}", p.key));
    let default_caption = l
        .asset
        .captions
        .iter()
        .position(|c| c.language.as_deref() == m.module.language.as_deref())
        .unwrap_or(0);
    let tracks = l.asset.captions.iter().enumerate().filter_map(|(i, c)| {
        let vtt = captions::vtt_object(m, c)?;
        let (srclang, label) = match c.language.as_deref() {
            Some("km") => ("km", "ខ្មែរ"),
            Some(other) => (other, other),
            None => ("en", "English"),
        };
        Some((vtt, srclang, label, i == default_caption))
    });
    html! {
        video id="lesson" controls preload="none" playsinline width="640" height="360" src=(src) poster=[poster] {
            @for (vtt, srclang, label, default) in tracks {
                track kind="subtitles" src={ "/o/" (vtt) } srclang=(srclang) label=(label) default[default];
            }
            span lang=(l.words.lang()) { (l.words.get("lesson-cannot-play")) }
        }
    }
}

/// What plays now and what it costs for the whole lesson.
fn now_playing(l: &Lesson<'_>, playing: Option<&Offer<'_>>) -> String {
    let w = &l.words;
    let text = match (playing, l.auto_now) {
        (Some(o), _) => w.with(
            "lesson-now-chosen",
            &[
                ("choice", &o.label(l.manifest, w)),
                ("detail", &o.detail(w)),
                ("size", &mb(o.variant.bytes)),
            ],
        ),
        (None, Some((v, true))) => w.with(
            "lesson-now-auto",
            &[("choice", &offer_label(l, v)), ("size", &mb(v.bytes))],
        ),
        (None, _) => {
            let most = l.offers.iter().map(|o| o.variant.bytes).max().unwrap_or(0);
            w.with("lesson-now-auto-later", &[("size", &mb(most))])
        }
    };
    text.into_owned()
}

/// What each choice costs for the whole lesson.
fn costs(l: &Lesson<'_>) -> String {
    let costs: Vec<String> = l
        .offers
        .iter()
        .map(|o| format!("{} {}", o.label(l.manifest, &l.words), mb(o.variant.bytes)))
        .collect();
    costs.join(" · ")
}

/// The picker: a GET form, remembered in a cookie.
fn picker(l: &Lesson<'_>, video_url: &str) -> Markup {
    let m = l.manifest;
    let w = &l.words;
    let radio = |choice: Choice, label: &str, detail: &str, variant: Option<&Variant>| {
        html! {
            label data-variant=[variant.map(|v| &v.name)] data-bytes=[variant.map(|v| v.bytes)] data-src=[variant.map(|v| format!("/o/{}", v.key))] {
                input type="radio" name=(PICK_PARAM) value=(choice.value(m)) checked[choice == l.current];
                " " (label) " " small { (detail) }
            }
        }
    };
    html! {
        form method="get" action={ (video_url) "/watch" } lang=(w.lang()) {
            fieldset {
                legend { (w.get("picker-legend")) }
                (radio(Choice::Auto, &w.get("picker-auto"), &w.get("picker-auto-detail"), None))
                @for o in l.offers {
                    (radio(o.choice, &o.label(m, w), &format!("{} · {}", o.detail(w), mb(o.variant.bytes)), Some(o.variant)))
                }
            }
            button { (w.get("picker-submit")) }
        }
    }
}

/// Offline: a plain link per choice; the edge answers ranges, so a cut
/// download resumes.
fn downloads(l: &Lesson<'_>, video_url: &str) -> Markup {
    let w = &l.words;
    html! {
        h2 lang=(w.lang()) { (w.get("lesson-download-heading")) }
        ul lang=(w.lang()) {
            @for o in l.offers {
                li {
                    a href={ (video_url) "/download?" (VARIANT_PARAM) "=" (encode_segment(&o.variant.name)) } download {
                        (o.label(l.manifest, w)) " (" (o.detail(w)) ")"
                    }
                    " " (mb(o.variant.bytes))
                }
            }
        }
    }
}

fn offer_label(l: &Lesson<'_>, v: &Variant) -> String {
    l.offers
        .iter()
        .find(|o| o.variant.key == v.key)
        .map_or_else(|| v.name.clone(), |o| o.label(l.manifest, &l.words))
}

/// The poster: WebP where the client takes it, else JPEG.
fn poster(asset: &Asset, accept_webp: bool) -> Option<&Variant> {
    let posters = || {
        asset
            .variants_of(VariantKind::Image)
            .filter(|v| v.name.starts_with("poster"))
    };
    posters()
        .find(|v| accept_webp && v.mime == "image/webp")
        .or_else(|| posters().find(|v| v.mime == "image/jpeg"))
        .or_else(|| posters().next())
}
