//! Response bodies: small ones in memory, objects streamed from the store.

use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, Full, StreamBody};
use hyper::body::Frame;

/// Largest piece read at once: a body is streamed in pieces of this size,
/// so a connection holds at most one of them.
pub const CHUNK: u64 = 256 * 1024;

pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// Streams chunks as they arrive; memory is bounded by the store's chunk size.
pub fn stream<S>(chunks: S) -> Body
where
    S: Stream<Item = std::io::Result<Bytes>> + Send + 'static,
{
    StreamBody::new(chunks.map_ok(Frame::data)).boxed_unsync()
}

/// Told the length of each data frame of a [`Metered`] body as it is sent.
pub trait Meter {
    fn sent(&mut self, bytes: u64);
}

/// Counts into a shared counter (a metric).
impl Meter for std::sync::Arc<std::sync::atomic::AtomicU64> {
    fn sent(&mut self, bytes: u64) {
        self.fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A body that tells its meter the length of each data frame as it goes.
pub struct Metered<M> {
    inner: Body,
    meter: M,
}

impl<M> Metered<M> {
    pub fn new(inner: Body, meter: M) -> Self {
        Self { inner, meter }
    }
}

impl<M: Meter + Unpin> hyper::body::Body for Metered<M> {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        let polled = std::pin::Pin::new(&mut this.inner).poll_frame(cx);
        if let std::task::Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                this.meter.sent(data.len() as u64);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}
