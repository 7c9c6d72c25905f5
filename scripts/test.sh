#!/usr/bin/env bash
# Installs what is missing, checks formatting (cargo fmt) and lints (clippy,
# warnings as errors, during the build), and runs every test: unit, property and
# integration tests of all crates, against memory://, file:// and a real
# S3-compatible server (s3s-fs) that the store suite starts on loopback,
# the upload API and queue workers against a real nats-server (JetStream)
# that their tests start on loopback,
# and REDbot (HTTP lint) run on the edge over loopback; then every fuzz
# target of the edge's parsers briefly from its seed corpus (scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
export PATH="$HOME/.cargo/bin:$PATH"
export LOWBAND_REQUIRE_S3=1
export LOWBAND_REQUIRE_NATS=1
# One clean build: incremental state would only add gigabytes to a fresh clone's target dir.
export CARGO_INCREMENTAL=0
# Formatting first: it fails in seconds where the tests take minutes.
cargo fmt --all --check
# Clippy lints the workspace's crates (warnings as errors, with the workspace's
# [lints]) in the one build the tests use: clippy-driver compiles them in place
# of rustc. `cargo clippy` would be the same lints, but in a check pass of its
# own that checks every dependency again: 8 minutes more on a clean 2-core
# machine. CLIPPY_ARGS is how cargo-clippy hands its `-- -D warnings` to the driver.
export RUSTC_WORKSPACE_WRAPPER="$(command -v clippy-driver)"
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
cargo build --workspace --all-targets --locked
cargo test --workspace --all-targets --locked
unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS
scripts/fuzz.sh
