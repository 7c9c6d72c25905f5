//! Helpers shared by the pipeline's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use lowband_catalog::{Profile, Store};
use lowband_pipeline::{IngestError, IngestOptions, IngestReport, Silent};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

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

pub async fn ingest(dir: &Path, store: &Store) -> Result<IngestReport, IngestError> {
    let options = IngestOptions {
        dir: dir.to_owned(),
        profile: Profile::builtin_default(),
        module_id: None,
    };
    lowband_pipeline::ingest(&options, store, Arc::new(Silent)).await
}
