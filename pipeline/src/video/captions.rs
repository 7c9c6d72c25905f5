//! Text subtitles carried in the container (SubRip in MKV, `mov_text` in
//! MP4, ASS, WebVTT) become WebVTT files: what `<track>` and HLS players
//! read. Bitmap subtitles (DVD, PGS) are left out, since they would need
//! OCR; the source module names the track and what was skipped.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ffmpeg::{codec, Packet, Rational};
use ffmpeg_next as ffmpeg;

use super::error::VideoError;
use super::source::SubtitleStreamInfo;

/// Cues kept per track: a film's subtitles have a few thousand.
const MAX_CUES: usize = 20_000;
/// A cue without a duration stays this long, or up to the next one.
const DEFAULT_CUE_SECONDS: f64 = 4.0;

/// One subtitle track being collected while the source is decoded.
pub(super) struct SubtitleTrack {
    pub index: usize,
    pub language: Option<String>,
    time_base: Rational,
    decoder: ffmpeg::decoder::Subtitle,
    cues: Vec<Cue>,
}

#[derive(Debug, Clone, PartialEq)]
struct Cue {
    start: f64,
    end: Option<f64>,
    text: String,
}

/// A WebVTT file written from a container's subtitle track.
#[derive(Debug, Clone)]
pub struct ExtractedCaptions {
    pub path: PathBuf,
    pub language: Option<String>,
    /// The source's stream index, for messages.
    pub stream: usize,
}

impl SubtitleTrack {
    pub fn open(
        path: &Path,
        ictx: &ffmpeg::format::context::Input,
        info: &SubtitleStreamInfo,
    ) -> Result<Self, VideoError> {
        let index = info.index;
        let fail = |op: &str| VideoError::ffmpeg(path, format!("{op} of subtitle stream {index}"));
        let stream = ictx.stream(index).ok_or_else(|| VideoError::NoStream {
            file: path.to_owned(),
            stream: index,
        })?;
        let ctx = codec::context::Context::from_parameters(stream.parameters())
            .map_err(fail("reading the parameters"))?;
        let decoder = ctx
            .decoder()
            .subtitle()
            .map_err(fail("opening the decoder"))?;
        Ok(Self {
            index,
            language: info.language.clone(),
            time_base: info.time_base,
            decoder,
            cues: Vec::new(),
        })
    }

    /// Decodes one packet (already on the shared timeline). A cue that
    /// cannot be decoded is skipped: captions are worth less than the video.
    pub fn push(&mut self, packet: &Packet) {
        let Some(pts) = packet.pts().or(packet.dts()) else {
            return;
        };
        if self.cues.len() >= MAX_CUES {
            return;
        }
        let mut subtitle = ffmpeg::Subtitle::new();
        if !matches!(self.decoder.decode(packet, &mut subtitle), Ok(true)) {
            return;
        }
        let tb = f64::from(self.time_base);
        let start = pts as f64 * tb + f64::from(subtitle.start()) / 1000.0;
        let end = if packet.duration() > 0 {
            Some(pts as f64 * tb + packet.duration() as f64 * tb)
        } else if subtitle.end() > subtitle.start() {
            Some(pts as f64 * tb + f64::from(subtitle.end()) / 1000.0)
        } else {
            None
        };
        let text: Vec<String> = subtitle
            .rects()
            .filter_map(|rect| match rect {
                ffmpeg::codec::subtitle::Rect::Text(t) => Some(plain_text(t.get())),
                ffmpeg::codec::subtitle::Rect::Ass(a) => Some(ass_text(a.get())),
                _ => None,
            })
            .filter(|t| !t.is_empty())
            .collect();
        if !text.is_empty() && start >= 0.0 {
            self.cues.push(Cue {
                start,
                end,
                text: text.join("\n"),
            });
        }
    }

    /// Writes the cues of this track of `source` as
    /// `<workdir>/captions-<stream>.vtt`; None when the track held no text.
    pub fn finish(
        mut self,
        source: &Path,
        workdir: &Path,
    ) -> Result<Option<ExtractedCaptions>, VideoError> {
        if self.cues.is_empty() {
            return Ok(None);
        }
        let path = workdir.join(format!("captions-{}.vtt", self.index));
        std::fs::write(&path, webvtt(&mut self.cues)).map_err(|e| VideoError::Captions {
            file: source.to_owned(),
            stream: self.index,
            source: e,
        })?;
        Ok(Some(ExtractedCaptions {
            path,
            language: self.language,
            stream: self.index,
        }))
    }
}

fn webvtt(cues: &mut [Cue]) -> String {
    cues.sort_by(|a, b| a.start.total_cmp(&b.start));
    let mut out = String::from("WEBVTT\n");
    for i in 0..cues.len() {
        let next = cues.get(i + 1).map(|c| c.start);
        let cue = &cues[i];
        let end = cue
            .end
            .unwrap_or(cue.start + DEFAULT_CUE_SECONDS)
            .min(next.filter(|_| cue.end.is_none()).unwrap_or(f64::INFINITY))
            .max(cue.start + 0.001);
        let _ = write!(
            out,
            "\n{} --> {}\n{}\n",
            timestamp(cue.start),
            timestamp(end),
            cue.text
        );
    }
    out
}

fn timestamp(seconds: f64) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// The text of an ASS `Dialogue` event as FFmpeg's decoders give it
/// (`ReadOrder,Layer,Style,Name,MarginL,MarginR,MarginV,Effect,Text`),
/// with override blocks removed and line breaks kept.
fn ass_text(event: &str) -> String {
    let event = event.strip_prefix("Dialogue: ").unwrap_or(event);
    let text = event.splitn(9, ',').nth(8).unwrap_or("");
    let mut plain = String::with_capacity(text.len());
    let mut in_override = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' => in_override = true,
            '}' if in_override => in_override = false,
            _ if in_override => {}
            '\\' => match chars.peek() {
                Some('N' | 'n') => {
                    chars.next();
                    plain.push('\n');
                }
                Some('h') => {
                    chars.next();
                    plain.push(' ');
                }
                _ => plain.push('\\'),
            },
            _ => plain.push(c),
        }
    }
    plain_text(&plain)
}

/// Text made safe for a WebVTT cue: markup characters escaped, no blank
/// lines (which would end the cue), no `-->`.
fn plain_text(text: &str) -> String {
    text.replace('\r', "")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ass_events_become_plain_cue_text() {
        assert_eq!(
            ass_text("0,0,Default,,0,0,0,,{\\i1}Hello{\\i0}, world\\NNext <line>"),
            "Hello, world\nNext &lt;line&gt;"
        );
        assert_eq!(ass_text("3,0,Default,,0,0,0,,a --> b"), "a --&gt; b");
        assert_eq!(ass_text("1,0,Default,,0,0,0,,\\N\\N"), "");
    }

    #[test]
    fn cues_are_sorted_and_open_ends_closed() {
        let mut cues = vec![
            Cue {
                start: 5.0,
                end: None,
                text: "b".into(),
            },
            Cue {
                start: 1.25,
                end: None,
                text: "a".into(),
            },
            Cue {
                start: 3661.5,
                end: Some(3662.0),
                text: "c".into(),
            },
        ];
        assert_eq!(
            webvtt(&mut cues),
            "WEBVTT\n\n00:00:01.250 --> 00:00:05.000\na\n\n\
             00:00:05.000 --> 00:00:09.000\nb\n\n01:01:01.500 --> 01:01:02.000\nc\n"
        );
    }
}
