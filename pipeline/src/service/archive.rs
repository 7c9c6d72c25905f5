//! Uploaded module archives (zip, tar, tar.gz): checked entry by entry and
//! unpacked into a fresh directory, or refused as a whole.
//!
//! An archive comes from an author's machine over the network, so nothing in
//! it is trusted: an entry with an absolute path, a `..` component, a link
//! (symbolic or hard), a device or any other non-regular type is refused, as
//! are more entries than allowed, more expanded bytes than allowed (counted
//! while writing, not taken from the sizes the archive declares), the same
//! path twice, and an archive that ends before its entries do. Files are
//! created with `create_new` under the destination only, and no link is ever
//! made, so no entry can write outside it. On any error the caller drops the
//! destination: nothing of a refused archive is used.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Bounds on what one archive may unpack to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Entries (files and directories) at most.
    pub max_entries: usize,
    /// Bytes of all files once unpacked, at most.
    pub max_expanded_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_entries: 10_000,
            max_expanded_bytes: 8 << 30,
        }
    }
}

/// Longest entry path accepted, in bytes, and deepest nesting.
const MAX_PATH_BYTES: usize = 1024;
const MAX_DEPTH: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("not a zip, tar or tar.gz archive")]
    UnknownFormat,
    #[error("the archive is damaged or truncated: {0}")]
    Zip(#[source] zip::result::ZipError),
    #[error("the archive is damaged or truncated: entry {index}: {source}")]
    ZipEntry {
        index: usize,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("the archive is damaged or truncated: {0}")]
    Tar(#[source] std::io::Error),
    #[error("the archive is damaged or truncated: entry {entry:?}: {source}")]
    Read {
        entry: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the archive is damaged or truncated: entry {entry:?} holds {copied} bytes, not the {declared} its header says")]
    SizeMismatch {
        entry: String,
        copied: u64,
        declared: u64,
    },
    #[error("entry {entry:?}: {reason}")]
    Entry { entry: String, reason: &'static str },
    #[error("entry {entry:?}: entries of type {kind} are not allowed")]
    EntryType { entry: String, kind: String },
    #[error("entry {entry:?}: {source}")]
    Create {
        entry: String,
        #[source]
        source: std::io::Error,
    },
    #[error("more than {0} entries")]
    TooManyEntries(usize),
    #[error("entry {entry:?}: the archive expands to more than {limit} bytes")]
    TooLarge { entry: String, limit: u64 },
    #[error("the archive has no files")]
    Empty,
    #[error("unpacking: {0}")]
    Io(#[from] std::io::Error),
}

impl ArchiveError {
    fn entry(entry: &str, reason: &'static str) -> Self {
        Self::Entry {
            entry: entry.to_owned(),
            reason,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Zip,
    Tar,
    TarGz,
}

/// What was unpacked.
#[derive(Debug)]
pub struct Unpacked {
    pub files: usize,
    pub bytes: u64,
}

/// Unpacks `archive` into `dest` (an empty directory), checking every entry.
pub fn unpack(archive: &Path, dest: &Path, limits: Limits) -> Result<Unpacked, ArchiveError> {
    let mut file = File::open(archive)?;
    let format = sniff(&mut file)?;
    let mut out = Writer {
        dest,
        limits,
        entries: 0,
        bytes: 0,
        files: 0,
        seen: HashSet::new(),
    };
    match format {
        Format::Zip => unpack_zip(file, &mut out)?,
        Format::Tar => unpack_tar(BufReader::new(file), &mut out)?,
        Format::TarGz => unpack_tar(flate2::read::GzDecoder::new(BufReader::new(file)), &mut out)?,
    }
    if out.files == 0 {
        return Err(ArchiveError::Empty);
    }
    Ok(Unpacked {
        files: out.files,
        bytes: out.bytes,
    })
}

fn sniff(file: &mut File) -> Result<Format, ArchiveError> {
    let mut head = [0u8; 512];
    let mut n = 0;
    while n < head.len() {
        let got = file.read(&mut head[n..])?;
        if got == 0 {
            break;
        }
        n += got;
    }
    file.seek(SeekFrom::Start(0))?;
    let head = &head[..n];
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        Ok(Format::Zip)
    } else if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Format::TarGz)
    } else if (head.len() >= 262 && &head[257..262] == b"ustar")
        || (head.len() == 512 && looks_like_v7_tar(head))
    {
        Ok(Format::Tar)
    } else {
        Err(ArchiveError::UnknownFormat)
    }
}

/// A pre-POSIX tar header has no magic; its checksum field still checks out.
fn looks_like_v7_tar(block: &[u8]) -> bool {
    let field = std::str::from_utf8(&block[148..156]).unwrap_or("");
    let Ok(stored) = u32::from_str_radix(field.trim_matches(|c: char| c == '\0' || c == ' '), 8)
    else {
        return false;
    };
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum();
    sum == stored
}

/// Writes checked entries under `dest` and keeps the running counts.
struct Writer<'a> {
    dest: &'a Path,
    limits: Limits,
    entries: usize,
    bytes: u64,
    files: usize,
    seen: HashSet<String>,
}

impl Writer<'_> {
    /// Checks an entry's name and counts it; returns where it goes.
    fn admit(&mut self, raw: &[u8]) -> Result<(String, PathBuf), ArchiveError> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(ArchiveError::TooManyEntries(self.limits.max_entries));
        }
        let shown = String::from_utf8_lossy(raw).into_owned();
        let name = std::str::from_utf8(raw)
            .map_err(|_| ArchiveError::entry(&shown, "the name is not valid UTF-8"))?;
        let relative = checked_path(name).map_err(|reason| ArchiveError::entry(name, reason))?;
        let key = relative.to_string_lossy().into_owned();
        if !self.seen.insert(key) {
            return Err(ArchiveError::entry(name, "appears twice in the archive"));
        }
        Ok((name.to_owned(), self.dest.join(relative)))
    }

    fn dir(&mut self, raw: &[u8]) -> Result<(), ArchiveError> {
        let (_, path) = self.admit(raw)?;
        std::fs::create_dir_all(path)?;
        Ok(())
    }

    /// Copies one file's bytes, counting them against the limit as they come.
    fn file(&mut self, raw: &[u8], declared: u64, data: &mut dyn Read) -> Result<(), ArchiveError> {
        let (name, path) = self.admit(raw)?;
        let limit = self.limits.max_expanded_bytes;
        let room = limit.saturating_sub(self.bytes);
        if declared > room {
            return Err(ArchiveError::TooLarge { entry: name, limit });
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|source| ArchiveError::Create {
                entry: name.clone(),
                source,
            })?;
        let copied =
            std::io::copy(&mut data.take(room.saturating_add(1)), &mut out).map_err(|source| {
                ArchiveError::Read {
                    entry: name.clone(),
                    source,
                }
            })?;
        if copied > room {
            return Err(ArchiveError::TooLarge { entry: name, limit });
        }
        if copied != declared {
            return Err(ArchiveError::SizeMismatch {
                entry: name,
                copied,
                declared,
            });
        }
        self.bytes += copied;
        self.files += 1;
        Ok(())
    }
}

/// An entry name as a relative path with only normal components, or why not.
fn checked_path(name: &str) -> Result<PathBuf, &'static str> {
    if name.is_empty() {
        return Err("the name is empty");
    }
    if name.len() > MAX_PATH_BYTES {
        return Err("the name is too long");
    }
    if name.contains('\0') {
        return Err("the name holds a NUL byte");
    }
    if name.starts_with('/') || name.starts_with('\\') {
        return Err("absolute path");
    }
    if name.contains('\\') {
        return Err("backslash in the path (a Windows path?)");
    }
    if name.as_bytes().get(1) == Some(&b':') {
        return Err("absolute path (drive letter)");
    }
    let mut out = PathBuf::new();
    let mut depth = 0;
    for part in name.split('/') {
        match part {
            "" | "." => continue,
            ".." => return Err("`..` in the path leaves the module"),
            p => {
                out.push(p);
                depth += 1;
            }
        }
    }
    if depth == 0 {
        return Err("the name has no file part");
    }
    if depth > MAX_DEPTH {
        return Err("nested too deep");
    }
    Ok(out)
}

fn unpack_zip(file: File, out: &mut Writer<'_>) -> Result<(), ArchiveError> {
    let mut zip = zip::ZipArchive::new(BufReader::new(file)).map_err(ArchiveError::Zip)?;
    if zip.len() > out.limits.max_entries {
        return Err(ArchiveError::TooManyEntries(out.limits.max_entries));
    }
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|source| ArchiveError::ZipEntry { index: i, source })?;
        let raw = entry.name_raw().to_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        if entry.is_symlink() {
            return Err(ArchiveError::entry(&name, "symbolic links are not allowed"));
        }
        if let Some(mode) = entry.unix_mode() {
            let kind = mode & 0o170000;
            if kind != 0 && kind != 0o100000 && kind != 0o040000 {
                return Err(ArchiveError::entry(
                    &name,
                    "not a regular file or directory",
                ));
            }
        }
        if entry.is_dir() {
            out.dir(&raw)?;
        } else {
            let declared = entry.size();
            out.file(&raw, declared, &mut entry)?;
        }
    }
    Ok(())
}

fn unpack_tar(reader: impl Read, out: &mut Writer<'_>) -> Result<(), ArchiveError> {
    use tar::EntryType;
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(ArchiveError::Tar)?;
    for entry in entries {
        let mut entry = entry.map_err(ArchiveError::Tar)?;
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        match entry.header().entry_type() {
            EntryType::Regular | EntryType::Continuous => {
                let declared = entry.size();
                out.file(&raw, declared, &mut entry)?;
            }
            EntryType::Directory => out.dir(&raw)?,
            // Metadata for the archive as a whole, not a file.
            EntryType::XGlobalHeader => {}
            EntryType::Symlink => {
                return Err(ArchiveError::entry(&name, "symbolic links are not allowed"))
            }
            EntryType::Link => {
                return Err(ArchiveError::entry(&name, "hard links are not allowed"))
            }
            other => {
                return Err(ArchiveError::EntryType {
                    entry: name,
                    kind: format!("{other:?}"),
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tar_of(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().unwrap()
    }

    fn header(kind: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h
    }

    /// Writes a raw name into a header, bypassing the tar crate's own checks
    /// (an attacker's tool has none).
    fn raw_named(kind: tar::EntryType, name: &str, data: &[u8]) -> Vec<u8> {
        let mut h = header(kind, data.len() as u64);
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        if kind == tar::EntryType::Symlink || kind == tar::EntryType::Link {
            h.set_link_name("/etc/passwd").unwrap();
        }
        h.set_cksum();
        tar_of(|b| b.append(&h, data).unwrap())
    }

    fn unpack_bytes(bytes: &[u8], limits: Limits) -> Result<Unpacked, ArchiveError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("upload");
        std::fs::write(&path, bytes).unwrap();
        let dest = dir.path().join("out");
        std::fs::create_dir(&dest).unwrap();
        unpack(&path, &dest, limits)
    }

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, data) in entries {
            w.start_file(*name, opts).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn good_archives_unpack() {
        let tar = tar_of(|b| {
            b.append_data(
                &mut header(tar::EntryType::Regular, 2),
                "m/index.html",
                &b"hi"[..],
            )
            .unwrap();
            b.append_data(
                &mut header(tar::EntryType::Regular, 1),
                "m/img/a.jpg",
                &b"x"[..],
            )
            .unwrap();
        });
        let u = unpack_bytes(&tar, Limits::default()).unwrap();
        assert_eq!((u.files, u.bytes), (2, 3));

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let u = unpack_bytes(&gz.finish().unwrap(), Limits::default()).unwrap();
        assert_eq!(u.files, 2);

        let zip = zip_of(&[("index.html", b"<p>hi"), ("lessons/a.mp4", b"xyz")]);
        let u = unpack_bytes(&zip, Limits::default()).unwrap();
        assert_eq!((u.files, u.bytes), (2, 8));
    }

    fn refused(bytes: &[u8], limits: Limits, want: &str) {
        let e = unpack_bytes(bytes, limits).unwrap_err().to_string();
        assert!(e.contains(want), "want {want:?} in {e:?}");
    }

    #[test]
    fn tar_path_escapes_and_links_are_refused() {
        use tar::EntryType::*;
        let d = Limits::default();
        refused(
            &raw_named(Regular, "/etc/cron.d/x", b"x"),
            d,
            "\"/etc/cron.d/x\": absolute path",
        );
        refused(
            &raw_named(Regular, "a/../../x", b"x"),
            d,
            "\"a/../../x\": `..`",
        );
        refused(&raw_named(Regular, "..\\x", b"x"), d, "backslash");
        refused(
            &raw_named(Symlink, "evil", b""),
            d,
            "\"evil\": symbolic links are not allowed",
        );
        refused(
            &raw_named(Link, "evil", b""),
            d,
            "\"evil\": hard links are not allowed",
        );
        refused(
            &raw_named(Char, "tty", b""),
            d,
            "\"tty\": entries of type Char",
        );
        refused(&raw_named(Fifo, "p", b""), d, "not allowed");
    }

    #[test]
    fn zip_path_escapes_and_links_are_refused() {
        let d = Limits::default();
        refused(
            &zip_of(&[("/abs.txt", b"x")]),
            d,
            "\"/abs.txt\": absolute path",
        );
        refused(&zip_of(&[("ok/../../up.txt", b"x")]), d, "`..`");
        refused(&zip_of(&[("C:/win.txt", b"x")]), d, "drive letter");

        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        w.add_symlink(
            "link",
            "/etc/passwd",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        refused(
            &w.finish().unwrap().into_inner(),
            d,
            "\"link\": symbolic links are not allowed",
        );
    }

    #[test]
    fn counts_and_sizes_are_bounded() {
        let few = Limits {
            max_entries: 3,
            max_expanded_bytes: 1 << 20,
        };
        let many: Vec<(String, Vec<u8>)> = (0..5)
            .map(|i| (format!("f{i}.txt"), b"x".to_vec()))
            .collect();
        let refs: Vec<(&str, &[u8])> = many
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        refused(&zip_of(&refs), few, "more than 3 entries");
        let tar = tar_of(|b| {
            for (n, d) in &many {
                b.append_data(&mut header(tar::EntryType::Regular, 1), n, d.as_slice())
                    .unwrap();
            }
        });
        refused(&tar, few, "more than 3 entries");

        // A zip bomb: 64 MiB of zeros deflate to ~64 KiB.
        let zeros = vec![0u8; 64 << 20];
        let bomb = zip_of(&[("zeros.bin", &zeros)]);
        assert!(bomb.len() < 1 << 20);
        refused(
            &bomb,
            few,
            "\"zeros.bin\": the archive expands to more than 1048576 bytes",
        );

        // The same bomb with its declared size forged small: caught while copying.
        let mut forged = bomb.clone();
        forge_zip_sizes(&mut forged, 10);
        let e = unpack_bytes(&forged, few).unwrap_err().to_string();
        assert!(e.contains("zeros.bin"), "{e}");

        let twice = tar_of(|b| {
            for name in ["a.txt", "./a.txt"] {
                b.append_data(&mut header(tar::EntryType::Regular, 1), name, &b"x"[..])
                    .unwrap();
            }
        });
        refused(&twice, Limits::default(), "\"a.txt\": appears twice");
    }

    /// Overwrites the uncompressed size in every local and central header.
    fn forge_zip_sizes(zip: &mut [u8], size: u32) {
        let mut i = 0;
        while i + 30 < zip.len() {
            if zip[i..].starts_with(b"PK\x03\x04") {
                zip[i + 22..i + 26].copy_from_slice(&size.to_le_bytes());
            } else if zip[i..].starts_with(b"PK\x01\x02") {
                zip[i + 24..i + 28].copy_from_slice(&size.to_le_bytes());
            }
            i += 1;
        }
    }

    #[test]
    fn truncated_and_foreign_archives_are_refused() {
        let d = Limits::default();
        let data = vec![7u8; 5000];
        let tar = tar_of(|b| {
            b.append_data(
                &mut header(tar::EntryType::Regular, 5000),
                "big.bin",
                data.as_slice(),
            )
            .unwrap();
        });
        refused(&tar[..2048], d, "truncated");
        let zip = zip_of(&[("a.txt", &data)]);
        refused(&zip[..zip.len() / 2], d, "damaged or truncated");
        refused(b"hello, world", d, "not a zip, tar or tar.gz");
        refused(&zip_of(&[]), d, "no files");
    }

    /// Everything under `dir`, as paths relative to it; none may be a link.
    fn tree(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for entry in walkdir::WalkDir::new(dir).min_depth(1) {
            let entry = entry.unwrap();
            assert!(!entry.path_is_symlink(), "{}", entry.path().display());
            out.push(entry.path().strip_prefix(dir).unwrap().to_owned());
        }
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

        /// Damaged archives (a valid tar and zip with bytes overwritten or cut)
        /// are refused or unpacked, never a panic, and nothing lands outside
        /// the destination or beyond the limits.
        #[test]
        fn damaged_archives_never_escape(
            zip in proptest::bool::ANY,
            edits in proptest::collection::vec((0usize..4096, proptest::num::u8::ANY), 0..8),
            cut in proptest::option::of(0usize..4096),
        ) {
            let mut bytes = if zip {
                zip_of(&[("m/index.html", b"<p>hello</p>"), ("m/img/a.jpg", &[7u8; 700]), ("m/deep/er/b.txt", b"b")])
            } else {
                tar_of(|b| {
                    for (name, data) in [("m/index.html", &b"<p>hello</p>"[..]), ("m/img/a.jpg", &[7u8; 700][..])] {
                        b.append_data(&mut header(tar::EntryType::Regular, data.len() as u64), name, data).unwrap();
                    }
                })
            };
            let len = bytes.len().max(1);
            for (at, byte) in edits {
                if let Some(b) = bytes.get_mut(at % len) {
                    *b = byte;
                }
            }
            if let Some(cut) = cut {
                bytes.truncate(cut % (bytes.len() + 1));
            }
            let limits = Limits { max_entries: 8, max_expanded_bytes: 4096 };
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("upload");
            std::fs::write(&path, &bytes).unwrap();
            let dest = dir.path().join("out");
            std::fs::create_dir(&dest).unwrap();
            let result = unpack(&path, &dest, limits);
            let outside: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
            proptest::prop_assert_eq!(outside.len(), 2, "{:?}", outside);
            let written = tree(&dest);
            proptest::prop_assert!(written.len() <= 3 * limits.max_entries);
            if let Ok(u) = result {
                proptest::prop_assert!(u.bytes <= limits.max_expanded_bytes);
            }
        }

        /// A name either is refused or becomes a path of plain components.
        #[test]
        fn checked_names_stay_inside(name in "[a-z./\\\\:\\x00]{0,24}") {
            if let Ok(p) = checked_path(&name) {
                for c in p.components() {
                    proptest::prop_assert!(matches!(c, std::path::Component::Normal(_)), "{name:?} → {p:?}");
                }
            }
        }
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(
            checked_path("./a//b.txt").unwrap(),
            PathBuf::from("a/b.txt")
        );
        for bad in ["", "/", "..", "a/..", "/x", "\\x", "a\0b", "c:x"] {
            assert!(checked_path(bad).is_err(), "{bad:?}");
        }
        assert!(checked_path(&"a/".repeat(40)).is_err());
    }
}
