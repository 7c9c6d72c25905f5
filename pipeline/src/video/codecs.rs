//! RFC 6381 codec strings, read from what the encoder actually produced.

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

#[cfg(test)]
mod tests {
    use super::*;

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
