//! What a file is, by its name: the asset kind it is published as, the MIME
//! type it is served with, and the extension its objects are stored under.
//!
//! One table for both sides. The pipeline reads it to classify an author's
//! files ([`of_name`]); the edge reads it to answer `Content-Type` for a
//! stored object ([`of_stored_ext`]). Two copies used to disagree: a module's
//! `.mov` original was published as `video/quicktime` and then served as
//! `application/octet-stream`.

use crate::manifest::AssetKind;

/// The kind, MIME type and stored extension of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaType {
    pub kind: AssetKind,
    pub mime: &'static str,
    /// The extension objects of this type are stored under (`.m4v` and
    /// `.mp4` are both stored as `mp4`).
    pub ext: &'static str,
}

/// A file nothing in the table names: published as it is, served as bytes.
pub const UNKNOWN: MediaType = media(AssetKind::File, "application/octet-stream", "bin");

const fn media(kind: AssetKind, mime: &'static str, ext: &'static str) -> MediaType {
    MediaType { kind, mime, ext }
}

/// The lowercase file-name extensions each type is recognised by, with the
/// type. A stored extension is looked up by the first row whose `ext` it is.
const TABLE: &[(&[&str], MediaType)] = {
    use AssetKind::{Audio, File, Image, Page, Video};
    &[
        (&["mp4", "m4v"], media(Video, "video/mp4", "mp4")),
        (&["mov"], media(Video, "video/quicktime", "mov")),
        (&["webm"], media(Video, "video/webm", "webm")),
        (&["mkv"], media(Video, "video/x-matroska", "mkv")),
        (&["avi"], media(Video, "video/x-msvideo", "avi")),
        (&["3gp"], media(Video, "video/3gpp", "3gp")),
        (&["3g2"], media(Video, "video/3gpp2", "3g2")),
        (&["flv"], media(Video, "video/x-flv", "flv")),
        (&["ogv"], media(Video, "video/ogg", "ogv")),
        // Not `.ts`, which is also TypeScript's: MPEG-TS so named is
        // recognised by its content instead.
        (&["mts", "m2ts"], media(Video, "video/mp2t", "ts")),
        (&["mp3"], media(Audio, "audio/mpeg", "mp3")),
        (&["wav"], media(Audio, "audio/wav", "wav")),
        (&["m4a"], media(Audio, "audio/mp4", "m4a")),
        (&["aac"], media(Audio, "audio/aac", "aac")),
        (&["ogg", "oga"], media(Audio, "audio/ogg", "ogg")),
        (&["opus"], media(Audio, "audio/ogg", "opus")),
        (&["flac"], media(Audio, "audio/flac", "flac")),
        (&["ac3"], media(Audio, "audio/ac3", "ac3")),
        (&["eac3"], media(Audio, "audio/eac3", "eac3")),
        (&["jpg", "jpeg"], media(Image, "image/jpeg", "jpg")),
        (&["png"], media(Image, "image/png", "png")),
        (&["webp"], media(Image, "image/webp", "webp")),
        (&["gif"], media(Image, "image/gif", "gif")),
        // The image ladder writes AVIF; an author's own AVIF is passed on as
        // authored, since the ladder decodes JPEG, PNG, WebP and GIF only.
        (&["avif"], media(File, "image/avif", "avif")),
        (
            &["html", "htm"],
            media(Page, "text/html; charset=utf-8", "html"),
        ),
        (&["css"], media(File, "text/css; charset=utf-8", "css")),
        (
            &["js", "mjs"],
            media(File, "text/javascript; charset=utf-8", "js"),
        ),
        (&["json"], media(File, "application/json", "json")),
        (&["vtt"], media(File, "text/vtt; charset=utf-8", "vtt")),
        (&["srt"], media(File, "application/x-subrip", "srt")),
        (
            &["txt", "md"],
            media(File, "text/plain; charset=utf-8", "txt"),
        ),
        (&["svg"], media(File, "image/svg+xml", "svg")),
        (&["xml"], media(File, "application/xml", "xml")),
        (&["pdf"], media(File, "application/pdf", "pdf")),
        (&["woff2"], media(File, "font/woff2", "woff2")),
        (
            &["m3u8"],
            media(File, "application/vnd.apple.mpegurl", "m3u8"),
        ),
    ]
};

/// The type of a source file, by its name's extension (any case);
/// [`UNKNOWN`] when the name has none or the table does not know it.
pub fn of_name(name: &str) -> MediaType {
    let Some((_, ext)) = name.rsplit_once('.') else {
        return UNKNOWN;
    };
    TABLE
        .iter()
        .find(|(names, _)| names.iter().any(|n| n.eq_ignore_ascii_case(ext)))
        .map_or(UNKNOWN, |(_, media)| *media)
}

/// The type of a stored object, by its key's extension (always lowercase).
pub fn of_stored_ext(ext: &str) -> MediaType {
    TABLE
        .iter()
        .map(|(_, media)| media)
        .find(|media| media.ext == ext)
        .copied()
        .unwrap_or(UNKNOWN)
}

/// The type a sniffer recognised, by the extension it is stored under.
/// Panics on an extension the table does not have: a sniffer naming one is
/// a bug caught by its tests, never by input.
pub fn stored(ext: &str) -> MediaType {
    let media = of_stored_ext(ext);
    assert!(
        media.ext == ext,
        "media_type::stored({ext:?}): not in the table"
    );
    media
}

/// Whether bytes of this MIME type are text that compresses well enough to
/// be precompressed (brotli, gzip) at ingest.
pub fn compresses(mime: &str) -> bool {
    mime.starts_with("text/")
        || ["application/json", "application/xml", "image/svg+xml"]
            .iter()
            .any(|m| mime.starts_with(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_names_classify_in_any_case() {
        assert_eq!(of_name("lessons/Intro.MP4"), stored("mp4"));
        assert_eq!(of_name("clip.m4v").ext, "mp4");
        assert_eq!(of_name("a.b/c.JPEG").mime, "image/jpeg");
        assert_eq!(of_name("rec.m2ts").ext, "ts");
        assert_eq!(of_name("index.htm").kind, AssetKind::Page);
        for unknown in ["README", "data.xyz", "app.ts", "archive.tar.", ""] {
            assert_eq!(of_name(unknown), UNKNOWN, "{unknown:?}");
        }
    }

    /// Every type the pipeline can publish, the edge serves with the same
    /// MIME type: the table's two readings agree row by row.
    #[test]
    fn stored_extensions_serve_what_was_published() {
        for (names, media) in TABLE {
            for name in *names {
                let published = of_name(&format!("file.{name}"));
                assert_eq!(of_stored_ext(published.ext).mime, media.mime, "{name}");
            }
        }
        assert_eq!(of_stored_ext("avif").mime, "image/avif");
        assert_eq!(of_stored_ext("mov").mime, "video/quicktime");
        assert_eq!(of_stored_ext("m3u8").mime, "application/vnd.apple.mpegurl");
        assert_eq!(of_stored_ext("bin"), UNKNOWN);
        assert_eq!(
            of_stored_ext("MP4"),
            UNKNOWN,
            "stored extensions are lowercase"
        );
    }

    #[test]
    fn text_types_compress() {
        for mime in [
            "text/html; charset=utf-8",
            "application/json",
            "image/svg+xml",
        ] {
            assert!(compresses(mime), "{mime}");
        }
        for mime in ["image/avif", "video/mp4", "font/woff2", "application/pdf"] {
            assert!(!compresses(mime), "{mime}");
        }
    }
}
