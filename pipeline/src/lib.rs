//! lowband's pipeline: course modules in, tiered low-bandwidth renditions out.
//!
//! `discover` finds a module's assets; `video`, `image` and `page` turn each
//! into renditions; `ingest` uploads them content-addressed and publishes the
//! manifest last. Past one machine, `api` takes authors' uploads (`archive`
//! checks them), `jobs` keeps each job's plan and progress in the store,
//! `queue` carries one message per asset over NATS JetStream, and `worker`
//! runs the same per-asset step as `ingest`. The `lowband-pipeline` binary is
//! a thin shell over this.

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
