//! A finished output, and the rendition the manifest will list for it: its
//! kind, container, size and rate, the byte ranges HLS addresses, and what
//! was measured while it was encoded.

use std::io::BufReader;
use std::path::{Path, PathBuf};

use lowband_catalog::manifest::VariantKind;
use lowband_catalog::profile::RungMode;

use crate::fmp4::{self, Fmp4Error, FragmentIndex};
use crate::rendition::{Payload, Rendition};
use crate::video::error::VideoError;
use crate::video::plan::{Container, OutputPlan};

/// What a finished output measured.
#[derive(Debug, Clone)]
pub struct Finished {
    pub plan: OutputPlan,
    pub path: PathBuf,
    pub duration: f64,
    pub codecs: String,
    /// Mean SSIM of the picture against the source at the rung's size.
    pub ssim: Option<f64>,
}

/// How the manifest describes one kind of output.
struct Described {
    kind: VariantKind,
    ext: &'static str,
    mime: &'static str,
    width: Option<u32>,
    height: Option<u32>,
    fps: Option<f64>,
    mode: Option<String>,
}

impl Finished {
    /// The rendition of this output of `source`, whose picture and sound
    /// last `duration` seconds (when the decode measured it).
    pub fn into_rendition(
        self,
        source: &Path,
        duration: Option<f64>,
    ) -> Result<Rendition, VideoError> {
        let fragments = match self.plan.container() {
            Container::Mp4 => Some(index(&self.path).map_err(|e| VideoError::Fragments {
                file: source.to_owned(),
                rendition: self.plan.name().to_owned(),
                source: e,
            })?),
            Container::Webm => None,
        };
        let duration = duration.or((self.duration > 0.0).then_some(self.duration));
        let d = describe(&self.plan);
        Ok(Rendition {
            name: self.plan.name().to_owned(),
            kind: d.kind,
            tier: self.plan.tier().to_owned(),
            ext: d.ext,
            mime: d.mime.to_owned(),
            payload: Payload::File(self.path),
            codecs: Some(self.codecs),
            width: d.width,
            height: d.height,
            fps: d.fps,
            duration,
            encoding: None,
            fragments,
            mode: d.mode,
            ssim: self.ssim,
            first_load_bytes: None,
            alternate: match &self.plan {
                OutputPlan::Audio { slot, language, .. } if *slot > 0 => Some(language.clone()),
                _ => None,
            },
        })
    }
}

/// The byte ranges of the fragments of the MP4 at `path`.
fn index(path: &Path) -> Result<FragmentIndex, Fmp4Error> {
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    fmp4::index(BufReader::new(file), len)
}

fn describe(plan: &OutputPlan) -> Described {
    match plan {
        OutputPlan::Video(v) => Described {
            kind: VariantKind::Video,
            ext: "mp4",
            mime: "video/mp4",
            width: Some(v.width),
            height: Some(v.height),
            // A slides rung has a variable frame rate: its rate is a ceiling, not a cadence.
            fps: Some(f64::from(v.fps)),
            mode: (v.mode == RungMode::Slides).then(|| "slides".to_owned()),
        },
        OutputPlan::Audio { .. } => {
            let (ext, mime) = match plan.container() {
                Container::Webm => ("webm", "audio/webm"),
                Container::Mp4 => ("m4a", "audio/mp4"),
            };
            Described {
                kind: VariantKind::Audio,
                ext,
                mime,
                width: None,
                height: None,
                fps: None,
                mode: None,
            }
        }
    }
}
