//! lowband's edge: hands each client the smallest variant its link can carry.
//!
//! `signals` parses what a request says about the client, `select` picks a
//! variant (both pure), `paths` routes and normalises URLs, `range` handles
//! byte ranges and validators, `serve` answers requests and `server` runs
//! them over hyper. The edge never links FFmpeg.

pub mod body;
pub mod error;
pub mod hls;
pub mod paths;
pub mod range;
pub mod select;
pub mod serve;
pub mod server;
pub mod signals;

pub use serve::{Edge, EdgeConfig};
pub use server::{serve, ServerConfig};
