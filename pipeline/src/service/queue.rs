//! The job queue: NATS JetStream, at-least-once.
//!
//! Stream `LOWBAND_JOBS` (work-queue retention, file storage) holds one
//! message per asset on `lowband.jobs.asset` and one per module on
//! `lowband.jobs.finalize`; every message carries a `Nats-Msg-Id`, so a
//! message published twice within the duplicate window is stored once. All
//! workers share the durable pull consumer `workers`: a message goes to one
//! worker, comes back after the ack wait if that worker goes quiet (it sends
//! progress acks while it works), and leaves the stream when acknowledged.
//! Jobs that fail too often go, with their error, to `lowband.dead.<job>`,
//! kept by the stream `LOWBAND_DEAD` for an operator to read. A core-NATS
//! event on `lowband.events.published` tells who cares that a manifest went out.
//!
//! Only what nats-server 2.9 offers is used (no `filter_subjects`, no
//! per-message TTL).

use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, stream};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

pub const JOBS_STREAM: &str = "LOWBAND_JOBS";
pub const DEAD_STREAM: &str = "LOWBAND_DEAD";
pub const CONSUMER: &str = "workers";
pub const ASSET_SUBJECT: &str = "lowband.jobs.asset";
pub const FINALIZE_SUBJECT: &str = "lowband.jobs.finalize";
pub const DEAD_PREFIX: &str = "lowband.dead";
pub const PUBLISHED_SUBJECT: &str = "lowband.events.published";

/// How long a published message id is remembered for deduplication.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(600);
/// How long dead letters are kept.
const DEAD_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("NATS {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: async_nats::ConnectError,
    },
    #[error("NATS: {what}: {source}")]
    Nats {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl QueueError {
    fn nats(what: impl Into<String>, e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Nats {
            what: what.into(),
            source: Box::new(e),
        }
    }
}

/// One unit of queued work.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum JobMessage {
    /// Render asset `asset` (an index into the plan) of job `job`.
    Asset { job: String, asset: usize },
    /// Render the pages and publish the manifest of job `job`.
    Finalize { job: String },
}

impl JobMessage {
    pub fn job(&self) -> &str {
        match self {
            Self::Asset { job, .. } | Self::Finalize { job } => job,
        }
    }

    fn subject(&self) -> &'static str {
        match self {
            Self::Asset { .. } => ASSET_SUBJECT,
            Self::Finalize { .. } => FINALIZE_SUBJECT,
        }
    }

    /// The deduplication id: the same work always has the same id.
    fn message_id(&self) -> String {
        match self {
            Self::Asset { job, asset } => format!("{job}.asset.{asset}"),
            Self::Finalize { job } => format!("{job}.finalize"),
        }
    }
}

/// A job given up on, as published on `lowband.dead.<job>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadLetter {
    pub message: Option<JobMessage>,
    /// The asset's logical path, when the job was about one asset.
    pub path: Option<String>,
    pub error: String,
    pub attempts: i64,
    pub worker: String,
}

/// A connection to NATS with the job streams in place.
#[derive(Clone)]
pub struct Queue {
    client: async_nats::Client,
    js: jetstream::Context,
}

impl Queue {
    /// Connects and creates the streams if they do not exist yet.
    pub async fn connect(url: &str) -> Result<Self, QueueError> {
        install_tls_provider();
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(|source| QueueError::Connect {
                url: url.to_owned(),
                source,
            })?;
        let js = jetstream::new(client.clone());
        js.get_or_create_stream(stream::Config {
            name: JOBS_STREAM.into(),
            subjects: vec!["lowband.jobs.>".into()],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        })
        .await
        .map_err(|e| QueueError::nats(format!("stream {JOBS_STREAM}"), e))?;
        js.get_or_create_stream(stream::Config {
            name: DEAD_STREAM.into(),
            subjects: vec![format!("{DEAD_PREFIX}.>")],
            storage: stream::StorageType::File,
            max_age: DEAD_MAX_AGE,
            ..Default::default()
        })
        .await
        .map_err(|e| QueueError::nats(format!("stream {DEAD_STREAM}"), e))?;
        Ok(Self { client, js })
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    /// Publishes a job and waits until the stream has stored it (or found it
    /// a duplicate of one it already holds).
    pub async fn enqueue(&self, message: &JobMessage) -> Result<(), QueueError> {
        let payload = Bytes::from(serde_json::to_vec(message).unwrap_or_default());
        let publish = jetstream::message::PublishMessage::build()
            .payload(payload)
            .message_id(message.message_id());
        let what = || format!("enqueueing {}", message.message_id());
        self.js
            .send_publish(message.subject(), publish)
            .await
            .map_err(|e| QueueError::nats(what(), e))?
            .await
            .map_err(|e| QueueError::nats(what(), e))?;
        Ok(())
    }

    /// The workers' shared consumer; `ack_wait` is how long a worker may go
    /// without a sign of life before its job goes to another.
    pub async fn consumer(
        &self,
        ack_wait: Duration,
    ) -> Result<jetstream::consumer::PullConsumer, QueueError> {
        let stream = self
            .js
            .get_stream(JOBS_STREAM)
            .await
            .map_err(|e| QueueError::nats(format!("stream {JOBS_STREAM}"), e))?;
        stream
            .get_or_create_consumer(
                CONSUMER,
                pull::Config {
                    durable_name: Some(CONSUMER.into()),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait,
                    // Workers count attempts themselves and dead-letter the job;
                    // the server never drops one silently.
                    max_deliver: -1,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| QueueError::nats(format!("consumer {CONSUMER}"), e))
    }

    /// Publishes a dead letter and waits until it is stored.
    pub async fn dead_letter(&self, job: &str, letter: &DeadLetter) -> Result<(), QueueError> {
        let mut headers = async_nats::HeaderMap::new();
        let first_line = letter.error.lines().next().unwrap_or_default();
        headers.insert(
            "Lowband-Error",
            first_line.chars().take(500).collect::<String>().as_str(),
        );
        let payload = Bytes::from(serde_json::to_vec(letter).unwrap_or_default());
        let subject = format!("{DEAD_PREFIX}.{job}");
        self.js
            .publish_with_headers(subject.clone(), headers, payload)
            .await
            .map_err(|e| QueueError::nats(format!("publishing to {subject}"), e))?
            .await
            .map_err(|e| QueueError::nats(format!("publishing to {subject}"), e))?;
        Ok(())
    }

    /// Announces a published manifest (best effort: nothing depends on it).
    pub async fn announce_published(&self, job: &str, module: &str) {
        let body = serde_json::json!({ "job": job, "module": module });
        let payload = Bytes::from(body.to_string());
        if let Err(e) = self.client.publish(PUBLISHED_SUBJECT, payload).await {
            tracing::warn!(job, error = %e, "could not announce the published manifest");
        }
        let _ = self.client.flush().await;
    }
}

/// rustls panics on first use when more than one crypto provider is compiled
/// in (async-nats brings aws-lc-rs, the workspace ring) and none is chosen.
fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
