//! `conditional::evaluate` on any header map, validator and modification
//! time: it never panics, and a 412 or a 304 needs a header asking for it.
//!
//! Input: one `name: value` header a line; a line `@<unix seconds>[.<ms>]`
//! sets the representation's modification time (none without one).

#![no_main]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_UNMODIFIED_SINCE};
use libfuzzer_sys::fuzz_target;
use lowband_edge::http::conditional::{evaluate, last_modified, Outcome};
use lowband_edge_fuzz::{headers, lines};

const ETAG: &str = "\"e3b0c442\"";

/// `1700000000.250` as a time, if it is one this platform can hold.
fn time(line: &[u8]) -> Option<SystemTime> {
    let text = std::str::from_utf8(line).ok()?;
    let (secs, ms) = text.split_once('.').unwrap_or((text, "0"));
    let since = Duration::from_secs(secs.parse().ok()?)
        .checked_add(Duration::from_millis(ms.parse::<u64>().ok()? % 1000))?;
    UNIX_EPOCH.checked_add(since)
}

fuzz_target!(|data: &[u8]| {
    let modified = lines(data)
        .filter_map(|l| l.strip_prefix(b"@"))
        .last()
        .and_then(time);
    let headers = headers(lines(data).filter(|l| !l.starts_with(b"@")));
    let outcome = evaluate(&headers, ETAG, modified);

    let asks = |names: &[http::HeaderName]| names.iter().any(|n| headers.contains_key(n));
    if !asks(&[IF_MATCH, IF_UNMODIFIED_SINCE]) {
        assert_ne!(outcome, Outcome::PreconditionFailed);
    }
    if !asks(&[IF_NONE_MATCH, IF_MODIFIED_SINCE]) {
        assert_ne!(outcome, Outcome::NotModified);
    }
    if let Some(modified) = modified {
        let now = SystemTime::now();
        let sent = last_modified(modified, now);
        assert!(sent <= now && sent <= modified);
        assert_eq!(sent.duration_since(UNIX_EPOCH).unwrap().subsec_nanos(), 0);
    }
});
