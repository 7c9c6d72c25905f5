//! The edge's integration tests, one module per subject, in one test binary
//! (`cargo test -p lowband-edge --test it`, or one module with
//! `-- browser::`): the browser test needs the pipeline, so every test
//! binary of this crate links FFmpeg and every codec, and one is linked
//! instead of one per file. A new file directly under `tests/` would be a
//! binary of its own: add a module here instead.
//!
//! `no_ffmpeg` checks the `lowband-edge` binary, which links no FFmpeg
//! whatever this test binary links. Fixtures: `tests/data/` and
//! `tests/browser/`.

mod browser;
mod cache;
mod config;
mod http;
mod lesson;
mod netns;
mod no_ffmpeg;
mod redbot;
mod server;
mod support;
mod tracks;
