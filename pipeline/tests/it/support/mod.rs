//! What the pipeline's integration tests share: the fixtures and the sample
//! module on disk, a small module made from them, ingest with the default
//! profile, and reading back what ingest stored.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use lowband_catalog::{Manifest, ModuleId, Profile, Store};
use lowband_pipeline::{IngestError, IngestOptions, IngestReport, Silent};

/// A file under `tests/fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The repository's `samples/`, where the sample module is.
pub fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples")
}

/// A small module: a 2 s clip, a photo, a Khmer/English page.
pub fn small_module(root: &Path) -> PathBuf {
    let dir = root.join("fixture-module");
    std::fs::create_dir_all(dir.join("lessons")).unwrap();
    std::fs::create_dir_all(dir.join("img")).unwrap();
    std::fs::copy(fixture("tiny.mp4"), dir.join("lessons/tiny.mp4")).unwrap();
    std::fs::copy(fixture("tiny.jpg"), dir.join("img/tiny.jpg")).unwrap();
    std::fs::write(
        dir.join("module.toml"),
        "id = \"fixture\"\ntitle = \"ការសួរសំណួរ\"\nlanguage = \"km\"\n",
    )
    .unwrap();
    let page = format!(
        "<!doctype html><html lang=\"km\"><meta charset=\"utf-8\"><h1>ការសួរសំណួរល្អ</h1>{}<video src=\"lessons/tiny.mp4\"></video><img src=\"img/tiny.jpg\"></html>",
        "<p lang=\"en\">Ask open questions, then wait.</p><p>គ្រូល្អសួរសំណួរបើកចំហ។</p>".repeat(10)
    );
    std::fs::write(dir.join("index.html"), page).unwrap();
    dir
}

/// Ingests the module in `dir` into `store` with the built-in default profile.
pub async fn ingest(dir: &Path, store: &Store) -> Result<IngestReport, IngestError> {
    let options = IngestOptions {
        dir: dir.to_owned(),
        profile: Profile::builtin_default(),
        module_id: None,
    };
    lowband_pipeline::ingest(&options, store, Arc::new(Silent)).await
}

/// The manifest of module `id` in `store`; panics if it is not published.
pub async fn published(store: &Store, id: &str) -> Manifest {
    store
        .manifest(&ModuleId::parse(id).unwrap())
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("module {id} is not published"))
}

/// The bytes stored under `key`; panics if there are none.
pub async fn object(store: &Store, key: &str) -> Bytes {
    store
        .get_bytes(key)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no object {key}"))
}
