//! The lesson page of a video, at `/m/<module>/<video>/watch`: the player,
//! what the current choice costs before anything plays, the quality
//! picker (a plain GET form) and a download link per choice.

use std::fmt::Write as _;

use lowband_catalog::manifest::{Asset, Manifest, Variant, VariantKind};
use lowband_catalog::urls::{asset_url as edge_url, encode_segment, megabytes as mb, module_url};

use super::captions;
use super::layout::{clock, escape, lesson_name, FONTS, STYLE};
use super::quality::{Choice, Offer, PICK_PARAM};

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
}

/// The lesson page.
pub fn lesson_page(l: &Lesson<'_>) -> String {
    let m = l.manifest;
    let module = m.module.id.as_str();
    let video_url = edge_url(module, &l.asset.path);
    let title = escape(&m.module.title);
    let name = escape(&lesson_name(&l.asset.path));
    let duration = l.asset.duration.map(clock).unwrap_or_default();
    let lang = escape(m.module.language.as_deref().unwrap_or("en"));
    let playing = l
        .offers
        .iter()
        .find(|o| o.choice == l.current && l.current != Choice::Auto);

    let mut h = String::with_capacity(6 * 1024);
    let _ = write!(
        h,
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <link rel=\"icon\" href=\"data:,\">\
         <meta name=\"description\" content=\"{name}: {title}\">\
         <title>{name} · {title}</title><style>{}</style></head><body>\
         <nav lang=\"en\"><a href=\"/\">All modules</a>",
        STYLE.replace("FONTS", FONTS)
    );
    if m.asset("index.html").is_some() {
        let _ = write!(
            h,
            " · <a href=\"{}\">Course page</a>",
            escape(&module_url(&m.module.id))
        );
    }
    let _ = write!(
        h,
        "</nav><main><h1>{title}</h1><p lang=\"en\">Lesson: <b lang=\"{lang}\">{name}</b> {duration}</p>"
    );

    // The player: nothing is fetched before a tap but the poster (and the default captions).
    let src = match playing {
        Some(o) => format!("/o/{}", o.variant.key),
        None => format!("{video_url}/play"),
    };
    let _ = write!(
        h,
        "<video id=\"lesson\" controls preload=\"none\" playsinline width=\"640\" height=\"360\" src=\"{}\"",
        escape(&src)
    );
    if let Some(poster) = poster(l.asset, l.accept_webp) {
        let _ = write!(h, " poster=\"/o/{}\"", escape(&poster.key.to_string()));
    }
    h.push('>');
    let default_caption = l
        .asset
        .captions
        .iter()
        .position(|c| c.language.as_deref() == m.module.language.as_deref())
        .unwrap_or(0);
    for (i, c) in l.asset.captions.iter().enumerate() {
        let Some(vtt) = captions::vtt_object(m, c) else {
            continue;
        };
        let (srclang, label) = match c.language.as_deref() {
            Some("km") => ("km", "ខ្មែរ"),
            Some(other) => (other, other),
            None => ("en", "English"),
        };
        let _ = write!(
            h,
            "<track kind=\"subtitles\" src=\"/o/{}\" srclang=\"{}\" label=\"{}\"{}>",
            escape(&vtt.to_string()),
            escape(srclang),
            escape(label),
            if i == default_caption { " default" } else { "" }
        );
    }
    let _ = write!(
        h,
        "<span lang=\"en\">This browser cannot play the video: download it below.</span></video>"
    );

    // What plays, and what it costs, before anything plays.
    let now = match (playing, l.auto_now) {
        (Some(o), _) => format!(
            "{} ({}): {} for the whole lesson",
            escape(&o.label(m)),
            escape(&o.detail()),
            mb(o.variant.bytes)
        ),
        (None, Some((v, true))) => format!(
            "Auto: {} for your connection, {}",
            offer_label(l, v),
            mb(v.bytes)
        ),
        (None, _) => {
            let most = l.offers.iter().map(|o| o.variant.bytes).max().unwrap_or(0);
            format!(
                "Auto: chosen for your connection when you press play, at most {}",
                mb(most)
            )
        }
    };
    let _ = write!(h, "<p class=\"now\" lang=\"en\" id=\"now\">{now}</p>");
    let costs: Vec<String> = l
        .offers
        .iter()
        .map(|o| format!("{} {}", escape(&o.label(m)), mb(o.variant.bytes)))
        .collect();
    let _ = write!(
        h,
        "<p class=\"cost\" lang=\"en\" id=\"costs\">Data for the whole lesson: {}</p>",
        costs.join(" · ")
    );

    // The picker: a GET form, remembered in a cookie.
    let _ = write!(
        h,
        "<form method=\"get\" action=\"{}/watch\" lang=\"en\"><fieldset><legend>Quality</legend>",
        escape(&video_url)
    );
    let radio = |h: &mut String,
                 choice: Choice,
                 label: &str,
                 detail: &str,
                 variant: Option<&Variant>| {
        let data = variant.map_or_else(String::new, |v| {
            format!(
                " data-variant=\"{}\" data-bytes=\"{}\" data-src=\"/o/{}\"",
                escape(&v.name),
                v.bytes,
                escape(&v.key.to_string())
            )
        });
        let _ = write!(
            h,
            "<label{data}><input type=\"radio\" name=\"{PICK_PARAM}\" value=\"{}\"{}> {} <small>{}</small></label>",
            escape(&choice.value(m)),
            if choice == l.current { " checked" } else { "" },
            escape(label),
            detail
        );
    };
    radio(
        &mut h,
        Choice::Auto,
        "Auto",
        "picks by your connection",
        None,
    );
    for o in l.offers {
        let detail = format!("{} · {}", escape(&o.detail()), mb(o.variant.bytes));
        radio(&mut h, o.choice, &o.label(m), &detail, Some(o.variant));
    }
    h.push_str("</fieldset><button>Use this quality</button></form>");

    // Offline: a plain link per choice; the edge answers ranges, so a cut download resumes.
    let _ = write!(
        h,
        "<h2 lang=\"en\">Download to watch offline</h2><ul lang=\"en\">"
    );
    for o in l.offers {
        let _ = write!(
            h,
            "<li><a href=\"{}/download?{VARIANT_PARAM}={}\" download>{} ({})</a> {}</li>",
            escape(&video_url),
            escape(&encode_segment(&o.variant.name)),
            escape(&o.label(m)),
            escape(&o.detail()),
            mb(o.variant.bytes)
        );
    }
    h.push_str("</ul></main></body></html>");
    h
}

fn offer_label(l: &Lesson<'_>, v: &Variant) -> String {
    l.offers
        .iter()
        .find(|o| o.variant.key == v.key)
        .map_or_else(|| escape(&v.name), |o| escape(&o.label(l.manifest)))
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
