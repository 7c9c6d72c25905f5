//! The contract between lowband's pipeline and its edge servers.
//!
//! Everything both sides must agree on lives here and nowhere else: the
//! ladder profiles (`profile`), the manifest a published module is described
//! by (`manifest`), how objects and manifests are named in a store (`keys`),
//! and how a store URL becomes an object store (`store`). This crate never
//! touches FFmpeg, so a cache node that depends on it stays codec-free.

// Nothing here needs it: the contract is plain data and parsing.
#![forbid(unsafe_code)]

pub mod i18n;
pub mod keys;
pub mod manifest;
pub mod media_type;
pub mod profile;
pub mod report;
pub mod store;
pub mod strict_toml;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod tokens;
pub mod urls;

pub use keys::{ContentHash, KeyError, ModuleId, ObjectKey};
pub use manifest::{
    Asset, AssetKind, Manifest, ManifestError, ModuleIndex, ModuleInfo, ModuleSummary, Variant,
    VariantKind, MANIFEST_SCHEMA,
};
pub use profile::{Profile, ProfileError, Tier};
pub use store::{Store, StoreError};
