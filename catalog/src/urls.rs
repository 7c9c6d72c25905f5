//! The edge's URLs of a module's assets, and sizes as pages show them:
//! the pipeline writes them into course pages and the edge into its own
//! pages and playlists, so both must spell them alike.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::keys::ModuleId;

/// What stays as is in one path segment (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// One path segment or query value, percent-encoded (`/` included).
pub fn encode_segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// A module path with each `/`-separated segment percent-encoded.
pub fn encode_path(path: &str) -> String {
    path.split('/')
        .map(encode_segment)
        .collect::<Vec<_>>()
        .join("/")
}

/// The edge URL of an asset: `/m/<module>/<percent-encoded path>`.
pub fn asset_url(module: &str, path: &str) -> String {
    format!(
        "/m/{}/{}",
        utf8_percent_encode(module, SEGMENT),
        encode_path(path)
    )
}

/// The URL of a module's course page (its `index.html`).
pub fn module_url(id: &ModuleId) -> String {
    format!("/m/{}/", utf8_percent_encode(id.as_str(), SEGMENT))
}

/// Bytes as a teacher reads a data cost: `0.29 MB`, `1.8 MB`, `12 MB`
/// (decimal megabytes, as carriers sell them; never less than 0.01 MB
/// unless nothing).
pub fn megabytes(bytes: u64) -> String {
    let mb = bytes as f64 / 1_000_000.0;
    if bytes == 0 {
        "0 MB".into()
    } else if mb < 0.01 {
        "0.01 MB".into()
    } else if mb < 1.0 {
        format!("{mb:.2} MB")
    } else if mb < 10.0 {
        format!("{mb:.1} MB")
    } else {
        format!("{mb:.0} MB")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_encoded_per_segment() {
        assert_eq!(
            asset_url("tq", "img/my photo ក.jpg"),
            "/m/tq/img/my%20photo%20%E1%9E%80.jpg"
        );
        assert_eq!(asset_url("m1", "a b/ក.mp4"), "/m/m1/a%20b/%E1%9E%80.mp4");
        assert_eq!(encode_path("a/../b c"), "a/../b%20c");
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
        assert_eq!(module_url(&ModuleId::parse("m1").unwrap()), "/m/m1/");
    }

    #[test]
    fn sizes_read_as_a_teacher_reads_them() {
        assert_eq!(megabytes(0), "0 MB");
        assert_eq!(megabytes(1_700), "0.01 MB");
        assert_eq!(megabytes(173_555), "0.17 MB");
        assert_eq!(megabytes(1_023_234), "1.0 MB");
        assert_eq!(megabytes(6_049_000), "6.0 MB");
        assert_eq!(megabytes(12_400_000), "12 MB");
    }
}
