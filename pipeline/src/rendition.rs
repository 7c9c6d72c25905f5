//! A rendition made by a pipeline stage, on its way to the store.

use std::path::PathBuf;

use bytes::Bytes;
use lowband_catalog::manifest::VariantKind;

use crate::fmp4::FragmentIndex;

/// Where a rendition's bytes are: small outputs in memory, encoded media in
/// a local work file (streamed to the store, never read whole).
#[derive(Debug)]
pub enum Payload {
    Bytes(Bytes),
    File(PathBuf),
}

/// One output of a stage, described as the manifest will describe it.
#[derive(Debug)]
pub struct Rendition {
    pub name: String,
    pub kind: VariantKind,
    pub tier: String,
    /// Object key extension.
    pub ext: &'static str,
    pub mime: String,
    pub payload: Payload,
    pub codecs: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fps: Option<f64>,
    pub duration: Option<f64>,
    /// HTTP content-coding (`br`, `gzip`), if the bytes are compressed.
    pub encoding: Option<String>,
    /// Fragment byte ranges, for renditions that HLS also addresses.
    pub fragments: Option<FragmentIndex>,
    /// `slides` for a rung that shows a picture only when it changes.
    pub mode: Option<String>,
    /// Mean SSIM against the source at this size.
    pub ssim: Option<f64>,
    /// For a page: its bytes plus what it fetches before any tap.
    pub first_load_bytes: Option<u64>,
    /// A further sound track: `Some(language tag)` or `Some(None)` untagged.
    pub alternate: Option<Option<String>>,
}

impl Rendition {
    /// A rendition held in memory, with no media properties.
    pub fn bytes(
        name: &str,
        kind: VariantKind,
        tier: &str,
        ext: &'static str,
        mime: &str,
        bytes: Bytes,
    ) -> Self {
        Self {
            name: name.to_owned(),
            kind,
            tier: tier.to_owned(),
            ext,
            mime: mime.to_owned(),
            payload: Payload::Bytes(bytes),
            codecs: None,
            width: None,
            height: None,
            fps: None,
            duration: None,
            encoding: None,
            fragments: None,
            mode: None,
            ssim: None,
            first_load_bytes: None,
            alternate: None,
        }
    }
}
