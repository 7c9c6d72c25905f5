//! Requests through `Edge::handle`, without sockets: what a test sends and
//! what it gets back, body collected.

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use lowband_edge::Edge;

/// A response, its body read to the end.
pub struct Got {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Got {
    /// The header's value, or `""` when it is absent or not text.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The chosen variant's name, from `Lowband-Variant`.
    pub fn variant(&self) -> &str {
        self.header("lowband-variant")
            .split(';')
            .next()
            .unwrap_or_default()
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub async fn get(edge: &Edge, uri: &str, headers: &[(&str, &str)]) -> Got {
    request(edge, Method::GET, uri, headers).await
}

pub async fn request(edge: &Edge, method: Method, uri: &str, headers: &[(&str, &str)]) -> Got {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let response = edge.handle(req.body(()).unwrap()).await;
    let (parts, body) = response.into_parts();
    Got {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}
