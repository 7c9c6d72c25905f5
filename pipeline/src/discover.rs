//! Finding a module's assets: what is in the directory and what each file is.
//!
//! The walk never follows symbolic links (a link could point anywhere on the
//! machine), skips hidden files, and gives every asset a logical path
//! (`lessons/intro.mp4`) that is how pages and URLs refer to it.

use std::path::{Path, PathBuf};

use lowband_catalog::manifest::{AssetKind, ModuleInfo};
use lowband_catalog::media_type::{self, stored, MediaType};
use lowband_catalog::{KeyError, ModuleId};
use serde::Deserialize;

/// Files per module beyond which discovery refuses (a mistaken directory).
const MAX_ASSETS: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("{dir}: {source}")]
    Dir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{dir}: {source}")]
    Walk {
        dir: PathBuf,
        #[source]
        source: walkdir::Error,
    },
    #[error("{dir}: not a directory")]
    NotADirectory { dir: PathBuf },
    #[error("{dir}: more than {MAX_ASSETS} files; is this the module directory?")]
    TooManyFiles { dir: PathBuf },
    #[error("{dir}: no files to publish")]
    NoFiles { dir: PathBuf },
    #[error("{dir}: {source} (taken from {from}; set `id` in module.toml or pass --module-id)")]
    ModuleId {
        dir: PathBuf,
        /// Where the id came from: `--module-id`, `module.toml id` or the directory name.
        from: &'static str,
        #[source]
        source: KeyError,
    },
    #[error("{file}: {source}")]
    ReadModuleToml {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: {}", .source.message())]
    ModuleToml {
        file: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("{file}: language {language:?} is not a BCP 47 tag such as \"km\" or \"en\"")]
    Language { file: PathBuf, language: String },
}

/// The optional `module.toml` at the top of a module directory.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModuleToml {
    /// Module id; defaults to the directory name.
    id: Option<String>,
    /// Human title; defaults to the id.
    title: Option<String>,
    /// BCP 47 tag of the module's language.
    language: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SourceAsset {
    /// `/`-separated path inside the module.
    pub path: String,
    pub file: PathBuf,
    pub kind: AssetKind,
    pub mime: &'static str,
    /// Extension for objects stored as authored.
    pub ext: &'static str,
    pub bytes: u64,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Skipped {
    pub path: String,
    pub reason: String,
}

#[derive(Debug)]
pub struct ModuleSource {
    pub dir: PathBuf,
    pub info: ModuleInfo,
    pub assets: Vec<SourceAsset>,
    pub skipped: Vec<Skipped>,
}

/// Walks `dir` and classifies its files. `module_id` overrides `module.toml`.
pub fn discover(dir: &Path, module_id: Option<&str>) -> Result<ModuleSource, DiscoverError> {
    let meta = std::fs::metadata(dir).map_err(|source| DiscoverError::Dir {
        dir: dir.to_owned(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(DiscoverError::NotADirectory {
            dir: dir.to_owned(),
        });
    }
    let info = module_info(dir, module_id)?;

    let mut assets = Vec::new();
    let mut skipped = Vec::new();
    let walk = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name();
    let walk_err = |source| DiscoverError::Walk {
        dir: dir.to_owned(),
        source,
    };
    let mut walk = walk.into_iter();
    while let Some(entry) = walk.next() {
        let entry = entry.map_err(walk_err)?;
        let rel = entry.path().strip_prefix(dir).unwrap_or(entry.path());
        let Some(path) = logical_path(rel) else {
            skipped.push(Skipped {
                path: rel.display().to_string(),
                reason: "name is not valid UTF-8".into(),
            });
            continue;
        };
        let name = entry.file_name().to_string_lossy();
        if name.starts_with('.') {
            // Nor anything inside: `.git/config` is no lesson either.
            if entry.file_type().is_dir() {
                walk.skip_current_dir();
            }
            skipped.push(Skipped {
                path,
                reason: "hidden".into(),
            });
            continue;
        }
        let kind = entry.file_type();
        if kind.is_symlink() {
            skipped.push(Skipped {
                path,
                reason: "symbolic link (not followed)".into(),
            });
            continue;
        }
        if !kind.is_file() || path == "module.toml" {
            continue;
        }
        let bytes = entry.metadata().map_err(walk_err)?.len();
        assets.push(SourceAsset::new(path, entry.path().to_owned(), bytes));
        if assets.len() > MAX_ASSETS {
            return Err(DiscoverError::TooManyFiles {
                dir: dir.to_owned(),
            });
        }
    }
    if assets.is_empty() {
        return Err(DiscoverError::NoFiles {
            dir: dir.to_owned(),
        });
    }
    Ok(ModuleSource {
        dir: dir.to_owned(),
        info,
        assets,
        skipped,
    })
}

impl SourceAsset {
    /// The file `file`, known in the module as `path`, classified by its
    /// extension; a name that says no more than "a file" is checked by its
    /// first bytes too, since a video or audio file is never published as a
    /// plain download, whatever its name says (`.ts` is also TypeScript's).
    pub fn new(path: String, file: PathBuf, bytes: u64) -> Self {
        let class = class_of(&path, || sniff_file(&file));
        Self::classed(path, file, bytes, class)
    }

    /// As [`SourceAsset::new`], for a file whose first bytes (at least
    /// [`SNIFF_BYTES`], or all of it) are in hand: a queue worker's fetched
    /// copy, classified as discovery classified the upload.
    pub fn with_head(path: String, file: PathBuf, bytes: u64, head: &[u8]) -> Self {
        let class = class_of(&path, || sniff(head));
        Self::classed(path, file, bytes, class)
    }

    fn classed(path: String, file: PathBuf, bytes: u64, class: MediaType) -> Self {
        let MediaType { kind, mime, ext } = class;
        Self {
            path,
            file,
            kind,
            mime,
            ext,
            bytes,
        }
    }
}

/// A file's type by its name; a name that says no more than "a file" is
/// checked by its first bytes too.
fn class_of(path: &str, sniff: impl FnOnce() -> Option<MediaType>) -> MediaType {
    let class = media_type::of_name(path);
    if class.kind == AssetKind::File {
        sniff().unwrap_or(class)
    } else {
        class
    }
}

fn module_info(dir: &Path, module_id: Option<&str>) -> Result<ModuleInfo, DiscoverError> {
    let file = dir.join("module.toml");
    let parsed: ModuleToml = match std::fs::read_to_string(&file) {
        Ok(text) => toml::from_str(&text).map_err(|source| DiscoverError::ModuleToml {
            file: file.clone(),
            source,
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => ModuleToml::default(),
        Err(source) => return Err(DiscoverError::ReadModuleToml { file, source }),
    };
    let dir_name = dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_lowercase()))
        .unwrap_or_default();
    let (raw_id, from) = match (module_id, &parsed.id) {
        (Some(id), _) => (id.to_owned(), "--module-id"),
        (None, Some(id)) => (id.clone(), "module.toml id"),
        (None, None) => (dir_name, "the directory name"),
    };
    let id = ModuleId::parse(&raw_id).map_err(|source| DiscoverError::ModuleId {
        dir: dir.to_owned(),
        from,
        source,
    })?;
    if let Some(language) = &parsed.language {
        let ok = (2..=35).contains(&language.len())
            && language
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return Err(DiscoverError::Language {
                file,
                language: language.clone(),
            });
        }
    }
    let title = parsed.title.unwrap_or_else(|| id.to_string());
    Ok(ModuleInfo {
        id,
        title,
        language: parsed.language,
    })
}

fn logical_path(rel: &Path) -> Option<String> {
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    Some(parts?.join("/"))
}

/// Bytes read from a file to recognise media by its content.
pub const SNIFF_BYTES: usize = 4096;

fn sniff_file(file: &Path) -> Option<MediaType> {
    use std::io::Read;
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    std::fs::File::open(file)
        .ok()?
        .take(SNIFF_BYTES as u64)
        .read_to_end(&mut head)
        .ok()?;
    sniff(&head)
}

/// Recognises audio and video containers by their first bytes: the
/// signatures FFmpeg's own probes look for.
pub fn sniff(head: &[u8]) -> Option<MediaType> {
    let at = |i: usize, magic: &[u8]| head.get(i..i + magic.len()) == Some(magic);
    if at(4, b"ftyp") {
        let brand = head.get(8..12)?;
        return match brand {
            // HEIF still images (AVIF, HEIC) are ISO files too, but not media.
            b"avif" | b"avis" | b"heic" | b"heix" | b"mif1" | b"msf1" => None,
            b"M4A " | b"M4B " => Some(stored("m4a")),
            b"3gp4" | b"3gp5" | b"3gp6" | b"3gp7" | b"3gs7" | b"3ge6" | b"3ge7" | b"3gg6" => {
                Some(stored("3gp"))
            }
            b"3g2a" | b"3g2b" | b"3g2c" => Some(stored("3g2")),
            b"qt  " => Some(stored("mov")),
            _ => Some(stored("mp4")),
        };
    }
    if [b"moov", b"mdat", b"wide", b"free"]
        .iter()
        .any(|m| at(4, *m))
    {
        return Some(stored("mov"));
    }
    if at(0, &[0x1A, 0x45, 0xDF, 0xA3]) {
        let webm = head.windows(4).take(64).any(|w| w == b"webm");
        return Some(if webm { stored("webm") } else { stored("mkv") });
    }
    // MPEG-TS packets are 188 bytes (192 in M2TS), each starting 0x47.
    for (start, size) in [(0usize, 188usize), (4, 192)] {
        if (0..4).all(|i| head.get(start + i * size) == Some(&0x47)) {
            return Some(stored("ts"));
        }
    }
    if at(0, b"FLV") {
        return Some(stored("flv"));
    }
    if at(0, b"OggS") {
        let video = head
            .windows(7)
            .any(|w| w == b"\x80theora" || &w[..6] == b"\x01video");
        return Some(if video {
            stored("ogv")
        } else if head.windows(8).any(|w| w == b"OpusHead") {
            stored("opus")
        } else {
            stored("ogg")
        });
    }
    if at(0, b"RIFF") && at(8, b"AVI ") {
        return Some(stored("avi"));
    }
    if at(0, b"RIFF") && at(8, b"WAVE") {
        return Some(stored("wav"));
    }
    if at(0, b"fLaC") {
        return Some(stored("flac"));
    }
    if at(0, b"ID3") {
        return Some(stored("mp3"));
    }
    // An MPEG audio or ADTS frame header: 11 (12) sync bits, then a layer
    // and rate that are valid; checked twice in a row to rule out chance.
    if let [0xFF, b1, b2, ..] = head {
        if b1 & 0xF6 == 0xF0 && b2 >> 2 & 0x0F != 0x0F {
            return Some(stored("aac"));
        }
        if b1 & 0xE0 == 0xE0 && b1 & 0x06 != 0 && b2 >> 4 != 0x0F && b2 >> 4 != 0 {
            return Some(stored("mp3"));
        }
    }
    if at(0, &[0x0B, 0x77]) {
        return Some(stored("ac3"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_and_skips() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("my-module");
        std::fs::create_dir_all(root.join("lessons")).unwrap();
        std::fs::write(root.join("index.html"), "<p>hi</p>").unwrap();
        std::fs::write(root.join("lessons/Intro.MP4"), "x").unwrap();
        std::fs::write(root.join(".DS_Store"), "x").unwrap();
        std::fs::create_dir_all(root.join(".git/objects")).unwrap();
        std::fs::write(root.join(".git/config"), "[core]").unwrap();
        std::fs::write(root.join(".git/objects/ab"), "x").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("passwd.txt")).unwrap();
        let m = discover(&root, None).unwrap();
        assert_eq!(m.info.id.as_str(), "my-module");
        let found: Vec<_> = m.assets.iter().map(|a| (a.path.as_str(), a.kind)).collect();
        assert_eq!(
            found,
            [
                ("index.html", AssetKind::Page),
                ("lessons/Intro.MP4", AssetKind::Video)
            ]
        );
        let skipped: Vec<_> = m.skipped.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(
            skipped,
            [".DS_Store", ".git", "passwd.txt"],
            "nothing under .git"
        );
    }

    #[test]
    fn media_is_recognised_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let mut ts = vec![0u8; 188 * 4];
        for i in 0..4 {
            ts[i * 188] = 0x47;
        }
        std::fs::write(dir.path().join("recorder.ts"), &ts).unwrap();
        std::fs::write(dir.path().join("app.ts"), "export const x: number = 1;\n").unwrap();
        std::fs::write(dir.path().join("phone.3gp"), b"\0\0\0\x18ftyp3gp4").unwrap();
        std::fs::write(
            dir.path().join("clip.bin"),
            b"\x1a\x45\xdf\xa3\x01\0\0\0webm",
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ftyp? no").unwrap();
        let m = discover(dir.path(), Some("m")).unwrap();
        let found: Vec<_> = m
            .assets
            .iter()
            .map(|a| (a.path.as_str(), a.kind, a.ext))
            .collect();
        assert_eq!(
            found,
            [
                ("app.ts", AssetKind::File, "bin"),
                ("clip.bin", AssetKind::Video, "webm"),
                ("notes.txt", AssetKind::File, "txt"),
                ("phone.3gp", AssetKind::Video, "3gp"),
                ("recorder.ts", AssetKind::Video, "ts"),
            ]
        );
        assert_eq!(
            sniff(b"RIFF\0\0\0\0WAVEfmt ").map(|m| (m.kind, m.mime, m.ext)),
            Some((AssetKind::Audio, "audio/wav", "wav"))
        );
        assert_eq!(
            sniff(b"ID3\x04").map(|m| (m.kind, m.mime, m.ext)),
            Some((AssetKind::Audio, "audio/mpeg", "mp3"))
        );
        assert_eq!(
            sniff(b"\0\0\0\x20ftypM4A ").map(|m| (m.kind, m.mime, m.ext)),
            Some((AssetKind::Audio, "audio/mp4", "m4a"))
        );
        assert_eq!(sniff(b"<html>"), None);
        // Still images in an ISO file (AVIF, HEIC) are not videos.
        for brand in ["avif", "heic", "mif1"] {
            let head = format!("\0\0\0\x20ftyp{brand}\0\0\0\0mif1");
            assert_eq!(sniff(head.as_bytes()), None, "{brand}");
        }
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn a_fetched_copy_is_classified_as_discovery_classified_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut ts = vec![0u8; 188 * 4];
        for i in 0..4 {
            ts[i * 188] = 0x47;
        }
        let cases: [(&str, &[u8]); 3] = [
            ("recorder.ts", &ts),
            ("app.ts", b"export const x: number = 1;\n"),
            ("index.html", b"<p>hi</p>"),
        ];
        for (name, bytes) in cases {
            let file = dir.path().join(name);
            std::fs::write(&file, bytes).unwrap();
            let found = SourceAsset::new(name.into(), file.clone(), bytes.len() as u64);
            let fetched = SourceAsset::with_head(name.into(), file, bytes.len() as u64, bytes);
            assert_eq!(
                (found.kind, found.mime, found.ext),
                (fetched.kind, fetched.mime, fetched.ext),
                "{name}"
            );
        }
        let ts = SourceAsset::with_head("recorder.ts".into(), "x".into(), 752, &ts);
        assert_eq!(ts.kind, AssetKind::Video);
    }

    #[test]
    fn module_toml_is_strict() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.html"), "x").unwrap();
        std::fs::write(
            dir.path().join("module.toml"),
            "id = \"m1\"\ntitle = \"T\"\nlanguage = \"km\"\n",
        )
        .unwrap();
        let m = discover(dir.path(), None).unwrap();
        assert_eq!(
            (
                m.info.id.as_str(),
                m.info.title.as_str(),
                m.info.language.as_deref()
            ),
            ("m1", "T", Some("km"))
        );
        assert_eq!(
            discover(dir.path(), Some("other"))
                .unwrap()
                .info
                .id
                .as_str(),
            "other"
        );

        std::fs::write(
            dir.path().join("module.toml"),
            "id = \"m1\"\ntitel = \"T\"\n",
        )
        .unwrap();
        let e = discover(dir.path(), None).unwrap_err().to_string();
        assert!(e.contains("module.toml") && e.contains("titel"), "{e}");

        std::fs::write(dir.path().join("module.toml"), "id = \"Bad Id\"\n").unwrap();
        let e = discover(dir.path(), None).unwrap_err().to_string();
        assert!(
            e.contains("invalid module id") && e.contains("--module-id"),
            "{e}"
        );
    }

    #[test]
    fn missing_and_empty_dirs_are_named() {
        let e = discover(Path::new("/no/such/module"), None)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/no/such/module: "), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let e = discover(dir.path(), Some("x")).unwrap_err().to_string();
        assert!(e.contains("no files"), "{e}");
    }
}
