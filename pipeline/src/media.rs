//! The FFmpeg layer under `video` and `image`: set-up, errors, and the few
//! helpers over libav* calls whose contract is easy to get wrong. It knows
//! nothing of either layer above it.
//!
//! FFmpeg is set up once per process here ([`init`]), and its failures
//! become one error type ([`MediaError`]) that says which step failed, so
//! the layers above add the file, rendition and stream and never flatten
//! FFmpeg's own error into text. Filter graphs are fed by reference (the
//! same decoded frame goes to every output), and "no output yet" (`EAGAIN`,
//! end of stream) from a graph or an encoder is a state, not an error.
//! `video` builds its filter graphs and drains its encoders with these;
//! `image` drains libaom's AVIF encoder with them.

#![allow(
    unsafe_code,
    reason = "FFmpeg's C API where ffmpeg-next has no safe call: writing a frame into a buffer source, and reading an encoder's extradata"
)]

use std::borrow::Cow;
use std::sync::Once;

use ffmpeg::{encoder, filter, frame, Packet};
use ffmpeg_next as ffmpeg;

/// An FFmpeg step that failed, named as a user can act on it.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// An FFmpeg call failed; `op` says what it was doing and for what
    /// (`opening libx264 for rung 144p`, `aac encoder`).
    #[error("{op}: {source}")]
    Ffmpeg {
        op: Cow<'static, str>,
        source: ffmpeg::Error,
    },
    /// A filter graph no longer has the `in` or `out` end it was built
    /// with: only a bug explains it.
    #[error("filter graph lost its {end}")]
    GraphEnd { end: &'static str },
    /// A filter that gives one picture for each it takes (a scaler) kept
    /// one back: only a bug explains it.
    #[error("the {filter} filter held a picture back")]
    HeldBack { filter: &'static str },
}

impl MediaError {
    pub fn ffmpeg(op: impl Into<Cow<'static, str>>, source: ffmpeg::Error) -> Self {
        Self::Ffmpeg {
            op: op.into(),
            source,
        }
    }

    /// [`MediaError::ffmpeg`] for `map_err`, where `op` costs nothing to
    /// make (on paths taken per frame, call `ffmpeg` in a closure instead).
    pub fn op(op: impl Into<Cow<'static, str>>) -> impl FnOnce(ffmpeg::Error) -> Self {
        let op = op.into();
        move |source| Self::ffmpeg(op, source)
    }
}

/// Registers FFmpeg's codecs and formats once, and quiets its log: errors
/// reach users through lowband's own messages.
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // Registration cannot fail on the FFmpeg versions we build against.
        let _ = ffmpeg::init();
        ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Fatal);
    });
}

/// A graph from the source filter `src` (named `in`, with `args`) through
/// `spec` to the sink `sink` (named `out`); `after` adjusts the configured
/// graph (a sink's frame size).
pub fn build_graph(
    src: &str,
    sink: &str,
    args: &str,
    spec: &str,
    after: impl FnOnce(&mut filter::Graph),
) -> Result<filter::Graph, ffmpeg::Error> {
    let mut graph = filter::Graph::new();
    let find = |name: &str| filter::find(name).ok_or(ffmpeg::Error::FilterNotFound);
    graph.add(&find(src)?, "in", args)?;
    graph.add(&find(sink)?, "out", "")?;
    graph.output("in", 0)?.input("out", 0)?.parse(spec)?;
    graph.validate()?;
    after(&mut graph);
    Ok(graph)
}

/// Hands a frame to a graph without taking it: the same decoded frame goes
/// to every output, so each graph gets a new reference, not the frame.
pub fn feed_graph(graph: &mut filter::Graph, frame: &frame::Frame) -> Result<(), MediaError> {
    let mut src = graph
        .get("in")
        .ok_or(MediaError::GraphEnd { end: "source" })?;
    // SAFETY: both pointers are live for the call; av_buffersrc_write_frame
    // only reads `frame` and adds its own reference to the buffers.
    let ret = unsafe { ffmpeg::ffi::av_buffersrc_write_frame(src.as_mut_ptr(), frame.as_ptr()) };
    if ret < 0 {
        return Err(MediaError::ffmpeg(
            "filter graph refused a frame",
            ffmpeg::Error::from(ret),
        ));
    }
    Ok(())
}

/// Takes the next frame the graph's sink has ready into `frame`; false when
/// the graph needs more input (or has flushed everything). `what` names
/// the graph in errors (`video`, `resampler`).
pub fn pull(
    graph: &mut filter::Graph,
    frame: &mut frame::Frame,
    what: &str,
) -> Result<bool, MediaError> {
    let got = match graph.get("out") {
        Some(mut sink) => sink.sink().frame(frame),
        None => return Err(MediaError::GraphEnd { end: "sink" }),
    };
    match got {
        Ok(()) => Ok(true),
        Err(e) if is_again(e) => Ok(false),
        Err(e) => Err(MediaError::ffmpeg(format!("{what} filter"), e)),
    }
}

/// Takes the next packet the encoder has ready into `packet`; false when
/// it needs more input (or has flushed everything).
pub fn receive_packet(
    encoder: &mut encoder::Encoder,
    packet: &mut Packet,
) -> Result<bool, ffmpeg::Error> {
    match encoder.receive_packet(packet) {
        Ok(()) => Ok(true),
        Err(e) if is_again(e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Errors that only mean "no output available yet".
fn is_again(e: ffmpeg::Error) -> bool {
    matches!(e, ffmpeg::Error::Eof)
        || matches!(e, ffmpeg::Error::Other { errno } if errno == ffmpeg::util::error::EAGAIN)
}

/// The codec configuration an opened encoder wrote (SPS and PPS, an AV1
/// sequence header), empty when it wrote none.
pub fn extradata(encoder: &encoder::Video) -> &[u8] {
    // SAFETY: extradata/extradata_size describe a buffer owned by the open
    // encoder, which outlives the returned borrow.
    unsafe {
        let ctx = &*encoder.as_ptr();
        if ctx.extradata.is_null() || ctx.extradata_size <= 0 {
            &[]
        } else {
            std::slice::from_raw_parts(ctx.extradata, ctx.extradata_size as usize)
        }
    }
}
