//! Pages and other text files: rewritten for the edge, minified, one variant
//! per tier where tiers need different pages, each precompressed.
//!
//! A page is rendered after every other asset of its module, so its images
//! and media are known: [`rewrite`] turns links into edge URLs and images
//! into responsive (or, for the slowest tiers, tap-to-load) markup,
//! [`minify`] shrinks the result, and `compress` makes the brotli, zstd
//! and gzip copies. Tiers whose rewritten page comes out identical share one
//! set of variants (owned by the slowest of them). Each variant records its
//! first-load weight: its own bytes plus what the page fetches before any tap.
//! The author's bytes are kept as an `original` variant, which the edge
//! serves only to a request carrying `Cache-Control: no-transform`.

mod compress;
pub mod links;
pub mod minify;
pub mod rewrite;

use std::collections::BTreeMap;

use bytes::Bytes;
use lowband_catalog::manifest::{Asset, VariantKind};
use lowband_catalog::profile::PageSettings;
use lowband_catalog::ContentHash;

pub use compress::render;
use rewrite::{Form, RewriteError};

use crate::rendition::{Payload, Rendition};

pub use lowband_catalog::manifest::ORIGINAL_VARIANT as ORIGINAL;

/// What a page can point at, as ingest knows it once everything but the
/// pages is rendered.
#[derive(Debug, Clone, Default)]
pub struct ModuleView {
    pub id: String,
    /// The module's language (BCP 47), which what a rewrite adds is written in.
    pub language: Option<String>,
    /// Tier names, slowest first.
    pub tiers: Vec<String>,
    /// Every rendered asset that is not a page, by logical path.
    pub assets: BTreeMap<String, Asset>,
    /// Inlinable poster (`data:` URI) of each video that has a placeholder.
    pub posters: BTreeMap<String, String>,
}

impl ModuleView {
    /// Digest of everything a rewritten page can depend on, for the page's
    /// derivation: change an image and the pages showing it are re-rendered.
    pub fn digest(&self) -> ContentHash {
        let mut text = format!(
            "{}\n{}\n{}\n{}\n",
            rewrite::REWRITE_VERSION,
            self.id,
            self.language.as_deref().unwrap_or_default(),
            self.tiers.join(",")
        );
        for (path, asset) in &self.assets {
            text.push_str(path);
            for v in &asset.variants {
                text.push_str(&format!(" {}:{}:{}", v.name, v.tier, v.key));
            }
            if let Some(p) = &asset.placeholder {
                text.push_str(&format!(" ph:{}", ContentHash::of(p.as_bytes())));
            }
            text.push('\n');
        }
        for (path, uri) in &self.posters {
            text.push_str(&format!(
                "poster {path} {}\n",
                ContentHash::of(uri.as_bytes())
            ));
        }
        ContentHash::of(text.as_bytes())
    }
}

/// Renders one page: a rewritten, minified, precompressed page per distinct
/// tier form, plus the original. `page` is its module path.
pub fn render_page(
    source: &Bytes,
    page: &str,
    mime: &str,
    module: &ModuleView,
    settings: &PageSettings,
) -> Result<Vec<Rendition>, RewriteError> {
    let html = String::from_utf8_lossy(source);
    // (tier, minified page, first-load bytes besides the page)
    let mut forms: Vec<(String, String, u64)> = Vec::new();
    let mut lite: Option<(String, u64)> = None;
    for (rank, tier) in module.tiers.iter().enumerate() {
        let (page_html, extra) = if settings.lite_tiers.contains(tier) {
            match &lite {
                Some(done) => done.clone(),
                None => {
                    let r = rewrite::rewrite(&html, page, module, Form::Lite)?;
                    let done = (minify::html(&r.html), r.first_load_extra);
                    lite = Some(done.clone());
                    done
                }
            }
        } else {
            let r = rewrite::rewrite(&html, page, module, Form::Full { rank })?;
            (minify::html(&r.html), r.first_load_extra)
        };
        let same_as_last = forms
            .last()
            .is_some_and(|(_, h, e)| *h == page_html && *e == extra);
        if !same_as_last {
            forms.push((tier.clone(), page_html, extra));
        }
    }

    let mut out = Vec::new();
    let mut original_kept = false;
    for (tier, page_html, extra) in forms {
        let bytes = Bytes::from(page_html);
        original_kept |= bytes == *source;
        for mut r in compress::render(bytes, mime, "html", VariantKind::Page, &tier, settings) {
            r.name = format!("{tier}-{}", r.name);
            let Payload::Bytes(b) = &r.payload else {
                continue;
            };
            r.first_load_bytes = Some(b.len() as u64 + extra);
            out.push(r);
        }
    }
    if !original_kept {
        let slowest = module.tiers.first().map_or("", String::as_str);
        out.push(Rendition::bytes(
            ORIGINAL,
            VariantKind::Page,
            slowest,
            "html",
            mime,
            source.clone(),
        ));
    }
    Ok(out)
}

/// A text file: stylesheets and scripts minified where they parse (the
/// author's bytes kept as `original` then), every text file precompressed.
pub fn render_file(
    source: Bytes,
    mime: &str,
    ext: &'static str,
    tier: &str,
    settings: &PageSettings,
) -> Vec<Rendition> {
    let text = std::str::from_utf8(&source).ok();
    let minified = match ext {
        "css" => text.and_then(minify::css),
        "js" => text.and_then(minify::js),
        _ => None,
    }
    .filter(|m| m.len() < source.len());
    let Some(minified) = minified else {
        return compress::render(source, mime, ext, VariantKind::File, tier, settings);
    };
    let mut out = compress::render(
        Bytes::from(minified),
        mime,
        ext,
        VariantKind::File,
        tier,
        settings,
    );
    out.push(Rendition::bytes(
        ORIGINAL,
        VariantKind::File,
        tier,
        ext,
        mime,
        source,
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    const KHMER: &str =
        "គ្រូល្អសួរសំណួរបើកចំហ ដើម្បីឱ្យសិស្សគិត និងពន្យល់ពីគំនិតរបស់ខ្លួន។ សំណួរបិទមានចម្លើយត្រឹមត្រូវតែមួយ ដូចជា «៧ បូក ៥ ស្មើប៉ុន្មាន?»។";
    /// With a zero-width space (word break hint) and a zero-width non-joiner.
    const KHMER_ZW: &str = "ថ្នាក់\u{200b}រៀន\u{200c}ល្អ";
    const VIETNAMESE: &str =
        "Giáo viên giỏi đặt câu hỏi mở để học sinh suy nghĩ và giải thích ý tưởng của mình.";
    const THAI: &str = "ครูที่ดีถามคำถามปลายเปิดเพื่อให้นักเรียนคิดและอธิบายความคิดของตนเอง";

    fn view() -> ModuleView {
        ModuleView {
            id: "m".into(),
            tiers: ["slow-2g", "2g", "3g", "4g"].map(String::from).to_vec(),
            ..Default::default()
        }
    }

    fn settings() -> PageSettings {
        lowband_catalog::Profile::builtin_default().page
    }

    /// The bytes a client gets after undoing the copy's coding.
    pub(super) fn decoded(r: &Rendition) -> Vec<u8> {
        let Payload::Bytes(b) = &r.payload else {
            panic!("in memory")
        };
        let mut out = Vec::new();
        match r.encoding.as_deref() {
            Some("br") => brotli::BrotliDecompress(&mut &b[..], &mut out).unwrap(),
            Some("zstd") => out = zstd::decode_all(&b[..]).unwrap(),
            Some("gzip") => {
                flate2::read::GzDecoder::new(&b[..])
                    .read_to_end(&mut out)
                    .unwrap();
            }
            _ => out = b.to_vec(),
        }
        out
    }

    /// The text inside each `<p>`, in order.
    fn paragraphs(html: &str) -> Vec<String> {
        html.split("<p")
            .skip(1)
            .filter_map(|p| {
                let body = &p[p.find('>')? + 1..];
                Some(body[..body.find('<').unwrap_or(body.len())].to_owned())
            })
            .collect()
    }

    #[test]
    fn text_survives_minification_and_every_compression_byte_exact() {
        let texts = [KHMER, KHMER_ZW, VIETNAMESE, THAI];
        let page = format!(
            "<!DOCTYPE html>\n<html lang=\"km\">\n<head>\n  <meta charset=\"utf-8\">\n  <title>{KHMER_ZW}</title>\n  <style>\n    p {{ line-height : 1.8 ; }}\n  </style>\n</head>\n<body>\n{}\n  <script>\n    var greeting = \"{THAI}\";\n  </script>\n</body>\n</html>\n",
            texts
                .iter()
                .map(|t| format!("  <p lang=\"x\">{t}</p>\n"))
                .collect::<String>()
                .repeat(3)
        );
        let out = render_page(
            &Bytes::from(page.clone()),
            "index.html",
            "text/html; charset=utf-8",
            &view(),
            &settings(),
        )
        .unwrap();
        let names: Vec<_> = out.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "slow-2g-identity",
                "slow-2g-br",
                "slow-2g-zstd",
                "slow-2g-gzip",
                "original"
            ],
            "no images: one form serves every tier"
        );
        let expected: Vec<String> = texts.repeat(3).iter().map(ToString::to_string).collect();
        for r in &out {
            let html = String::from_utf8(decoded(r)).unwrap();
            assert_eq!(paragraphs(&html), expected, "{}", r.name);
            assert!(html.contains(THAI), "the script's string, {}", r.name);
            if r.name != ORIGINAL {
                assert!(html.len() < page.len(), "{} is minified", r.name);
                assert!(
                    html.contains(&format!("<title>{KHMER_ZW}</title>")),
                    "{html}"
                );
            }
        }
    }

    #[test]
    fn hostile_pages_do_not_panic() {
        let huge_attr = format!("<p title=\"{}\">x</p>", "a".repeat(1 << 20));
        let deep = format!(
            "{}text{}",
            "<div>".repeat(100_000),
            "</div>".repeat(100_000)
        );
        let deep_unclosed = "<span><b><i>".repeat(50_000);
        // Just under the guard: handed to the minifier, on a 2 MB test-thread stack.
        let deep_but_minified = format!("{}x{}", "<div>".repeat(500), "</div>".repeat(500));
        let cases: Vec<Vec<u8>> = vec![
            b"<html><body><p>unclosed <b>bold <i>italic <div><table><tr><td>cell".to_vec(),
            huge_attr.into_bytes(),
            vec![b'<', b'p', b'>', 0xff, 0xfe, 0xc3, b'<', b'/', b'p', b'>'],
            b"<a href=\"javascript:alert(1)\">x</a><img src=\"javascript:alert(1)\"><iframe src=\"jAvAsCrIpT:x\"></iframe>".to_vec(),
            deep.into_bytes(),
            deep_unclosed.into_bytes(),
            deep_but_minified.into_bytes(),
            b"<img src=\"\"><img src><img src=\"   \"><img src=\"%\"><img srcset=\",,, ,\"><video poster></video><a href=\"?#\">".to_vec(),
            b"<style>p{color:</style><script>var x = ;</script><picture><img src=x.jpg>".to_vec(),
            b"</body></html><<<<>>>><!-- <div> --><![CDATA[x]]><?php echo 1 ?>".to_vec(),
        ];
        for (i, page) in cases.iter().enumerate() {
            let out = render_page(
                &Bytes::from(page.clone()),
                "index.html",
                "text/html",
                &view(),
                &settings(),
            )
            .unwrap_or_else(|e| panic!("case {i}: {e}"));
            assert!(!out.is_empty(), "case {i}");
        }
        // `javascript:` links are the author's business: left as written.
        let out = render_page(
            &Bytes::from(cases[3].clone()),
            "index.html",
            "text/html",
            &view(),
            &settings(),
        )
        .unwrap();
        let html = String::from_utf8(decoded(&out[0])).unwrap();
        assert!(html.contains("javascript:alert(1)"), "{html}");
    }
}
