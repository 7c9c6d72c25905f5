//! One upstream fetch of an object, shared by every request that wants it.
//!
//! A fill writes the object to its partial file (resuming what an earlier,
//! interrupted fill left), hashing as it goes, and publishes how far it got
//! on a `watch` channel. Requests read the partial file up to that point
//! and wait for more, so a range near the start is answered as soon as its
//! bytes arrive. The last byte of the object is released only once the
//! whole object hashed to its key: a response that reaches the end of an
//! object has been verified, and one that fails verification is cut short
//! instead. The verified file is fsynced and renamed into `objects/`.
//!
//! A partial file is locked (`flock`) while filled, so a `sync` and a
//! serving node sharing a directory never write one file twice.

#![allow(
    unsafe_code,
    reason = "flock on a fill's partial file, so two cache nodes sharing a directory do not write it at once"
)]

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use lowband_catalog::keys::ContentHasher;
use lowband_catalog::{ContentHash, ObjectKey};
use tokio::sync::watch;

use super::upstream::{Upstream, UpstreamError};
use super::{CacheStats, RateLimit};
use crate::http::body::CHUNK;
use crate::http::range::ByteRange;

/// Times an interrupted transfer is resumed (with `Range`) before the fill fails.
const RESUMES: u32 = 3;
/// Bytes written to the partial file between progress updates.
const PUBLISH_EVERY: u64 = 64 * 1024;

/// How far a fill got.
#[derive(Debug, Clone)]
pub enum Progress {
    /// Waiting for the upstream's answer.
    Connecting,
    /// `written` of `len` bytes are in the partial file.
    Writing {
        len: u64,
        written: u64,
    },
    /// Verified and in `objects/`.
    Done {
        len: u64,
    },
    /// The upstream has no such object.
    NotFound,
    /// Too large for the budget: every request passes through.
    Pass {
        len: u64,
    },
    Failed(Arc<FillError>),
}

#[derive(Debug, thiserror::Error)]
pub enum FillError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("{url}: sent {found} bytes whose hash is not the key's; discarded")]
    Corrupt { url: String, found: u64 },
    #[error("{url}: the object is {found} bytes now, {expected} before")]
    LengthChanged {
        url: String,
        expected: u64,
        found: u64,
    },
    #[error("cache directory: {0}")]
    Disk(#[from] io::Error),
}

impl FillError {
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Upstream(e) if e.is_timeout())
    }
}

/// A fill in progress: the partial file to read and its progress.
pub struct Fill {
    pub key: ObjectKey,
    /// The partial file, opened before it can be renamed: it stays readable after.
    file: Arc<File>,
    progress: watch::Receiver<Progress>,
}

/// Everything a fill needs from its cache.
pub struct Job {
    pub key: ObjectKey,
    pub upstream: Arc<Upstream>,
    pub dir: Arc<super::disk::CacheDir>,
    pub stats: Arc<CacheStats>,
    pub rate: Option<Arc<RateLimit>>,
    pub timeout: Duration,
}

/// Why a fill could not start.
pub enum Busy {
    /// Another process is filling this object (its partial file is locked).
    Locked,
    Disk(io::Error),
}

impl Fill {
    /// Opens and locks the partial file and starts fetching in the background;
    /// `on_end` runs when it ends, however it ends.
    pub fn start(job: Job, on_end: impl FnOnce() + Send + 'static) -> Result<Arc<Self>, Busy> {
        let path = job.dir.partial_path(&job.key);
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Busy::Disk(super::disk::with_path(&e, &path)))?;
        // SAFETY: flock on a descriptor we own; no memory is involved.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = io::Error::last_os_error();
            return Err(if e.kind() == io::ErrorKind::WouldBlock {
                Busy::Locked
            } else {
                Busy::Disk(e)
            });
        }
        let file = Arc::new(file);
        let (tx, rx) = watch::channel(Progress::Connecting);
        let fill = Arc::new(Self {
            key: job.key.clone(),
            file: Arc::clone(&file),
            progress: rx,
        });
        tokio::spawn(async move {
            let outcome = run(&job, &file, &tx).await;
            match outcome {
                Ok(progress) => {
                    let _ = tx.send(progress);
                }
                Err(e) => {
                    job.stats.upstream_error(&e);
                    tracing::warn!(key = %job.key, error = %e, "cache fill failed");
                    if matches!(
                        e,
                        FillError::Corrupt { .. } | FillError::LengthChanged { .. }
                    ) {
                        let _ = file.set_len(0);
                    }
                    let _ = tx.send(Progress::Failed(Arc::new(e)));
                }
            }
            // Closing the descriptor releases the lock (readers hold their own clone of the Arc).
            drop(file);
            on_end();
        });
        Ok(fill)
    }

    /// Waits until the fill knows the object's size (or why it cannot).
    pub async fn ready(&self) -> Progress {
        let mut rx = self.progress.clone();
        let state = rx
            .wait_for(|p| !matches!(p, Progress::Connecting))
            .await
            .map(|p| p.clone());
        state.unwrap_or_else(|_| {
            Progress::Failed(Arc::new(FillError::Disk(io::Error::other("fill ended"))))
        })
    }

    /// Bytes available to readers now.
    pub fn written(&self) -> u64 {
        match &*self.progress.borrow() {
            Progress::Writing { written, .. } => *written,
            Progress::Done { len } => *len,
            _ => 0,
        }
    }

    /// Waits until the object is verified and stored.
    pub async fn done(&self) -> Result<(), Arc<FillError>> {
        let mut rx = self.progress.clone();
        let end = rx
            .wait_for(|p| !matches!(p, Progress::Connecting | Progress::Writing { .. }))
            .await
            .map(|p| p.clone());
        match end {
            Ok(Progress::Done { .. }) => Ok(()),
            Ok(Progress::Failed(e)) => Err(e),
            Ok(other) => Err(Arc::new(FillError::Disk(io::Error::other(format!(
                "fill ended {other:?}"
            ))))),
            Err(_) => Err(Arc::new(FillError::Disk(io::Error::other("fill ended")))),
        }
    }

    /// `range` of the object as it arrives; its last byte only once verified.
    pub fn stream(self: &Arc<Self>, range: ByteRange) -> BoxStream<'static, io::Result<Bytes>> {
        let fill = Arc::clone(self);
        stream::unfold(range.start, move |pos| {
            let fill = Arc::clone(&fill);
            async move {
                if pos > range.end {
                    return None;
                }
                let mut rx = fill.progress.clone();
                // Readable up to here: what is written, bar the object's last byte until verified.
                let limit = rx
                    .wait_for(|p| match p {
                        Progress::Writing { len, written } => {
                            let readable = (*written).min(len.saturating_sub(1));
                            readable > pos
                        }
                        _ => true,
                    })
                    .await
                    .map(|p| p.clone());
                let limit = match limit {
                    Ok(Progress::Writing { len, written }) => written.min(len.saturating_sub(1)),
                    Ok(Progress::Done { len }) => len,
                    Ok(Progress::Failed(e)) => {
                        return Some((Err(io::Error::other(e.to_string())), range.end + 1))
                    }
                    _ => {
                        return Some((Err(io::Error::other("the fill ended early")), range.end + 1))
                    }
                };
                let end = limit.min(range.end + 1).min(pos + CHUNK);
                let file = Arc::clone(&fill.file);
                let read = tokio::task::spawn_blocking(move || {
                    let mut buf = vec![0u8; (end - pos) as usize];
                    file.read_exact_at(&mut buf, pos).map(|_| Bytes::from(buf))
                })
                .await
                .unwrap_or_else(|e| Err(io::Error::other(e)));
                match read {
                    Ok(bytes) => Some((Ok(bytes), end)),
                    Err(e) => Some((Err(e), range.end + 1)),
                }
            }
        })
        .boxed()
    }
}

/// What the partial file holds: its bytes so far and their hash.
struct Partial {
    file: Arc<File>,
    hasher: ContentHasher,
    written: u64,
}

impl Partial {
    /// Hashes what an earlier fill left in `file`, to resume after it.
    async fn resume(file: &Arc<File>) -> io::Result<Self> {
        let reading = Arc::clone(file);
        let (hasher, written) = tokio::task::spawn_blocking(move || -> io::Result<_> {
            let mut hasher = ContentHash::hasher();
            let mut reader = &*reading;
            reader.seek(SeekFrom::Start(0))?;
            let written = hasher.read_from(reader)?;
            Ok((hasher, written))
        })
        .await
        .map_err(io::Error::other)??;
        Ok(Self {
            file: Arc::clone(file),
            hasher,
            written,
        })
    }

    /// Empties the file, to fetch the object from its start.
    fn restart(&mut self) -> io::Result<()> {
        self.file.set_len(0)?;
        self.hasher = ContentHash::hasher();
        self.written = 0;
        Ok(())
    }

    /// Hashes `chunk` and writes it after what the file holds (off the runtime's threads).
    async fn append(&mut self, chunk: Bytes) -> io::Result<()> {
        self.hasher.update(&chunk);
        let (file, at, n) = (Arc::clone(&self.file), self.written, chunk.len() as u64);
        tokio::task::spawn_blocking(move || file.write_all_at(&chunk, at))
            .await
            .map_err(io::Error::other)??;
        self.written += n;
        Ok(())
    }
}

/// Fetches the object into the partial file, verifies and installs it.
/// An interrupted transfer is resumed from the bytes held, [`RESUMES`] times.
async fn run(
    job: &Job,
    file: &Arc<File>,
    tx: &watch::Sender<Progress>,
) -> Result<Progress, FillError> {
    let mut partial = Partial::resume(file).await?;
    let mut len: Option<u64> = None;
    let mut attempt = 0;
    while len != Some(partial.written) {
        job.stats.upstream_request();
        // Resuming, ask again for the last byte held: the range is then valid
        // even when the partial file is whole (a crash before its rename).
        let from = partial.written.saturating_sub(1);
        let body = match job.upstream.object(&job.key, from, None, job.timeout).await {
            Ok(Some(body)) => body,
            Ok(None) => {
                let _ = file.set_len(0);
                return Ok(Progress::NotFound);
            }
            // Resuming what an earlier fill left failed (a range past the end
            // of the object, an upstream that refuses ranges): start over once.
            Err(e) if partial.written > 0 && len.is_none() => {
                tracing::debug!(key = %job.key, error = %e, "cannot resume a partial object: fetching it whole");
                partial.restart()?;
                continue;
            }
            Err(e) if attempt < RESUMES && len.is_some() => {
                job.stats.upstream_error_kind(e.kind());
                attempt += 1;
                back_off(attempt).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let total = match len {
            None if body.len > job.dir.budget() => {
                let _ = file.set_len(0);
                return Ok(Progress::Pass { len: body.len });
            }
            None if partial.written > body.len => {
                partial.restart()?;
                continue;
            }
            None => body.len,
            Some(expected) if expected != body.len => {
                return Err(FillError::LengthChanged {
                    url: upstream_url(job),
                    expected,
                    found: body.len,
                })
            }
            Some(expected) => expected,
        };
        if len.is_none() {
            len = Some(total);
            publish(tx, total, partial.written);
        }
        let skip = partial.written - from;
        let cut = copy(job, &mut partial, tx, body.chunks, skip, total).await?;
        publish(tx, total, partial.written);
        if partial.written == total {
            break;
        }
        let e = cut.unwrap_or_else(|| UpstreamError::Failed {
            url: upstream_url(job),
            reason: format!("the body ended after {} of {total} bytes", partial.written),
        });
        if attempt >= RESUMES {
            return Err(e.into());
        }
        job.stats.upstream_error_kind(e.kind());
        attempt += 1;
        back_off(attempt).await;
    }
    install(job, partial).await
}

fn upstream_url(job: &Job) -> String {
    format!("{}/{}", job.upstream.url(), job.key)
}

/// Waits longer after each failed attempt: 0.5 s, 1 s, 2 s.
async fn back_off(attempt: u32) {
    tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
}

fn publish(tx: &watch::Sender<Progress>, len: u64, written: u64) {
    let _ = tx.send(Progress::Writing { len, written });
}

/// Appends `chunks` (less their first `skip` bytes, which the file holds
/// already) to the partial file of a `total`-byte object, publishing
/// progress as it goes. Returns the upstream's failure that cut the body
/// short, if one did.
async fn copy(
    job: &Job,
    partial: &mut Partial,
    tx: &watch::Sender<Progress>,
    mut chunks: BoxStream<'static, Result<Bytes, UpstreamError>>,
    mut skip: u64,
    total: u64,
) -> Result<Option<UpstreamError>, FillError> {
    let mut unpublished = 0u64;
    loop {
        let chunk = match tokio::time::timeout(job.timeout, chunks.next()).await {
            Ok(Some(Ok(chunk))) => chunk,
            Ok(None) => return Ok(None),
            Ok(Some(Err(e))) => return Ok(Some(e)),
            Err(_) => {
                return Ok(Some(UpstreamError::Timeout {
                    url: upstream_url(job),
                    secs: job.timeout.as_secs_f64(),
                }))
            }
        };
        let chunk = if skip > 0 {
            let n = skip.min(chunk.len() as u64);
            skip -= n;
            job.stats.upstream_bytes(n);
            chunk.slice(n as usize..)
        } else {
            chunk
        };
        if chunk.is_empty() {
            continue;
        }
        let n = chunk.len() as u64;
        if partial.written + n > total {
            return Err(FillError::LengthChanged {
                url: upstream_url(job),
                expected: total,
                found: partial.written + n,
            });
        }
        if let Some(rate) = &job.rate {
            rate.take(n).await;
        }
        partial.append(chunk).await?;
        job.stats.upstream_bytes(n);
        unpublished += n;
        if unpublished >= PUBLISH_EVERY || partial.written == total {
            unpublished = 0;
            publish(tx, total, partial.written);
        }
    }
}

/// Checks the whole object against its key, then makes it durable and
/// moves it into `objects/` (evicting what the budget then requires).
async fn install(job: &Job, partial: Partial) -> Result<Progress, FillError> {
    let Partial {
        file,
        hasher,
        written: len,
    } = partial;
    if hasher.finish() != job.key.hash() {
        return Err(FillError::Corrupt {
            url: upstream_url(job),
            found: len,
        });
    }
    let dir = Arc::clone(&job.dir);
    let key = job.key.clone();
    let stats = Arc::clone(&job.stats);
    tokio::task::spawn_blocking(move || -> io::Result<()> {
        (&*file).flush()?;
        file.sync_all()?;
        let partial = dir.partial_path(&key);
        for (evicted, bytes) in dir.install(&key, &partial, len)? {
            tracing::debug!(key = %evicted, bytes, "evicted");
            stats.evicted(bytes);
        }
        Ok(())
    })
    .await
    .map_err(io::Error::other)??;
    Ok(Progress::Done { len })
}
