//! lowband's pipeline: course modules in, tiered low-bandwidth renditions out.
//!
//! `discover` finds a module's assets; `video`, `image` and `page` turn each
//! into renditions; `ingest` uploads them content-addressed and publishes the
//! manifest last. `archive` checks and unpacks authors' uploaded archives.
//! The `lowband-pipeline` binary is a thin shell over this.

pub mod archive;
pub mod discover;
pub mod image;
pub mod ingest;
pub mod page;
pub mod rendition;
pub mod video;

pub use ingest::{ingest, IngestError, IngestOptions, IngestReport, Progress, Silent};
