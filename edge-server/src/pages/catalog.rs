//! The catalog page at `/`: every module, its lessons, and what the whole
//! module costs at each choice of the quality picker.

use std::fmt::Write as _;

use lowband_catalog::manifest::{Asset, Manifest};
use lowband_catalog::urls::{asset_url as edge_url, megabytes as mb, module_url};

use super::layout::{clock, escape, lesson_name, FONTS, STYLE};
use super::quality::{is_lesson, offers};
use crate::choose::signals::Signals;

/// At most this many modules are listed on the catalog page.
pub const CATALOG_MODULES: usize = 200;

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
