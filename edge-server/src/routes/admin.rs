//! `POST /admin/v1/purge/<module>`: operators (with a bearer token) make
//! the edge forget a module's manifest, and the index, so that its pages
//! and assets are made from what the store or upstream holds now.

use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use lowband_catalog::tokens::Tokens;
use lowband_catalog::ModuleId;

use crate::cache::upstream::Doc;
use crate::edge::Edge;
use crate::http::body::Body;
use crate::http::error::EdgeError;
use crate::http::response::text;

/// Forgets the module's manifest here and, on a cache node, on disk.
pub fn purge<B>(edge: &Edge, req: &Request<B>, id: &ModuleId) -> Result<Response<Body>, EdgeError> {
    let operator = authorize(
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
    tracing::info!(module = %id, held = on_disk, by = operator, "purged");
    let json = serde_json::json!({ "purged": id.as_str(), "held": on_disk });
    Ok(text(StatusCode::OK, "application/json", json.to_string()))
}

/// The name of the token holder `authorization` proves to be (without
/// any tokens, there are no admin routes: 404). Tokens are compared by
/// digest, in time independent of the guess.
fn authorize<'a>(
    tokens: &'a Tokens,
    authorization: Option<&HeaderValue>,
) -> Result<&'a str, EdgeError> {
    if tokens.is_empty() {
        return Err(EdgeError::NotFound);
    }
    let Some(value) = authorization else {
        return Err(EdgeError::Unauthorized(
            "send Authorization: Bearer <token>",
        ));
    };
    tokens
        .check(Some(value.as_bytes()))
        .ok_or(EdgeError::Unauthorized("the token is not an admin token"))
}
