//! Objects of a `file://` store read straight from disk.
//!
//! object_store's `LocalFileSystem` sends every `head`, open and chunk read
//! to tokio's blocking pool: two or three thread hand-offs for a 5 KB page,
//! which cost the edge half of nginx's request rate. Here the file is opened
//! and `fstat`ed on the runtime thread, as nginx does, and each read is
//! first tried with `preadv2(RWF_NOWAIT)`: when the bytes are in the page
//! cache (the usual case for a hot edge) that is one syscall and no hand-off.
//! Only the part the kernel says would wait for the disk goes to the blocking
//! pool, so a cold read never stalls the other connections.
//!
//! Objects are immutable and named by their hash, so an open descriptor can
//! be kept and reused ([`OpenFiles`], like nginx's `open_file_cache`): a hot
//! object then costs one `preadv2` instead of open, fstat, read and close.
//! Entries expire after a few seconds, so an object deleted from the store
//! (by garbage collection) stops being served soon after. A small object
//! (a page, a playlist, a thumbnail) also keeps its bytes once read whole,
//! so a hot one costs no syscall at all; that memory is bounded by
//! [`OPEN_MAX`] × [`SMALL`].
//!
//! A larger object is also mapped into memory ([`Mapping`]): a range whose
//! pages `mincore` reports resident is sent straight from the page cache as
//! a slice of the mapping, one copy (into the socket) instead of two (into
//! a buffer, then into the socket) — what nginx's `sendfile` saves it on a
//! 64 KiB range. Pages not resident are read as above, so the runtime
//! thread never waits for the disk (bar eviction between the check and the
//! send). Stored objects are only ever replaced by rename, never truncated
//! in place: a mapping then keeps the bytes it was made from.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use http::HeaderValue;
use lowband_catalog::ObjectKey;

use crate::conditional;
use crate::range::ByteRange;

/// A map keyed by object keys. Keys are SHA-256 digests, so a fast hash
/// (foldhash, seeded per process) does: SipHash was ~1.5% of a hot
/// edge's instructions.
pub type KeyMap<V> = HashMap<ObjectKey, V, foldhash::fast::RandomState>;

/// Largest piece read at once: a body is streamed in pieces of this size,
/// so a connection holds at most one of them.
pub const CHUNK: u64 = 256 * 1024;

/// Objects up to this size keep their bytes in memory while their
/// descriptor is cached.
pub const SMALL: u64 = 32 * 1024;

/// An open object file.
#[derive(Clone)]
pub struct LocalObject {
    file: Arc<File>,
    pub len: u64,
    /// When the file last changed, to the second, and as `Last-Modified`
    /// (formatted once, when opened).
    pub last_modified: Option<(SystemTime, HeaderValue)>,
    /// The whole object, once read, when it is at most [`SMALL`] bytes.
    bytes: Arc<OnceLock<Bytes>>,
    /// The whole object mapped, for one larger than [`SMALL`] (`None`:
    /// mapping failed, read it instead).
    mapped: Arc<OnceLock<Option<Mapped>>>,
}

/// Descriptors kept open this long at most.
const OPEN_TTL: Duration = Duration::from_secs(10);
/// At most this many descriptors kept open (well under the usual 1024 limit,
/// which connections share).
const OPEN_MAX: usize = 256;

/// Values for object keys, each good for a while: an entry older than
/// `ttl` is not returned, and a full map drops its stale entries (all of
/// them when none is stale), so memory stays bounded by `max`.
pub struct RecentMap<V> {
    entries: Mutex<KeyMap<(Instant, V)>>,
    ttl: Duration,
    max: usize,
}

impl<V: Clone> RecentMap<V> {
    pub fn new(ttl: Duration, max: usize) -> Self {
        Self {
            entries: Mutex::default(),
            ttl,
            max,
        }
    }

    /// The value kept for `key`, if it is recent.
    pub fn get(&self, key: &ObjectKey) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        let (at, value) = entries.get(key)?;
        (at.elapsed() < self.ttl).then(|| value.clone())
    }

    pub fn insert(&self, key: ObjectKey, value: V) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= self.max {
            entries.retain(|_, (at, _)| at.elapsed() < self.ttl);
            if entries.len() >= self.max {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), value));
    }

    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.len())
    }
}

/// Recently opened objects of one `file://` store, shared by all requests.
pub struct OpenFiles {
    dir: PathBuf,
    open: RecentMap<LocalObject>,
}

impl OpenFiles {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            open: RecentMap::new(OPEN_TTL, OPEN_MAX),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The object at `key` if its descriptor is held and fresh: no syscall.
    pub fn cached(&self, key: &ObjectKey) -> Option<LocalObject> {
        self.open.get(key)
    }

    /// The object at `key`, from the cache while its entry is fresh, else
    /// opened (and kept); `Ok(None)` when the store has no such object.
    pub fn get(&self, key: &ObjectKey) -> io::Result<Option<LocalObject>> {
        if let Some(object) = self.cached(key) {
            return Ok(Some(object));
        }
        let Some(object) = open(&self.dir, key)? else {
            return Ok(None);
        };
        self.open.insert(key.clone(), object.clone());
        Ok(Some(object))
    }
}

/// Opens the object at `key` under `dir`; `Ok(None)` when there is none.
pub fn open(dir: &Path, key: &ObjectKey) -> io::Result<Option<LocalObject>> {
    // Keys are validated hex and a short extension (`objects/ab/ab….ext`):
    // they never hold `..`, so the path stays under `dir`.
    let file = match File::open(dir.join(key.to_string())) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(None);
    }
    let last_modified = meta.modified().ok().and_then(|t| {
        let t = conditional::whole_seconds(t);
        let value = HeaderValue::from_str(&httpdate::fmt_http_date(t)).ok()?;
        Some((t, value))
    });
    Ok(Some(LocalObject {
        file: Arc::new(file),
        len: meta.len(),
        last_modified,
        bytes: Arc::default(),
        mapped: Arc::default(),
    }))
}

impl LocalObject {
    /// Reads `range` whole. The range must lie inside the object.
    pub async fn read(&self, range: ByteRange) -> io::Result<Bytes> {
        match self.in_memory(range) {
            Some(held) => held,
            None => self.read_disk(range).await,
        }
    }

    /// Reads `range` from the file (what [`LocalObject::in_memory`] could
    /// not give), keeping a small object's bytes once read whole.
    pub async fn read_disk(&self, range: ByteRange) -> io::Result<Bytes> {
        let bytes = self.read_file(range).await?;
        if range.start == 0 && range.len() == self.len && self.len <= SMALL {
            let _ = self.bytes.set(bytes.clone());
        }
        Ok(bytes)
    }

    /// `range` when it can be had without I/O: from the bytes kept of a
    /// small object (an error if the file was shorter than the range), or
    /// from the mapping's pages in the page cache.
    pub fn in_memory(&self, range: ByteRange) -> Option<io::Result<Bytes>> {
        if let Some(all) = self.bytes.get() {
            let end = usize::try_from(range.end + 1).unwrap_or(usize::MAX);
            if end <= all.len() {
                return Some(Ok(all.slice(range.start as usize..end)));
            }
            return Some(Err(short_file()));
        }
        self.resident(range).map(Ok)
    }

    /// `range` as a slice of the object's mapping, when every page of it is
    /// in the page cache (so touching it cannot wait for the disk).
    fn resident(&self, range: ByteRange) -> Option<Bytes> {
        if self.len <= SMALL {
            return None;
        }
        let mapped = self
            .mapped
            .get_or_init(|| {
                let mapping = Mapping::new(&self.file, self.len).ok()?;
                Some(Mapped {
                    seen: Residency::new(mapping.len),
                    bytes: Bytes::from_owner(mapping),
                })
            })
            .as_ref()?;
        let start = usize::try_from(range.start).ok()?;
        let end = usize::try_from(range.end).ok()?.checked_add(1)?;
        if end > mapped.bytes.len() || start >= end {
            return None;
        }
        mapped
            .seen
            .resident(&mapped.bytes, start..end)
            .then(|| mapped.bytes.slice(start..end))
    }

    async fn read_file(&self, range: ByteRange) -> io::Result<Bytes> {
        let want = usize::try_from(range.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "range too large"))?;
        let mut buf = Vec::with_capacity(want);
        read_cached(&self.file, &mut buf, range.start, want)?;
        if buf.len() < want {
            let file = Arc::clone(&self.file);
            buf = tokio::task::spawn_blocking(move || {
                let done = buf.len();
                buf.resize(want, 0);
                file.read_exact_at(&mut buf[done..], range.start + done as u64)
                    .map(|()| buf)
            })
            .await
            .map_err(io::Error::other)??;
        }
        Ok(Bytes::from(buf))
    }

    /// Streams `range` in pieces of at most [`CHUNK`] bytes.
    pub fn stream(self, range: ByteRange) -> BoxStream<'static, io::Result<Bytes>> {
        let end = range.end + 1;
        stream::unfold(range.start, move |at| {
            let object = self.clone();
            async move {
                if at >= end {
                    return None;
                }
                let piece = ByteRange {
                    start: at,
                    end: (at + CHUNK).min(end) - 1,
                };
                Some((object.read(piece).await, piece.end + 1))
            }
        })
        .boxed()
    }
}

/// Appends to `buf` what of `want` bytes at `offset` the page cache already
/// holds, without blocking: stops at the first byte that would need the
/// disk, or when the kernel cannot say (then the caller reads the rest on
/// the blocking pool). Reaching the end of the file early is an error.
fn read_cached(file: &File, buf: &mut Vec<u8>, offset: u64, want: usize) -> io::Result<()> {
    while buf.len() < want {
        let missing = want - buf.len();
        let spare = &mut buf.spare_capacity_mut()[..missing];
        let iov = libc::iovec {
            iov_base: spare.as_mut_ptr().cast(),
            iov_len: spare.len(),
        };
        let at = libc::off_t::try_from(offset + buf.len() as u64)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))?;
        // SAFETY: `iov` points into `buf`'s spare capacity, which is valid for
        // writes of `iov_len` bytes and outlives the call; the kernel writes at
        // most that many, and only the bytes it reports are marked initialised.
        let n = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, at, libc::RWF_NOWAIT) };
        if n > 0 {
            // SAFETY: the kernel initialised the first `n` spare bytes.
            unsafe { buf.set_len(buf.len() + n as usize) };
            continue;
        }
        if n == 0 {
            return Err(short_file());
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            // Would block on the disk, or RWF_NOWAIT is not supported here.
            Some(libc::EAGAIN | libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL) => return Ok(()),
            _ => return Err(err),
        }
    }
    Ok(())
}

/// An object's mapping, and which parts of it were lately in the page cache.
struct Mapped {
    bytes: Bytes,
    seen: Residency,
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
struct Residency {
    born: Instant,
    /// Per span: microseconds after `born` it was seen whole, plus one (0: never).
    seen: Box<[AtomicU64]>,
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

/// A read-only shared mapping of a whole file.
struct Mapping {
    ptr: std::ptr::NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is read-only and owned: any thread may read it, and
// it is unmapped once, by its owner's drop.
unsafe impl Send for Mapping {}
// SAFETY: as above; shared references only ever read.
unsafe impl Sync for Mapping {}

impl Mapping {
    fn new(file: &File, len: u64) -> io::Result<Self> {
        let len = usize::try_from(len)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "cannot map this size"))?;
        // SAFETY: a fresh read-only mapping of an open descriptor, at an
        // address of the kernel's choosing; the result is checked.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr =
            std::ptr::NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("null mapping"))?;
        Ok(Self { ptr, len })
    }
}

impl AsRef<[u8]> for Mapping {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `len` readable bytes are mapped at `ptr` until drop.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the region `new` mapped, once; no slice of
        // it outlives this (Bytes keeps the owner alive while sliced).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
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

fn short_file() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the file is shorter than its size said",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;

    fn stored(dir: &Path, bytes: &[u8]) -> ObjectKey {
        let key = ObjectKey::for_bytes(bytes, "bin");
        let path = dir.join(key.to_string());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        key
    }

    #[tokio::test]
    async fn reads_ranges_and_streams_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let bytes: Vec<u8> = (0..(CHUNK as usize * 2 + 1000))
            .map(|i| (i % 251) as u8)
            .collect();
        let key = stored(dir.path(), &bytes);
        let object = open(dir.path(), &key).unwrap().unwrap();
        assert_eq!(object.len, bytes.len() as u64);
        let piece = object.read(ByteRange { start: 10, end: 99 }).await.unwrap();
        assert_eq!(&piece[..], &bytes[10..100]);

        let whole = ByteRange {
            start: 5,
            end: bytes.len() as u64 - 1,
        };
        let chunks: Vec<Bytes> = object.stream(whole).try_collect().await.unwrap();
        assert_eq!(chunks.len(), 3);
        assert!(chunks.iter().all(|c| c.len() as u64 <= CHUNK));
        assert_eq!(chunks.concat(), &bytes[5..]);
    }

    /// Evicted from the page cache, the bytes come through the blocking pool
    /// (where the filesystem honours the advice; tmpfs keeps them cached).
    #[tokio::test]
    async fn bytes_not_in_the_page_cache_are_read_on_the_blocking_pool() {
        let dir = tempfile::tempdir().unwrap();
        let bytes: Vec<u8> = (0..300_000).map(|i| (i % 241) as u8).collect();
        let key = stored(dir.path(), &bytes);
        let object = open(dir.path(), &key).unwrap().unwrap();
        object.file.sync_all().unwrap();
        // SAFETY: plain advice on an open descriptor.
        let rc = unsafe {
            libc::posix_fadvise(object.file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED)
        };
        assert_eq!(rc, 0);
        let mut cached = Vec::with_capacity(bytes.len());
        read_cached(&object.file, &mut cached, 1000, 200_000).unwrap();
        assert_eq!(&cached[..], &bytes[1000..1000 + cached.len()]);
        let piece = object
            .read(ByteRange {
                start: 1000,
                end: 200_999,
            })
            .await
            .unwrap();
        assert_eq!(&piece[..], &bytes[1000..201_000]);
    }

    #[test]
    fn open_files_reuse_a_descriptor_and_forget_missing_objects() {
        let dir = tempfile::tempdir().unwrap();
        let key = stored(dir.path(), b"immutable bytes");
        let files = OpenFiles::new(dir.path());
        let first = files.get(&key).unwrap().unwrap();
        let second = files.get(&key).unwrap().unwrap();
        assert!(Arc::ptr_eq(&first.file, &second.file));
        assert_eq!(second.len, 15);
        let missing = ObjectKey::for_bytes(b"never stored", "bin");
        assert!(files.get(&missing).unwrap().is_none());
        assert_eq!(files.open.len(), 1);
    }

    #[tokio::test]
    async fn a_large_object_in_the_page_cache_is_sent_from_its_mapping() {
        let dir = tempfile::tempdir().unwrap();
        let bytes: Vec<u8> = (0..300_000).map(|i| (i % 239) as u8).collect();
        let key = stored(dir.path(), &bytes);
        let object = open(dir.path(), &key).unwrap().unwrap();
        // Just written: the pages are cached, so the range is the mapping's bytes.
        let range = ByteRange {
            start: 5000,
            end: 70_535,
        };
        let piece = object.read(range).await.unwrap();
        assert_eq!(&piece[..], &bytes[5000..70_536]);
        let mapped = &object.mapped.get().unwrap().as_ref().unwrap().bytes;
        assert_eq!(piece.as_ptr(), mapped[5000..].as_ptr());
        // Ranges past the end are not served from the mapping.
        assert!(object
            .resident(ByteRange {
                start: 0,
                end: 300_000
            })
            .is_none());
        // Evicted (where the filesystem honours the advice), it is read
        // instead, once what was seen of it is no longer fresh.
        object.file.sync_all().unwrap();
        // SAFETY: plain advice on an open descriptor.
        unsafe { libc::posix_fadvise(object.file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        let seen = &object.mapped.get().unwrap().as_ref().unwrap().seen;
        seen.seen
            .iter()
            .for_each(|at| at.store(0, Ordering::Relaxed));
        let again = object.read(range).await.unwrap();
        assert_eq!(&again[..], &bytes[5000..70_536]);
    }

    /// A span seen wholly cached skips `mincore` for a while; only the spans
    /// a range touches are looked at, and a partly cached span is not taken whole.
    #[test]
    fn residency_is_remembered_per_span() {
        let dir = tempfile::tempdir().unwrap();
        let bytes: Vec<u8> = (0..(SPAN * 3 + 100)).map(|i| (i % 233) as u8).collect();
        let key = stored(dir.path(), &bytes);
        let object = open(dir.path(), &key).unwrap().unwrap();
        let mapping = Mapping::new(&object.file, object.len).unwrap();
        let mapped = mapping.as_ref();
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
        object.file.sync_all().unwrap();
        // SAFETY: plain advice on an open descriptor.
        unsafe { libc::posix_fadvise(object.file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
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

    #[tokio::test]
    async fn a_small_object_read_whole_is_served_from_memory_after() {
        let dir = tempfile::tempdir().unwrap();
        let bytes: Vec<u8> = (0..5000).map(|i| (i % 253) as u8).collect();
        let key = stored(dir.path(), &bytes);
        let files = OpenFiles::new(dir.path());
        let object = files.get(&key).unwrap().unwrap();
        // A part read does not keep the object; the whole does.
        let part = object.read(ByteRange { start: 0, end: 9 }).await.unwrap();
        assert_eq!(&part[..], &bytes[..10]);
        assert!(object.bytes.get().is_none());
        let whole = ByteRange {
            start: 0,
            end: 4999,
        };
        assert_eq!(&object.read(whole).await.unwrap()[..], &bytes[..]);
        // The file is gone: what is read now (by any holder) comes from memory.
        std::fs::remove_file(dir.path().join(key.to_string())).unwrap();
        let again = files.get(&key).unwrap().unwrap();
        let piece = again
            .read(ByteRange {
                start: 100,
                end: 199,
            })
            .await
            .unwrap();
        assert_eq!(&piece[..], &bytes[100..200]);
        let past = again
            .read(ByteRange {
                start: 0,
                end: 5000,
            })
            .await;
        assert_eq!(past.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);

        // A large object is never kept in memory of its own.
        let big: Vec<u8> = vec![7; SMALL as usize + 1];
        let key = stored(dir.path(), &big);
        let object = files.get(&key).unwrap().unwrap();
        let whole = ByteRange {
            start: 0,
            end: SMALL,
        };
        assert_eq!(object.read(whole).await.unwrap().len(), big.len());
        assert!(object.bytes.get().is_none());
    }

    #[tokio::test]
    async fn a_missing_object_is_none_and_a_short_file_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let key = ObjectKey::for_bytes(b"x", "bin");
        assert!(open(dir.path(), &key).unwrap().is_none());

        let key = stored(dir.path(), b"short");
        let object = open(dir.path(), &key).unwrap().unwrap();
        let err = object
            .read(ByteRange { start: 0, end: 99 })
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
