//! The conformance oracle: what the ffmpeg CLI says about a source and
//! about each rung lowband made of it.
//!
//! Every generated source carries a white flash and a 1 kHz beep together
//! on one grid (see `make.sh`). A rung keeps picture and sound in sync when
//! each flash it shows has its beep within 40 ms; it keeps the source's
//! timing when it shows at least as many such pairs as the source does.

use std::path::Path;
use std::process::Command;

/// Luma above which a picture counts as the flash.
const FLASH_LUMA: f64 = 170.0;
/// Sample value (of 32767) above which sound counts as the beep.
const BEEP_LEVEL: i16 = 6000;
/// How long each beep sounds.
const BEEP_SECONDS: f64 = 0.2;
/// Rate the sound is analysed at.
const RATE: usize = 8000;

/// `ffprobe` entries of a file, as `key=value` lines.
pub fn probe(file: &Path, args: &[&str]) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(args)
        .args(["-of", "default=nw=1"])
        .arg(file)
        .output()
        .expect("ffprobe (scripts/install-deps.sh --test installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The first value of `key` in `ffprobe` output, as a number.
pub fn value(probed: &str, key: &str) -> Option<f64> {
    probed
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.trim().parse().ok())
}

/// Whether the ffmpeg CLI decodes every stream of `file` without an error.
pub fn decodes(file: &Path) -> Result<(), String> {
    // Subtitles have no null encoder: WebVTT is read and written again.
    let output: &[&str] = if file.extension().is_some_and(|e| e == "vtt") {
        &["-f", "webvtt", "-"]
    } else {
        &["-f", "null", "-"]
    };
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-xerror", "-i"])
        .arg(file)
        .args(["-map", "0"])
        .args(output)
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() && out.stderr.is_empty() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// Seconds the ffmpeg CLI's own transcode of `file` lasts: the longer of
/// its picture and its first sound, each transcoded alone (the time at the
/// end of its output). What "as long as the source" means.
pub fn cli_duration(file: &Path) -> Option<f64> {
    ["0:v:0", "0:a:0"]
        .iter()
        .filter_map(|map| {
            let out = Command::new("ffmpeg")
                .args(["-nostdin", "-v", "error", "-i"])
                .arg(file)
                .args(["-map", map, "-progress", "pipe:1", "-f", "null", "-"])
                .output()
                .ok()?;
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.strip_prefix("out_time_us="))
                .filter_map(|v| v.trim().parse::<f64>().ok())
                .next_back()
                .map(|us| us / 1e6)
        })
        .reduce(f64::max)
}

/// Mean luma of each picture of the first video stream, with its time.
pub fn lumas(file: &Path, filter: &str) -> Vec<(f64, f64)> {
    let chain = if filter.is_empty() {
        "signalstats,metadata=print:key=lavfi.signalstats.YAVG:file=-".to_owned()
    } else {
        format!("{filter},signalstats,metadata=print:key=lavfi.signalstats.YAVG:file=-")
    };
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args(["-map", "0:v:0", "-vf", &chain, "-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut at = None;
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(t) = line.split("pts_time:").nth(1) {
            at = t.split_whitespace().next().and_then(|t| t.parse().ok());
        } else if let Some(y) = line.strip_prefix("lavfi.signalstats.YAVG=") {
            if let (Some(t), Ok(y)) = (at, y.trim().parse()) {
                out.push((t, y));
            }
        }
    }
    out
}

/// Times at which the picture turns white.
pub fn flashes(file: &Path) -> Vec<f64> {
    let mut out = Vec::new();
    let mut dark = true;
    for (t, y) in lumas(file, "") {
        if y > FLASH_LUMA && dark {
            out.push(t);
        }
        dark = y <= FLASH_LUMA;
    }
    out
}

/// Times at which the beep starts in audio stream `stream` (0 = first),
/// on the file's own timeline (sound that starts late is padded from 0).
pub fn beeps(file: &Path, stream: usize) -> Vec<f64> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args([
            "-map",
            &format!("0:a:{stream}"),
            "-af",
            "aresample=async=1:first_pts=0",
            "-ac",
            "1",
            "-ar",
            &RATE.to_string(),
            "-f",
            "s16le",
            "-",
        ])
        .output()
        .expect("ffmpeg");
    let samples: Vec<i16> = out
        .stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    // A beep starts at a sample over the level after 0.3 s under it. The
    // one at the very start of the sound is timed from its end instead: an
    // AAC rung cuts the encoder's priming (up to 64 ms) from the start of
    // the sound, which shortens that beep without moving it.
    let quiet_before = RATE * 3 / 10;
    let mut out = Vec::new();
    let mut quiet = quiet_before;
    let mut first: Option<usize> = None;
    for (i, s) in samples.iter().enumerate() {
        if s.unsigned_abs() > BEEP_LEVEL.unsigned_abs() {
            if quiet >= quiet_before {
                out.push(i as f64 / RATE as f64);
                if out.len() == 1 && i < RATE / 10 {
                    first = Some(i);
                }
            }
            if let (Some(_), 1) = (first, out.len()) {
                // Still inside the first beep: its end so far.
                out[0] = ((i + 1) as f64 / RATE as f64 - BEEP_SECONDS).max(0.0);
            }
            quiet = 0;
        } else {
            quiet += 1;
        }
    }
    out
}

/// Flashes that have a beep within `within` seconds: (flash, beep - flash).
pub fn pairs(flashes: &[f64], beeps: &[f64], within: f64) -> Vec<(f64, f64)> {
    flashes
        .iter()
        .filter_map(|&f| {
            beeps
                .iter()
                .map(|&b| b - f)
                .min_by(|a, b| a.abs().total_cmp(&b.abs()))
                .filter(|d| d.abs() <= within)
                .map(|d| (f, d))
        })
        .collect()
}

/// Flashes with a beep somewhere near (within half a second): the grid
/// instants at which both picture and sound exist.
pub fn near_pairs(flashes: &[f64], beeps: &[f64]) -> usize {
    pairs(flashes, beeps, 0.5).len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_take_the_nearest_beep() {
        let p = pairs(&[0.0, 2.0, 4.0], &[0.01, 1.99, 2.2, 5.0], 0.04);
        assert_eq!(p.len(), 2);
        assert!((p[1].1 + 0.01).abs() < 1e-9);
    }
}
