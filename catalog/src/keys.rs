//! Names in the object store: content hashes, object keys and module ids.
//!
//! Objects are content-addressed (`objects/<h[0..2]>/<h>.<ext>`, `h` the
//! SHA-256 of the bytes) and therefore immutable: the same bytes are stored
//! once and a key never changes meaning. Module ids and keys arrive in URLs
//! and archives, so their parsers are strict and allocation-light.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not a SHA-256 hex digest: {0:?}")]
    Hash(String),
    #[error("not an object key (want objects/<2 hex>/<64 hex>.<ext>): {0:?}")]
    ObjectKey(String),
    #[error(
        "invalid module id {0:?}: use 1-64 characters of a-z, 0-9, '-', '_' or '.', starting with a letter or digit"
    )]
    ModuleId(String),
}

/// A SHA-256 digest, shown as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash([u8; 32]);

impl ContentHash {
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// Hashes a stream of chunks without holding them all.
    pub fn hasher() -> ContentHasher {
        ContentHasher(Sha256::new())
    }

    /// Hashes everything `reader` holds; also gives how many bytes that was.
    pub fn of_reader(reader: impl std::io::Read) -> std::io::Result<(Self, u64)> {
        let mut hasher = Self::hasher();
        let bytes = hasher.read_from(reader)?;
        Ok((hasher.finish(), bytes))
    }

    /// Hashes a file's bytes.
    pub fn of_file(path: &std::path::Path) -> std::io::Result<(Self, u64)> {
        Self::of_reader(std::fs::File::open(path)?)
    }

    pub fn to_hex(&self) -> String {
        self.hex_digits().to_owned()
    }

    /// The 64 hex digits, without allocating: the edge formats a key into
    /// its `ETag`, `Content-Location` and file path on every request, and
    /// `hex::encode` (a `char` iterator collected into a `String`) showed
    /// up at ~1.5% of its CPU.
    fn hex_digits(&self) -> HexDigits {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 64];
        for (pair, byte) in out.chunks_exact_mut(2).zip(self.0) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 0x0f)];
        }
        HexDigits(out)
    }
}

/// The digest written as 64 lowercase hex digits, checked and decoded in
/// one pass (every `/o/` request parses one).
fn decode_hex(digits: &[u8]) -> Option<ContentHash> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    if digits.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(ContentHash(out))
}

/// A digest's hex digits on the stack.
struct HexDigits([u8; 64]);

impl std::ops::Deref for HexDigits {
    type Target = str;
    fn deref(&self) -> &str {
        // Only ASCII hex digits are ever written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// Incremental form of [`ContentHash::of`].
pub struct ContentHasher(Sha256);

/// Bytes read from a file per hashing step: large enough that the read
/// calls cost nothing beside SHA-256, small enough to stay in L2.
const READ_CHUNK: usize = 256 * 1024;

impl ContentHasher {
    pub fn update(&mut self, chunk: &[u8]) {
        self.0.update(chunk);
    }

    /// Feeds everything `reader` holds (to its end) into the hash, in
    /// chunks; gives how many bytes that was.
    pub fn read_from(&mut self, reader: impl std::io::Read) -> std::io::Result<u64> {
        let mut reader = std::io::BufReader::with_capacity(READ_CHUNK, reader);
        std::io::copy(&mut reader, self)
    }

    pub fn finish(self) -> ContentHash {
        ContentHash(self.0.finalize().into())
    }
}

impl std::io::Write for ContentHasher {
    fn write(&mut self, chunk: &[u8]) -> std::io::Result<usize> {
        self.update(chunk);
        Ok(chunk.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex_digits())
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({})", self.to_hex())
    }
}

impl FromStr for ContentHash {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, KeyError> {
        decode_hex(s.as_bytes()).ok_or_else(|| KeyError::Hash(s.to_owned()))
    }
}

impl Serialize for ContentHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for ContentHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The store key of an immutable object: `objects/<h[0..2]>/<h>.<ext>`.
#[derive(Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct ObjectKey {
    hash: ContentHash,
    ext: Ext,
}

/// Longest extension accepted in a key; ours are at most `json`, `webm`, `m3u8`.
const MAX_EXT_LEN: usize = 8;

/// A key's extension, kept inline: a key is parsed from every `/o/` URL
/// and cloned into maps, and none of that should allocate. The bytes past
/// `len` are zero, so the derived order is the strings' order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Ext {
    bytes: [u8; MAX_EXT_LEN],
    len: u8,
}

impl Ext {
    /// `ext` when it is 1-8 lowercase ASCII letters or digits.
    fn new(ext: &str) -> Option<Self> {
        if !valid_ext(ext) {
            return None;
        }
        let mut bytes = [0u8; MAX_EXT_LEN];
        bytes[..ext.len()].copy_from_slice(ext.as_bytes());
        Some(Self {
            bytes,
            len: ext.len() as u8,
        })
    }

    fn as_str(&self) -> &str {
        // Only ASCII letters and digits are ever stored.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl fmt::Debug for Ext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl ObjectKey {
    /// The key the given bytes are stored under.
    pub fn for_bytes(bytes: &[u8], ext: &str) -> Self {
        Self::new(ContentHash::of(bytes), ext)
    }

    /// # Panics
    /// If `ext` is not 1-8 lowercase ASCII letters or digits: extensions come
    /// from code, never from input (input goes through [`ObjectKey::parse`]).
    pub fn new(hash: ContentHash, ext: &str) -> Self {
        let Some(ext) = Ext::new(ext) else {
            panic!("object extension {ext:?} is not 1-8 of [a-z0-9]");
        };
        Self { hash, ext }
    }

    pub fn hash(&self) -> ContentHash {
        self.hash
    }

    pub fn ext(&self) -> &str {
        self.ext.as_str()
    }

    /// Parses a key as written by [`fmt::Display`], refusing anything else.
    pub fn parse(s: &str) -> Result<Self, KeyError> {
        let bad = || KeyError::ObjectKey(s.chars().take(200).collect());
        // objects/ab/ab…(64 hex).ext, read by position: the shard, the
        // digest, the dot and then the extension.
        let rest = s.strip_prefix("objects/").ok_or_else(bad)?.as_bytes();
        if rest.len() < 2 + 1 + 64 + 1 || rest[2] != b'/' || rest[3 + 64] != b'.' {
            return Err(bad());
        }
        let hex = &rest[3..3 + 64];
        if rest[..2] != hex[..2] {
            return Err(bad());
        }
        let hash = decode_hex(hex).ok_or_else(bad)?;
        let ext = s.get(s.len() - (rest.len() - 68)..).and_then(Ext::new);
        Ok(Self {
            hash,
            ext: ext.ok_or_else(bad)?,
        })
    }
}

fn valid_ext(ext: &str) -> bool {
    (1..=MAX_EXT_LEN).contains(&ext.len())
        && ext
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = self.hash.hex_digits();
        write!(f, "objects/{}/{}.{}", &hex[..2], &*hex, self.ext.as_str())
    }
}

impl Serialize for ObjectKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ObjectKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A module's id: safe as a URL segment and as a store path segment.
#[derive(Clone, PartialEq, Eq, Hash, Debug, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ModuleId(String);

impl ModuleId {
    pub fn parse(s: &str) -> Result<Self, KeyError> {
        let ok = (1..=64).contains(&s.len())
            && s.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
            })
            && s.as_bytes()[0].is_ascii_alphanumeric()
            && !s.contains("..");
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(KeyError::ModuleId(s.chars().take(200).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `modules/<id>/manifest.json`
    pub fn manifest_key(&self) -> String {
        format!("modules/{}/manifest.json", self.0)
    }
}

impl fmt::Display for ModuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ModuleId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The key of the list of published modules.
pub const MODULE_INDEX_KEY: &str = "modules/index.json";

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_reader_hashes_like_its_bytes() {
        // Longer than one read chunk, so the hash spans several reads.
        let bytes: Vec<u8> = (0..READ_CHUNK * 2 + 17).map(|i| (i % 251) as u8).collect();
        let (hash, n) = ContentHash::of_reader(&bytes[..]).unwrap();
        assert_eq!((hash, n), (ContentHash::of(&bytes), bytes.len() as u64));
        let mut resumed = ContentHash::hasher();
        resumed.update(&bytes[..10]);
        assert_eq!(
            resumed.read_from(&bytes[10..]).unwrap(),
            bytes.len() as u64 - 10
        );
        assert_eq!(resumed.finish(), hash);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), &bytes).unwrap();
        assert_eq!(ContentHash::of_file(&dir.path().join("f")).unwrap().0, hash);
        assert!(ContentHash::of_file(&dir.path().join("absent")).is_err());
    }

    #[test]
    fn hashes_show_as_lowercase_hex_and_parse_back() {
        let hash = ContentHash::of(b"abc");
        let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(hash.to_hex(), hex);
        assert_eq!(hash.to_string(), hex);
        let key = ObjectKey::new(hash, "br");
        assert_eq!(key.to_string(), format!("objects/ba/{hex}.br"));
        assert_eq!(ObjectKey::parse(&key.to_string()).unwrap(), key);
    }

    #[test]
    fn key_layout_shards_by_hash_prefix() {
        let key = ObjectKey::for_bytes(b"hello", "mp4");
        let text = key.to_string();
        assert_eq!(
            text,
            "objects/2c/2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824.mp4"
        );
        assert_eq!(ObjectKey::parse(&text).unwrap(), key);
    }

    #[test]
    fn key_parser_refuses_lookalikes() {
        let good = ObjectKey::for_bytes(b"x", "webp").to_string();
        for bad in [
            "",
            "objects/",
            &good.replace("objects/", "object/"),
            &good.replace(".webp", ""),
            &good.replace(".webp", ".WEBP"),
            &good.replace(".webp", ".averyl0ngext"),
            &format!("{good}/../x"),
            &good.replacen(&good[8..10], "zz", 1),
            &good.replacen(&good[8..10], "00", 1),
            &good.replacen(&good[11..13], "AB", 1),
            &good.replace(".webp", ".wébp"),
            &good.replace(".webp", "."),
            &good.replace(".webp", "x.webp"),
            &good.replace(".webp", ".we/p"),
            &good[..good.len() - 6],
            &good.replacen('/', "//", 2),
            &format!("{}é{}", &good[..40], &good[41..]),
            "objects/2c/../../etc/passwd.txt",
        ] {
            assert!(ObjectKey::parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn module_ids() {
        for ok in ["intro", "teaching-questions", "m1.v2", "a_b"] {
            ModuleId::parse(ok).unwrap();
        }
        for bad in [
            "",
            "..",
            "a..b",
            ".hidden",
            "-x",
            "Upper",
            "a/b",
            "a b",
            "ក",
            &"a".repeat(65),
        ] {
            assert!(ModuleId::parse(bad).is_err(), "accepted {bad:?}");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,120}") {
            let _ = ObjectKey::parse(&s);
            let _ = ModuleId::parse(&s);
            let _ = s.parse::<ContentHash>();
        }

        /// Near-keys (right shape, wrong bytes anywhere): never a panic, and
        /// what is accepted is exactly what a key displays as.
        #[test]
        fn only_canonical_keys_parse(
            bytes in proptest::collection::vec(any::<u8>(), 0..8),
            at in 0usize..90,
            c in prop_oneof![any::<char>(), proptest::char::range('0', 'g'), Just('/'), Just('.')],
            insert in any::<bool>(),
        ) {
            let mut s = ObjectKey::for_bytes(&bytes, "webp").to_string();
            let at = s.char_indices().map(|(i, _)| i).nth(at).unwrap_or(s.len());
            if !insert && at < s.len() {
                s.remove(at);
            }
            s.insert(at, c);
            if let Ok(key) = ObjectKey::parse(&s) {
                prop_assert_eq!(key.to_string(), s);
            }
        }

        #[test]
        fn display_parse_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..64), ext in "[a-z0-9]{1,8}") {
            let key = ObjectKey::for_bytes(&bytes, &ext);
            prop_assert_eq!(ObjectKey::parse(&key.to_string()).unwrap(), key);
        }
    }
}
