//! The framing of a `multipart/byteranges` body (RFC 9110 §14.6), computed
//! purely so that its `Content-Length` is known before a byte is fetched.
//!
//! Each part is its delimiter and headers, then that range of the object;
//! the body ends with the closing delimiter. `serve` streams the ranges
//! from the store between the framing pieces.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use super::range::ByteRange;

/// One part: the framing bytes sent before its range of the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub head: Bytes,
    pub range: ByteRange,
}

/// A whole `multipart/byteranges` body, minus the object bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Multipart {
    pub boundary: String,
    pub parts: Vec<Part>,
    /// The closing delimiter.
    pub tail: Bytes,
}

impl Multipart {
    /// Frames `ranges` of an object of `total` bytes and type `mime`.
    pub fn new(boundary: String, ranges: &[ByteRange], mime: &str, total: u64) -> Self {
        let parts = ranges
            .iter()
            .map(|range| Part {
                head: Bytes::from(format!(
                    "\r\n--{boundary}\r\nContent-Type: {mime}\r\nContent-Range: {}\r\n\r\n",
                    range.content_range(total)
                )),
                range: *range,
            })
            .collect();
        let tail = Bytes::from(format!("\r\n--{boundary}--\r\n"));
        Self {
            boundary,
            parts,
            tail,
        }
    }

    /// The response's `Content-Type`.
    pub fn content_type(&self) -> String {
        format!("multipart/byteranges; boundary={}", self.boundary)
    }

    /// Exact length of the body: framing plus every range.
    pub fn content_length(&self) -> u64 {
        self.parts
            .iter()
            .map(|p| p.head.len() as u64 + p.range.len())
            .sum::<u64>()
            + self.tail.len() as u64
    }
}

/// A fresh boundary: 32 hex digits from the process's random hasher keys
/// and a counter, so a client cannot predict one and place it in an object
/// (the bytes of a part are never scanned for it).
pub fn boundary() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let word = |salt: u64| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(n);
        h.write_u64(salt);
        h.finish()
    };
    format!("lowband-{:016x}{:016x}", word(1), word(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_and_length_match_the_bytes() {
        let object: Vec<u8> = (0..100u8).collect();
        let ranges = [
            ByteRange { start: 0, end: 4 },
            ByteRange { start: 90, end: 99 },
        ];
        let m = Multipart::new("XYZ".into(), &ranges, "video/mp4", 100);
        let mut body = Vec::new();
        for p in &m.parts {
            body.extend_from_slice(&p.head);
            body.extend_from_slice(&object[p.range.start as usize..=p.range.end as usize]);
        }
        body.extend_from_slice(&m.tail);
        assert_eq!(m.content_length(), body.len() as u64);
        let text = String::from_utf8_lossy(&body);
        assert!(text.starts_with(
            "\r\n--XYZ\r\nContent-Type: video/mp4\r\nContent-Range: bytes 0-4/100\r\n\r\n"
        ));
        assert!(text.contains(
            "\r\n--XYZ\r\nContent-Type: video/mp4\r\nContent-Range: bytes 90-99/100\r\n\r\n"
        ));
        assert!(text.ends_with("\r\n--XYZ--\r\n"));
        assert_eq!(m.content_type(), "multipart/byteranges; boundary=XYZ");
    }

    #[test]
    fn boundaries_differ_and_are_token_safe() {
        let a = boundary();
        let b = boundary();
        assert_ne!(a, b);
        assert_eq!(a.len(), "lowband-".len() + 32);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'));
    }
}
