//! What can go wrong with a source, told so that the person who published
//! it knows which file, which rendition, which stream and when.
//!
//! A refusal ([`VideoError::Refused`]) is the file's fault and says what to
//! do about it; every other variant is a failure with its cause kept as
//! `source` (FFmpeg's error, the system's), and the context a message needs
//! beside it.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

use ffmpeg_next as ffmpeg;

use crate::fmp4::Fmp4Error;
use crate::image::Failure;
use crate::media::MediaError;

#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    /// lowband will not publish the file as it is; `reason` says why and
    /// what to do. `source` is FFmpeg's error when it could not read the
    /// file at all (`reason` quotes it).
    #[error("{file}: {reason}")]
    Refused {
        file: PathBuf,
        reason: String,
        source: Option<ffmpeg::Error>,
    },
    /// The file's size could not be read.
    #[error("{file}: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    /// An FFmpeg step on the source failed outside any one rendition's
    /// stream: opening it, setting an output up, the shared scaling, the
    /// sound's resampler.
    #[error("{file}: {source}")]
    Media { file: PathBuf, source: MediaError },
    /// Encoding one rendition failed at a point of the source.
    #[error("{file}: rendition {rendition}: {at}: {source}")]
    Output {
        file: PathBuf,
        rendition: String,
        at: StreamTime,
        source: MediaError,
    },
    /// The container lost a stream it listed when it was opened: only a
    /// bug explains it.
    #[error("{file}: stream {stream} vanished")]
    NoStream { file: PathBuf, stream: usize },
    #[error("{file}: cannot start the encoder thread of rendition {rendition}: {source}")]
    Thread {
        file: PathBuf,
        rendition: String,
        source: std::io::Error,
    },
    #[error("{file}: the encoder thread of rendition {rendition} panicked")]
    Panicked { file: PathBuf, rendition: String },
    /// The MP4 lowband wrote cannot be indexed for HLS.
    #[error("{file}: rendition {rendition}: {source}")]
    Fragments {
        file: PathBuf,
        rendition: String,
        source: Fmp4Error,
    },
    #[error("{file}: writing the captions of subtitle stream {stream}: {source}")]
    Captions {
        file: PathBuf,
        stream: usize,
        source: std::io::Error,
    },
    #[error("{file}: {source}")]
    Poster { file: PathBuf, source: PosterError },
}

impl VideoError {
    /// A refusal that FFmpeg's error does not explain.
    pub(super) fn refused(file: &Path, reason: String) -> Self {
        Self::Refused {
            file: file.to_owned(),
            reason,
            source: None,
        }
    }

    /// `move |e| VideoError::Media { .. }` for an FFmpeg call that was
    /// doing `op`, for `map_err`.
    pub(super) fn ffmpeg(
        file: &Path,
        op: impl Into<Cow<'static, str>>,
    ) -> impl FnOnce(ffmpeg::Error) -> Self + '_ {
        let op = op.into();
        move |source| Self::media(file, MediaError::ffmpeg(op, source))
    }

    pub(super) fn media(file: &Path, source: MediaError) -> Self {
        Self::Media {
            file: file.to_owned(),
            source,
        }
    }
}

/// Where in the source an output was when it failed: `audio stream 1 at
/// 8.02 s`, or `video at 0.40 s` for a stream the container does not number.
#[derive(Debug, Clone, Copy)]
pub struct StreamTime {
    pub kind: &'static str,
    pub stream: Option<usize>,
    /// Seconds of output written.
    pub at: f64,
}

impl fmt::Display for StreamTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.stream {
            Some(i) => write!(f, "{} stream {i} at {:.2} s", self.kind, self.at),
            None => write!(f, "{} at {:.2} s", self.kind, self.at),
        }
    }
}

/// Why no poster could be made from a decoded picture.
#[derive(Debug, thiserror::Error)]
pub enum PosterError {
    #[error("poster: cannot convert the picture: {0}")]
    Convert(#[source] ffmpeg::Error),
    /// The scaler's picture is smaller than its own size says: only a bug
    /// explains it.
    #[error("poster: short picture buffer")]
    ShortBuffer,
    #[error("poster: {0}")]
    Encode(#[source] Failure),
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn an_encoder_failure_names_file_rendition_stream_time_and_keeps_its_cause() {
        let e = VideoError::Output {
            file: "lesson.mp4".into(),
            rendition: "144p".into(),
            at: StreamTime {
                kind: "audio",
                stream: Some(1),
                at: 8.016,
            },
            source: MediaError::ffmpeg("aac encoder", ffmpeg::Error::InvalidData),
        };
        let text = e.to_string();
        assert!(
            text.starts_with("lesson.mp4: rendition 144p: audio stream 1 at 8.02 s: aac encoder: "),
            "{text}"
        );
        let cause = e.source().and_then(|media| media.source());
        assert!(
            cause.is_some_and(|c| c.downcast_ref::<ffmpeg::Error>().is_some()),
            "the FFmpeg error is the cause"
        );
    }

    #[test]
    fn an_unreadable_file_is_a_refusal_caused_by_ffmpeg() {
        let e = VideoError::Refused {
            file: "x.mp4".into(),
            reason: "not a readable audio or video file".into(),
            source: Some(ffmpeg::Error::InvalidData),
        };
        assert!(e.source().is_some());
        assert!(VideoError::refused(Path::new("x.mp4"), "too long".into())
            .source()
            .is_none());
    }
}
