//! What the edge's integration tests share: requests through
//! `Edge::handle` (`handle`), an edge on a real socket (`serving`), a
//! shaped link to a network namespace (`netns`), storing objects, and where
//! `scripts/install-deps.sh --test` put the tools it installs.

pub mod handle;
#[cfg(target_os = "linux")]
pub mod netns;
pub mod serving;

use std::path::PathBuf;

use bytes::Bytes;
use lowband_catalog::{ObjectKey, Store};

pub use handle::{get, request, Got};
#[cfg(target_os = "linux")]
pub use netns::{run, ShapedLink};
pub use serving::Serving;

/// Stores `bytes` as an object with extension `ext`; its key.
pub async fn put(store: &Store, bytes: impl Into<Bytes>, ext: &str) -> ObjectKey {
    store.put_object(bytes.into(), ext).await.unwrap().0
}

/// `${LOWBAND_TOOLS:-~/.cache/lowband}`, where `scripts/install-deps.sh
/// --test` installs REDbot and playwright-core.
pub fn tools_dir() -> PathBuf {
    std::env::var_os("LOWBAND_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").expect("HOME is set");
            PathBuf::from(home).join(".cache/lowband")
        })
}
