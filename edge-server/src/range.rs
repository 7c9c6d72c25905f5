//! Byte ranges and conditional requests (RFC 9110 §13-14), parsed purely.

use http::header::{HeaderMap, IF_NONE_MATCH, IF_RANGE, RANGE};

/// The part of an object a response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranged {
    /// The whole object (no Range, an ignored Range, or a stale `If-Range`).
    Full,
    /// `start..=end`, both inclusive, within the object.
    Partial { start: u64, end: u64 },
    /// No requested range overlaps the object: 416.
    Unsatisfiable,
}

/// Evaluates `Range` (and `If-Range`) against an object of `len` bytes
/// whose strong ETag is `etag` (quoted).
///
/// Only a single range is honoured; a multi-range request gets the whole
/// object, which RFC 9110 allows and every client handles.
pub fn evaluate(headers: &HeaderMap, len: u64, etag: &str) -> Ranged {
    let Some(value) = headers.get(RANGE).and_then(|v| v.to_str().ok()) else {
        return Ranged::Full;
    };
    if let Some(if_range) = headers.get(IF_RANGE).and_then(|v| v.to_str().ok()) {
        // Only a strong ETag can validate a range; a date or other tag means "send it all".
        if if_range.trim() != etag {
            return Ranged::Full;
        }
    }
    parse(value, len)
}

/// Parses a `Range` header value for an object of `len` bytes.
pub fn parse(value: &str, len: u64) -> Ranged {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ranged::Full;
    };
    let mut ranges = spec.split(',').map(str::trim).filter(|s| !s.is_empty());
    let (Some(first), None) = (ranges.next(), ranges.next()) else {
        return Ranged::Full;
    };
    let Some((a, b)) = first.split_once('-') else {
        return Ranged::Full;
    };
    let digits = |s: &str| !s.is_empty() && s.len() <= 19 && s.bytes().all(|c| c.is_ascii_digit());
    match (a.trim(), b.trim()) {
        ("", suffix) if digits(suffix) => {
            let n: u64 = suffix.parse().unwrap_or(0);
            if n == 0 || len == 0 {
                Ranged::Unsatisfiable
            } else {
                Ranged::Partial {
                    start: len.saturating_sub(n),
                    end: len - 1,
                }
            }
        }
        (start, end) if digits(start) && (end.is_empty() || digits(end)) => {
            let start: u64 = start.parse().unwrap_or(u64::MAX);
            let end: u64 = if end.is_empty() {
                u64::MAX
            } else {
                end.parse().unwrap_or(u64::MAX)
            };
            if end < start {
                Ranged::Full
            } else if start >= len {
                Ranged::Unsatisfiable
            } else {
                Ranged::Partial {
                    start,
                    end: end.min(len - 1),
                }
            }
        }
        _ => Ranged::Full,
    }
}

/// Whether `If-None-Match` matches `etag` (weak comparison): answer 304.
pub fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let ours = bare(etag);
    headers
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == "*" || bare(t) == ours)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use proptest::prelude::*;

    #[test]
    fn single_ranges() {
        assert_eq!(
            parse("bytes=0-99", 1000),
            Ranged::Partial { start: 0, end: 99 }
        );
        assert_eq!(
            parse("bytes=900-", 1000),
            Ranged::Partial {
                start: 900,
                end: 999
            }
        );
        assert_eq!(
            parse("bytes=-100", 1000),
            Ranged::Partial {
                start: 900,
                end: 999
            }
        );
        assert_eq!(
            parse("bytes=-5000", 1000),
            Ranged::Partial { start: 0, end: 999 }
        );
        assert_eq!(
            parse("bytes=990-2000", 1000),
            Ranged::Partial {
                start: 990,
                end: 999
            }
        );
        assert_eq!(parse("bytes=1000-", 1000), Ranged::Unsatisfiable);
        assert_eq!(parse("bytes=-0", 1000), Ranged::Unsatisfiable);
        assert_eq!(parse("bytes=0-0", 0), Ranged::Unsatisfiable);
    }

    #[test]
    fn ignored_forms_get_everything() {
        for v in [
            "items=0-1",
            "bytes=5-1",
            "bytes=a-b",
            "bytes=0-1,5-6",
            "bytes=",
            "bytes=--1",
            "bytes=+1-2",
            "bytes=99999999999999999999-",
        ] {
            assert_eq!(parse(v, 1000), Ranged::Full, "{v}");
        }
    }

    #[test]
    fn if_range_and_if_none_match() {
        let etag = "\"abc\"";
        let mut h = HeaderMap::new();
        h.insert(RANGE, HeaderValue::from_static("bytes=0-9"));
        assert_eq!(
            evaluate(&h, 100, etag),
            Ranged::Partial { start: 0, end: 9 }
        );
        h.insert(IF_RANGE, HeaderValue::from_static("\"other\""));
        assert_eq!(evaluate(&h, 100, etag), Ranged::Full);
        h.insert(IF_RANGE, HeaderValue::from_static("\"abc\""));
        assert_eq!(
            evaluate(&h, 100, etag),
            Ranged::Partial { start: 0, end: 9 }
        );

        let mut h = HeaderMap::new();
        assert!(!not_modified(&h, etag));
        h.insert(IF_NONE_MATCH, HeaderValue::from_static("\"x\", W/\"abc\""));
        assert!(not_modified(&h, etag));
        h.insert(IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(not_modified(&h, etag));
    }

    proptest! {
        #[test]
        fn partial_ranges_stay_inside(value in "bytes=[0-9]{0,4}-[0-9]{0,4}", len in 0u64..5000) {
            match parse(&value, len) {
                Ranged::Partial { start, end } => prop_assert!(start <= end && end < len),
                Ranged::Full | Ranged::Unsatisfiable => {}
            }
        }

        #[test]
        fn never_panics(value in "\\PC{0,64}", len in any::<u64>()) {
            let _ = parse(&value, len);
        }
    }
}
