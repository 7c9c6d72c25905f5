//! Opening untrusted media safely and describing what is inside.
//!
//! A source file is opened with the `file` protocol only and an allow-list
//! of demuxers, so a crafted file cannot make FFmpeg read another file, a
//! URL or a playlist. Its streams, size and duration are checked against the
//! profile's bounds before a single frame is decoded.

#![allow(
    unsafe_code,
    reason = "stream fields ffmpeg-next does not expose: the display matrix, colour transfer and space, sizes and aspect of the codec parameters, the input format's flags"
)]

use std::path::Path;

use ffmpeg::format::context::Input;
use ffmpeg::{media, Dictionary, Rational};
use ffmpeg_next as ffmpeg;
use lowband_catalog::profile::VideoSettings;

use super::error::VideoError;

/// Demuxers a source may be read with. Everything that can reference other
/// files or URLs (hls, concat, playlists, image sequences, …) is absent.
/// MPEG-TS and FLV are what recorders and old phones write; `mov` reads
/// 3GP too.
const ALLOWED_DEMUXERS: &[&str] = &[
    "mov", "mp4", "m4a", "3gp", "matroska", "webm", "mp3", "wav", "ogg", "flac", "aac", "avi",
    "mpegts", "flv", "ac3", "eac3",
];

/// What accepted containers are called in errors.
pub const ACCEPTED: &str =
    "MP4/MOV/3GP, MKV/WebM, AVI, MPEG-TS, FLV, Ogg, MP3, WAV, FLAC, AAC, AC-3";

/// What a source holds, as far as the ladder cares.
#[derive(Debug, Clone)]
pub struct SourceInfo {
    pub duration: Option<f64>,
    pub video: Option<VideoStreamInfo>,
    /// The sound the rungs carry: the default track, else the first.
    pub audio: Option<AudioStreamInfo>,
    /// Every other sound track, each its own audio-only rendition.
    pub extra_audio: Vec<AudioStreamInfo>,
    /// Text subtitle tracks, each becoming WebVTT captions.
    pub subtitles: Vec<SubtitleStreamInfo>,
    /// Seconds at which the earliest selected stream starts: the rungs' 0.
    pub origin: f64,
    /// The container's clocks may jump (MPEG-TS): see `timeline`.
    pub discontinuous: bool,
}

#[derive(Debug, Clone)]
pub struct VideoStreamInfo {
    pub index: usize,
    pub width: u32,
    pub height: u32,
    /// Pixel aspect ratio (1 for square pixels).
    pub sample_aspect: Rational,
    pub frame_rate: Option<f64>,
    pub time_base: Rational,
    /// Clockwise rotation (0, 90, 180, 270) the display matrix asks for:
    /// phones record portrait video as rotated landscape frames.
    pub rotation: u32,
    /// HDR transfer (HLG or PQ), which the rungs tone-map to SDR BT.709.
    pub hdr: Option<Hdr>,
    /// The stream says its pictures are BT.709.
    pub bt709: bool,
}

/// How an HDR picture encodes light.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hdr {
    /// ARIB STD-B67, what phones record.
    Hlg,
    /// SMPTE ST 2084.
    Pq,
}

impl VideoStreamInfo {
    /// Width (after the pixel aspect ratio) and height as displayed, after rotation.
    pub fn display_size(&self) -> (f64, u32) {
        let sar = self.sample_aspect;
        let ratio = if sar.numerator() > 0 && sar.denominator() > 0 {
            f64::from(sar)
        } else {
            1.0
        };
        let width = f64::from(self.width) * ratio;
        if self.rotation % 180 == 90 {
            (f64::from(self.height), width.round() as u32)
        } else {
            (width, self.height)
        }
    }
}

/// Clockwise degrees from a stream's display matrix, snapped to quarter turns.
fn rotation(stream: &ffmpeg::format::stream::Stream) -> u32 {
    use ffmpeg::codec::packet::side_data::Type;
    for side in stream.side_data() {
        let data = side.data();
        if side.kind() != Type::DisplayMatrix || data.len() < 36 {
            continue;
        }
        let mut matrix = [0i32; 9];
        for (cell, bytes) in matrix.iter_mut().zip(data.chunks_exact(4)) {
            *cell = i32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        // SAFETY: `matrix` holds the 9 int32 values the function reads.
        let counter_clockwise = unsafe { ffmpeg::ffi::av_display_rotation_get(matrix.as_ptr()) };
        if !counter_clockwise.is_finite() {
            return 0;
        }
        let quarter_turns = ((-counter_clockwise).rem_euclid(360.0) / 90.0).round() as u32 % 4;
        return quarter_turns * 90;
    }
    0
}

#[derive(Debug, Clone)]
pub struct AudioStreamInfo {
    pub index: usize,
    pub time_base: Rational,
    /// The track's language tag as the container has it (`khm`, `en`).
    pub language: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SubtitleStreamInfo {
    pub index: usize,
    pub time_base: Rational,
    pub language: Option<String>,
}

/// The stream's `language` tag as BCP 47 has it, unless it says nothing
/// (`und`). Containers write ISO 639-2 (`khm`, `eng`); BCP 47, which the
/// module, the caption files and HLS use, takes the two-letter code where
/// one exists (`km`, `en`).
fn language(stream: &ffmpeg::format::stream::Stream) -> Option<String> {
    let tag = stream
        .metadata()
        .get("language")?
        .trim()
        .to_ascii_lowercase();
    let ok = (2..=35).contains(&tag.len())
        && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !matches!(tag.as_str(), "und" | "zxx" | "mis" | "mul");
    ok.then(|| bcp47(&tag).map_or_else(|| tag.clone(), str::to_owned))
}

/// The two-letter code of the ISO 639-2 languages a teacher-training
/// platform in the region meets; others keep their three letters, which
/// BCP 47 accepts as they are.
fn bcp47(iso639_2: &str) -> Option<&'static str> {
    Some(match iso639_2 {
        "khm" => "km",
        "eng" => "en",
        "fra" | "fre" => "fr",
        "tha" => "th",
        "vie" => "vi",
        "lao" => "lo",
        "mya" | "bur" => "my",
        "zho" | "chi" => "zh",
        "jpn" => "ja",
        "kor" => "ko",
        "ind" => "id",
        "msa" | "may" => "ms",
        "spa" => "es",
        "por" => "pt",
        "deu" | "ger" => "de",
        "rus" => "ru",
        "ara" => "ar",
        "hin" => "hi",
        _ => return None,
    })
}

/// Seconds at which a stream starts, if the container says.
fn start_time(stream: &ffmpeg::format::stream::Stream) -> Option<f64> {
    let start = stream.start_time();
    (start != ffmpeg::ffi::AV_NOPTS_VALUE).then(|| start as f64 * f64::from(stream.time_base()))
}

/// Subtitle codecs whose cues are text (bitmap subtitles are left out).
fn is_text_subtitle(id: ffmpeg::codec::Id) -> bool {
    use ffmpeg::codec::Id;
    matches!(
        id,
        Id::SUBRIP | Id::SRT | Id::MOV_TEXT | Id::ASS | Id::SSA | Id::WEBVTT | Id::TEXT
    )
}

fn hdr(parameters: &ffmpeg::codec::Parameters) -> Option<Hdr> {
    use ffmpeg::ffi::AVColorTransferCharacteristic as Trc;
    // SAFETY: `parameters` points at the stream's live codec parameters.
    match unsafe { (*parameters.as_ptr()).color_trc } {
        Trc::AVCOL_TRC_ARIB_STD_B67 => Some(Hdr::Hlg),
        Trc::AVCOL_TRC_SMPTE2084 => Some(Hdr::Pq),
        _ => None,
    }
}

/// Opens `path` under the whitelists and checks it against the bounds.
pub fn open(path: &Path, limits: &VideoSettings) -> Result<(Input, SourceInfo), VideoError> {
    let refused = |reason: String| VideoError::refused(path, reason);
    let ictx = open_input(path, limits)?;
    let video = video_stream(&ictx)
        .map(|v| check_picture(path, v, limits))
        .transpose()?;
    let (audio, extra_audio) = audio_tracks(&ictx);
    if video.is_none() && audio.is_none() {
        return Err(refused(
            "no audio or video stream FFmpeg can read: the file is damaged, cut short or \
             not media; export it again from its editor or recorder"
                .into(),
        ));
    }
    let subtitles = ictx
        .streams()
        .filter(|s| s.parameters().medium() == media::Type::Subtitle)
        .filter(|s| is_text_subtitle(s.parameters().id()))
        .map(|s| SubtitleStreamInfo {
            index: s.index(),
            time_base: s.time_base(),
            language: language(&s),
        })
        .collect();
    let selected = video
        .iter()
        .map(|v| v.index)
        .chain(audio.iter().map(|a| a.index))
        .chain(extra_audio.iter().map(|a| a.index));
    let origin = selected
        .filter_map(|i| ictx.stream(i).as_ref().and_then(start_time))
        .fold(None, |min: Option<f64>, t| {
            Some(min.map_or(t, |m| m.min(t)))
        })
        .unwrap_or(0.0);
    let duration = (ictx.duration() > 0)
        .then(|| ictx.duration() as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE));
    if let Some(d) = duration.filter(|d| *d > limits.max_duration) {
        return Err(refused(format!(
            "{d:.0} s long, more than the {:.0} s allowed; split it into shorter lessons, \
             or raise video.max_duration in the profile",
            limits.max_duration
        )));
    }
    let discontinuous = has_discontinuous_clocks(&ictx);
    Ok((
        ictx,
        SourceInfo {
            duration,
            video,
            audio,
            extra_audio,
            subtitles,
            origin,
            discontinuous,
        },
    ))
}

/// Opens the container with the `file` protocol and the allowed demuxers
/// only, and checks its stream count.
fn open_input(path: &Path, limits: &VideoSettings) -> Result<Input, VideoError> {
    crate::media::init();
    let refused = |reason: String| VideoError::refused(path, reason);
    let metadata = std::fs::metadata(path).map_err(|source| VideoError::Read {
        file: path.to_owned(),
        source,
    })?;
    if metadata.len() == 0 {
        return Err(refused("the file is empty".into()));
    }
    let mut options = Dictionary::new();
    options.set("protocol_whitelist", "file");
    options.set("format_whitelist", &ALLOWED_DEMUXERS.join(","));
    let ictx =
        ffmpeg::format::input_with_dictionary(path, options).map_err(|e| VideoError::Refused {
            file: path.to_owned(),
            reason: format!(
                "not a readable audio or video file ({e}); accepted containers: {ACCEPTED}; \
                 if it plays elsewhere, export it again as MP4 (H.264 and AAC)"
            ),
            source: Some(e),
        })?;
    let demuxer = ictx.format().name().to_owned();
    if !demuxer
        .split(',')
        .any(|name| ALLOWED_DEMUXERS.contains(&name))
    {
        return Err(refused(format!(
            "container {demuxer:?} is not accepted; accepted containers: {ACCEPTED}"
        )));
    }
    if ictx.nb_streams() > limits.max_streams {
        return Err(refused(format!(
            "{} streams, more than the {} allowed; keep the picture and the sound tracks \
             (ffmpeg -map 0:v:0 -map 0:a -c copy), or raise video.max_streams in the profile",
            ictx.nb_streams(),
            limits.max_streams
        )));
    }
    Ok(ictx)
}

/// The picture the rungs are made from: the largest video stream that is
/// not a cover picture.
fn video_stream(ictx: &Input) -> Option<VideoStreamInfo> {
    let stream = ictx
        .streams()
        .filter(|s| s.parameters().medium() == media::Type::Video)
        .filter(|s| {
            !s.disposition()
                .contains(ffmpeg::format::stream::Disposition::ATTACHED_PIC)
        })
        .max_by_key(|s| {
            let p = s.parameters();
            // SAFETY: `p` points at the stream's live codec parameters.
            unsafe { i64::from((*p.as_ptr()).width) * i64::from((*p.as_ptr()).height) }
        })?;
    let p = stream.parameters();
    // SAFETY: as above; the fields are plain integers and rationals.
    // The container's pixel aspect wins over the bitstream's, as
    // FFmpeg's own guess has it (a 3GP's track header says square
    // pixels where its H.263 stream says 12:11).
    let (width, height, sar) = unsafe {
        let raw = &*p.as_ptr();
        let container = (*stream.as_ptr()).sample_aspect_ratio;
        let sar = if container.num > 0 && container.den > 0 {
            container
        } else {
            raw.sample_aspect_ratio
        };
        (raw.width, raw.height, Rational::from(sar))
    };
    let rate = [stream.avg_frame_rate(), stream.rate()]
        .into_iter()
        .find(|r| r.numerator() > 0 && r.denominator() > 0)
        .map(f64::from)
        .filter(|fps| fps.is_finite() && *fps > 0.0 && *fps <= 1000.0);
    Some(VideoStreamInfo {
        index: stream.index(),
        width: u32::try_from(width).unwrap_or(0),
        height: u32::try_from(height).unwrap_or(0),
        sample_aspect: sar,
        frame_rate: rate,
        time_base: stream.time_base(),
        rotation: rotation(&stream),
        hdr: hdr(&p),
        // SAFETY: as above.
        bt709: unsafe { (*p.as_ptr()).color_space } == ffmpeg::ffi::AVColorSpace::AVCOL_SPC_BT709,
    })
}

/// The picture, if its size is one the profile accepts.
fn check_picture(
    path: &Path,
    v: VideoStreamInfo,
    limits: &VideoSettings,
) -> Result<VideoStreamInfo, VideoError> {
    let refused = |reason: String| VideoError::refused(path, reason);
    let (index, width, height) = (v.index, v.width, v.height);
    if width == 0 || height == 0 {
        return Err(refused(format!("video stream {index} has no picture size")));
    }
    if width > limits.max_width || height > limits.max_height {
        return Err(refused(format!(
            "video stream {index} is {width}x{height}, larger than the {}x{} allowed; \
             scale it down before publishing, or raise video.max_width/max_height \
             in the profile",
            limits.max_width, limits.max_height
        )));
    }
    Ok(v)
}

/// The sound the rungs carry (the default track, else the first), and
/// every other sound track.
fn audio_tracks(ictx: &Input) -> (Option<AudioStreamInfo>, Vec<AudioStreamInfo>) {
    let mut tracks: Vec<_> = ictx
        .streams()
        .filter(|s| s.parameters().medium() == media::Type::Audio)
        .collect();
    if let Some(default) = tracks.iter().position(|s| {
        s.disposition()
            .contains(ffmpeg::format::stream::Disposition::DEFAULT)
    }) {
        let track = tracks.remove(default);
        tracks.insert(0, track);
    }
    let mut tracks = tracks.into_iter().map(|s| AudioStreamInfo {
        index: s.index(),
        time_base: s.time_base(),
        language: language(&s),
    });
    let audio = tracks.next();
    (audio, tracks.collect())
}

/// Whether the container's clocks may jump (FFmpeg's `AVFMT_TS_DISCONT`).
fn has_discontinuous_clocks(ictx: &Input) -> bool {
    // SAFETY: the input format of an open context is a live static struct.
    unsafe {
        let format = (*ictx.as_ptr()).iformat;
        !format.is_null() && (*format).flags & ffmpeg::ffi::AVFMT_TS_DISCONT != 0
    }
}
