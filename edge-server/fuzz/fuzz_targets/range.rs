//! `range::parse` and `range::evaluate` on any `Range` (and `If-Range`)
//! for any object length, and the `multipart/byteranges` framing of what
//! they return.
//!
//! Input: line 1 the object's length in decimal (anything else is 0), line
//! 2 the `Range` value, line 3 (optional) the `If-Range` value.

#![no_main]

use http::header::{HeaderMap, HeaderValue, IF_RANGE, RANGE};
use libfuzzer_sys::fuzz_target;
use lowband_edge::http::multipart::Multipart;
use lowband_edge::http::range::{self, ByteRange, Ranged, MAX_RANGES};
use lowband_edge_fuzz::lines;

const ETAG: &str = "\"e3b0c442\"";

fuzz_target!(|data: &[u8]| {
    let mut lines = lines(data);
    let len = lines
        .next()
        .and_then(|l| std::str::from_utf8(l).ok())
        .and_then(|l| l.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let value = lines.next().unwrap_or_default();
    let if_range = lines.next();

    let parsed = range::parse(&String::from_utf8_lossy(value), len);
    let ranges: &[ByteRange] = match &parsed {
        Ranged::Full | Ranged::Unsatisfiable => &[],
        Ranged::Partial(r) => std::slice::from_ref(r),
        Ranged::Multipart(rs) => {
            assert!(rs.len() >= 2, "{parsed:?}");
            rs
        }
    };
    assert!(ranges.len() <= MAX_RANGES, "{} ranges", ranges.len());
    for r in ranges {
        assert!(r.start <= r.end && r.end < len, "{r:?} of {len} bytes");
        assert!(r.len() >= 1);
    }
    for pair in ranges.windows(2) {
        // Sorted, disjoint and not adjacent: coalescing left nothing to merge.
        assert!(pair[0].end + 1 < pair[1].start, "{pair:?} not coalesced");
    }
    assert!(ranges.iter().map(ByteRange::len).sum::<u64>() <= len);

    // Objects are far below 2^60 bytes (S3 stops at 5 TiB): the framing's
    // length is exact and does not overflow.
    if len < 1 << 60 && ranges.len() >= 2 {
        let framed = Multipart::new("b".into(), ranges, "video/mp4", len);
        let expected = framed
            .parts
            .iter()
            .map(|p| {
                let head = String::from_utf8_lossy(&p.head);
                assert!(head.contains(&p.range.content_range(len)), "{head:?}");
                p.head.len() as u64 + p.range.len()
            })
            .sum::<u64>()
            + framed.tail.len() as u64;
        assert_eq!(framed.content_length(), expected);
    }

    // Through the headers: the same answer, unless If-Range names anything
    // but our strong ETag, which asks for the whole object.
    let mut headers = HeaderMap::new();
    let Ok(range_value) = HeaderValue::from_bytes(value) else {
        return;
    };
    headers.insert(RANGE, range_value);
    let mut validated = true;
    if let Some(v) = if_range.and_then(|v| HeaderValue::from_bytes(v).ok()) {
        validated = v.to_str().is_ok_and(|v| v.trim() == ETAG);
        headers.insert(IF_RANGE, v);
    }
    let evaluated = range::evaluate(&headers, len, ETAG);
    match headers.get(RANGE).map(HeaderValue::to_str) {
        Some(Ok(v)) if validated => assert_eq!(evaluated, range::parse(v, len)),
        _ => assert_eq!(evaluated, Ranged::Full),
    }
});
