//! Fragmented MP4 as HLS: the byte ranges of a rendition's fragments.
//!
//! Every rendition is one fragmented MP4 (`ftyp moov sidx… (moof mdat)*`)
//! that a `<video>` element plays progressively and that an HLS media
//! playlist addresses by byte range: one set of bytes for both. This module
//! walks the top-level boxes (seeking, never reading the media data), reads
//! segment durations from the first `sidx`, and writes the playlist.
//! Plain byte parsing, no FFmpeg: `video` indexes what it wrote, a
//! `rendition` carries the index, and `ingest` writes the playlist.

use std::io::{Read, Seek, SeekFrom};

/// Where the parts of a fragmented MP4 are.
#[derive(Debug, Clone, PartialEq)]
pub struct FragmentIndex {
    /// `ftyp` + `moov`: the initialisation segment, from offset 0.
    pub init_len: u64,
    pub segments: Vec<Segment>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    pub offset: u64,
    pub len: u64,
    /// Seconds.
    pub duration: f64,
}

impl FragmentIndex {
    /// Highest bitrate of any segment, bits/s: HLS `BANDWIDTH`.
    pub fn peak_bitrate(&self) -> u64 {
        self.segments
            .iter()
            .filter(|s| s.duration > 0.0)
            .map(|s| (s.len as f64 * 8.0 / s.duration).ceil() as u64)
            .max()
            .unwrap_or(0)
    }

    /// An HLS (version 7) VOD media playlist addressing `uri` by byte ranges.
    pub fn media_playlist(&self, uri: &str) -> String {
        let target = self
            .segments
            .iter()
            .map(|s| s.duration.ceil() as u64)
            .max()
            .unwrap_or(1)
            .max(1);
        let mut out = format!(
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-PLAYLIST-TYPE:VOD\n\
             #EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"{uri}\",BYTERANGE=\"{}@0\"\n",
            self.init_len
        );
        for s in &self.segments {
            out.push_str(&format!(
                "#EXTINF:{:.3},\n#EXT-X-BYTERANGE:{}@{}\n{uri}\n",
                s.duration, s.len, s.offset
            ));
        }
        out.push_str("#EXT-X-ENDLIST\n");
        out
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Fmp4Error {
    #[error("reading the fragmented MP4: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed fragmented MP4: {0}")]
    Malformed(String),
}

/// Indexes a fragmented MP4 of `len` bytes.
pub fn index<R: Read + Seek>(mut r: R, len: u64) -> Result<FragmentIndex, Fmp4Error> {
    let mut pos = 0u64;
    let mut init_len = None;
    let mut durations: Option<Vec<f64>> = None;
    let mut fragments = Vec::new();
    let mut open_moof: Option<u64> = None;
    while pos < len {
        let (kind, header, size) = box_header(&mut r, pos, len)?;
        match &kind {
            b"moov" => init_len = Some(pos + size),
            b"sidx" if durations.is_none() => {
                if size > 1 << 20 {
                    return Err(Fmp4Error::Malformed(format!("sidx of {size} bytes")));
                }
                let mut body = vec![0u8; (size - header) as usize];
                r.read_exact(&mut body)?;
                durations = Some(
                    sidx_durations(&body)
                        .ok_or_else(|| Fmp4Error::Malformed("unreadable sidx".into()))?,
                );
            }
            b"moof" => open_moof = Some(pos),
            b"mdat" => {
                let start = open_moof
                    .take()
                    .ok_or_else(|| Fmp4Error::Malformed(format!("mdat at {pos} without a moof")))?;
                fragments.push((start, pos + size - start));
            }
            _ => {}
        }
        pos += size;
    }
    let init_len = init_len.ok_or_else(|| Fmp4Error::Malformed("no moov box".into()))?;
    let durations = durations.ok_or_else(|| Fmp4Error::Malformed("no sidx box".into()))?;
    if durations.len() != fragments.len() || fragments.is_empty() {
        return Err(Fmp4Error::Malformed(format!(
            "{} fragments but the sidx lists {}",
            fragments.len(),
            durations.len()
        )));
    }
    let segments = fragments
        .into_iter()
        .zip(durations)
        .map(|((offset, len), duration)| Segment {
            offset,
            len,
            duration,
        })
        .collect();
    Ok(FragmentIndex {
        init_len,
        segments: join_tail(segments),
    })
}

/// Reads the header of the box at `pos`: its type, header length and
/// whole size (checked to fit in the `len`-byte file).
fn box_header<R: Read + Seek>(
    r: &mut R,
    pos: u64,
    len: u64,
) -> Result<([u8; 4], u64, u64), Fmp4Error> {
    r.seek(SeekFrom::Start(pos))?;
    let mut head = [0u8; 16];
    r.read_exact(&mut head[..8])?;
    let mut size = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
    let kind = [head[4], head[5], head[6], head[7]];
    let mut header = 8;
    if size == 1 {
        r.read_exact(&mut head[8..16])?;
        size = u64::from_be_bytes(head[8..16].try_into().unwrap_or_default());
        header = 16;
    } else if size == 0 {
        size = len - pos;
    }
    if size < header || pos + size > len {
        return Err(Fmp4Error::Malformed(format!(
            "box {:?} at {pos} has size {size} in a {len}-byte file",
            String::from_utf8_lossy(&kind)
        )));
    }
    Ok((kind, header, size))
}

/// A last fragment of a few milliseconds (the sound's final frame past
/// the picture's last keyframe interval) would be a segment whose bytes
/// over its duration read as hundreds of kbit/s: the rendition's HLS
/// BANDWIDTH, which tells a 2G player it cannot carry a 32 kbit/s audio
/// track. It is played as part of the segment before it instead; their
/// bytes are contiguous, and a segment may hold several fragments.
fn join_tail(mut segments: Vec<Segment>) -> Vec<Segment> {
    if let [.., before, last] = segments.as_mut_slice() {
        if last.duration < MIN_SEGMENT_SECONDS {
            before.len += last.len;
            before.duration += last.duration;
            segments.pop();
        }
    }
    segments
}

/// Shortest last segment kept apart from the one before it.
const MIN_SEGMENT_SECONDS: f64 = 0.5;

/// Subsegment durations (seconds) from a `sidx` body (after the box header).
fn sidx_durations(body: &[u8]) -> Option<Vec<f64>> {
    let u32_at = |at: usize| {
        body.get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let version = *body.first()?;
    let timescale = f64::from(u32_at(8)?);
    if timescale == 0.0 {
        return None;
    }
    let counts_at = if version == 0 { 20 } else { 28 };
    let count = usize::from(u16::from_be_bytes([
        *body.get(counts_at + 2)?,
        *body.get(counts_at + 3)?,
    ]));
    (0..count)
        .map(|i| u32_at(counts_at + 4 + i * 12 + 4).map(|d| f64::from(d) / timescale))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn mp4_box(kind: [u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(&kind);
        out.extend_from_slice(body);
        out
    }

    fn sidx(timescale: u32, durations: &[u32]) -> Vec<u8> {
        let mut body = vec![0, 0, 0, 0]; // version 0, flags
        body.extend_from_slice(&1u32.to_be_bytes()); // reference id
        body.extend_from_slice(&timescale.to_be_bytes());
        body.extend_from_slice(&[0; 8]); // earliest presentation time, first offset
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(&(durations.len() as u16).to_be_bytes());
        for d in durations {
            body.extend_from_slice(&[0; 4]);
            body.extend_from_slice(&d.to_be_bytes());
            body.extend_from_slice(&[0x90, 0, 0, 0]);
        }
        mp4_box(*b"sidx", &body)
    }

    fn sample() -> Vec<u8> {
        let mut f = mp4_box(*b"ftyp", b"isom\0\0\0\0");
        f.extend(mp4_box(*b"moov", &[0; 16]));
        f.extend(sidx(1000, &[4000, 2500]));
        f.extend(mp4_box(*b"moof", &[0; 8]));
        f.extend(mp4_box(*b"mdat", &[7; 92]));
        f.extend(mp4_box(*b"moof", &[0; 8]));
        f.extend(mp4_box(*b"mdat", &[7; 42]));
        f
    }

    #[test]
    fn indexes_fragments_and_writes_a_playlist() {
        let bytes = sample();
        let idx = index(Cursor::new(&bytes), bytes.len() as u64).unwrap();
        assert_eq!(idx.init_len, 16 + 24);
        let first = 40 + 56; // ftyp + moov, then a sidx with two references
        assert_eq!(
            idx.segments,
            [
                Segment {
                    offset: first,
                    len: 116,
                    duration: 4.0
                },
                Segment {
                    offset: first + 116,
                    len: 66,
                    duration: 2.5
                }
            ]
        );
        assert_eq!(idx.peak_bitrate(), 232);
        let m3u8 = idx.media_playlist("/o/x.mp4");
        assert!(
            m3u8.contains("#EXT-X-MAP:URI=\"/o/x.mp4\",BYTERANGE=\"40@0\""),
            "{m3u8}"
        );
        assert!(
            m3u8.contains("#EXTINF:2.500,\n#EXT-X-BYTERANGE:66@212\n/o/x.mp4\n"),
            "{m3u8}"
        );
        assert!(m3u8.contains("#EXT-X-TARGETDURATION:4\n") && m3u8.ends_with("#EXT-X-ENDLIST\n"));
    }

    /// A last fragment of a few milliseconds joins the segment before it,
    /// so the peak bitrate is that of real segments.
    #[test]
    fn a_tail_fragment_joins_the_last_segment() {
        let mut f = mp4_box(*b"ftyp", b"isom\0\0\0\0");
        f.extend(mp4_box(*b"moov", &[0; 16]));
        f.extend(sidx(1000, &[4000, 4000, 2]));
        for body in [16_000, 16_000, 100] {
            f.extend(mp4_box(*b"moof", &[0; 8]));
            f.extend(mp4_box(*b"mdat", &vec![7; body]));
        }
        let idx = index(Cursor::new(&f), f.len() as u64).unwrap();
        assert_eq!(idx.segments.len(), 2);
        let last = idx.segments[1];
        assert_eq!(
            last.offset + last.len,
            f.len() as u64,
            "covers the tail's bytes"
        );
        assert!((last.duration - 4.002).abs() < 1e-9);
        assert!(idx.peak_bitrate() < 40_000, "{}", idx.peak_bitrate());
    }

    #[test]
    fn malformed_files_are_errors() {
        let good = sample();
        let mut truncated = good.clone();
        truncated.truncate(good.len() - 10);
        let mut no_moof = mp4_box(*b"moov", &[0; 8]);
        no_moof.extend(sidx(1000, &[1000]));
        no_moof.extend(mp4_box(*b"mdat", &[0; 8]));
        let mut mismatch = mp4_box(*b"moov", &[0; 8]);
        mismatch.extend(sidx(1000, &[1000, 1000]));
        mismatch.extend(mp4_box(*b"moof", &[]));
        mismatch.extend(mp4_box(*b"mdat", &[]));
        let tiny_size = [0u8, 0, 0, 4, b'm', b'o', b'o', b'v'].to_vec();
        for bad in [truncated, no_moof, mismatch, tiny_size, Vec::new()] {
            let r = index(Cursor::new(&bad), bad.len() as u64);
            assert!(r.is_err(), "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = index(Cursor::new(&bytes), bytes.len() as u64);
        }
    }
}
