//! An `<img>` of the module's, in the form its tier gets: responsive
//! sources, sizes and a placeholder background (full), or the placeholder
//! alone inside a link to the real image (lite). See the module above.

use lol_html::html_content::{ContentType, Element};
use lol_html::HandlerResult;
use lowband_catalog::manifest::{Asset, AssetKind, Variant, VariantKind};
use lowband_catalog::urls::asset_url;

use super::{escape, Ctx, Form, Shared, State, FIRST_SCREEN_CHARS};

/// How many images at most count as being in the first screen.
const FIRST_SCREEN_IMAGES: usize = 2;

/// Image formats, best first; the last one present is the `<img>` fallback.
const FORMAT_ORDER: [&str; 5] = [
    "image/avif",
    "image/webp",
    "image/jpeg",
    "image/png",
    "image/gif",
];

/// An image asset's variants in one `<img>`, with its rendered size.
struct Shown<'a> {
    asset: &'a Asset,
    images: Vec<&'a Variant>,
    width: u32,
    height: u32,
}

impl Ctx<'_> {
    pub(super) fn img(&self, el: &mut Element<'_, '_>, state: &Shared) -> HandlerResult {
        let authored_srcset = el.has_attribute("srcset");
        self.srcset(el)?;
        let path = self.attribute(el, "src")?;
        let asset = path
            .as_deref()
            .and_then(|p| self.module.assets.get(p))
            .filter(|a| a.kind == AssetKind::Image);
        let Some(asset) = asset else {
            return Ok(());
        };
        let images: Vec<&Variant> = asset.variants_of(VariantKind::Image).collect();
        let Some(largest) = images.iter().copied().max_by_key(|v| v.width) else {
            return Ok(());
        };
        let (width, height) = size(el, largest);
        let _ = el.set_attribute("width", &width.to_string());
        let _ = el.set_attribute("height", &height.to_string());
        let shown = Shown {
            asset,
            images,
            width,
            height,
        };

        let mut st = state.borrow_mut();
        let in_first_screen = st.images < FIRST_SCREEN_IMAGES && st.text_chars < FIRST_SCREEN_CHARS;
        st.images += 1;
        match self.form {
            Form::Lite => self.lite(el, &shown, &mut st),
            Form::Full { rank } => {
                self.full(el, &shown, rank, authored_srcset, in_first_screen, &mut st);
            }
        }
        Ok(())
    }

    /// The placeholder (or an empty box of the image's aspect) in a link to
    /// the image at the slowest tier, labelled with its size.
    fn lite(&self, el: &mut Element<'_, '_>, shown: &Shown<'_>, st: &mut State) {
        let Shown {
            asset,
            images,
            width: w,
            height: h,
        } = shown;
        let slowest = self.module.tiers.first().map_or("", String::as_str);
        let smallest = images
            .iter()
            .filter(|v| v.tier == slowest)
            .map(|v| v.bytes)
            .min()
            .or_else(|| images.iter().map(|v| v.bytes).min())
            .unwrap_or(0);
        let box_uri = format!(
            "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {w} {h}'/%3E"
        );
        let placeholder = asset.placeholder.as_deref().unwrap_or(&box_uri);
        let _ = el.set_attribute("src", placeholder);
        for attr in ["srcset", "sizes", "loading", "decoding", "fetchpriority"] {
            el.remove_attribute(attr);
        }
        if asset.placeholder.is_none() {
            let style = el.get_attribute("style").unwrap_or_default();
            let _ = el.set_attribute("style", &format!("background:#ddd;{style}"));
        }
        if st.anchors == 0 {
            let href = format!(
                "{}?tier={slowest}",
                asset_url(self.module.id.as_str(), &asset.path)
            );
            el.before(
                &format!("<a href=\"{}\" data-lb>", escape(&href)),
                ContentType::Html,
            );
            el.after(
                &format!("<small>{}&nbsp;KB</small></a>", smallest.div_ceil(1000)),
                ContentType::Html,
            );
            st.lite_images += 1;
        }
    }

    /// `srcset`/`sizes` up to the tier's widths, a `<picture>` for the better
    /// formats, lazy loading below the first screen, the placeholder behind.
    fn full(
        &self,
        el: &mut Element<'_, '_>,
        shown: &Shown<'_>,
        rank: usize,
        authored_srcset: bool,
        in_first_screen: bool,
        st: &mut State,
    ) {
        let groups = by_format(&self.up_to_tier(&shown.images, rank));
        let sizes = el
            .get_attribute("sizes")
            .unwrap_or_else(|| "100vw".to_owned());
        if let Some((fallback, extra)) = groups.split_last() {
            if !authored_srcset {
                let _ = el.set_attribute("srcset", &srcset_of(fallback));
                let _ = el.set_attribute("sizes", &sizes);
            }
            if st.pictures == 0 && !authored_srcset && !extra.is_empty() {
                let mut open = String::from("<picture>");
                for group in extra {
                    open.push_str(&format!(
                        "<source type=\"{}\" srcset=\"{}\" sizes=\"{}\">",
                        escape(&group[0].mime),
                        escape(&srcset_of(group)),
                        escape(&sizes)
                    ));
                }
                el.before(&open, ContentType::Html);
                el.after("</picture>", ContentType::Html);
            }
            if in_first_screen {
                // The best format's widest candidate: what a large screen fetches.
                let best = groups.first().unwrap_or(fallback);
                st.extra += best.iter().map(|v| v.bytes).max().unwrap_or(0);
            }
        }
        if !in_first_screen {
            if !el.has_attribute("loading") {
                let _ = el.set_attribute("loading", "lazy");
            }
            if !el.has_attribute("decoding") {
                let _ = el.set_attribute("decoding", "async");
            }
        }
        if let Some(p) = &shown.asset.placeholder {
            let style = el.get_attribute("style").unwrap_or_default();
            let _ = el.set_attribute(
                "style",
                &format!("background:url({p}) center/cover no-repeat;{style}"),
            );
        }
    }

    /// The variants made for the tier of this rank or slower; if none, the
    /// narrowest there are.
    fn up_to_tier<'v>(&self, images: &[&'v Variant], rank: usize) -> Vec<&'v Variant> {
        let fits = |v: &&Variant| {
            self.module
                .tiers
                .iter()
                .position(|t| *t == v.tier)
                .is_some_and(|r| r <= rank)
        };
        let chosen: Vec<&Variant> = images.iter().copied().filter(fits).collect();
        if !chosen.is_empty() {
            return chosen;
        }
        let narrowest = images.iter().filter_map(|v| v.width).min();
        images
            .iter()
            .copied()
            .filter(|v| v.width == narrowest)
            .collect()
    }
}

/// `width`/`height` for an image: the author's when both are given, else
/// from the source aspect (the widest variant), keeping an authored width.
fn size(el: &Element<'_, '_>, largest: &Variant) -> (u32, u32) {
    let num = |name: &str| {
        el.get_attribute(name)
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|n| *n > 0)
    };
    let (sw, sh) = (
        largest.width.unwrap_or(1).max(1),
        largest.height.unwrap_or(1).max(1),
    );
    match (num("width"), num("height")) {
        (Some(w), Some(h)) => (w, h),
        (Some(w), None) => (w, scale(w, sh, sw)),
        (None, Some(h)) => (scale(h, sw, sh), h),
        (None, None) => (sw, sh),
    }
}

fn scale(x: u32, num: u32, den: u32) -> u32 {
    ((u64::from(x) * u64::from(num) + u64::from(den) / 2) / u64::from(den)).max(1) as u32
}

/// Variants grouped by format, best format first, each group by width.
fn by_format<'a>(variants: &[&'a Variant]) -> Vec<Vec<&'a Variant>> {
    let rank = |mime: &str| {
        FORMAT_ORDER
            .iter()
            .position(|m| *m == mime)
            .unwrap_or(FORMAT_ORDER.len())
    };
    let mut groups: Vec<Vec<&Variant>> = Vec::new();
    for v in variants {
        match groups.iter_mut().find(|g| g[0].mime == v.mime) {
            Some(g) => g.push(v),
            None => groups.push(vec![v]),
        }
    }
    groups.sort_by_key(|g| rank(&g[0].mime));
    for g in &mut groups {
        g.sort_by_key(|v| v.width);
        g.dedup_by_key(|v| v.width);
    }
    groups
}

fn srcset_of(group: &[&Variant]) -> String {
    group
        .iter()
        .map(|v| format!("/o/{} {}w", v.key, v.width.unwrap_or(1)))
        .collect::<Vec<_>>()
        .join(", ")
}
