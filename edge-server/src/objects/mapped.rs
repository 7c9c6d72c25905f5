//! A large object mapped into memory, sent straight from the page cache.
//!
//! A range whose pages `mincore` reports resident is sent as a slice of
//! the mapping: one copy (into the socket) instead of two (into a buffer,
//! then into the socket), what nginx's `sendfile` saves it on a 64 KiB
//! range. memmap2 makes the mapping; the residency check stays here, a
//! `mincore` call on its pages.

#![allow(
    unsafe_code,
    reason = "mapping a file (memmap2 needs the file not to shrink under it: objects are immutable and replaced only by rename) and asking mincore which of its pages are resident"
)]

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use memmap2::MmapOptions;

/// An object's mapping, and which parts of it were lately in the page cache.
pub struct Mapped {
    pub(super) bytes: Bytes,
    pub(super) seen: Residency,
}

impl Mapped {
    /// Maps the whole of `file`, `len` bytes, read-only.
    pub fn new(file: &File, len: u64) -> io::Result<Self> {
        let len = usize::try_from(len)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "cannot map this size"))?;
        // SAFETY: stored objects are only ever replaced by rename, never
        // truncated or written in place, so the mapped bytes do not change
        // under the slices handed out (Bytes keeps the mapping alive while
        // any is).
        let map = unsafe { MmapOptions::new().len(len).map(file)? };
        Ok(Self {
            seen: Residency::new(map.len()),
            bytes: Bytes::from_owner(map),
        })
    }

    /// `start..end` of the mapping, when every page of it is in the page
    /// cache (so touching it cannot wait for the disk).
    pub fn resident(&self, start: usize, end: usize) -> Option<Bytes> {
        if end > self.bytes.len() || start >= end {
            return None;
        }
        self.seen
            .resident(&self.bytes, start..end)
            .then(|| self.bytes.slice(start..end))
    }
}

/// Bytes of a mapping whose residency is remembered as one.
const SPAN: usize = 256 * 1024;
/// How long a span seen wholly in the page cache is taken to still be.
const SEEN_FRESH: Duration = Duration::from_secs(1);

/// When each span of a mapping was last seen wholly in the page cache.
///
/// `mincore` on every range was ~5% of the edge's CPU on hot 64 KiB
/// ranges, as much as reading the request. A span seen whole is taken as
/// still there for [`SEEN_FRESH`]; a page evicted within that second costs
/// one read from the disk on the runtime thread (what `sendfile` risks on
/// every request), never wrong bytes.
pub(super) struct Residency {
    born: Instant,
    /// Per span: microseconds after `born` it was seen whole, plus one (0: never).
    pub(super) seen: Box<[AtomicU64]>,
}

impl Residency {
    fn new(len: usize) -> Self {
        Self {
            born: Instant::now(),
            seen: (0..len.div_ceil(SPAN)).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Whether every page under `mapped[range]` is in the page cache, as
    /// lately seen or as `mincore` says now.
    fn resident(&self, mapped: &[u8], range: std::ops::Range<usize>) -> bool {
        let now = u64::try_from(self.born.elapsed().as_micros())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let fresh = u64::try_from(SEEN_FRESH.as_micros()).unwrap_or(u64::MAX);
        let spans = range.start / SPAN..=(range.end - 1) / SPAN;
        let seen = &self.seen[spans.clone()];
        if seen.iter().all(|at| {
            let at = at.load(Ordering::Relaxed);
            at != 0 && now - at.min(now) < fresh
        }) {
            return true;
        }
        // Look at the spans whole: in, they need no look for a while.
        let whole = spans.start() * SPAN..((spans.end() + 1) * SPAN).min(mapped.len());
        if all_resident(&mapped[whole]) {
            seen.iter().for_each(|at| at.store(now, Ordering::Relaxed));
            return true;
        }
        all_resident(&mapped[range])
    }
}

/// Whether every page under `bytes` (inside a file mapping) is in the page cache.
fn all_resident(bytes: &[u8]) -> bool {
    // SAFETY: sysconf has no preconditions.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    let addr = bytes.as_ptr() as usize;
    let start = addr - addr % page;
    let len = addr + bytes.len() - start;
    let mut vec = [0u8; 128];
    let pages = len.div_ceil(page);
    let mut heap;
    let flags: &mut [u8] = if pages <= vec.len() {
        &mut vec[..pages]
    } else {
        heap = vec![0u8; pages];
        &mut heap
    };
    // SAFETY: [start, start + len) is inside one mapping (`bytes` is, and
    // mappings are page-aligned); `flags` has a byte per page of it.
    let rc = unsafe { libc::mincore(start as *mut libc::c_void, len, flags.as_mut_ptr()) };
    rc == 0 && flags.iter().all(|f| f & 1 == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::io::AsRawFd;

    /// A span seen wholly cached skips `mincore` for a while; only the spans
    /// a range touches are looked at, and a partly cached span is not taken whole.
    #[test]
    fn residency_is_remembered_per_span() {
        let bytes: Vec<u8> = (0..(SPAN * 3 + 100)).map(|i| (i % 233) as u8).collect();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&bytes).unwrap();
        let mapping = Mapped::new(&file, bytes.len() as u64).unwrap();
        let mapped = &mapping.bytes[..];
        let residency = Residency::new(mapped.len());
        assert_eq!(residency.seen.len(), 4);
        let seen = |i: usize| residency.seen[i].load(Ordering::Relaxed) != 0;

        // Just written, so cached: the one span under the range is remembered.
        assert!(residency.resident(mapped, SPAN + 10..SPAN + 70_000));
        assert_eq!(
            (seen(0), seen(1), seen(2), seen(3)),
            (false, true, false, false)
        );
        // Across a boundary: both spans; the short last span counts whole.
        assert!(residency.resident(mapped, SPAN * 3 - 5..SPAN * 3 + 100));
        assert_eq!(
            (seen(0), seen(1), seen(2), seen(3)),
            (false, true, true, true)
        );

        // A span seen long ago is looked at again: evicted (where the
        // filesystem honours the advice), it is no longer resident.
        file.sync_all().unwrap();
        // SAFETY: plain advice on an open descriptor.
        unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        let evicted = !all_resident(&mapped[SPAN..SPAN * 2]);
        // Fresh, it is still taken as seen.
        assert!(residency.resident(mapped, SPAN + 10..SPAN + 70_000));
        residency.seen[1].store(1, Ordering::Relaxed);
        let stale = std::time::Duration::from_millis(10);
        std::thread::sleep(stale.max(SEEN_FRESH.saturating_sub(residency.born.elapsed())));
        assert_eq!(
            residency.resident(mapped, SPAN + 10..SPAN + 70_000),
            !evicted
        );
        assert!(seen(1), "the mark stays until it is renewed");
    }
}
