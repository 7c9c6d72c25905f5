//! Finding a module's assets: what is in the directory and what each file is.
//!
//! The walk never follows symbolic links (a link could point anywhere on the
//! machine), skips hidden files, and gives every asset a logical path
//! (`lessons/intro.mp4`) that is how pages and URLs refer to it.

use std::path::{Path, PathBuf};

use lowband_catalog::manifest::{AssetKind, ModuleInfo};
use lowband_catalog::ModuleId;
use serde::Deserialize;

/// Files per module beyond which discovery refuses (a mistaken directory).
const MAX_ASSETS: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("{dir}: {reason}")]
    Dir { dir: PathBuf, reason: String },
    #[error("{file}: {reason}")]
    ModuleToml { file: PathBuf, reason: String },
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
    let dir_err = |reason: String| DiscoverError::Dir {
        dir: dir.to_owned(),
        reason,
    };
    let meta = std::fs::metadata(dir).map_err(|e| dir_err(e.to_string()))?;
    if !meta.is_dir() {
        return Err(dir_err("not a directory".into()));
    }
    let info = module_info(dir, module_id)?;

    let mut assets = Vec::new();
    let mut skipped = Vec::new();
    let walk = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name();
    for entry in walk {
        let entry = entry.map_err(|e| dir_err(e.to_string()))?;
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
        let bytes = entry.metadata().map_err(|e| dir_err(e.to_string()))?.len();
        let (kind, mime, ext) = classify(&path);
        assets.push(SourceAsset {
            path,
            file: entry.path().to_owned(),
            kind,
            mime,
            ext,
            bytes,
        });
        if assets.len() > MAX_ASSETS {
            return Err(dir_err(format!(
                "more than {MAX_ASSETS} files; is this the module directory?"
            )));
        }
    }
    if assets.is_empty() {
        return Err(dir_err("no files to publish".into()));
    }
    Ok(ModuleSource {
        dir: dir.to_owned(),
        info,
        assets,
        skipped,
    })
}

fn module_info(dir: &Path, module_id: Option<&str>) -> Result<ModuleInfo, DiscoverError> {
    let toml_path = dir.join("module.toml");
    let toml_err = |reason: String| DiscoverError::ModuleToml {
        file: toml_path.clone(),
        reason,
    };
    let parsed: ModuleToml = match std::fs::read_to_string(&toml_path) {
        Ok(text) => toml::from_str(&text).map_err(|e| toml_err(e.message().to_owned()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => ModuleToml::default(),
        Err(e) => return Err(toml_err(e.to_string())),
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
    let id = ModuleId::parse(&raw_id).map_err(|e| DiscoverError::Dir {
        dir: dir.to_owned(),
        reason: format!("{e} (taken from {from}; set `id` in module.toml or pass --module-id)"),
    })?;
    if let Some(lang) = &parsed.language {
        let ok = (2..=35).contains(&lang.len())
            && lang.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return Err(toml_err(format!(
                "language {lang:?} is not a BCP 47 tag such as \"km\" or \"en\""
            )));
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

/// Asset kind, MIME type and stored extension of a file, by its extension.
pub fn classify(path: &str) -> (AssetKind, &'static str, &'static str) {
    let ext = path
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    use AssetKind::*;
    match ext.as_str() {
        "mp4" | "m4v" => (Video, "video/mp4", "mp4"),
        "mov" => (Video, "video/quicktime", "mov"),
        "webm" => (Video, "video/webm", "webm"),
        "mkv" => (Video, "video/x-matroska", "mkv"),
        "avi" => (Video, "video/x-msvideo", "avi"),
        "mp3" => (Audio, "audio/mpeg", "mp3"),
        "wav" => (Audio, "audio/wav", "wav"),
        "m4a" => (Audio, "audio/mp4", "m4a"),
        "aac" => (Audio, "audio/aac", "aac"),
        "ogg" | "oga" => (Audio, "audio/ogg", "ogg"),
        "opus" => (Audio, "audio/ogg", "opus"),
        "flac" => (Audio, "audio/flac", "flac"),
        "jpg" | "jpeg" => (Image, "image/jpeg", "jpg"),
        "png" => (Image, "image/png", "png"),
        "webp" => (Image, "image/webp", "webp"),
        "gif" => (Image, "image/gif", "gif"),
        "html" | "htm" => (Page, "text/html; charset=utf-8", "html"),
        "css" => (File, "text/css; charset=utf-8", "css"),
        "js" | "mjs" => (File, "text/javascript; charset=utf-8", "js"),
        "json" => (File, "application/json", "json"),
        "vtt" => (File, "text/vtt; charset=utf-8", "vtt"),
        "srt" => (File, "application/x-subrip", "srt"),
        "txt" | "md" => (File, "text/plain; charset=utf-8", "txt"),
        "svg" => (File, "image/svg+xml", "svg"),
        "xml" => (File, "application/xml", "xml"),
        "pdf" => (File, "application/pdf", "pdf"),
        "woff2" => (File, "font/woff2", "woff2"),
        _ => (File, "application/octet-stream", "bin"),
    }
}

/// Whether a MIME type compresses well enough to precompress.
pub fn is_text(mime: &str) -> bool {
    mime.starts_with("text/")
        || ["application/json", "application/xml", "image/svg+xml"]
            .iter()
            .any(|m| mime.starts_with(m))
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
        assert_eq!(skipped, [".DS_Store", "passwd.txt"]);
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
