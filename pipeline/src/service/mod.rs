//! Ingest past one machine: the pieces `lowband-pipeline serve` and
//! `lowband-pipeline worker` are made of, in the order a module goes through them.
//!
//! ```text
//! author ──POST──▶ api ──▶ archive ──▶ discover ──▶ jobs (plan and sources in the store)
//!                                                    │
//!                               queue (NATS JetStream: one message per asset, one to finish)
//!                                                    │
//!                          worker ──▶ ingest::render_asset, then ingest::publish_module
//! ```
//!
//! [`api`] takes an author's upload (resumable, in parts) and hands the
//! archive to [`archive`], which checks every entry as it unpacks into a
//! fresh directory and refuses the whole archive at the first bad one; the
//! module found in it is planned as a job whose state [`jobs`] keeps in the
//! object store, so the API and every worker see the same thing without
//! talking to each other. [`queue`] carries one message per asset and one
//! to finish the module; a [`worker`] takes them one at a time and runs the
//! same steps as `lowband-pipeline ingest` (see [`ingest`](mod@crate::ingest)).

pub mod api;
pub mod archive;
pub mod jobs;
pub mod queue;
pub mod worker;
