//! lowband's pipeline: course modules in, tiered low-bandwidth renditions out.
//!
//! `discover` finds a module's assets; `video`, `image` and `page` turn each
//! into renditions; `ingest` uploads them content-addressed and publishes the
//! manifest last. `media` is the bottom layer under `video` and `image`:
//! FFmpeg's set-up, its errors with what failed, and the filter-graph and
//! encoder helpers they build on. The layers only point down:
//!
//! ```text
//! video       → image (the posters' encoders), media, rendition, fmp4
//! image       → media, rendition
//! rendition   → fmp4
//! media, fmp4 → nothing of the crate
//! ```
//!
//! `fmp4` reads the byte ranges of a fragmented MP4 and writes its HLS
//! playlist. Past one machine, `api` takes authors' uploads (`archive`
//! checks them), `jobs` keeps each job's plan and progress in the store,
//! `queue` carries one message per asset over NATS JetStream, and `worker`
//! runs the same per-asset step as `ingest`. The `lowband-pipeline` binary is
//! a thin shell over this.

pub mod api;
pub mod archive;
pub mod discover;
pub mod fmp4;
pub mod image;
pub mod ingest;
pub mod jobs;
pub mod media;
pub mod page;
pub mod queue;
pub mod rendition;
pub mod video;
pub mod worker;

pub use ingest::{ingest, IngestError, IngestOptions, IngestReport, Progress, Silent};
