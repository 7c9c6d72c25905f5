//! The cache directory: a `file://` store layout the edge serves from as
//! it would from its own store, plus what the cache needs around it.
//!
//! ```text
//! <dir>/objects/ab/ab….ext       verified objects, as in a store
//! <dir>/modules/<m>/manifest.json manifests and modules/index.json, as fetched
//! <dir>/modules/….etag           the upstream's validator of each
//! <dir>/partial/ab….ext           objects being fetched (resumed from their length)
//! ```
//!
//! An object reaches `objects/` only whole, hashed to its key, fsynced and
//! renamed, so a crash at any moment leaves either nothing or a good object
//! there. At start the index of objects (sizes, for the budget, in order of
//! last use) is rebuilt from the directory; the last use survives restarts
//! as the file's modification time, refreshed at most hourly when the
//! object moves in the order (a hot object keeps its place: see `touch`).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use lowband_catalog::{ContentHash, ObjectKey};

/// A used object's modification time is refreshed when older than this.
const TOUCH_EVERY: Duration = Duration::from_secs(3600);
/// A used object already among the most recently used this share of the
/// order (1/4) keeps its place: a hot object costs one lookup per request,
/// and moves only after many others have.
const RECENT_SHARE: u64 = 4;
/// A partial file untouched this long is not worth resuming: removed at start.
const PARTIAL_KEPT: Duration = Duration::from_secs(7 * 24 * 3600);

/// Objects, their sizes and their order of use, within a byte budget.
pub struct CacheDir {
    root: PathBuf,
    budget: u64,
    lru: Mutex<Lru>,
}

/// Not a moka cache: the budget is in bytes of objects that may pass 4 GiB
/// (moka weighs an entry in `u32`), an eviction must delete the file and be
/// counted before `install` returns, and the order is rebuilt from the files'
/// modification times at start.
#[derive(Default)]
struct Lru {
    /// Size, place in `order`, and when its file's mtime was last set.
    entries: crate::bounded::KeyMap<Entry>,
    /// Least recently used first.
    order: BTreeMap<u64, ObjectKey>,
    next: u64,
    bytes: u64,
}

struct Entry {
    len: u64,
    tick: u64,
    touched: SystemTime,
}

impl Lru {
    fn insert(&mut self, key: ObjectKey, len: u64, touched: SystemTime) {
        self.remove(&key);
        let tick = self.next;
        self.next += 1;
        self.order.insert(tick, key.clone());
        self.bytes += len;
        self.entries.insert(key, Entry { len, tick, touched });
    }

    fn remove(&mut self, key: &ObjectKey) -> Option<u64> {
        let entry = self.entries.remove(key)?;
        self.order.remove(&entry.tick);
        self.bytes -= entry.len;
        Some(entry.len)
    }
}

/// What [`CacheDir::open`] found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    pub objects: u64,
    pub bytes: u64,
    /// Files in `objects/` that are no object (wrong name, not a file), and
    /// partial files older than a week: removed.
    pub removed: u64,
    /// Partial files kept to be resumed, and their bytes.
    pub partial: u64,
    pub partial_bytes: u64,
}

impl CacheDir {
    /// Opens (creating) the cache at `root` and rebuilds its index.
    pub fn open(root: &Path, budget: u64) -> io::Result<(Self, Scan)> {
        for sub in ["objects", "modules", "partial"] {
            fs::create_dir_all(root.join(sub)).map_err(|e| with_path(&e, &root.join(sub)))?;
        }
        let root = root.canonicalize().map_err(|e| with_path(&e, root))?;
        let mut found = Vec::new();
        let mut scan = Scan::default();
        let objects = root.join("objects");
        for shard in fs::read_dir(&objects).map_err(|e| with_path(&e, &objects))? {
            let shard = shard?;
            if !shard.file_type()?.is_dir() {
                remove_stray(&shard.path(), "not a cached object", &mut scan);
                continue;
            }
            for file in fs::read_dir(shard.path())? {
                let file = file?;
                let name = file.file_name();
                let key = name.to_str().and_then(|n| {
                    let key = ObjectKey::parse(&format!(
                        "objects/{}/{n}",
                        shard.file_name().to_string_lossy()
                    ))
                    .ok()?;
                    Some(key)
                });
                let meta = file.metadata()?;
                match key {
                    Some(key) if meta.is_file() => {
                        let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                        scan.objects += 1;
                        scan.bytes += meta.len();
                        found.push((modified, key, meta.len()));
                    }
                    _ => remove_stray(&file.path(), "not a cached object", &mut scan),
                }
            }
        }
        found.sort_by_key(|a| a.0);
        let partial = root.join("partial");
        for file in fs::read_dir(&partial).map_err(|e| with_path(&e, &partial))? {
            let file = file?;
            let meta = file.metadata()?;
            let age = meta
                .modified()
                .ok()
                .and_then(|m| SystemTime::now().duration_since(m).ok())
                .unwrap_or_default();
            if !meta.is_file() || age > PARTIAL_KEPT {
                remove_stray(
                    &file.path(),
                    "partial download older than a week",
                    &mut scan,
                );
            } else {
                scan.partial += 1;
                scan.partial_bytes += meta.len();
            }
        }
        let mut lru = Lru::default();
        for (modified, key, len) in found {
            lru.insert(key, len, modified);
        }
        let dir = Self {
            root,
            budget,
            lru: Mutex::new(lru),
        };
        Ok((dir, scan))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn budget(&self) -> u64 {
        self.budget
    }

    pub fn object_path(&self, key: &ObjectKey) -> PathBuf {
        self.root.join(key.to_string())
    }

    pub fn partial_path(&self, key: &ObjectKey) -> PathBuf {
        self.root
            .join("partial")
            .join(format!("{}.{}", key.hash(), key.ext()))
    }

    /// Objects and bytes held.
    pub fn usage(&self) -> (u64, u64) {
        self.lru
            .lock()
            .map(|l| (l.entries.len() as u64, l.bytes))
            .unwrap_or_default()
    }

    pub fn contains(&self, key: &ObjectKey) -> bool {
        self.lru.lock().is_ok_and(|l| l.entries.contains_key(key))
    }

    /// Marks `key` used now; an object another process put there is adopted.
    /// Returns the objects evicted to make room for an adopted one.
    pub fn touch(&self, key: &ObjectKey, len: u64) -> Vec<(ObjectKey, u64)> {
        let Ok(mut lru) = self.lru.lock() else {
            return Vec::new();
        };
        let recent = lru.next - (lru.entries.len() as u64).div_ceil(RECENT_SHARE);
        let held = lru.entries.get(key).map(|e| (e.len, e.tick, e.touched));
        if held.is_some_and(|(held_len, tick, _)| held_len == len && tick >= recent) {
            return Vec::new();
        }
        let now = SystemTime::now();
        // An adopted object (put there by another process) counts as touched now.
        let touched = held.map_or(now, |(_, _, touched)| touched);
        let refresh = now
            .duration_since(touched)
            .is_ok_and(|age| age >= TOUCH_EVERY);
        lru.insert(key.clone(), len, if refresh { now } else { touched });
        let evicted = self.evict(&mut lru, Some(key));
        drop(lru);
        if refresh {
            let path = self.object_path(key);
            // The mtime carries the order of use across restarts; losing one is harmless.
            tokio::task::spawn_blocking(move || {
                let _ = File::options()
                    .write(true)
                    .open(path)
                    .and_then(|f| f.set_modified(SystemTime::now()));
            });
        }
        evicted
    }

    /// Moves a whole, verified, fsynced partial file into `objects/` as
    /// `key`, and evicts least recently used objects past the budget.
    pub fn install(
        &self,
        key: &ObjectKey,
        partial: &Path,
        len: u64,
    ) -> io::Result<Vec<(ObjectKey, u64)>> {
        let path = self.object_path(key);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| with_path(&e, parent))?;
        }
        fs::rename(partial, &path).map_err(|e| with_path(&e, partial))?;
        if let Some(parent) = path.parent() {
            sync_dir(parent)?;
        }
        let mut lru = self
            .lru
            .lock()
            .map_err(|_| io::Error::other("cache index poisoned"))?;
        lru.insert(key.clone(), len, SystemTime::now());
        Ok(self.evict(&mut lru, Some(key)))
    }

    /// Evicts down to the budget (after a restart with a smaller one).
    pub fn shrink(&self) -> Vec<(ObjectKey, u64)> {
        match self.lru.lock() {
            Ok(mut lru) => self.evict(&mut lru, None),
            Err(_) => Vec::new(),
        }
    }

    /// Evicts the least recently used objects (never `keep`) until within budget.
    fn evict(&self, lru: &mut Lru, keep: Option<&ObjectKey>) -> Vec<(ObjectKey, u64)> {
        let mut evicted = Vec::new();
        while lru.bytes > self.budget {
            let victim = lru.order.values().find(|k| Some(*k) != keep).cloned();
            let Some(victim) = victim else { break };
            let len = lru.remove(&victim).unwrap_or(0);
            let path = self.object_path(&victim);
            if let Err(e) = fs::remove_file(&path) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), error = %e, "cannot evict");
                }
            }
            evicted.push((victim, len));
        }
        evicted
    }

    /// Drops `key` from the cache (a failed verification).
    pub fn remove(&self, key: &ObjectKey) {
        if let Ok(mut lru) = self.lru.lock() {
            lru.remove(key);
        }
        let _ = fs::remove_file(self.object_path(key));
    }

    /// A stored document (manifest or index) and its upstream validator.
    pub fn read_doc(&self, key: &str) -> Option<(Bytes, Option<String>)> {
        let bytes = fs::read(self.root.join(key)).ok()?;
        let etag = fs::read_to_string(self.root.join(format!("{key}.etag")))
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty());
        Some((Bytes::from(bytes), etag))
    }

    /// Stores a document, durably. Its old validator goes first, so a crash
    /// in between never pairs new bytes' validator with old bytes.
    pub fn write_doc(&self, key: &str, bytes: &[u8], etag: Option<&str>) -> io::Result<()> {
        let path = self.root.join(key);
        let etag_path = self.root.join(format!("{key}.etag"));
        remove_if_present(&etag_path)?;
        write_atomic(&path, bytes)?;
        if let Some(etag) = etag {
            write_atomic(&etag_path, etag.as_bytes())?;
        }
        Ok(())
    }

    pub fn remove_doc(&self, key: &str) -> io::Result<()> {
        remove_if_present(&self.root.join(format!("{key}.etag")))?;
        remove_if_present(&self.root.join(key))
    }
}

/// Hashes the file at `path`; true when it holds what `key` names.
pub fn verify(path: &Path, key: &ObjectKey) -> io::Result<bool> {
    Ok(ContentHash::of_file(path)?.0 == key.hash())
}

/// Writes `bytes` to `path` through a temporary file, fsynced, then renamed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let parent = path
        .parent()
        .ok_or_else(|| io::Error::other(format!("{}: no parent directory", path.display())))?;
    fs::create_dir_all(parent).map_err(|e| with_path(&e, parent))?;
    let mut tmp = tempfile::NamedTempFile::new_in(parent).map_err(|e| with_path(&e, parent))?;
    io::Write::write_all(&mut tmp, bytes).map_err(|e| with_path(&e, path))?;
    tmp.as_file().sync_all().map_err(|e| with_path(&e, path))?;
    tmp.persist(path).map_err(|e| with_path(&e.error, path))?;
    sync_dir(parent)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| with_path(&e, dir))
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(with_path(&e, path)),
        _ => Ok(()),
    }
}

fn remove_stray(path: &Path, why: &str, scan: &mut Scan) {
    tracing::warn!(path = %path.display(), "{why}: removed");
    let removed = if path.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    if removed.is_ok() {
        scan.removed += 1;
    }
}

/// The error with the path it concerns.
pub fn with_path(e: &io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(dir: &CacheDir, bytes: &[u8]) -> ObjectKey {
        let key = ObjectKey::for_bytes(bytes, "bin");
        let partial = dir.partial_path(&key);
        fs::write(&partial, bytes).unwrap();
        dir.install(&key, &partial, bytes.len() as u64).unwrap();
        key
    }

    #[test]
    fn least_recently_used_objects_go_first_and_the_index_survives_reopening() {
        let tmp = tempfile::tempdir().unwrap();
        let (dir, scan) = CacheDir::open(tmp.path(), 250).unwrap();
        assert_eq!(scan, Scan::default());
        let a = put(&dir, &[1; 100]);
        let b = put(&dir, &[2; 100]);
        dir.touch(&a, 100);
        let c = put(&dir, &[3; 100]);
        assert!(dir.contains(&a) && dir.contains(&c));
        assert!(!dir.contains(&b), "b was least recently used");
        assert!(!dir.object_path(&b).exists());
        assert_eq!(dir.usage(), (2, 200));
        drop(dir);

        let (dir, scan) = CacheDir::open(tmp.path(), 250).unwrap();
        assert_eq!((scan.objects, scan.bytes), (2, 200));
        assert!(dir.contains(&a) && dir.contains(&c));
        assert!(verify(&dir.object_path(&a), &a).unwrap());
    }

    #[test]
    fn strays_in_objects_are_removed_at_start() {
        let tmp = tempfile::tempdir().unwrap();
        let shard = tmp.path().join("objects/zz");
        fs::create_dir_all(&shard).unwrap();
        fs::write(shard.join("not-a-key.mp4"), b"x").unwrap();
        fs::write(tmp.path().join("objects/loose"), b"x").unwrap();
        let (dir, scan) = CacheDir::open(tmp.path(), 1000).unwrap();
        assert_eq!(scan.removed, 2);
        assert_eq!(dir.usage(), (0, 0));
    }

    #[test]
    fn an_object_larger_than_the_budget_evicts_the_rest_but_stays() {
        let tmp = tempfile::tempdir().unwrap();
        let (dir, _) = CacheDir::open(tmp.path(), 150).unwrap();
        let a = put(&dir, &[1; 100]);
        let big = put(&dir, &[2; 200]);
        assert!(!dir.contains(&a));
        assert!(dir.contains(&big));
    }

    #[test]
    fn documents_keep_their_validator_and_lose_it_with_them() {
        let tmp = tempfile::tempdir().unwrap();
        let (dir, _) = CacheDir::open(tmp.path(), 1000).unwrap();
        dir.write_doc("modules/m1/manifest.json", b"{}", Some("\"abc\""))
            .unwrap();
        let (bytes, etag) = dir.read_doc("modules/m1/manifest.json").unwrap();
        assert_eq!((&bytes[..], etag.as_deref()), (&b"{}"[..], Some("\"abc\"")));
        dir.write_doc("modules/m1/manifest.json", b"{ }", None)
            .unwrap();
        assert_eq!(dir.read_doc("modules/m1/manifest.json").unwrap().1, None);
        dir.remove_doc("modules/m1/manifest.json").unwrap();
        assert!(dir.read_doc("modules/m1/manifest.json").is_none());
    }
}
