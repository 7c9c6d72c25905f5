//! The catalog page at `/`: every module, its lessons, and what the whole
//! module costs at each choice of the quality picker.

use lowband_catalog::manifest::{Asset, Manifest};
use lowband_catalog::urls::{asset_url as edge_url, megabytes as mb, module_url};
use maud::{html, Markup};

use super::layout::{clock, document, lesson_name};
use super::quality::{is_lesson, offers};
use super::words::Words;
use crate::choose::signals::Signals;

/// At most this many modules are listed on the catalog page.
pub const CATALOG_MODULES: usize = 200;

/// One module on the catalog page.
pub struct CatalogEntry<'a> {
    pub manifest: &'a Manifest,
    pub signals: &'a Signals,
}

/// The catalog: every module, its lessons, and what the whole module costs per choice.
pub fn catalog_page(modules: &[CatalogEntry<'_>], w: &Words) -> String {
    let body = html! {
        main {
            h1 { (w.get("catalog-title")) }
            @if modules.is_empty() {
                p { (w.get("catalog-empty")) }
            }
            @for entry in modules {
                (module(entry, w))
            }
        }
    };
    document(
        w.lang(),
        &w.get("catalog-description"),
        &w.get("catalog-title"),
        &body,
    )
    .into_string()
}

/// One module: its title, its lessons with what the smallest choice of
/// each costs, and per choice label the module's total (each lesson at
/// that choice).
fn module(entry: &CatalogEntry<'_>, w: &Words) -> Markup {
    let m = entry.manifest;
    let lang = m.module.language.as_deref().unwrap_or("en");
    let lessons: Vec<(&Asset, Vec<_>)> = m
        .assets
        .iter()
        .filter(|a| is_lesson(a))
        .map(|a| (a, offers(m, a, entry.signals)))
        .collect();
    let mut totals: Vec<(String, u64)> = Vec::new();
    for o in lessons.iter().flat_map(|(_, offers)| offers) {
        let label = o.label(m, w);
        match totals.iter_mut().find(|(l, _)| *l == label) {
            Some((_, b)) => *b += o.variant.bytes,
            None => totals.push((label, o.variant.bytes)),
        }
    }
    html! {
        section {
            h2 lang=(lang) { (m.module.title) }
            p {
                (w.count("catalog-lessons", lessons.len()))
                @if m.asset("index.html").is_some() {
                    " · " a href=(module_url(&m.module.id)) { (w.get("catalog-course-page")) }
                }
            }
            @if !totals.is_empty() {
                p class="cost" {
                    (w.with("catalog-data", &[("costs", &totals.iter().map(|(l, b)| format!("{l} {}", mb(*b))).collect::<Vec<_>>().join(" · "))]))
                }
            }
            ul {
                @for (asset, offers) in &lessons {
                    li {
                        a href={ (edge_url(m.module.id.as_str(), &asset.path)) "/watch" } lang=(lang) {
                            (lesson_name(&asset.path))
                        }
                        " "
                        small {
                            (asset.duration.map(clock).unwrap_or_default())
                            " · "
                            (w.with("catalog-from", &[("size", &mb(offers.iter().map(|o| o.variant.bytes).min().unwrap_or(0)))]))
                        }
                    }
                }
            }
        }
    }
}
