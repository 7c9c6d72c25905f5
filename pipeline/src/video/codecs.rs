//! RFC 6381 codec strings, read from what the encoder actually produced.
//!
//! HLS and `<source type>` name a rendition's codecs (`avc1.4d401e`,
//! `av01.0.05M.08`); the profile and level come from the encoder's own
//! parameter sets, not from the settings it was given.
//! Pure byte parsing: `encoder` hands it the extradata.

/// `avc1.PPCCLL` from H.264 extradata, either an `avcC` record or Annex B
/// parameter sets (what libx264 emits with a global header).
pub fn avc1_from_extradata(extradata: &[u8]) -> Option<String> {
    let sps = if extradata.first() == Some(&1) && extradata.len() >= 4 {
        // avcC: version, profile, compatibility, level.
        &extradata[1..4]
    } else {
        let mut i = 0;
        loop {
            let start = extradata
                .get(i..)?
                .windows(3)
                .position(|w| w == [0, 0, 1])?
                + i
                + 3;
            if extradata.get(start).map(|b| b & 0x1f) == Some(7) {
                break extradata.get(start + 1..start + 4)?;
            }
            i = start;
        }
    };
    Some(format!("avc1.{:02x}{:02x}{:02x}", sps[0], sps[1], sps[2]))
}

/// `av01.P.LLT.DD` from AV1 extradata: an `av1C` record, or OBUs holding a
/// sequence header (what SVT-AV1 emits with a global header).
pub fn av01_from_extradata(extradata: &[u8]) -> Option<String> {
    let seq = if extradata.first() == Some(&0x81) {
        // av1C: marker and version, then profile and level, then tier and depth.
        let (b1, b2) = (*extradata.get(1)?, *extradata.get(2)?);
        let depth = match (b2 >> 6 & 1, b2 >> 5 & 1) {
            (0, _) => 8,
            (_, 0) => 10,
            _ => 12,
        };
        SequenceHeader {
            profile: b1 >> 5,
            level: b1 & 0x1f,
            tier: b2 >> 7,
            depth,
        }
    } else {
        sequence_header(extradata)?
    };
    Some(format!(
        "av01.{}.{:02}{}.{:02}",
        seq.profile,
        seq.level,
        if seq.tier == 1 { 'H' } else { 'M' },
        seq.depth
    ))
}

/// What a codec string needs from an AV1 sequence header.
struct SequenceHeader {
    profile: u8,
    level: u8,
    tier: u8,
    depth: u8,
}

/// Walks length-delimited OBUs to the first sequence header and parses it
/// (AV1 spec 5.5) as far as the colour depth.
fn sequence_header(mut obus: &[u8]) -> Option<SequenceHeader> {
    const OBU_SEQUENCE_HEADER: u8 = 1;
    loop {
        let header = *obus.first()?;
        let kind = header >> 3 & 0xf;
        let skip = 1 + usize::from(header & 0x4 != 0);
        obus = obus.get(skip..)?;
        let size = if header & 0x2 != 0 {
            let (size, used) = leb128(obus)?;
            obus = obus.get(used..)?;
            size
        } else {
            obus.len()
        };
        let payload = obus.get(..size)?;
        if kind == OBU_SEQUENCE_HEADER {
            return parse_sequence_header(&mut Bits::new(payload));
        }
        obus = obus.get(size..)?;
    }
}

fn leb128(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut value: u64 = 0;
    for (i, &b) in bytes.iter().take(8).enumerate() {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((usize::try_from(value).ok()?, i + 1));
        }
    }
    None
}

fn parse_sequence_header(r: &mut Bits) -> Option<SequenceHeader> {
    let profile = r.take(3)? as u8;
    let _still_picture = r.flag()?;
    let reduced = r.flag()?;
    let (level, tier) = if reduced {
        (r.take(5)? as u8, 0)
    } else {
        first_operating_point(r)?
    };
    skip_to_color_config(r, reduced)?;
    let high_bitdepth = r.flag()?;
    let depth = match (high_bitdepth, profile == 2 && high_bitdepth && r.flag()?) {
        (false, _) => 8,
        (true, false) => 10,
        (true, true) => 12,
    };
    Some(SequenceHeader {
        profile,
        level,
        tier,
        depth,
    })
}

/// The level and tier of the first operating point, past the timing and
/// decoder model information.
fn first_operating_point(r: &mut Bits) -> Option<(u8, u8)> {
    let mut buffer_delay_bits = 0;
    let mut decoder_model = false;
    if r.flag()? {
        // timing_info
        r.take(32)?;
        r.take(32)?;
        if r.flag()? {
            r.uvlc()?;
        }
        decoder_model = r.flag()?;
        if decoder_model {
            buffer_delay_bits = r.take(5)? + 1;
            r.take(32)?;
            r.take(10)?;
        }
    }
    let initial_display_delay = r.flag()?;
    let points = r.take(5)? + 1;
    let mut first = None;
    for _ in 0..points {
        r.take(12)?;
        let idx = r.take(5)? as u8;
        let t = if idx > 7 { r.take(1)? as u8 } else { 0 };
        if decoder_model && r.flag()? {
            r.take(buffer_delay_bits)?;
            r.take(buffer_delay_bits)?;
            r.take(1)?;
        }
        if initial_display_delay && r.flag()? {
            r.take(4)?;
        }
        first.get_or_insert((idx, t));
    }
    first
}

/// Skips the frame size, frame ids and coding tools, up to `color_config`.
fn skip_to_color_config(r: &mut Bits, reduced: bool) -> Option<()> {
    let width_bits = r.take(4)? + 1;
    let height_bits = r.take(4)? + 1;
    r.take(width_bits)?;
    r.take(height_bits)?;
    if !reduced && r.flag()? {
        // frame_id_numbers_present: delta and additional id lengths.
        r.take(7)?;
    }
    // 128x128 superblocks, filter intra, intra edge filter.
    r.take(3)?;
    if !reduced {
        // interintra, masked compound, warped motion, dual filter.
        r.take(4)?;
        let order_hint = r.flag()?;
        if order_hint {
            // jnt_comp, ref_frame_mvs
            r.take(2)?;
        }
        let screen_content = if r.flag()? { 2 } else { r.take(1)? };
        if screen_content > 0 && !r.flag()? {
            r.take(1)?;
        }
        if order_hint {
            r.take(3)?;
        }
    }
    // superres, cdef, restoration
    r.take(3)?;
    Some(())
}

/// A most-significant-bit-first reader that fails past the end.
struct Bits<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Bits<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    fn take(&mut self, n: u32) -> Option<u32> {
        let mut value = 0u32;
        for _ in 0..n {
            let byte = *self.bytes.get(self.pos / 8)?;
            value = (value << 1) | u32::from(byte >> (7 - self.pos % 8) & 1);
            self.pos += 1;
        }
        Some(value)
    }

    fn flag(&mut self) -> Option<bool> {
        self.take(1).map(|b| b == 1)
    }

    fn uvlc(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while !self.flag()? {
            zeros += 1;
            if zeros >= 32 {
                return None;
            }
        }
        Some(self.take(zeros)? + ((1u32 << zeros) - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first OBUs SVT-AV1 1.4 wrote for 256x144 8-bit and 1280x720
    /// 10-bit (a temporal delimiter, then the sequence header).
    const SVT_144P: [u8; 15] = [
        0x12, 0x00, 0x0a, 0x0b, 0x00, 0x00, 0x00, 0x03, 0xbf, 0xfc, 0x79, 0xf7, 0xf2, 0x00, 0x80,
    ];
    const SVT_720P_10BIT: [u8; 15] = [
        0x12, 0x00, 0x0a, 0x0b, 0x00, 0x00, 0x00, 0x2d, 0x4c, 0xff, 0xb3, 0xcf, 0xbf, 0x94, 0x04,
    ];

    #[test]
    fn reads_svt_sequence_headers() {
        assert_eq!(
            av01_from_extradata(&SVT_144P).as_deref(),
            Some("av01.0.00M.08")
        );
        // Level 3.1 (seq_level_idx 5) for 720p30; 10 bits.
        assert_eq!(
            av01_from_extradata(&SVT_720P_10BIT).as_deref(),
            Some("av01.0.05M.10")
        );
    }

    #[test]
    fn reads_av1c() {
        let av1c = [0x81, 0x08, 0x0c, 0x00];
        assert_eq!(av01_from_extradata(&av1c).as_deref(), Some("av01.0.08M.08"));
        let high = [0x81, 0x4d, 0xc0, 0x00];
        assert_eq!(av01_from_extradata(&high).as_deref(), Some("av01.2.13H.10"));
    }

    #[test]
    fn truncated_or_foreign_av1_gives_none() {
        for n in 0..SVT_144P.len() - 1 {
            assert_eq!(av01_from_extradata(&SVT_144P[..n]), None, "first {n} bytes");
        }
        // A padding OBU only; an OBU claiming more bytes than there are.
        assert_eq!(av01_from_extradata(&[0x7a, 0x01, 0x00]), None);
        assert_eq!(av01_from_extradata(&[0x0a, 0x7f, 0x00]), None);
        assert_eq!(
            av01_from_extradata(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            None
        );
    }

    #[test]
    fn reads_annex_b_and_avcc() {
        let annex_b = [
            0, 0, 0, 1, 0x67, 0x4d, 0x40, 0x1e, 0xab, 0, 0, 1, 0x68, 0xce,
        ];
        assert_eq!(
            avc1_from_extradata(&annex_b).as_deref(),
            Some("avc1.4d401e")
        );
        let avcc = [1, 0x64, 0x00, 0x28, 0xff];
        assert_eq!(avc1_from_extradata(&avcc).as_deref(), Some("avc1.640028"));
    }

    #[test]
    fn garbage_gives_none() {
        for bad in [
            &[][..],
            &[0, 0, 1],
            &[0, 0, 1, 0x68, 1, 2, 3],
            &[1, 2],
            &[0, 0, 1, 0x67, 0x4d],
        ] {
            assert_eq!(avc1_from_extradata(bad), None, "{bad:?}");
        }
    }
}
