//! The sample course page after ingest: what a 2G phone loads before any tap,
//! from the manifest and from the stored objects themselves.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

use lol_html::{doc_text, element, RewriteStrSettings};
use lowband_catalog::manifest::{Manifest, Variant, VariantKind, ORIGINAL_VARIANT};
use lowband_catalog::Store;

use crate::support;

/// The sample module, with the tiny fixture clip standing in for the
/// minute-long lecture (the page is the subject here, not the video).
fn sample_copy(root: &std::path::Path) -> std::path::PathBuf {
    let from = support::samples().join("teaching-questions");
    let dir = root.join("teaching-questions");
    for sub in ["img", "lessons"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    for file in [
        "index.html",
        "module.toml",
        "img/classroom.jpg",
        "img/chalkboard.jpg",
        "lessons/lecture.vtt",
        "lessons/lecture.km.vtt",
    ] {
        std::fs::copy(from.join(file), dir.join(file)).unwrap();
    }
    std::fs::copy(
        support::fixture("tiny.mp4"),
        dir.join("lessons/lecture.mp4"),
    )
    .unwrap();
    dir
}

/// The page variant the edge gives a client of tier `tier` that accepts brotli.
fn page_for<'a>(manifest: &'a Manifest, tier: &str) -> &'a Variant {
    let page = manifest.asset("index.html").unwrap();
    let rank = manifest.tier_rank(tier).unwrap();
    page.variants
        .iter()
        .filter(|v| v.kind == VariantKind::Page && v.name != ORIGINAL_VARIANT)
        .filter(|v| v.encoding.as_deref() == Some("br"))
        .filter(|v| manifest.tier_rank(&v.tier).unwrap() <= rank)
        .max_by_key(|v| manifest.tier_rank(&v.tier))
        .unwrap()
}

fn brotli_decode(bytes: &[u8]) -> String {
    let mut out = Vec::new();
    brotli::BrotliDecompress(&mut &bytes[..], &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// URLs a browser fetches while loading `html`, before any tap: stylesheets,
/// scripts, images that are not inline, default captions, posters.
fn first_load_urls(html: &str) -> Vec<String> {
    let urls = Rc::new(RefCell::new(Vec::new()));
    let (u1, u2) = (urls.clone(), urls.clone());
    let push = |urls: &Rc<RefCell<Vec<String>>>, v: Option<String>| {
        if let Some(v) = v.filter(|v| !v.starts_with("data:")) {
            urls.borrow_mut().push(v);
        }
    };
    lol_html::rewrite_str(
        html,
        RewriteStrSettings::new()
            .append_element_content_handler(element!(
                "link[rel~=stylesheet], script[src], track[default]",
                move |el| {
                    push(&u1, el.get_attribute("href").or(el.get_attribute("src")));
                    Ok(())
                }
            ))
            .append_element_content_handler(element!("img, source[srcset], video", move |el| {
                if el.get_attribute("loading").as_deref() != Some("lazy") {
                    push(
                        &u2,
                        el.get_attribute("src").filter(|_| el.tag_name() == "img"),
                    );
                    push(&u2, el.get_attribute("srcset"));
                    push(&u2, el.get_attribute("poster"));
                }
                if el.tag_name() == "video" {
                    let preload = el.get_attribute("preload");
                    assert_eq!(
                        preload.as_deref(),
                        Some("none"),
                        "a 2G page preloads no video"
                    );
                }
                Ok(())
            })),
    )
    .unwrap();
    let out = urls.borrow().clone();
    out
}

/// The page's visible text, one entry per non-blank text node, whitespace collapsed.
fn text_nodes(html: &str) -> BTreeSet<String> {
    let texts = Rc::new(RefCell::new((BTreeSet::new(), String::new())));
    let t = texts.clone();
    lol_html::rewrite_str(
        html,
        RewriteStrSettings::new().append_document_content_handler(doc_text!(move |chunk| {
            let mut st = t.borrow_mut();
            st.1.push_str(chunk.as_str());
            if chunk.last_in_text_node() {
                let text = st.1.split_whitespace().collect::<Vec<_>>().join(" ");
                st.1.clear();
                if !text.is_empty() {
                    st.0.insert(text);
                }
            }
            Ok(())
        })),
    )
    .unwrap();
    let out = texts.borrow().0.clone();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn sample_page_on_2g_loads_under_30_kb_and_keeps_every_word() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = sample_copy(tmp.path());
    let store = Store::open("memory://").unwrap();
    support::ingest(&dir, &store).await.unwrap();
    let manifest = support::published(&store, "teaching-questions").await;

    // From the manifest.
    let lite = page_for(&manifest, "2g");
    let recorded = lite.first_load_bytes.unwrap();
    assert!(recorded <= 30_000, "2g first load {recorded} bytes");
    assert_eq!(
        page_for(&manifest, "slow-2g"),
        lite,
        "2G tiers share the lite page"
    );

    // From the objects: the page as sent, plus every object it makes the browser fetch.
    let body = support::object(&store, &lite.key.to_string()).await;
    let html = brotli_decode(&body);
    let mut measured = body.len() as u64;
    for url in first_load_urls(&html) {
        let path = url
            .strip_prefix("/m/teaching-questions/")
            .unwrap_or_else(|| panic!("first load fetches {url}, outside the module"));
        let asset = manifest.asset(path).unwrap();
        let smallest = asset.variants.iter().min_by_key(|v| v.bytes).unwrap();
        measured += support::object(&store, &smallest.key.to_string())
            .await
            .len() as u64;
    }
    assert_eq!(
        measured, recorded,
        "the manifest's figure is what the objects add up to"
    );

    // No picture until a tap, but a link to each.
    assert!(!html.contains("srcset") && !html.contains("<picture"));
    assert!(html.contains("/m/teaching-questions/img/classroom.jpg?tier=slow-2g"));
    assert!(html.contains("/m/teaching-questions/img/chalkboard.jpg?tier=slow-2g"));

    // Every text of the authored page is still there, unchanged.
    let original = String::from_utf8(std::fs::read(dir.join("index.html")).unwrap()).unwrap();
    let kept = text_nodes(&html);
    let kept_all = kept.iter().cloned().collect::<Vec<_>>().join(" ");
    for text in text_nodes(&original) {
        if text.starts_with("//") || text.contains('{') {
            continue; // the script and style, minified
        }
        assert!(
            kept.contains(&text) || kept_all.contains(&text),
            "lost: {text:?}"
        );
    }

    // The faster tiers get the photos as responsive images, the lite page much less.
    let full = page_for(&manifest, "4g");
    assert_ne!(full.key, lite.key);
    let full_html = brotli_decode(&support::object(&store, &full.key.to_string()).await);
    // (minified: attributes may be reordered, quotes dropped where HTML allows it)
    assert!(
        full_html.contains("<picture><source srcset=\"/o/objects/"),
        "{full_html}"
    );
    assert!(full_html.contains("type=image/webp"), "{full_html}");
    assert!(full_html.contains("loading=lazy"), "{full_html}");
}
