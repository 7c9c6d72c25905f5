//! Conditional requests (RFC 9110 §13), evaluated purely in the order of
//! §13.2.2: `If-Match`, else `If-Unmodified-Since` (412 when they fail);
//! then `If-None-Match`, else `If-Modified-Since` (304 when they hold).
//!
//! Validators are the strong ETag (the content hash) and a `Last-Modified`
//! taken from stored metadata: the manifest's publish time for anything
//! negotiated from it, the store's modification time for `/o/` objects.
//! HTTP dates have whole seconds, so times are truncated before comparing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{HeaderMap, IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_UNMODIFIED_SINCE};

/// What the preconditions of a GET or HEAD say to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Send the representation (or the ranges asked for).
    Proceed,
    /// 304: the client's copy is current.
    NotModified,
    /// 412: the client asked for a state the resource is not in.
    PreconditionFailed,
}

/// Evaluates the preconditions of a GET or HEAD against the representation
/// whose strong ETag is `etag` (quoted) and which last changed at `last_modified`.
pub fn evaluate(headers: &HeaderMap, etag: &str, last_modified: Option<SystemTime>) -> Outcome {
    let last_modified = last_modified.map(whole_seconds);
    if headers.contains_key(IF_MATCH) {
        if !tags(headers, IF_MATCH).any(|t| t == "*" || (!is_weak(t) && t == etag)) {
            return Outcome::PreconditionFailed;
        }
    } else if let (Some(since), Some(modified)) =
        (date(headers, IF_UNMODIFIED_SINCE), last_modified)
    {
        if modified > since {
            return Outcome::PreconditionFailed;
        }
    }
    if headers.contains_key(IF_NONE_MATCH) {
        // Weak comparison (§13.1.2): `W/"x"` matches `"x"`.
        let ours = etag.trim_start_matches("W/");
        if tags(headers, IF_NONE_MATCH).any(|t| t == "*" || t.trim_start_matches("W/") == ours) {
            return Outcome::NotModified;
        }
    } else if let (Some(since), Some(modified)) = (date(headers, IF_MODIFIED_SINCE), last_modified)
    {
        if modified <= since {
            return Outcome::NotModified;
        }
    }
    Outcome::Proceed
}

/// `Last-Modified` for a representation changed at `changed`, as sent at
/// `now`: never later than the response itself (§8.8.2.1).
pub fn last_modified(changed: SystemTime, now: SystemTime) -> SystemTime {
    whole_seconds(changed.min(now))
}

/// Unix seconds (a manifest's `published_at`) as a time.
pub fn from_unix(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

/// `t` without its fraction of a second (what HTTP dates can say).
pub fn whole_seconds(t: SystemTime) -> SystemTime {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => UNIX_EPOCH + Duration::from_secs(d.as_secs()),
        Err(_) => UNIX_EPOCH,
    }
}

fn is_weak(tag: &str) -> bool {
    tag.starts_with("W/")
}

/// Entity tags of every instance of a list header, trimmed.
fn tags<'a>(
    headers: &'a HeaderMap,
    name: http::header::HeaderName,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(name)
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The header's HTTP-date; `None` (ignore the header) if absent, repeated or invalid.
fn date(headers: &HeaderMap, name: http::header::HeaderName) -> Option<SystemTime> {
    let mut values = headers.get_all(name).into_iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return None;
    };
    httpdate::parse_http_date(value.to_str().ok()?.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const ETAG: &str = "\"abc\"";

    fn at(seconds: u64) -> SystemTime {
        from_unix(seconds)
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn http_date(seconds: u64) -> String {
        httpdate::fmt_http_date(at(seconds))
    }

    #[test]
    fn if_none_match_uses_weak_comparison() {
        let eval = |v: &str| evaluate(&headers(&[("if-none-match", v)]), ETAG, None);
        assert_eq!(eval("\"x\", W/\"abc\""), Outcome::NotModified);
        assert_eq!(eval("*"), Outcome::NotModified);
        assert_eq!(eval("\"abcd\""), Outcome::Proceed);
        assert_eq!(evaluate(&HeaderMap::new(), ETAG, None), Outcome::Proceed);
    }

    #[test]
    fn if_modified_since_compares_whole_seconds() {
        let changed = at(1_700_000_000) + Duration::from_millis(700);
        let ims = |s: u64| headers(&[("if-modified-since", &http_date(s))]);
        assert_eq!(
            evaluate(&ims(1_700_000_000), ETAG, Some(changed)),
            Outcome::NotModified
        );
        assert_eq!(
            evaluate(&ims(1_700_000_500), ETAG, Some(changed)),
            Outcome::NotModified
        );
        assert_eq!(
            evaluate(&ims(1_699_999_999), ETAG, Some(changed)),
            Outcome::Proceed
        );
        // Without a known modification time there is nothing to compare.
        assert_eq!(evaluate(&ims(1_700_000_000), ETAG, None), Outcome::Proceed);
        // Invalid or repeated dates are ignored.
        let bad = headers(&[("if-modified-since", "yesterday")]);
        assert_eq!(evaluate(&bad, ETAG, Some(changed)), Outcome::Proceed);
        let twice = headers(&[
            ("if-modified-since", &http_date(1_800_000_000)),
            ("if-modified-since", &http_date(1_800_000_000)),
        ]);
        assert_eq!(evaluate(&twice, ETAG, Some(changed)), Outcome::Proceed);
    }

    #[test]
    fn if_none_match_takes_precedence_over_if_modified_since() {
        let changed = Some(at(1_000));
        // A date that says "not modified" is ignored when the tag says "changed".
        let h = headers(&[
            ("if-none-match", "\"old\""),
            ("if-modified-since", &http_date(2_000)),
        ]);
        assert_eq!(evaluate(&h, ETAG, changed), Outcome::Proceed);
        let h = headers(&[
            ("if-none-match", ETAG),
            ("if-modified-since", &http_date(10)),
        ]);
        assert_eq!(evaluate(&h, ETAG, changed), Outcome::NotModified);
    }

    #[test]
    fn if_match_and_if_unmodified_since_fail_with_412() {
        let changed = Some(at(1_000));
        let im = |v: &str| evaluate(&headers(&[("if-match", v)]), ETAG, changed);
        assert_eq!(im("\"abc\""), Outcome::Proceed);
        assert_eq!(im("\"x\", \"abc\""), Outcome::Proceed);
        assert_eq!(im("*"), Outcome::Proceed);
        assert_eq!(
            im("W/\"abc\""),
            Outcome::PreconditionFailed,
            "strong comparison"
        );
        assert_eq!(im("\"x\""), Outcome::PreconditionFailed);
        let ius = |s: u64| {
            evaluate(
                &headers(&[("if-unmodified-since", &http_date(s))]),
                ETAG,
                changed,
            )
        };
        assert_eq!(ius(1_000), Outcome::Proceed);
        assert_eq!(ius(999), Outcome::PreconditionFailed);
        // If-Match wins over If-Unmodified-Since.
        let h = headers(&[("if-match", ETAG), ("if-unmodified-since", &http_date(1))]);
        assert_eq!(evaluate(&h, ETAG, changed), Outcome::Proceed);
        // A failed If-Match is a 412 even when If-None-Match would say 304.
        let h = headers(&[("if-match", "\"x\""), ("if-none-match", ETAG)]);
        assert_eq!(evaluate(&h, ETAG, changed), Outcome::PreconditionFailed);
    }

    #[test]
    fn last_modified_is_never_in_the_future() {
        let now = at(5_000) + Duration::from_millis(300);
        assert_eq!(last_modified(at(9_000), now), at(5_000));
        assert_eq!(
            last_modified(at(4_000) + Duration::from_millis(999), now),
            at(4_000)
        );
    }
}
