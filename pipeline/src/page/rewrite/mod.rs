//! The streaming rewrite of one page for one tier (lol_html).
//!
//! Every link into the module becomes the edge's URL (`/m/<module>/<path>`,
//! which the edge negotiates per client), and a `../` that leaves the module
//! stops the ingest. Images get what lets a browser fetch as little as it
//! can, in one of two forms:
//!
//! - **full** (the faster tiers): `srcset`/`sizes` built from the image's
//!   variants up to this tier's widths, one `<picture>` `<source>` per extra
//!   format (AVIF, then WebP, with the last format — usually JPEG — on the
//!   `<img>`), `width`/`height` from the source aspect so nothing shifts,
//!   the placeholder as background, and `loading="lazy" decoding="async"`
//!   except for images in the first screen: the first two images, if fewer
//!   than [`FIRST_SCREEN_CHARS`] characters of text come before them (about
//!   fifteen lines on a phone).
//! - **lite** (the slowest tiers): all text kept, each image replaced by its
//!   inlined placeholder (or an empty box of the right aspect) inside a plain
//!   link to the real image at the slowest tier, labelled with its size: a
//!   tap follows the link without JavaScript; with it, a few bytes of inline
//!   script swap the image in place. Media get `preload="none"`, so nothing
//!   but the page itself (and what it links as stylesheet or script) loads
//!   before a tap.
//!
//! The rewrite also adds up what the page fetches before any tap (the
//! first-load weight, without the page itself). The images' markup, in
//! either form, is made in `images`.

mod images;

use std::borrow::Cow;
use std::cell::RefCell;
use std::rc::Rc;

use lol_html::errors::RewritingError;
use lol_html::html_content::{ContentType, Element};
use lol_html::{
    doc_text, element, end, DocumentContentHandlers, ElementContentHandlers, EndTagHandler,
    HandlerResult, RewriteStrSettings, Selector,
};
use lowband_catalog::i18n;
use lowband_catalog::manifest::{AssetKind, VariantKind};
use lowband_catalog::urls::{asset_url, megabytes};

use super::links::{self, Escapes, Target};
use super::ModuleView;

/// Changes whenever the rewrite's output does, so pages made before are
/// re-rendered (it is part of each page's derivation).
pub const REWRITE_VERSION: &str = "rewrite/2: videos link their lesson pages";

/// Text (in characters, spaces excluded) that fills about a phone screen.
pub const FIRST_SCREEN_CHARS: usize = 600;
/// Swaps a lite image in place on the first tap; the second tap (or any tap
/// without JavaScript) follows the link to the image.
const TAP_SCRIPT: &str = "<script>document.addEventListener(\"click\",function(e){var a=e.target.closest&&e.target.closest(\"a[data-lb]\");var i=a&&a.querySelector(\"img\");if(!i)return;e.preventDefault();a.removeAttribute(\"data-lb\");i.removeAttribute(\"style\");i.src=a.href})</script>";

/// Which page a tier gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// Images as responsive sources with widths up to the tier of this rank.
    Full { rank: usize },
    /// Placeholders; real images only on tap.
    Lite,
}

/// A rewritten page and what it fetches before any tap.
#[derive(Debug)]
pub struct Rewritten {
    pub html: String,
    /// Bytes of everything fetched on first load besides the page itself.
    pub first_load_extra: u64,
}

/// Why a page could not be rewritten.
#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    #[error(transparent)]
    Escapes(#[from] Escapes),
    #[error("cannot parse the page: {0}")]
    Parse(#[source] lol_html::errors::RewritingError),
}

#[derive(Default)]
struct State {
    /// Inside `head`, `script`, `style`, `title`, `template`: text there is not on screen.
    hidden: usize,
    pictures: usize,
    anchors: usize,
    images: usize,
    text_chars: usize,
    lite_images: usize,
    script_added: bool,
    extra: u64,
}

type Shared = Rc<RefCell<State>>;

/// Rewrites `html`, the page at module path `page`, for one form.
pub fn rewrite(
    html: &str,
    page: &str,
    module: &ModuleView,
    form: Form,
) -> Result<Rewritten, RewriteError> {
    let state: Shared = Rc::default();
    let ctx = Ctx { page, module, form };
    let settings = RewriteStrSettings::new()
        .with_strict(false)
        .with_enable_esi_tags(false);
    let settings = element_handlers(ctx, &state)
        .into_iter()
        .fold(settings, RewriteStrSettings::append_element_content_handler)
        .append_document_content_handler(text_counter(&state))
        .append_document_content_handler(tap_script_at_end(&state));
    let html = lol_html::rewrite_str(html, settings).map_err(|e| match e {
        RewritingError::ContentHandlerError(inner) => match inner.downcast::<Escapes>() {
            Ok(escapes) => RewriteError::Escapes(*escapes),
            Err(other) => RewriteError::Parse(RewritingError::ContentHandlerError(other)),
        },
        other => RewriteError::Parse(other),
    })?;
    let extra = state.borrow().extra;
    Ok(Rewritten {
        html,
        first_load_extra: extra,
    })
}

type Handler<'h> = (Cow<'static, Selector>, ElementContentHandlers<'h>);

/// What each element the rewrite looks at gets, in the order they run.
fn element_handlers<'h>(ctx: Ctx<'h>, state: &Shared) -> Vec<Handler<'h>> {
    let s = state.clone();
    let hidden = element!("head, script, style, title, template", move |el| {
        track_depth(el, &s, |st| &mut st.hidden)
    });
    let s = state.clone();
    let picture = element!("picture", move |el| track_depth(el, &s, |st| &mut st
        .pictures));
    let s = state.clone();
    let anchor = element!("a", move |el| track_depth(el, &s, |st| &mut st.anchors));
    let s = state.clone();
    let img = element!("img", move |el| ctx.img(el, &s));
    let picture_source = element!("picture source", move |el| {
        if ctx.form == Form::Lite {
            // The placeholder `<img>` must be all the browser sees.
            el.remove();
            return Ok(());
        }
        Ok(ctx.srcset(el)?)
    });
    let media = element!("video, audio", move |el| ctx.media(el));
    let s = state.clone();
    let src = element!(
        "source[src], track[src], script[src], iframe[src], embed[src]",
        move |el| ctx.src(el, &s)
    );
    let s = state.clone();
    let href = element!("a[href], area[href], link[href]", move |el| ctx
        .href(el, &s));
    let data = element!("object[data]", move |el| {
        ctx.attribute(el, "data")?;
        Ok(())
    });
    let body = tap_script_in_body(state);
    vec![
        hidden,
        picture,
        anchor,
        img,
        picture_source,
        media,
        src,
        href,
        data,
        body,
    ]
}

/// Counts the text on screen before each image (for the first-screen guess).
fn text_counter<'h>(state: &Shared) -> DocumentContentHandlers<'h> {
    let s = state.clone();
    doc_text!(move |chunk| {
        let mut st = s.borrow_mut();
        if st.hidden == 0 {
            st.text_chars += chunk
                .as_str()
                .chars()
                .filter(|c| !c.is_whitespace())
                .count();
        }
        Ok(())
    })
}

/// The lite form's tap script goes just before `</body>`...
fn tap_script_in_body<'h>(state: &Shared) -> Handler<'h> {
    let s = state.clone();
    element!("body", move |el| {
        let s = s.clone();
        let before_end: EndTagHandler<'static> = Box::new(move |end| {
            let mut st = s.borrow_mut();
            if st.lite_images > 0 && !st.script_added {
                end.before(TAP_SCRIPT, ContentType::Html);
                st.script_added = true;
            }
            Ok(())
        });
        if let Some(handlers) = el.end_tag_handlers() {
            handlers.push(before_end);
        }
        Ok(())
    })
}

/// ...or, in a page without one, at the very end.
fn tap_script_at_end<'h>(state: &Shared) -> DocumentContentHandlers<'h> {
    let s = state.clone();
    end!(move |end| {
        let mut st = s.borrow_mut();
        if st.lite_images > 0 && !st.script_added {
            end.append(TAP_SCRIPT, ContentType::Html);
            st.script_added = true;
        }
        Ok(())
    })
}

/// Counts open elements of one kind; lol_html builds no tree, so nesting is
/// followed through end tags (an element whose end tag is implied stays
/// counted, which only makes the first-screen guess more conservative).
fn track_depth(
    el: &mut Element<'_, '_>,
    state: &Shared,
    counter: fn(&mut State) -> &mut usize,
) -> HandlerResult {
    if let Some(handlers) = el.end_tag_handlers() {
        *counter(&mut state.borrow_mut()) += 1;
        let s = state.clone();
        let closed: EndTagHandler<'static> = Box::new(move |_| {
            let mut st = s.borrow_mut();
            let c = counter(&mut st);
            *c = c.saturating_sub(1);
            Ok(())
        });
        handlers.push(closed);
    }
    Ok(())
}

#[derive(Clone, Copy)]
struct Ctx<'a> {
    page: &'a str,
    module: &'a ModuleView,
    form: Form,
}

impl Ctx<'_> {
    /// Rewrites one URL attribute; returns the module path it points at.
    fn attribute(&self, el: &mut Element<'_, '_>, name: &str) -> Result<Option<String>, Escapes> {
        let Some(value) = el.get_attribute(name) else {
            return Ok(None);
        };
        match links::resolve(self.page, &value)? {
            Target::Untouched => Ok(None),
            Target::Module { path, suffix } => {
                let url = asset_url(self.module.id.as_str(), &path) + &suffix;
                let _ = el.set_attribute(name, &url);
                Ok(Some(path))
            }
        }
    }

    /// Rewrites the URLs of an authored `srcset`.
    fn srcset(&self, el: &mut Element<'_, '_>) -> Result<(), Escapes> {
        let Some(value) = el.get_attribute("srcset") else {
            return Ok(());
        };
        let mut out = Vec::new();
        for candidate in value.split(',') {
            let candidate = candidate.trim();
            let (url, descriptor) = candidate
                .split_once(char::is_whitespace)
                .unwrap_or((candidate, ""));
            let url = match links::resolve(self.page, url)? {
                Target::Untouched => url.to_owned(),
                Target::Module { path, suffix } => {
                    asset_url(self.module.id.as_str(), &path) + &suffix
                }
            };
            out.push(format!("{url} {}", descriptor.trim()).trim_end().to_owned());
        }
        let _ = el.set_attribute("srcset", &out.join(", "));
        Ok(())
    }

    /// Scripts, tracks, frames: their URL rewritten, and what loads at once counted.
    fn src(&self, el: &mut Element<'_, '_>, state: &Shared) -> HandlerResult {
        let target = self.attribute(el, "src")?;
        let fetched = match el.tag_name().as_str() {
            "script" => true,
            "track" => el.has_attribute("default"),
            _ => false,
        };
        if let (true, Some(path)) = (fetched, target) {
            state.borrow_mut().extra += self.smallest_bytes(&path);
        }
        Ok(())
    }

    /// Links: their URL rewritten (a link to a video opens its lesson page),
    /// and the stylesheets and icons that load at once counted.
    fn href(&self, el: &mut Element<'_, '_>, state: &Shared) -> HandlerResult {
        let target = self.attribute(el, "href")?;
        let rel = el
            .get_attribute("rel")
            .unwrap_or_default()
            .to_ascii_lowercase();
        if let (true, Some(path)) = (el.tag_name() == "a", target.as_deref()) {
            self.link_lesson(el, path);
        }
        let fetched = el.tag_name() == "link"
            && rel
                .split_ascii_whitespace()
                .any(|r| matches!(r, "stylesheet" | "icon" | "preload" | "modulepreload"));
        if let (true, Some(path)) = (fetched, target) {
            state.borrow_mut().extra += self.smallest_bytes(&path);
        }
        Ok(())
    }

    fn media(&self, el: &mut Element<'_, '_>) -> HandlerResult {
        let path = self.attribute(el, "src")?;
        let authored_poster = self.attribute(el, "poster")?;
        let inline_poster = path.as_deref().and_then(|p| self.module.posters.get(p));
        if self.form == Form::Lite {
            let _ = el.set_attribute("preload", "none");
            el.remove_attribute("autoplay");
            if authored_poster.is_some() || el.has_attribute("poster") {
                el.remove_attribute("poster");
            }
        }
        if !el.has_attribute("poster") && el.tag_name() == "video" {
            if let Some(uri) = inline_poster {
                let _ = el.set_attribute("poster", uri);
            }
        }
        // After the player, a link to the edge's lesson page for this video:
        // what each quality costs, a choice, captions, a download.
        if let Some((url, from)) = path.as_deref().and_then(|p| self.lesson(p)) {
            let messages = i18n::messages();
            let asked = i18n::Asked {
                module: self.module.language.as_deref(),
                ..i18n::Asked::default()
            };
            let lang = i18n::choose(messages, &asked);
            let mut args = i18n::FluentArgs::new();
            args.set("size", from);
            let text = messages.text_with(lang, "course-lesson-link", &args);
            el.after(
                &format!(
                    "<p lang=\"{}\"><a href=\"{}\">{}</a></p>",
                    messages.tag(lang),
                    escape(&url),
                    escape(&text)
                ),
                ContentType::Html,
            );
        }
        Ok(())
    }

    /// The edge's lesson page of a module video (`<video>/watch`), and what
    /// its smallest choice costs (`0.17 MB`).
    fn lesson(&self, path: &str) -> Option<(String, String)> {
        let asset = self
            .module
            .assets
            .get(path)
            .filter(|a| a.kind == AssetKind::Video)?;
        let smallest = asset
            .variants
            .iter()
            .filter(|v| matches!(v.kind, VariantKind::Video | VariantKind::Audio))
            .map(|v| v.bytes)
            .min()?;
        let url = asset_url(self.module.id.as_str(), path) + "/watch";
        Some((url, megabytes(smallest)))
    }

    /// A plain link to a module video opens its lesson page instead: the
    /// teacher sees the cost before a byte of video moves.
    fn link_lesson(&self, el: &mut Element<'_, '_>, path: &str) {
        if let Some((url, _)) = self.lesson(path) {
            let _ = el.set_attribute("href", &url);
        }
    }

    /// The smallest stored copy of a module asset (for a text file, its brotli copy).
    fn smallest_bytes(&self, path: &str) -> u64 {
        self.module
            .assets
            .get(path)
            .and_then(|a| a.variants.iter().map(|v| v.bytes).min())
            .unwrap_or(0)
    }
}

/// Escapes text for a double-quoted attribute value or element text. The
/// rewrite inserts raw HTML around an author's element (an `<a>` opened
/// before it and closed after it, a `<picture>`'s sources): halves of
/// elements that a template crate cannot write, so the few values it
/// inserts are escaped here.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use lowband_catalog::manifest::{Asset, SourceInfo, Variant};
    use lowband_catalog::{ContentHash, ObjectKey};

    fn image(path: &str, placeholder: Option<&str>) -> Asset {
        let mut variants = Vec::new();
        for (tier, width, bytes) in [
            ("slow-2g", 320, 9_000),
            ("2g", 480, 16_000),
            ("3g", 800, 40_000),
            ("4g", 1280, 90_000),
        ] {
            for (mime, ext) in [("image/webp", "webp"), ("image/jpeg", "jpg")] {
                let name = format!("w{width}-{ext}");
                let key = ObjectKey::for_bytes(format!("{path}{name}").as_bytes(), ext);
                variants.push(Variant {
                    width: Some(width),
                    height: Some(width * 2 / 3),
                    ..Variant::new(&name, VariantKind::Image, tier, key, bytes, mime)
                });
            }
        }
        Asset {
            path: path.into(),
            kind: AssetKind::Image,
            source: SourceInfo {
                bytes: 300_000,
                hash: ContentHash::of(path.as_bytes()),
                mime: "image/jpeg".into(),
            },
            derivation: ContentHash::of(b""),
            duration: None,
            variants,
            captions: Vec::new(),
            placeholder: placeholder.map(Into::into),
        }
    }

    fn file(path: &str, bytes: u64) -> Asset {
        let key = ObjectKey::for_bytes(path.as_bytes(), "css");
        Asset {
            variants: vec![Variant::new(
                "br",
                VariantKind::File,
                "slow-2g",
                key,
                bytes,
                "text/css",
            )],
            kind: AssetKind::File,
            ..image(path, None)
        }
    }

    fn view() -> ModuleView {
        let mut assets = std::collections::BTreeMap::new();
        for a in [
            image("img/a.jpg", Some("data:image/webp;base64,UklGRg==")),
            image("img/b.jpg", None),
            image("img/c.jpg", None),
            file("style.css", 700),
        ] {
            assets.insert(a.path.clone(), a);
        }
        ModuleView {
            id: "tq".into(),
            language: None,
            tiers: ["slow-2g", "2g", "3g", "4g"].map(String::from).to_vec(),
            assets,
            posters: [(
                "lessons/v.mp4".to_owned(),
                "data:image/webp;base64,AAAA".to_owned(),
            )]
            .into(),
        }
    }

    const PAGE: &str = r#"<!doctype html><html><head><link rel="stylesheet" href="style.css"><title>t</title></head><body>
<img src="img/a.jpg" alt="first">
<p>short</p>
<img src="img/b.jpg" alt="second" width="800">
<p>more</p>
<img src="img/c.jpg" alt="third">
<video src="lessons/v.mp4" preload="metadata" controls><track default src="lessons/v.vtt"></video>
<a href="lessons/other.html#x">next</a> <a href="https://example.org/">away</a>
</body></html>"#;

    #[test]
    fn full_page_gets_responsive_images_and_edge_urls() {
        let out = rewrite(PAGE, "index.html", &view(), Form::Full { rank: 2 }).unwrap();
        let html = &out.html;
        assert!(
            html.contains(r#"<link rel="stylesheet" href="/m/tq/style.css">"#),
            "{html}"
        );
        assert!(
            html.contains(r#"href="/m/tq/lessons/other.html#x""#),
            "{html}"
        );
        assert!(html.contains(r#"href="https://example.org/""#), "{html}");
        assert!(
            html.contains(r#"<video src="/m/tq/lessons/v.mp4""#),
            "{html}"
        );
        assert!(
            html.contains(r#"poster="data:image/webp;base64,AAAA""#),
            "{html}"
        );
        // WebP in a <source>, JPEG on the <img>; widths up to the 3g rung only.
        assert_eq!(html.matches("<picture>").count(), 3, "{html}");
        assert!(
            html.contains(r#"<source type="image/webp" srcset="/o/objects/"#),
            "{html}"
        );
        assert!(html.contains(" 800w") && !html.contains("1280w"), "{html}");
        // Sizes from the source aspect; an authored width keeps its aspect.
        assert!(
            html.contains(r#"src="/m/tq/img/a.jpg" alt="first" width="1280" height="853""#),
            "{html}"
        );
        assert!(html.contains(r#"width="800" height="533""#), "{html}");
        // The first two images are in the first screen; the third loads lazily.
        let lazy: Vec<_> = html
            .match_indices(r#"loading="lazy" decoding="async""#)
            .collect();
        assert_eq!(lazy.len(), 1, "{html}");
        assert!(html.find("alt=\"third\"").unwrap() < lazy[0].0);
        assert!(html.contains("background:url(data:image/webp;base64,UklGRg==) center/cover"));
        // First load: the stylesheet, the default captions (absent: 0) and the
        // widest WebP of the two first-screen images.
        assert_eq!(out.first_load_extra, 700 + 40_000 * 2);
    }

    #[test]
    fn lite_page_loads_images_only_on_tap() {
        let out = rewrite(PAGE, "index.html", &view(), Form::Lite).unwrap();
        let html = &out.html;
        assert!(
            !html.contains("srcset") && !html.contains("<picture"),
            "{html}"
        );
        assert_eq!(html.matches("<a href=\"/m/tq/img/").count(), 3, "{html}");
        assert!(html.contains(r#"<a href="/m/tq/img/a.jpg?tier=slow-2g" data-lb><img src="data:image/webp;base64,UklGRg==""#), "{html}");
        assert!(html.contains("<small>9&nbsp;KB</small></a>"), "{html}");
        // No placeholder: an empty box of the image's aspect.
        assert!(html.contains("viewBox='0 0 800 533'"), "{html}");
        assert!(html.contains(r#"preload="none""#), "{html}");
        assert_eq!(html.matches("<script>").count(), 1, "{html}");
        assert!(html.find("<script>").unwrap() < html.find("</body>").unwrap());
        assert_eq!(out.first_load_extra, 700);
    }

    #[test]
    fn links_out_of_the_module_name_the_link() {
        let page = r#"<p><a href="../../other-module/index.html">x</a></p>"#;
        let e = rewrite(page, "lessons/a.html", &view(), Form::Lite).unwrap_err();
        assert_eq!(
            e.to_string(),
            "link \"../../other-module/index.html\" leaves the module (links must stay inside the module directory)"
        );
        for page in [
            r#"<img src="../x.jpg">"#,
            r#"<img srcset="a.jpg 1x, ../b.jpg 2x">"#,
            r#"<link rel=stylesheet href="../s.css">"#,
            r#"<video poster="../p.jpg"></video>"#,
        ] {
            assert!(
                matches!(
                    rewrite(page, "index.html", &view(), Form::Full { rank: 3 }),
                    Err(RewriteError::Escapes(_))
                ),
                "{page}"
            );
        }
    }

    #[test]
    fn videos_link_their_lesson_pages() {
        let mut view = view();
        let key = ObjectKey::for_bytes(b"v144", "mp4");
        let video = Asset {
            path: "lessons/my v.mp4".into(),
            kind: AssetKind::Video,
            variants: vec![
                Variant::new(
                    "144p",
                    VariantKind::Video,
                    "2g",
                    key.clone(),
                    290_190,
                    "video/mp4",
                ),
                Variant::new(
                    "audio-opus",
                    VariantKind::Audio,
                    "slow-2g",
                    key.clone(),
                    173_555,
                    "audio/webm",
                ),
                Variant::new(
                    "poster-jpeg",
                    VariantKind::Image,
                    "slow-2g",
                    key,
                    9_000,
                    "image/jpeg",
                ),
            ],
            ..image("lessons/my v.mp4", None)
        };
        view.assets.insert(video.path.clone(), video);
        let page = r#"<video src="my%20v.mp4" controls><a href="my%20v.mp4">download</a></video><a href="other.html">x</a>"#;
        for form in [Form::Lite, Form::Full { rank: 3 }] {
            let html = rewrite(page, "lessons/a.html", &view, form).unwrap().html;
            let watch = "/m/tq/lessons/my%20v.mp4/watch";
            assert!(
                html.contains(&format!(r#"<a href="{watch}">download</a>"#)),
                "{html}"
            );
            assert!(
                html.contains(&format!(
                    r#"</video><p lang="en"><a href="{watch}">Lesson page: choose the quality, from 0.17 MB</a></p>"#
                )),
                "{html}"
            );
            assert!(
                html.contains(r#"<video src="/m/tq/lessons/my%20v.mp4""#),
                "{html}"
            );
            assert!(
                html.contains(r#"href="/m/tq/lessons/other.html""#),
                "{html}"
            );
        }
    }
}
