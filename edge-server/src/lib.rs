//! lowband's edge: hands each client the smallest variant its link can carry.
//!
//! The tree says what each part does:
//!
//! - [`routes`]: the route table ([`routes::table`]: every URL and the file
//!   that answers it) and one handler file per route family: `asset`
//!   (negotiated assets), `object` (`/o/<key>`), `lesson` (`watch`, `play`,
//!   `download`), `hls` (master and subtitle playlists), `catalog`, `api`
//!   (JSON), `probes` (`/healthz`, `/readyz`, `/metrics`), `admin` (purge).
//! - [`choose`]: pure choice: the request's signals (its hints, query and
//!   cookies), the connections' estimate (and the probe that reads
//!   `TCP_INFO`), tiers from link speeds, the variant selected, `no-transform`.
//! - [`pages`]: what is written per client from a manifest: the catalog and
//!   lesson pages (maud templates) and the HLS playlists.
//! - [`objects`]: sending stored objects: headers prepared per manifest,
//!   files read straight from a `file://` store, validators, ranges, bodies.
//! - [`server`]: the port and its connections over hyper, within their
//!   limits; it hands each request to the [`Edge`].
//! - [`http`]: HTTP apart from lowband, at the bottom: TLS identities,
//!   bodies, the RFC 9110 rules for ranges and validators, how responses
//!   are made, and the one place errors become responses.
//! - [`edge`] is the state every request shares ([`Edge`]); [`manifests`]
//!   the manifests and index as last read; [`bounded`] the maps the request
//!   path looks up (and why they are not moka); [`cache`] a cache node's
//!   disk cache of an upstream; [`config`] the settings; [`metrics`] what
//!   is counted.
//!
//! The modules only point down: `http`, `bounded` and `choose` at the
//! bottom; then `cache`, `metrics`, `objects`, `manifests`; then `edge`,
//! `pages`, `routes`; `server` and `config` on top.
//!
//! The edge never links FFmpeg.

pub mod bounded;
pub mod cache;
pub mod choose;
pub mod config;
pub mod edge;
pub mod http;
pub mod manifests;
pub mod metrics;
pub mod objects;
pub mod pages;
pub mod routes;
pub mod server;

pub use edge::{ClientAddr, Edge, EdgeConfig};
pub use server::{serve, ServerConfig};
