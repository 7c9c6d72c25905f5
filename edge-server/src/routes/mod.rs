//! Answering requests: the route table and one handler file per route family.
//!
//! [`table`] says what every URL is and which file here answers it; this
//! module checks the method, sends each route to its handler, turns errors
//! into responses and counts what was answered.

pub mod admin;
pub mod api;
pub mod asset;
pub mod catalog;
pub mod hls;
pub mod lesson;
pub mod object;
pub mod probes;
pub mod table;

use std::net::IpAddr;

use http::{Method, Request, Response, StatusCode};

use crate::edge::{ClientAddr, Edge};
use crate::http::body::{self, Body};
use crate::http::error::EdgeError;
use crate::metrics::RouteLabel;
use table::{InModule, Route, Served};

impl Edge {
    /// Answers one request; never fails (errors become responses).
    pub async fn handle<B>(&self, req: Request<B>) -> Response<Body> {
        let client = req.extensions().get::<ClientAddr>().map(|c| c.0);
        self.handle_from(req, client).await
    }

    /// Answers `req` from `client` (whose connections' estimate selects
    /// variants for a request without hints).
    pub async fn handle_from<B>(&self, req: Request<B>, client: Option<IpAddr>) -> Response<Body> {
        let head = req.method() == Method::HEAD;
        let route = table::route(req.uri().path());
        let mut label = route.as_ref().map_or(RouteLabel::Other, Route::label);
        let result = match route {
            Ok(Route::Purge(id)) if req.method() == Method::POST => admin::purge(self, &req, &id),
            Ok(Route::Purge(_)) => Err(EdgeError::MethodNotAllowed { allow: "POST" }),
            Ok(route) if req.method() == Method::GET || head => {
                dispatch(self, &req, route, client).await
            }
            Ok(_) => Err(EdgeError::MethodNotAllowed { allow: "GET, HEAD" }),
            Err(e) => Err(e),
        };
        let response = result.unwrap_or_else(EdgeError::into_response);
        let (mut parts, body) = response.into_parts();
        let served = parts.extensions.remove::<Served>();
        let mut tier = None;
        if let Some(served) = &served {
            label = served.route;
            tier = Some(served.tier.as_str());
            if let (Some(saved), false, StatusCode::OK) = (served.saved, head, parts.status) {
                self.metrics().saved(tier, saved);
            }
        }
        let body = if head { body::empty() } else { body };
        let body = self.metrics().response(label, tier, parts.status, body);
        Response::from_parts(parts, body)
    }
}

/// Sends a GET or HEAD to the handler of its route.
async fn dispatch<B>(
    edge: &Edge,
    req: &Request<B>,
    route: Route,
    client: Option<IpAddr>,
) -> Result<Response<Body>, EdgeError> {
    match route {
        Route::Health => Ok(probes::health()),
        Route::Ready => Ok(probes::ready(edge).await),
        Route::Metrics => Ok(probes::metrics(edge)),
        // Answered before dispatch (it takes POST).
        Route::Purge(_) => Err(EdgeError::MethodNotAllowed { allow: "POST" }),
        Route::Index => api::module_index(edge, req.headers()).await,
        Route::ModuleApi(id) => api::module_manifest(edge, req.headers(), &id).await,
        Route::Object(key) => object::object(edge, req, &key).await,
        Route::Catalog => catalog::catalog(edge, req).await,
        Route::Asset { module, path } => {
            let prepared = edge
                .manifests
                .prepared(&module)
                .await?
                .ok_or(EdgeError::NotFound)?;
            // A path inside a module, as its manifest reads it.
            match table::in_module(&prepared, &path)? {
                InModule::Lesson { asset, action } => {
                    lesson::lesson(edge, req, client, &prepared, asset, action).await
                }
                InModule::Captions { asset, caption } => {
                    hls::captions(req.headers(), &prepared, asset, caption)
                }
                InModule::Master { asset } => hls::master(edge, req, client, &prepared, asset),
                InModule::Asset { asset } => {
                    asset::asset(edge, req, client, &prepared, asset).await
                }
            }
        }
    }
}
