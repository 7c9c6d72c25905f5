//! Store URLs and the typed operations both sides perform on a store.
//!
//! `file://<dir>` (the default; a bare path means the same), `memory://` (one
//! process, for tests) and `s3://<bucket>[/<prefix>]` (endpoint, region and
//! credentials from the usual `AWS_*` variables; a plain-HTTP endpoint is
//! allowed, for a local Garage or MinIO) all become an `Arc<dyn ObjectStore>`.
//! [`Store`] adds what lowband needs on top: content-addressed puts that skip
//! present objects, and manifests that are published last.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, ObjectStoreScheme, PutPayload};

use crate::keys::{ModuleId, ObjectKey, MODULE_INDEX_KEY};
use crate::manifest::{Manifest, ManifestError, ModuleIndex};

/// The default store of both binaries: a directory beside the working directory.
pub const DEFAULT_STORE_URL: &str = "file://.lowband/store";

/// Files larger than this are uploaded in parts instead of from one buffer.
const MULTIPART_THRESHOLD: usize = 8 << 20;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store URL {url:?}: {reason}{}", source.as_ref().map(|e| format!(": {e}")).unwrap_or_default())]
    Url {
        url: String,
        reason: String,
        // Boxed: object_store's error would make every StoreError (and
        // every error holding one) twice the size, for a start-up failure.
        source: Option<Box<object_store::Error>>,
    },
    #[error("store {store}: {key}: {source}")]
    Io {
        store: String,
        key: String,
        source: object_store::Error,
    },
    #[error("reading {path}: {source}")]
    LocalFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

impl StoreError {
    /// True when the store answered that the key does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Self::Io {
                source: object_store::Error::NotFound { .. },
                ..
            }
        )
    }
}

/// The directory of a `file://` URL or bare path. Parsed by hand, not as a
/// URL: the default (`file://.lowband/store`) is relative to the working
/// directory, which a `file:` URL cannot say.
fn local_path(url: &str) -> &FsPath {
    FsPath::new(url.strip_prefix("file://").unwrap_or(url))
}

/// Creates a store directory if needed; its absolute path.
fn open_dir(url: &str, dir: &FsPath) -> Result<PathBuf, StoreError> {
    let fail = |reason: String| StoreError::Url {
        url: url.to_owned(),
        reason,
        source: None,
    };
    if dir.as_os_str().is_empty() {
        return Err(fail("no directory".into()));
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
    dir.canonicalize()
        .map_err(|e| fail(format!("cannot resolve {}: {e}", dir.display())))
}

/// A store behind a URL object_store knows: its own parser recognises the
/// scheme and splits off the prefix; S3 (and S3-compatible servers such as
/// Garage or MinIO) is the one this build carries.
fn open_remote(url: &str) -> Result<Arc<dyn ObjectStore>, StoreError> {
    let fail = |reason: &str, source: Option<object_store::Error>| StoreError::Url {
        url: url.to_owned(),
        reason: reason.to_owned(),
        source: source.map(Box::new),
    };
    const KNOWN: &str = "use file://<dir>, s3://<bucket>[/<prefix>] or memory://";
    let parsed = url::Url::parse(url).map_err(|e| fail(&format!("{e}: {KNOWN}"), None))?;
    if parsed.scheme() == "s3" && parsed.host_str().is_none_or(str::is_empty) {
        return Err(fail("no bucket name (want s3://<bucket>[/<prefix>])", None));
    }
    let (scheme, prefix) = ObjectStoreScheme::parse(&parsed).map_err(|_| {
        fail(
            &format!("unknown scheme {:?}: {KNOWN}", parsed.scheme()),
            None,
        )
    })?;
    if scheme != ObjectStoreScheme::AmazonS3 || parsed.scheme() != "s3" {
        return Err(fail(
            &format!(
                "scheme {:?} is not supported by this build: {KNOWN}",
                parsed.scheme()
            ),
            None,
        ));
    }
    let mut builder = AmazonS3Builder::from_env().with_url(url);
    let endpoint = std::env::var("AWS_ENDPOINT_URL").or_else(|_| std::env::var("AWS_ENDPOINT"));
    if endpoint.is_ok_and(|e| e.starts_with("http://")) {
        builder = builder.with_allow_http(true);
    }
    let s3 = builder
        .build()
        .map_err(|e| fail("cannot configure S3 (see the AWS_* variables)", Some(e)))?;
    Ok(if prefix.as_ref().is_empty() {
        Arc::new(s3)
    } else {
        Arc::new(PrefixStore::new(s3, prefix))
    })
}

/// A store and its URL, with lowband's typed operations.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    url: String,
    /// The directory of a `file://` store, for readers that go straight to disk.
    local_dir: Option<PathBuf>,
}

impl Store {
    /// Opens a store from its URL (see the module documentation).
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let mut local_dir = None;
        let inner: Arc<dyn ObjectStore> = if url == "memory://" {
            Arc::new(InMemory::new())
        } else if url.starts_with("file://") || !url.contains("://") {
            let dir = local_path(url);
            local_dir = Some(open_dir(url, dir)?);
            let fs = LocalFileSystem::new_with_prefix(dir).map_err(|e| StoreError::Url {
                url: url.to_owned(),
                reason: "cannot open the directory".into(),
                source: Some(Box::new(e)),
            })?;
            Arc::new(fs.with_fsync(true))
        } else {
            open_remote(url)?
        };
        Ok(Self {
            inner,
            url: url.to_owned(),
            local_dir,
        })
    }

    /// Wraps an existing object store (tests, embedding).
    pub fn from_object_store(inner: Arc<dyn ObjectStore>, label: &str) -> Self {
        Self {
            inner,
            url: label.to_owned(),
            local_dir: None,
        }
    }

    /// The directory of a `file://` store: the object at key `k` is the file
    /// `<dir>/k`, as object_store's `LocalFileSystem` lays it out.
    pub fn local_dir(&self) -> Option<&FsPath> {
        self.local_dir.as_deref()
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn inner(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }

    fn io(&self, key: &str) -> impl FnOnce(object_store::Error) -> StoreError + '_ {
        let key = key.to_owned();
        move |source| StoreError::Io {
            store: self.url.clone(),
            key,
            source,
        }
    }

    /// Whether an object exists.
    pub async fn contains(&self, key: &ObjectKey) -> Result<bool, StoreError> {
        let path = Path::from(key.to_string());
        match self.inner.head(&path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.io(path.as_ref())(e)),
        }
    }

    /// Stores bytes under their content-addressed key unless already present.
    /// Returns the key and whether anything was uploaded.
    pub async fn put_object(
        &self,
        bytes: Bytes,
        ext: &str,
    ) -> Result<(ObjectKey, bool), StoreError> {
        let key = ObjectKey::for_bytes(&bytes, ext);
        if self.contains(&key).await? {
            return Ok((key, false));
        }
        let path = Path::from(key.to_string());
        self.inner
            .put(&path, PutPayload::from(bytes))
            .await
            .map_err(self.io(path.as_ref()))?;
        Ok((key, true))
    }

    /// Stores a local file under `key` (which the caller computed from its
    /// bytes) unless already present, streaming large files in parts so memory
    /// stays bounded. Returns whether anything was uploaded.
    pub async fn put_file(&self, key: &ObjectKey, file: &FsPath) -> Result<bool, StoreError> {
        self.put_file_at(&key.to_string(), file).await
    }

    /// [`Store::put_file`] under any key (uploads kept under `incoming/`).
    pub async fn put_file_at(&self, key: &str, file: &FsPath) -> Result<bool, StoreError> {
        let path = Path::from(key);
        match self.inner.head(&path).await {
            Ok(_) => return Ok(false),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(self.io(key)(e)),
        }
        let local = |source| StoreError::LocalFile {
            path: file.to_owned(),
            source,
        };
        let mut reader = tokio::fs::File::open(file).await.map_err(local)?;
        let len = reader.metadata().await.map_err(local)?.len();
        if len <= MULTIPART_THRESHOLD as u64 {
            let bytes = tokio::fs::read(file).await.map_err(local)?;
            self.inner
                .put(&path, PutPayload::from(bytes))
                .await
                .map_err(self.io(path.as_ref()))?;
            return Ok(true);
        }
        let mut writer =
            BufWriter::with_capacity(Arc::clone(&self.inner), path.clone(), MULTIPART_THRESHOLD);
        let copied = tokio::io::copy(&mut reader, &mut writer).await;
        let finished = match copied {
            Ok(_) => tokio::io::AsyncWriteExt::shutdown(&mut writer).await,
            Err(e) => Err(e),
        };
        if let Err(e) = finished {
            // Leave no half-written multipart upload behind.
            let _ = writer.abort().await;
            return Err(local(e));
        }
        Ok(true)
    }

    /// Reads a whole small object (manifests, indexes); `None` if absent.
    pub async fn get_bytes(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let path = Path::from(key);
        match self.inner.get(&path).await {
            Ok(result) => Ok(Some(result.bytes().await.map_err(self.io(key))?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.io(key)(e)),
        }
    }

    pub async fn manifest(&self, id: &ModuleId) -> Result<Option<Manifest>, StoreError> {
        let key = id.manifest_key();
        match self.get_bytes(&key).await? {
            Some(bytes) => Ok(Some(Manifest::from_json(&key, &bytes)?)),
            None => Ok(None),
        }
    }

    pub async fn index(&self) -> Result<ModuleIndex, StoreError> {
        match self.get_bytes(MODULE_INDEX_KEY).await? {
            Some(bytes) => Ok(ModuleIndex::from_json(MODULE_INDEX_KEY, &bytes)?),
            None => Ok(ModuleIndex::default()),
        }
    }

    /// Publishes a manifest, then lists it in the module index.
    ///
    /// The caller must have stored every object the manifest names: the
    /// manifest is one atomic put, so a reader sees either the previous
    /// manifest or this one, never one pointing at a missing object.
    pub async fn publish(&self, manifest: &Manifest) -> Result<(), StoreError> {
        let key = manifest.module.id.manifest_key();
        let path = Path::from(key.as_str());
        self.inner
            .put(&path, PutPayload::from(manifest.to_json()))
            .await
            .map_err(self.io(&key))?;
        let mut index = self.index().await?;
        index.upsert(manifest.summary());
        let path = Path::from(MODULE_INDEX_KEY);
        self.inner
            .put(&path, PutPayload::from(index.to_json()))
            .await
            .map_err(self.io(MODULE_INDEX_KEY))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        for (url, want) in [
            ("s3://", "no bucket"),
            ("ftp://host/x", "unknown scheme \"ftp\""),
            ("file://", "no directory"),
            (
                "gs://bucket/x",
                "scheme \"gs\" is not supported by this build",
            ),
            ("https://example.com/x", "scheme \"https\" is not supported"),
            ("s3://a b", "use file://"),
        ] {
            let e = Store::open(url).unwrap_err().to_string();
            assert!(e.contains(want), "{url}: {e}");
            assert!(e.contains(url), "{url}: {e}");
        }
    }

    #[test]
    fn file_url_and_bare_path_create_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a/store");
        Store::open(&format!("file://{}", a.display())).unwrap();
        assert!(a.is_dir());
        let b = dir.path().join("b");
        Store::open(b.to_str().unwrap()).unwrap();
        assert!(b.is_dir());
    }
}
