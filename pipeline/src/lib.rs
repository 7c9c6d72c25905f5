//! lowband's pipeline: course modules in, tiered low-bandwidth renditions out.
//!
//! `discover` finds a module's assets; `video`, `image` and `page` turn each
//! into renditions; `ingest` runs the steps over them: each asset rendered
//! (or its previous variants reused) and uploaded content-addressed, then
//! the pages, then the manifest, published last. Past one machine,
//! `service` holds what `lowband-pipeline serve` and `worker` are made of:
//! `api` takes authors' uploads (`archive` checks them), `jobs` keeps each
//! job's plan and progress in the store, `queue` carries one message per
//! asset over NATS JetStream, and `worker` runs the same steps as `ingest`,
//! one job at a time. The `lowband-pipeline` binary is a thin shell over this.

pub mod discover;
pub mod image;
pub mod ingest;
pub mod page;
pub mod rendition;
pub mod service;
pub mod video;

// The scale-out modules under their first names, which the tests and callers use.
pub use service::{api, archive, jobs, queue, worker};

pub use ingest::{ingest, IngestError, IngestOptions, IngestReport, Progress, Silent};
