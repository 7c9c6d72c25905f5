//! `/o/<key>`: a stored object by its content-addressed key, immutable.
//! Negotiated responses name their variant here (`Content-Location`), and
//! pages, playlists and the Auto player's redirect point here.

use http::header::HeaderMap;
use http::{Method, Request, Response};
use lowband_catalog::ObjectKey;

use crate::edge::Edge;
use crate::http::body::Body;
use crate::http::error::EdgeError;
use crate::http::response::{IMMUTABLE, RESPONSE_HEADERS};
use crate::objects::send::{self, ObjectSpec};

pub async fn object<B>(
    edge: &Edge,
    req: &Request<B>,
    key: &ObjectKey,
) -> Result<Response<Body>, EdgeError> {
    let spec = ObjectSpec {
        key,
        known_len: None,
        last_modified: None,
        last_modified_value: None,
        fixed: &edge.object_headers.get(key),
        cache_control: IMMUTABLE,
        head_only: req.method() == Method::HEAD,
    };
    send::send(
        edge.source(),
        edge.metrics(),
        req.headers(),
        spec,
        HeaderMap::with_capacity(RESPONSE_HEADERS),
    )
    .await
}
