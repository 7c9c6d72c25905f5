//! The pipeline's integration tests, one module per subject, in one test
//! binary (`cargo test -p lowband-pipeline --test it`, or one module with
//! `-- media_inputs::`): each binary links FFmpeg and every codec, so one
//! is linked instead of one per file. A new file directly under `tests/`
//! would be a binary of its own: add a module here instead.
//!
//! Fixtures stay where they were: `tests/fixtures/`, `tests/corpus/` (the
//! conformance corpus's generator and oracle) and `../samples/`.

mod end_to_end;
mod images;
mod ingest;
mod media_inputs;
mod pages;
mod support;
mod workers;
