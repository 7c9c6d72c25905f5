//! Byte ranges (RFC 9110 §14): `Range` and `If-Range`, parsed purely.
//!
//! A request may name up to [`MAX_RANGES`] ranges. Unsatisfiable ones are
//! dropped, the rest are sorted and overlapping or adjacent ones merged
//! (§14.6 lets a server coalesce, and a client cannot rely on the order it
//! asked for). What remains is one range (a plain 206), several (a 206
//! `multipart/byteranges`) or none (416). A header that is malformed, or
//! that names more than [`MAX_RANGES`] ranges, is ignored and the whole
//! object is sent: §14.2 lets a server ignore `Range`, and a 200 gives a
//! broken or hostile client nothing it could not get without the header.

use http::header::{HeaderMap, IF_RANGE, RANGE};

/// Most ranges honoured in one request; more and the header is ignored.
pub const MAX_RANGES: usize = 16;

/// `start..=end` of an object, both inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    /// Bytes in the range (never zero: `start <= end`).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    /// The `Content-Range` value for this range of an object of `total` bytes.
    pub fn content_range(&self, total: u64) -> String {
        // Sized for three 20-digit numbers: one allocation, no regrowth, and
        // no formatting machinery (this is on every range response).
        let mut out = Vec::with_capacity(72);
        out.extend_from_slice(b"bytes ");
        push_decimal(&mut out, self.start);
        out.push(b'-');
        push_decimal(&mut out, self.end);
        out.push(b'/');
        push_decimal(&mut out, total);
        // Only ASCII was written.
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// The part of an object a response carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ranged {
    /// The whole object (no Range, an ignored Range, or a stale `If-Range`).
    Full,
    /// One range: a plain 206.
    Partial(ByteRange),
    /// Two or more disjoint, non-adjacent ranges in ascending order: a 206
    /// `multipart/byteranges`.
    Multipart(Vec<ByteRange>),
    /// No requested range overlaps the object: 416.
    Unsatisfiable,
}

/// Evaluates `Range` (and `If-Range`) against an object of `len` bytes
/// whose strong ETag is `etag` (quoted).
pub fn evaluate(headers: &HeaderMap, len: u64, etag: &str) -> Ranged {
    let Some(value) = headers.get(RANGE).and_then(|v| v.to_str().ok()) else {
        return Ranged::Full;
    };
    if let Some(if_range) = headers.get(IF_RANGE) {
        // Only a strong ETag validates a range here; a date, another tag or
        // bytes that are no tag at all mean "send it all", which §13.1.5
        // always permits.
        if if_range.to_str().ok().map(str::trim) != Some(etag) {
            return Ranged::Full;
        }
    }
    parse(value, len)
}

/// Parses a `Range` header value for an object of `len` bytes.
pub fn parse(value: &str, len: u64) -> Ranged {
    let value = value.trim();
    let Some(spec) = value
        .get(..6)
        .filter(|unit| unit.eq_ignore_ascii_case("bytes="))
        .and_then(|_| value.get(6..))
    else {
        return Ranged::Full;
    };
    if !spec.contains(',') {
        // One range, the usual request: no list to make.
        return match parse_spec(spec.trim(), len) {
            Spec::Invalid => Ranged::Full,
            Spec::Unsatisfiable => Ranged::Unsatisfiable,
            Spec::Range(r) => Ranged::Partial(r),
        };
    }
    let specs: Vec<&str> = spec
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if specs.is_empty() || specs.len() > MAX_RANGES {
        return Ranged::Full;
    }
    let mut ranges = Vec::with_capacity(specs.len());
    for spec in specs {
        match parse_spec(spec, len) {
            Spec::Invalid => return Ranged::Full,
            Spec::Unsatisfiable => {}
            Spec::Range(r) => ranges.push(r),
        }
    }
    let mut ranges = coalesce(ranges);
    match ranges.len() {
        0 => Ranged::Unsatisfiable,
        1 => Ranged::Partial(ranges.remove(0)),
        _ => Ranged::Multipart(ranges),
    }
}

enum Spec {
    Invalid,
    Unsatisfiable,
    Range(ByteRange),
}

fn parse_spec(spec: &str, len: u64) -> Spec {
    let Some(dash) = spec.bytes().position(|b| b == b'-') else {
        return Spec::Invalid;
    };
    let (a, b) = (&spec[..dash], &spec[dash + 1..]);
    let number = |s: &str| {
        (!s.is_empty() && s.len() <= 19 && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    match (a.trim(), b.trim()) {
        ("", suffix) => match number(suffix) {
            None => Spec::Invalid,
            Some(0) => Spec::Unsatisfiable,
            Some(_) if len == 0 => Spec::Unsatisfiable,
            Some(n) => Spec::Range(ByteRange {
                start: len.saturating_sub(n),
                end: len - 1,
            }),
        },
        (first, last) => {
            let Some(start) = number(first) else {
                return Spec::Invalid;
            };
            let end = if last.is_empty() {
                u64::MAX
            } else {
                match number(last) {
                    Some(end) => end,
                    None => return Spec::Invalid,
                }
            };
            if end < start {
                Spec::Invalid
            } else if start >= len {
                Spec::Unsatisfiable
            } else {
                Spec::Range(ByteRange {
                    start,
                    end: end.min(len - 1),
                })
            }
        }
    }
}

/// Sorts ranges and merges those that overlap or touch.
fn coalesce(mut ranges: Vec<ByteRange>) -> Vec<ByteRange> {
    ranges.sort_by_key(|r| (r.start, r.end));
    let mut out: Vec<ByteRange> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.start <= last.end.saturating_add(1) => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use proptest::prelude::*;

    fn partial(start: u64, end: u64) -> Ranged {
        Ranged::Partial(ByteRange { start, end })
    }

    fn multi(ranges: &[(u64, u64)]) -> Ranged {
        Ranged::Multipart(
            ranges
                .iter()
                .map(|&(start, end)| ByteRange { start, end })
                .collect(),
        )
    }

    #[test]
    fn content_range_values() {
        let r = |start, end| ByteRange { start, end };
        assert_eq!(r(0, 0).content_range(1), "bytes 0-0/1");
        assert_eq!(
            r(123_457, 188_992).content_range(1_048_576),
            "bytes 123457-188992/1048576"
        );
        assert_eq!(
            r(u64::MAX - 1, u64::MAX - 1).content_range(u64::MAX),
            format!("bytes {0}-{0}/{1}", u64::MAX - 1, u64::MAX)
        );
    }

    #[test]
    fn single_ranges() {
        assert_eq!(parse("bytes=0-99", 1000), partial(0, 99));
        assert_eq!(parse("bytes=900-", 1000), partial(900, 999));
        assert_eq!(parse("bytes=-100", 1000), partial(900, 999));
        assert_eq!(parse("bytes=-5000", 1000), partial(0, 999));
        assert_eq!(parse("bytes=990-2000", 1000), partial(990, 999));
        assert_eq!(parse("Bytes=0-0", 1000), partial(0, 0));
        assert_eq!(parse("bytes=1000-", 1000), Ranged::Unsatisfiable);
        assert_eq!(parse("bytes=-0", 1000), Ranged::Unsatisfiable);
        assert_eq!(parse("bytes=0-0", 0), Ranged::Unsatisfiable);
    }

    #[test]
    fn several_ranges_are_sorted_and_coalesced() {
        assert_eq!(parse("bytes=0-9, 20-29", 1000), multi(&[(0, 9), (20, 29)]));
        // Order of the request does not survive; overlap and adjacency merge.
        assert_eq!(
            parse("bytes=500-599,0-9,5-14,15-19", 1000),
            multi(&[(0, 19), (500, 599)])
        );
        assert_eq!(parse("bytes=0-9,10-19", 1000), partial(0, 19));
        assert_eq!(parse("bytes=-10,990-", 1000), partial(990, 999));
        assert_eq!(parse("bytes=0-0,-1", 1000), multi(&[(0, 0), (999, 999)]));
        // Unsatisfiable members are dropped, the rest served.
        assert_eq!(parse("bytes=5000-,0-9", 1000), partial(0, 9));
        assert_eq!(parse("bytes=5000-,6000-7000", 1000), Ranged::Unsatisfiable);
        // Empty list elements are allowed by the list syntax.
        assert_eq!(parse("bytes=0-1,,4-5", 1000), multi(&[(0, 1), (4, 5)]));
    }

    #[test]
    fn too_many_ranges_get_everything() {
        let at_limit: Vec<String> = (0..MAX_RANGES)
            .map(|i| format!("{}-{}", i * 10, i * 10))
            .collect();
        assert!(
            matches!(parse(&format!("bytes={}", at_limit.join(",")), 1000), Ranged::Multipart(r) if r.len() == MAX_RANGES)
        );
        let over: Vec<String> = (0..=MAX_RANGES)
            .map(|i| format!("{}-{}", i * 10, i * 10))
            .collect();
        assert_eq!(
            parse(&format!("bytes={}", over.join(",")), 1000),
            Ranged::Full
        );
        // Counted as requested, before coalescing: 17 copies of one range are still too many.
        let same = vec!["0-9"; MAX_RANGES + 1].join(",");
        assert_eq!(parse(&format!("bytes={same}"), 1000), Ranged::Full);
    }

    #[test]
    fn ignored_forms_get_everything() {
        for v in [
            "items=0-1",
            "bytes=5-1",
            "bytes=a-b",
            "bytes=0-1,5-x",
            "bytes=0-1,3-2",
            "bytes=",
            "bytes=,",
            "bytes=--1",
            "bytes=+1-2",
            "bytes=99999999999999999999-",
            "bytes",
            "byt",
        ] {
            assert_eq!(parse(v, 1000), Ranged::Full, "{v}");
        }
    }

    #[test]
    fn if_range_needs_the_strong_etag() {
        let etag = "\"abc\"";
        let mut h = HeaderMap::new();
        h.insert(RANGE, HeaderValue::from_static("bytes=0-9"));
        assert_eq!(evaluate(&h, 100, etag), partial(0, 9));
        h.insert(IF_RANGE, HeaderValue::from_static("\"other\""));
        assert_eq!(evaluate(&h, 100, etag), Ranged::Full);
        h.insert(IF_RANGE, HeaderValue::from_static("W/\"abc\""));
        assert_eq!(evaluate(&h, 100, etag), Ranged::Full);
        h.insert(
            IF_RANGE,
            HeaderValue::from_static("Tue, 15 Nov 1994 08:12:31 GMT"),
        );
        assert_eq!(evaluate(&h, 100, etag), Ranged::Full);
        h.insert(IF_RANGE, HeaderValue::from_static("\"abc\""));
        assert_eq!(evaluate(&h, 100, etag), partial(0, 9));
        // Found by the range fuzz target: an If-Range that is not text was
        // skipped, and the range served as if no condition had been sent.
        h.insert(IF_RANGE, HeaderValue::from_bytes(b"\"abc\"\xa1").unwrap());
        assert_eq!(evaluate(&h, 100, etag), Ranged::Full);
    }

    proptest! {
        /// Whatever is asked, the ranges served are inside the object, sorted,
        /// disjoint and non-adjacent, and cover exactly the satisfiable bytes asked for.
        #[test]
        fn served_ranges_cover_exactly_what_was_asked(
            specs in proptest::collection::vec((0u64..300, 0u64..300, 0u8..3), 1..=MAX_RANGES),
            len in 0u64..256,
        ) {
            let text: Vec<String> = specs.iter().map(|&(a, b, form)| match form {
                0 => format!("{}-{}", a.min(b), a.max(b)),
                1 => format!("{a}-"),
                _ => format!("-{b}"),
            }).collect();
            let mut wanted = vec![false; len as usize];
            for &(a, b, form) in &specs {
                let (s, e) = match form {
                    0 => (a.min(b), a.max(b)),
                    1 => (a, u64::MAX),
                    _ if b == 0 => continue,
                    _ => (len.saturating_sub(b), u64::MAX),
                };
                for i in s..len.min(e.saturating_add(1)) {
                    wanted[i as usize] = true;
                }
            }
            let served = match parse(&format!("bytes={}", text.join(",")), len) {
                Ranged::Full => panic!("a valid header was ignored"),
                Ranged::Unsatisfiable => vec![],
                Ranged::Partial(r) => vec![r],
                Ranged::Multipart(rs) => { prop_assert!(rs.len() >= 2); rs }
            };
            let mut got = vec![false; len as usize];
            for w in served.windows(2) {
                prop_assert!(w[0].end + 1 < w[1].start, "{:?} not coalesced", w);
            }
            for r in &served {
                prop_assert!(r.start <= r.end && r.end < len);
                for i in r.start..=r.end {
                    got[i as usize] = true;
                }
            }
            prop_assert_eq!(got, wanted);
        }

        #[test]
        fn never_panics(value in "\\PC{0,64}", len in any::<u64>()) {
            let _ = parse(&value, len);
        }

        /// A header of one range (parsed without a list) means what it means
        /// with an empty element after it (parsed through the list).
        #[test]
        fn one_range_reads_as_it_does_in_a_list(
            spec in "[ 0-9-]{0,24}|[0-9]{1,21}-[0-9]{0,21}|-?[0-9]{1,21}|\\PC{0,12}",
            len in prop_oneof![0u64..1000, any::<u64>()],
        ) {
            prop_assume!(!spec.contains(','));
            prop_assert_eq!(parse(&format!("bytes={spec}"), len), parse(&format!("bytes={spec},"), len));
        }
    }
}
