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
//! A larger object is also mapped into memory ([`super::mapped`]): a range
//! whose pages are resident is sent straight from the page cache as a
//! slice of the mapping. Pages not resident are read as above, so the runtime
//! thread never waits for the disk (bar eviction between the check and the
//! send). Stored objects are only ever replaced by rename, never truncated
//! in place: a mapping then keeps the bytes it was made from.

#![allow(
    unsafe_code,
    reason = "preadv2 with RWF_NOWAIT (read only if cached) and posix_fadvise, which std does not offer"
)]

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use http::HeaderValue;
use lowband_catalog::ObjectKey;

use super::mapped::Mapped;
use crate::bounded::Bounded;
use crate::http::body::CHUNK;
use crate::http::conditional;
use crate::http::range::ByteRange;

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

/// Recently opened objects of one `file://` store, shared by all requests.
pub struct OpenFiles {
    dir: PathBuf,
    open: Bounded<ObjectKey, LocalObject, foldhash::fast::RandomState>,
}

impl OpenFiles {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            open: Bounded::new(OPEN_TTL, OPEN_MAX),
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
            .get_or_init(|| Mapped::new(&self.file, self.len).ok())
            .as_ref()?;
        let start = usize::try_from(range.start).ok()?;
        let end = usize::try_from(range.end).ok()?.checked_add(1)?;
        mapped.resident(start, end)
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
    use std::sync::atomic::Ordering;

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
