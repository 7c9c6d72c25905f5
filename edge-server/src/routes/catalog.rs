//! `/`: the catalog page, every module with its lessons and what they cost.

use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response};

use super::asset::ACCEPT_CH_VALUE;
use crate::choose::signals::Signals;
use crate::edge::Edge;
use crate::http::body::Body;
use crate::http::conditional;
use crate::http::error::EdgeError;
use crate::http::response::{small_response, ACCEPT_CH};
use crate::pages::catalog::{catalog_page, CatalogEntry, CATALOG_MODULES};
use crate::pages::words::Words;

pub async fn catalog<B>(edge: &Edge, req: &Request<B>) -> Result<Response<Body>, EdgeError> {
    let index = edge.manifests.index().await?;
    let published = index.modules.iter().map(|m| m.published_at).max();
    let mut manifests = Vec::new();
    for m in index.modules.iter().take(CATALOG_MODULES) {
        if let Some(manifest) = edge.manifests.prepared(&m.id).await? {
            manifests.push(manifest);
        }
    }
    let signals = Signals::from_request(req.headers(), req.uri().query());
    let entries: Vec<_> = manifests
        .iter()
        .map(|prepared| CatalogEntry {
            manifest: &prepared.manifest,
            signals: &signals,
        })
        .collect();
    let words = Words::for_request(req.headers(), req.uri().query(), None);
    let html = catalog_page(&entries, &words);
    // Often a teacher's first page on this origin: ask for hints here.
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT_CH, ACCEPT_CH_VALUE);
    headers.insert(
        header::VARY,
        HeaderValue::from_static("Accept, Cookie, Accept-Language"),
    );
    small_response(
        req.headers(),
        html.into_bytes(),
        "text/html; charset=utf-8",
        published.map(conditional::from_unix),
        headers,
    )
}
