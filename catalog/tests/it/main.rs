//! The catalog's integration tests, one module per subject, in one test
//! binary (`cargo test -p lowband-catalog --test it`). A new file directly
//! under `tests/` would be a binary of its own: add a module here instead.

mod store_suite;
