//! `/healthz`, `/readyz` and `/metrics`: what an operator's prober and
//! scraper ask. Never stored by a cache.

use std::time::Duration;

use http::{Response, StatusCode};

use crate::edge::Edge;
use crate::http::body::Body;
use crate::http::response::text;
use crate::metrics::StoreOp;

/// Longest a readiness probe waits for the store.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// `/healthz`: the process answers.
pub fn health() -> Response<Body> {
    text(StatusCode::OK, "text/plain; charset=utf-8", "ok\n")
}

/// `/metrics`: the edge's metrics and, on a cache node, its cache's (one
/// registry holds both).
pub fn metrics(edge: &Edge) -> Response<Body> {
    text(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        edge.metrics().render(),
    )
}

/// `/readyz`: 200 when the store answers and the module index parses; else
/// 503 with a stable reason (detail goes to the log, not the prober).
pub async fn ready(edge: &Edge) -> Response<Body> {
    let (status, json) = if edge.cache().is_some() {
        cache_ready(edge).await
    } else {
        store_ready(edge).await
    };
    text(status, "application/json", json.to_string())
}

/// A cache node is ready when it can list modules: held, or from its upstream.
async fn cache_ready(edge: &Edge) -> (StatusCode, serde_json::Value) {
    match tokio::time::timeout(READY_TIMEOUT, edge.manifests.index()).await {
        Err(_) => not_ready(
            "upstream_timeout",
            "The cache holds no module index and the upstream did not answer in time.",
        ),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready");
            not_ready(
                "upstream_unavailable",
                "The cache holds no module index and the upstream cannot be reached.",
            )
        }
        Ok(Ok(index)) => ready_with(index.modules.len()),
    }
}

async fn store_ready(edge: &Edge) -> (StatusCode, serde_json::Value) {
    let key = lowband_catalog::keys::MODULE_INDEX_KEY;
    let read = edge
        .metrics()
        .time_store(StoreOp::Index, edge.store.get_bytes(key));
    match tokio::time::timeout(READY_TIMEOUT, read).await {
        Err(_) => not_ready("store_timeout", "The store did not answer in time."),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready: store unavailable");
            not_ready("store_unavailable", "The store cannot be reached.")
        }
        Ok(Ok(None)) => not_ready(
            "index_missing",
            "The store has no module index: nothing is published there yet, or this is the wrong store.",
        ),
        Ok(Ok(Some(bytes))) => match lowband_catalog::ModuleIndex::from_json(key, &bytes) {
            Ok(index) => ready_with(index.modules.len()),
            Err(e) => {
                tracing::warn!(error = %e, "not ready: module index unreadable");
                not_ready("index_unreadable", "The module index cannot be read.")
            }
        },
    }
}

fn ready_with(modules: usize) -> (StatusCode, serde_json::Value) {
    (
        StatusCode::OK,
        serde_json::json!({ "ready": true, "modules": modules }),
    )
}

fn not_ready(reason: &str, message: &str) -> (StatusCode, serde_json::Value) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        serde_json::json!({ "ready": false, "reason": reason, "message": message }),
    )
}
