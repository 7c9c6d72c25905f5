//! lowband's pipeline: course modules in, tiered low-bandwidth renditions out.
//!
//! `discover` finds a module's assets; `video`, `image` and `page` turn each
//! into renditions; `ingest` runs the steps over them: each asset rendered
//! (or its previous variants reused) and uploaded content-addressed, then
//! the pages, then the manifest, published last.
//!
//! `media` is the bottom layer under `video` and `image`: FFmpeg's set-up,
//! its errors with what failed, and the filter-graph and encoder helpers
//! they build on. `fmp4` reads the byte ranges of a fragmented MP4 and
//! writes its HLS playlist. The layers only point down:
//!
//! ```text
//! service     → ingest, discover
//! ingest      → video, image, page, discover, rendition
//! video       → image (the posters' encoders), media, rendition, fmp4
//! image       → media, rendition
//! rendition   → fmp4
//! media, fmp4 → nothing of the crate
//! ```
//!
//! Past one machine, `service` holds what `lowband-pipeline serve` and
//! `worker` are made of: `api` takes authors' uploads (`archive` checks
//! them), `jobs` keeps each job's plan and progress in the store, `queue`
//! carries one message per asset over NATS JetStream, and `worker` runs the
//! same steps as `ingest`, one job at a time. The `lowband-pipeline` binary
//! is a thin shell over this.

pub mod discover;
pub mod fmp4;
pub mod image;
pub mod ingest;
pub mod media;
pub mod page;
pub mod rendition;
pub mod service;
pub mod video;

// The scale-out modules under their first names, which the tests and callers use.
pub use service::{api, archive, jobs, queue, worker};

pub use ingest::{ingest, IngestError, IngestOptions, IngestReport, Progress, Silent};
