//! Precompressed copies of a text file or page.
//!
//! Compression happens once, at ingest, at the highest settings (brotli
//! quality 11 runs at well under 1 MB/s): the edge only ever picks a copy.
//! brotli for browsers (all send `br` over HTTPS), zstd for the ones that
//! announce it (Chromium 123+) and for clients on plain HTTP where browsers
//! hold back `br`, gzip for everything else.

use std::io::Write;

use bytes::Bytes;
use lowband_catalog::manifest::VariantKind;
use lowband_catalog::profile::PageSettings;
use rayon::prelude::*;

use crate::rendition::Rendition;

/// Below this size a compressed copy saves too little to be worth a variant.
const MIN_COMPRESS_BYTES: usize = 256;

/// The identity copy plus brotli, zstd and gzip copies of a text file.
pub fn render(
    bytes: Bytes,
    mime: &str,
    ext: &'static str,
    kind: VariantKind,
    tier: &str,
    settings: &PageSettings,
) -> Vec<Rendition> {
    let compressed: Vec<Rendition> = if bytes.len() < MIN_COMPRESS_BYTES {
        Vec::new()
    } else {
        [Coding::Brotli, Coding::Zstd, Coding::Gzip]
            .par_iter()
            .filter_map(|&coding| kept(coding, coding.compress(&bytes, settings), bytes.len()))
            .map(|c| c.into_rendition(kind, tier, mime))
            .collect()
    };
    let identity = Rendition::bytes("identity", kind, tier, ext, mime, bytes);
    std::iter::once(identity).chain(compressed).collect()
}

/// A compressed copy worth a variant: one that compressed without an
/// error, holds bytes, and is smaller than the original. A copy that
/// failed is left out (the identity copy always serves), and said so.
fn kept(coding: Coding, result: std::io::Result<Vec<u8>>, original: usize) -> Option<Compressed> {
    match result {
        Ok(bytes) if !bytes.is_empty() && bytes.len() < original => Some(Compressed {
            coding,
            bytes: Bytes::from(bytes),
        }),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(coding = coding.name(), error = %e, "compressed copy left out: compressing failed");
            None
        }
    }
}

#[derive(Clone, Copy)]
enum Coding {
    Brotli,
    Zstd,
    Gzip,
}

struct Compressed {
    coding: Coding,
    bytes: Bytes,
}

impl Compressed {
    fn into_rendition(self, kind: VariantKind, tier: &str, mime: &str) -> Rendition {
        let ext = match self.coding {
            Coding::Brotli => "br",
            Coding::Zstd => "zst",
            Coding::Gzip => "gz",
        };
        let name = self.coding.name();
        let mut r = Rendition::bytes(name, kind, tier, ext, mime, self.bytes);
        r.encoding = Some(name.to_owned());
        r
    }
}

impl Coding {
    /// The HTTP content-coding, which is also the variant's name.
    fn name(self) -> &'static str {
        match self {
            Coding::Brotli => "br",
            Coding::Zstd => "zstd",
            Coding::Gzip => "gzip",
        }
    }

    fn compress(self, input: &[u8], settings: &PageSettings) -> std::io::Result<Vec<u8>> {
        match self {
            Coding::Brotli => {
                let mut out = Vec::with_capacity(input.len() / 3);
                let params = brotli::enc::BrotliEncoderParams {
                    quality: settings.brotli_quality as i32,
                    lgwin: 22,
                    mode: brotli::enc::backward_references::BrotliEncoderMode::BROTLI_MODE_TEXT,
                    size_hint: input.len(),
                    ..Default::default()
                };
                brotli::BrotliCompress(&mut &input[..], &mut out, &params)?;
                Ok(out)
            }
            Coding::Zstd => zstd::bulk::compress(input, settings.zstd_level),
            Coding::Gzip => {
                let mut enc = flate2::write::GzEncoder::new(
                    Vec::new(),
                    flate2::Compression::new(settings.gzip_level),
                );
                enc.write_all(input)?;
                enc.finish()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::decoded;
    use super::*;

    #[test]
    fn copies_decode_to_the_original_byte_exact() {
        let settings = lowband_catalog::Profile::builtin_default().page;
        let khmer = "<p lang=\"km\">គ្រូល្អសួរសំណួរបើកចំហ ដើម្បីឱ្យសិស្សគិត។</p>\n".repeat(20);
        let out = render(
            Bytes::from(khmer.clone()),
            "text/html; charset=utf-8",
            "html",
            VariantKind::Page,
            "slow-2g",
            &settings,
        );
        let names: Vec<_> = out.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["identity", "br", "zstd", "gzip"]);
        for r in &out {
            let crate::rendition::Payload::Bytes(b) = &r.payload else {
                panic!("in memory")
            };
            assert_eq!(decoded(r), khmer.as_bytes(), "{}", r.name);
            if r.encoding.is_some() {
                assert!(
                    b.len() < khmer.len() / 4,
                    "{} compressed only to {}",
                    r.name,
                    b.len()
                );
            }
        }
    }

    /// A copy whose compression failed, or that came out empty, is never a
    /// variant: a failed gzip once became an empty Vec, which the size
    /// filter kept as a 0-byte `gzip` copy served to gzip clients.
    #[test]
    fn failed_or_empty_copies_are_left_out() {
        let failed = Err(std::io::Error::other("out of memory"));
        assert!(kept(Coding::Gzip, failed, 1000).is_none());
        assert!(kept(Coding::Brotli, Ok(Vec::new()), 1000).is_none());
        assert!(
            kept(Coding::Zstd, Ok(vec![1; 1000]), 1000).is_none(),
            "no smaller"
        );
        let small = kept(Coding::Gzip, Ok(vec![1; 10]), 1000).map(|c| c.bytes.len());
        assert_eq!(small, Some(10));
    }

    #[test]
    fn tiny_files_are_not_compressed() {
        let settings = lowband_catalog::Profile::builtin_default().page;
        let out = render(
            Bytes::from_static(b"body{}"),
            "text/css",
            "css",
            VariantKind::Page,
            "slow-2g",
            &settings,
        );
        assert_eq!(out.len(), 1);
    }
}
