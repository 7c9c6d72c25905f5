//! Why an ingest step failed: each variant names the file and keeps its cause.

use std::path::PathBuf;

use lowband_catalog::StoreError;

use crate::discover::DiscoverError;
use crate::page::rewrite::RewriteError;
use crate::{image, video};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Discover(#[from] DiscoverError),
    #[error("{file}: {source}")]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: the file is empty")]
    Empty { file: PathBuf },
    #[error("{file}: {bytes} bytes, more than the {limit} allowed for this kind of file")]
    TooLarge {
        file: PathBuf,
        bytes: u64,
        limit: u64,
    },
    #[error("{file}: cannot create a work directory: {source}")]
    Workdir {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: the page is not valid UTF-8")]
    NotUtf8 {
        file: PathBuf,
        #[source]
        source: std::str::Utf8Error,
    },
    #[error("{file}: {source}")]
    Page {
        file: PathBuf,
        #[source]
        source: RewriteError,
    },
    #[error("{file}: subtitle stream {stream}: reading its WebVTT: {source}")]
    Captions {
        file: PathBuf,
        stream: usize,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: produced no renditions")]
    NoRenditions { file: PathBuf },
    #[error(transparent)]
    Video(#[from] video::VideoError),
    #[error(transparent)]
    Image(#[from] image::ImageError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{file}: the worker rendering it stopped: {}", stopped(.source))]
    Worker {
        file: PathBuf,
        #[source]
        source: tokio::task::JoinError,
    },
}

fn stopped(e: &tokio::task::JoinError) -> String {
    if e.is_panic() {
        "it panicked".into()
    } else {
        e.to_string()
    }
}
