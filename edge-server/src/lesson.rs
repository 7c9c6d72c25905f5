//! The teacher's pages: the catalog at `/` and one lesson page per video at
//! `/m/<module>/<video>/watch`, plus the video's offline download.
//!
//! A teacher on a 2G phone must see what each choice costs in data before
//! anything plays, so every page here is made from the manifest's measured
//! sizes and weighs a few kilobytes: one HTML response with its CSS inline,
//! no script, no webfont (the font stack names the Khmer fonts phones and
//! desktops ship), the poster the only image. The quality picker is a plain
//! GET form; its choice is kept in the `lowband_tier` cookie that every
//! negotiated asset already honours (Audio only adds `lowband_quality=audio`,
//! which only these pages read). Everything from a manifest (titles, paths,
//! languages) is escaped: an author's file name cannot break the HTML.
//!
//! The functions here are pure (manifest and request signals in, HTML or
//! headers out); `serve` does the I/O.

use std::fmt::Write as _;

use lowband_catalog::manifest::{Asset, AssetKind, Manifest, Variant, VariantKind};
use lowband_catalog::urls::{asset_url as edge_url, encode_segment, megabytes as mb, module_url};

use crate::captions;
use crate::error::EdgeError;
use crate::select::{playable, select};
use crate::signals::{Signals, TIER_COOKIE};

/// Cookie that asks the lesson page for sound only (the tier cookie cannot say it).
pub const QUALITY_COOKIE: &str = "lowband_quality";
/// How long the picker's choice is remembered.
const COOKIE_MAX_AGE: u32 = 365 * 24 * 3600;
/// At most this many modules are listed on the catalog page.
pub const CATALOG_MODULES: usize = 200;
/// `Cache-Control` of a lesson page: it shows what this client's cookies and
/// link chose, so only the client keeps it, and asks again each time (a
/// 304 when nothing changed) so a new choice shows at once.
pub const PAGE_CACHE_CONTROL: &str = "private, no-cache";
/// Query parameter of the picker form.
const PICK_PARAM: &str = "q";
/// Query parameter naming the variant to download.
const VARIANT_PARAM: &str = "v";

/// Khmer-capable fonts that phones (Noto Sans Khmer on Android), Windows
/// (Khmer UI, Leelawadee UI) and Debian (Khmer OS) have, before the generic
/// family: the page downloads no font.
const FONTS: &str = "system-ui,\"Noto Sans Khmer\",\"Khmer OS\",\"Khmer OS System\",\"Khmer UI\",\"Leelawadee UI\",Hanuman,sans-serif";

/// The pages' only style, inline. Each page also names an empty icon
/// (`data:,`): no favicon request, which on 2G costs a round trip for a 404.
const STYLE: &str = "body{margin:0 auto;max-width:42rem;padding:0 .75rem 2rem;color:#1c2733;background:#fbfaf6;line-height:1.6}\
body,button,input{font-family:FONTS}\
a{color:#1d4e89}h1{font-size:1.35rem;margin:.5rem 0}h2{font-size:1.1rem;margin:1.2rem 0 .3rem}\
nav{padding:.5rem 0;font-size:.95rem}\
video{display:block;width:100%;height:auto;aspect-ratio:16/9;background:#ddd center/cover no-repeat}\
.now{margin:.4rem 0;font-weight:600}.cost{color:#4a5563}\
fieldset{border:1px solid #d8d4c8;border-radius:6px;padding:.3rem .7rem}\
label{display:block;padding:.35rem 0}small{color:#4a5563}\
button{font-size:1rem;margin-top:.5rem;padding:.45rem 1.1rem;border:0;border-radius:4px;background:#1d4e89;color:#fff}\
ul{padding-left:1.2rem}li{margin:.3rem 0}";

/// What the lesson routes under a video's path ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The lesson page.
    Watch,
    /// The Auto player's source: a redirect to the rung chosen now.
    Play,
    /// One variant, as an attachment.
    Download,
}

/// Splits `<video>/watch`, `<video>/play` or `<video>/download` into the
/// video's path and the action.
pub fn split(path: &str) -> Option<(&str, Action)> {
    let (video, action) = path.rsplit_once('/')?;
    let action = match action {
        "watch" => Action::Watch,
        "play" => Action::Play,
        "download" => Action::Download,
        _ => return None,
    };
    Some((video, action))
}

/// Whether an asset gets a lesson page: a video with something to play.
pub fn is_lesson(asset: &Asset) -> bool {
    asset.kind == AssetKind::Video && asset.variants.iter().any(is_media)
}

fn is_media(v: &Variant) -> bool {
    matches!(v.kind, VariantKind::Video | VariantKind::Audio)
}

/// One entry of the quality picker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// The edge picks when the video is fetched (hints, then the measured
    /// link): `<video>/play` redirects to that rung's immutable object, so
    /// the player's later range requests all read the same bytes.
    Auto,
    /// Sound only: the smallest audio rendition.
    Audio,
    /// The best rung a tier (index into the manifest's tiers) can carry.
    Tier(usize),
}

impl Choice {
    /// The picker's query value.
    fn value(self, manifest: &Manifest) -> String {
        match self {
            Self::Auto => "auto".into(),
            Self::Audio => "audio".into(),
            Self::Tier(r) => manifest
                .tiers
                .get(r)
                .map_or_else(String::new, |t| t.name.clone()),
        }
    }
}

/// A choice and the variant it plays.
#[derive(Debug, Clone, Copy)]
pub struct Offer<'a> {
    pub choice: Choice,
    pub variant: &'a Variant,
}

impl Offer<'_> {
    /// What a teacher calls it.
    pub fn label(&self, manifest: &Manifest) -> String {
        match self.choice {
            Choice::Auto => "Auto".into(),
            Choice::Audio => "Audio only".into(),
            Choice::Tier(_) if self.variant.mode.as_deref() == Some("slides") => "Slides".into(),
            Choice::Tier(r) => match manifest.tiers.get(r).map(|t| t.name.as_str()) {
                Some("2g") => "Data saver".into(),
                Some("3g") => "Standard".into(),
                Some("4g") => "Better".into(),
                Some(other) => other.to_owned(),
                None => String::new(),
            },
        }
    }

    /// What the picture is, for the label's detail (`144p`, `sound only`, `slides`).
    fn detail(&self) -> String {
        match (self.variant.kind, self.variant.mode.as_deref()) {
            (VariantKind::Audio, _) => "sound only".into(),
            (_, Some("slides")) => "pictures when the slide changes".into(),
            _ => self
                .variant
                .height
                .map_or_else(|| self.variant.name.clone(), |h| format!("{h}p")),
        }
    }
}

/// The fixed choices of a lesson (Audio only, then one per tier whose rung
/// differs from the slower tiers'), smallest first. A further sound track
/// (another language) is never one: every choice plays the main sound.
pub fn offers<'a>(manifest: &Manifest, asset: &'a Asset, signals: &Signals) -> Vec<Offer<'a>> {
    let mut out: Vec<Offer<'a>> = Vec::new();
    if let Some(audio) = asset
        .variants_of(VariantKind::Audio)
        .filter(|v| !v.alternate && playable(v, signals))
        .min_by_key(|v| v.bytes)
    {
        out.push(Offer {
            choice: Choice::Audio,
            variant: audio,
        });
    }
    for rank in 0..manifest.tiers.len() {
        let Some(v) = select(asset, &manifest.tiers, rank, signals) else {
            continue;
        };
        if v.kind != VariantKind::Video || out.iter().any(|o| o.variant.key == v.key) {
            continue;
        }
        out.push(Offer {
            choice: Choice::Tier(rank),
            variant: v,
        });
    }
    out
}

/// The current choice: `?tier=` for this view, else the picker's cookies.
pub fn current_choice(headers: &http::HeaderMap, manifest: &Manifest, signals: &Signals) -> Choice {
    if let Some(r) = signals
        .tier_query
        .as_deref()
        .and_then(|t| manifest.tier_rank(t))
    {
        return Choice::Tier(r);
    }
    if cookie(headers, QUALITY_COOKIE).as_deref() == Some("audio") {
        return Choice::Audio;
    }
    cookie(headers, TIER_COOKIE)
        .and_then(|t| manifest.tier_rank(&t))
        .map_or(Choice::Auto, Choice::Tier)
}

/// The offer a choice plays: a tier whose rung another offer already holds
/// (a tier without a rung of its own) is that offer.
pub fn resolve_choice(
    choice: Choice,
    offers: &[Offer<'_>],
    manifest: &Manifest,
    asset: &Asset,
    signals: &Signals,
) -> Choice {
    let Choice::Tier(rank) = choice else {
        return choice;
    };
    select(asset, &manifest.tiers, rank, signals)
        .and_then(|v| offers.iter().find(|o| o.variant.key == v.key))
        .map_or(Choice::Auto, |o| o.choice)
}

fn cookie(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then(|| v.trim_matches('"').to_ascii_lowercase())
        })
}

/// A query parameter's decoded value.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

/// The picker's answer (`?q=`): the `Set-Cookie` values that remember it,
/// or `None` when the request holds no choice.
pub fn pick(query: Option<&str>, manifest: &Manifest) -> Result<Option<Vec<String>>, EdgeError> {
    let Some(q) = query_param(query, PICK_PARAM) else {
        return Ok(None);
    };
    let set = |name: &str, value: &str| {
        format!("{name}={value}; Path=/; Max-Age={COOKIE_MAX_AGE}; SameSite=Lax; HttpOnly")
    };
    let clear = |name: &str| format!("{name}=; Path=/; Max-Age=0; SameSite=Lax; HttpOnly");
    let q = q.to_ascii_lowercase();
    let cookies = match q.as_str() {
        "auto" => vec![clear(TIER_COOKIE), clear(QUALITY_COOKIE)],
        // Sound only; pages and pictures elsewhere as for the slowest tier.
        "audio" => {
            let slowest = manifest.tiers.first().map_or("", |t| t.name.as_str());
            vec![set(TIER_COOKIE, slowest), set(QUALITY_COOKIE, "audio")]
        }
        tier => match manifest.tier_rank(tier) {
            Some(r) => vec![
                set(TIER_COOKIE, &manifest.tiers[r].name),
                clear(QUALITY_COOKIE),
            ],
            None => {
                return Err(EdgeError::BadRequest(
                    "unknown quality: q must be auto, audio or a tier the lesson page lists",
                ))
            }
        },
    };
    Ok(Some(cookies))
}

/// The variant `?v=` names for a download.
pub fn download_variant<'a>(
    asset: &'a Asset,
    query: Option<&str>,
) -> Result<&'a Variant, EdgeError> {
    let name = query_param(query, VARIANT_PARAM).ok_or(EdgeError::BadRequest(
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
pub fn content_disposition(asset: &Asset, variant: &Variant) -> String {
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

/// One module on the catalog page.
pub struct CatalogEntry<'a> {
    pub manifest: &'a Manifest,
    pub signals: &'a Signals,
}

/// The catalog: every module, its lessons, and what the whole module costs per choice.
pub fn catalog_page(modules: &[CatalogEntry<'_>]) -> String {
    let mut h = String::with_capacity(4 * 1024);
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <link rel=\"icon\" href=\"data:,\">\
         <meta name=\"description\" content=\"Lessons for teachers, with what each costs in data\">\
         <title>Lessons</title><style>{}</style></head><body><main><h1>Lessons</h1>",
        STYLE.replace("FONTS", FONTS)
    );
    if modules.is_empty() {
        h.push_str("<p>Nothing is published yet.</p>");
    }
    for entry in modules {
        let m = entry.manifest;
        let module = m.module.id.as_str();
        let lang = escape(m.module.language.as_deref().unwrap_or("en"));
        let lessons: Vec<&Asset> = m.assets.iter().filter(|a| is_lesson(a)).collect();
        let _ = write!(
            h,
            "<section><h2 lang=\"{lang}\">{}</h2><p>{} {}",
            escape(&m.module.title),
            lessons.len(),
            if lessons.len() == 1 {
                "lesson"
            } else {
                "lessons"
            }
        );
        if m.asset("index.html").is_some() {
            let _ = write!(
                h,
                " · <a href=\"{}\">Course page</a>",
                escape(&module_url(&m.module.id))
            );
        }
        h.push_str("</p>");
        // Per choice label, the module's total (each lesson at that choice).
        let mut totals: Vec<(String, u64)> = Vec::new();
        let mut items = String::new();
        for asset in &lessons {
            let offers = offers(m, asset, entry.signals);
            for o in &offers {
                let label = o.label(m);
                match totals.iter_mut().find(|(l, _)| *l == label) {
                    Some((_, b)) => *b += o.variant.bytes,
                    None => totals.push((label, o.variant.bytes)),
                }
            }
            let smallest = offers.iter().map(|o| o.variant.bytes).min().unwrap_or(0);
            let _ = write!(
                items,
                "<li><a href=\"{}/watch\" lang=\"{lang}\">{}</a> <small>{} · from {}</small></li>",
                escape(&edge_url(module, &asset.path)),
                escape(&lesson_name(&asset.path)),
                asset.duration.map(clock).unwrap_or_default(),
                mb(smallest)
            );
        }
        if !totals.is_empty() {
            let line: Vec<String> = totals
                .iter()
                .map(|(l, b)| format!("{} {}", escape(l), mb(*b)))
                .collect();
            let _ = write!(h, "<p class=\"cost\">Data: {}</p>", line.join(" · "));
        }
        let _ = write!(h, "<ul>{items}</ul></section>");
    }
    h.push_str("</main></body></html>");
    h
}

/// A lesson's name from its path: the file name without its extension.
fn lesson_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.rsplit_once('.').map_or(file, |(s, _)| s).to_owned()
}

/// `1:12`, `1:02:05`.
fn clock(seconds: f64) -> String {
    let s = seconds.round().max(0.0) as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// Escapes text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_split_only_on_the_last_segment() {
        assert_eq!(split("a/v.mp4/watch"), Some(("a/v.mp4", Action::Watch)));
        assert_eq!(split("v.mp4/play"), Some(("v.mp4", Action::Play)));
        assert_eq!(split("v.mp4/download"), Some(("v.mp4", Action::Download)));
        assert_eq!(split("v.mp4/watch/x"), None);
        assert_eq!(split("watch"), None);
    }

    #[test]
    fn escaping_and_urls() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(
            query_param(Some("a=1&v=144p&q=2g"), "v").as_deref(),
            Some("144p")
        );
        assert_eq!(
            query_param(Some("v=a%20b+c"), "v").as_deref(),
            Some("a b c")
        );
        assert_eq!(query_param(Some("x=1"), "v"), None);
    }
}
