//! Shared helpers for lowband benchmarks.
