//! lowband's edge: hands each client the smallest variant its link can carry.
//!
//! `signals` parses what a request says about the client, `estimate` keeps
//! what each client's connections measured (`TCP_INFO`), `select` picks a
//! variant (both pure, `transform` honours `no-transform`), `paths` routes and
//! normalises URLs, `range`, `conditional` and `multipart` handle byte
//! ranges and validators, `object` streams stored objects, `serve` answers
//! requests (counted in `metrics`), `lesson` makes the teacher's catalog and
//! lesson pages, `hls` the playlists, `captions` finds a caption's WebVTT,
//! and `server` runs them over hyper. The edge never links FFmpeg.

pub mod body;
pub mod cache;
pub mod captions;
pub mod conditional;
pub mod config;
pub mod error;
pub mod estimate;
pub mod files;
pub mod hls;
pub mod lesson;
pub mod metrics;
pub mod multipart;
pub mod object;
pub mod paths;
pub mod prepared;
pub mod range;
pub mod select;
pub mod serve;
pub mod server;
pub mod signals;
pub mod tls;
pub mod transform;

pub use serve::{ClientAddr, Edge, EdgeConfig};
pub use server::{serve, ServerConfig};
