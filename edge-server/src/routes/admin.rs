//! `POST /admin/v1/purge/<module>`: operators (with a bearer token) make
//! the edge forget a module's manifest, and the index, so that its pages
//! and assets are made from what the store or upstream holds now.

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use lowband_catalog::ModuleId;

use crate::cache::upstream::Doc;
use crate::edge::Edge;
use crate::http::body::Body;
use crate::http::error::EdgeError;
use crate::http::response::text;

/// Forgets the module's manifest here and, on a cache node, on disk.
pub fn purge<B>(edge: &Edge, req: &Request<B>, id: &ModuleId) -> Result<Response<Body>, EdgeError> {
    authorize(
        &edge.config.admin_tokens,
        req.headers().get(header::AUTHORIZATION),
    )?;
    edge.manifests.forget(id);
    let mut on_disk = false;
    if let Some(cache) = edge.cache() {
        cache.forget_absent();
        for doc in [Doc::Manifest(id.clone()), Doc::Index] {
            let had = cache
                .docs()
                .purge(&doc)
                .map_err(|source| EdgeError::Purge {
                    key: doc.key(),
                    source,
                })?;
            on_disk |= had && doc != Doc::Index;
        }
    }
    tracing::info!(module = %id, held = on_disk, "purged");
    let json = serde_json::json!({ "purged": id.as_str(), "held": on_disk });
    Ok(text(StatusCode::OK, "application/json", json.to_string()))
}

/// Whether `authorization` holds one of `tokens` (without any, there are
/// no admin routes: 404).
fn authorize(tokens: &[String], authorization: Option<&HeaderValue>) -> Result<(), EdgeError> {
    if tokens.is_empty() {
        return Err(EdgeError::NotFound);
    }
    let token = authorization
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(EdgeError::Unauthorized(
            "send Authorization: Bearer <token>",
        ))?;
    if !tokens
        .iter()
        .any(|t| constant_time_eq(t.as_bytes(), token.trim().as_bytes()))
    {
        return Err(EdgeError::Unauthorized("the token is not an admin token"));
    }
    Ok(())
}

/// Compares secrets in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
