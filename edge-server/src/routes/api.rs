//! `/api/v1/modules` and `/api/v1/modules/<module>`: the module index and a
//! module's manifest as JSON, for players and tools.

use http::header::HeaderMap;
use http::Response;
use lowband_catalog::ModuleId;

use crate::edge::Edge;
use crate::http::body::Body;
use crate::http::conditional;
use crate::http::error::EdgeError;
use crate::http::response::json_response;

pub async fn module_index(
    edge: &Edge,
    req_headers: &HeaderMap,
) -> Result<Response<Body>, EdgeError> {
    let index = edge.manifests.index().await?;
    let published = index.modules.iter().map(|m| m.published_at).max();
    json_response(
        req_headers,
        index.to_json(),
        published.map(conditional::from_unix),
    )
}

pub async fn module_manifest(
    edge: &Edge,
    req_headers: &HeaderMap,
    id: &ModuleId,
) -> Result<Response<Body>, EdgeError> {
    let prepared = edge
        .manifests
        .prepared(id)
        .await?
        .ok_or(EdgeError::NotFound)?;
    let manifest = &prepared.manifest;
    json_response(
        req_headers,
        manifest.to_json(),
        Some(conditional::from_unix(manifest.published_at)),
    )
}
