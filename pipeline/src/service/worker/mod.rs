//! A queue worker: takes one job at a time from the shared consumer and runs
//! the same per-asset step as `lowband-pipeline ingest`
//! ([`crate::ingest::render_asset`]), or, for the module's last message,
//! [`crate::ingest::publish_module`] (see `steps`); `heartbeat` keeps the
//! job while it runs.
//!
//! A job is acknowledged only once its outputs are in the store. While it
//! works, the worker sends progress acks (so a long transcode keeps its job)
//! and writes its progress to the store (so the API can show it). A failed
//! attempt is handed back with a growing delay; after the last attempt
//! allowed the job goes to the dead-letter subject with its error, recorded
//! first where the API reads it. A worker that dies says nothing: its job
//! comes back to another worker after the ack wait, and every step is
//! repeatable (content-addressed objects, whole-object state writes,
//! deduplicated messages), so the module still completes and its manifest
//! is written once in effect.

mod heartbeat;
mod steps;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::message::Acker;
use async_nats::jetstream::AckKind;
use futures::StreamExt;
use lowband_catalog::Store;
use tokio::sync::watch;

use crate::ingest::Progress;
use crate::service::jobs::{self, AssetProgress, ProgressState};
use crate::service::queue::{DeadLetter, JobMessage, Queue, QueueError};
use heartbeat::Fraction;
use steps::JobFailure;

/// Tries at recording a job's state before handing the job back instead.
const RECORD_ATTEMPTS: u32 = 3;

/// How a worker treats its jobs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Silence after which the server hands a job to another worker.
    pub ack_wait: Duration,
    /// Attempts before a job goes to the dead-letter subject.
    pub max_attempts: i64,
    /// Delay before the second attempt; doubled for each further one (≤ 10 min).
    pub retry_backoff: Duration,
    /// How this worker names itself in progress and dead letters.
    pub id: String,
}

impl WorkerOptions {
    /// `host:pid`, unique among the workers of a cluster.
    pub fn default_id() -> String {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "worker".into());
        format!("{host}:{}", std::process::id())
    }

    fn backoff(&self, attempt: i64) -> Duration {
        let doublings = u32::try_from(attempt.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
        self.retry_backoff
            .saturating_mul(1 << doublings)
            .min(Duration::from_secs(600))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Runs until `stop` turns true (or its sender goes away). A job in hand
/// when that happens is handed back at once (`Nak` without delay), so another
/// worker takes it without waiting out the ack wait.
pub async fn run(
    store: Store,
    queue: Queue,
    options: WorkerOptions,
    mut stop: watch::Receiver<bool>,
) -> Result<(), WorkerError> {
    let consumer = queue.consumer(options.ack_wait).await?;
    let worker = Worker {
        store,
        queue,
        options,
        unrecorded: Mutex::new(HashMap::new()),
    };
    tracing::info!(worker = %worker.options.id, "waiting for jobs");
    while !*stop.borrow() {
        // One message at a time: a worker never holds a job it is not working on.
        let batch = tokio::select! {
            b = consumer.batch().max_messages(1).expires(Duration::from_secs(10)).messages() => b,
            _ = stop.changed() => break,
        };
        let mut batch = match batch {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "could not ask for a job; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        // A stop seen inside `handle` is not seen again by `changed`: check it.
        while !*stop.borrow() {
            let message = tokio::select! {
                m = batch.next() => m,
                _ = stop.changed() => break,
            };
            match message {
                None => break,
                Some(Ok(m)) => worker.handle(m, &mut stop).await,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "could not receive a job; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
    tracing::info!(worker = %worker.options.id, "stopped");
    Ok(())
}

struct Worker {
    store: Store,
    queue: Queue,
    options: WorkerOptions,
    /// Why jobs failed for good when the store would not take the record:
    /// the job was handed back, and when it returns past its attempts this
    /// is the reason recorded, not "the workers handling it stopped".
    unrecorded: Mutex<HashMap<JobMessage, String>>,
}

impl Worker {
    async fn handle(
        &self,
        message: async_nats::jetstream::Message,
        stop: &mut watch::Receiver<bool>,
    ) {
        let attempt = message.info().map_or(1, |i| i.delivered);
        let (message, acker) = message.split();
        let acker = Arc::new(acker);
        let job: JobMessage = match serde_json::from_slice(&message.payload) {
            Ok(j) => j,
            Err(source) => {
                let subject = message.subject.to_string();
                let error = JobFailure::Unreadable { subject, source }.to_string();
                self.give_up(None, None, error, attempt, &acker).await;
                return;
            }
        };
        let path = steps::asset_path(&self.store, &job).await;
        if attempt > self.options.max_attempts {
            let remembered = self.unrecorded.lock().ok().and_then(|mut m| m.remove(&job));
            let error = remembered.unwrap_or_else(|| {
                JobFailure::Vanished {
                    attempts: attempt - 1,
                }
                .to_string()
            });
            self.give_up(Some(job), path, error, attempt - 1, &acker)
                .await;
            return;
        }
        tracing::info!(worker = %self.options.id, ?job, attempt, "job started");
        match self.attempt(&job, attempt, &acker, stop).await {
            Some(result) => self.settle(job, path, attempt, result, &acker).await,
            None => {
                tracing::info!(worker = %self.options.id, ?job, "stopping; job handed back");
                let _ = acker.ack_with(AckKind::Nak(None)).await;
            }
        }
    }

    /// Works on the job with a heartbeat beside it; `None` when told to stop first.
    async fn attempt(
        &self,
        job: &JobMessage,
        attempt: i64,
        acker: &Arc<Acker>,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Result<(), JobFailure>> {
        let (fraction, watched) = watch::channel(0.0);
        let progress = match job {
            JobMessage::Asset { job, asset } => Some((
                jobs::progress_key(job, *asset),
                self.progress(ProgressState::Running, attempt, None),
            )),
            JobMessage::Finalize { .. } => None,
        };
        let heartbeat = tokio::spawn(heartbeat::heartbeat(
            Arc::clone(acker),
            self.store.clone(),
            progress,
            watched,
            self.options.ack_wait,
        ));
        let work = async {
            let (store, queue) = (&self.store, &self.queue);
            match job {
                JobMessage::Asset { job, asset } => {
                    let progress: Arc<dyn Progress> = Arc::new(Fraction(fraction));
                    steps::asset(store, queue, job, *asset, progress).await
                }
                JobMessage::Finalize { job } => steps::finalize(store, queue, job).await,
            }
        };
        let result = tokio::select! {
            r = work => Some(r),
            _ = stop.changed() => None,
        };
        heartbeat.abort();
        let _ = heartbeat.await;
        result
    }

    /// Acknowledges a job done, hands a failed one back for another try, or
    /// gives up on it after its last attempt.
    async fn settle(
        &self,
        job: JobMessage,
        path: Option<String>,
        attempt: i64,
        result: Result<(), JobFailure>,
        acker: &Acker,
    ) {
        let error = match result {
            Ok(()) => {
                tracing::info!(worker = %self.options.id, ?job, "job done");
                for _ in 0..3 {
                    match acker.double_ack().await {
                        Ok(()) => return,
                        Err(e) => tracing::warn!(?job, error = %e, "ack not confirmed; retrying"),
                    }
                }
                // Unacknowledged, the job comes back; its outputs are found and it ends at once.
                return;
            }
            Err(failure) => failure.to_string(),
        };
        if attempt >= self.options.max_attempts {
            self.give_up(Some(job), path, error, attempt, acker).await;
            return;
        }
        let delay = self.options.backoff(attempt);
        tracing::warn!(worker = %self.options.id, ?job, attempt, ?delay, %error, "job failed; will retry");
        if let JobMessage::Asset { job, asset } = &job {
            let p = self.progress(ProgressState::Retrying, attempt, Some(error));
            // Not fatal when it fails: the job comes back and is recorded then.
            self.record(&jobs::progress_key(job, *asset), &p).await;
        }
        if let Err(e) = acker.ack_with(AckKind::Nak(Some(delay))).await {
            tracing::warn!(error = %e, "nak not sent; the job comes back after the ack wait");
        }
    }

    /// Sends a job to the dead-letter subject, records why, and takes it off the queue.
    async fn give_up(
        &self,
        job: Option<JobMessage>,
        path: Option<String>,
        error: String,
        attempts: i64,
        acker: &Acker,
    ) {
        tracing::error!(worker = %self.options.id, ?job, attempts, %error, "job failed for good; dead-lettering");
        // The failure is recorded where the upload API reads the job's
        // state before the job leaves the queue: a job whose failure could
        // not be recorded is handed back rather than left showing
        // "running" forever.
        let recorded = match &job {
            Some(JobMessage::Asset { job, asset }) => {
                let p = self.progress(ProgressState::Failed, attempts, Some(error.clone()));
                self.record(&jobs::progress_key(job, *asset), &p).await
            }
            Some(JobMessage::Finalize { job }) => self.record(&jobs::failed_key(job), &error).await,
            None => true,
        };
        if !recorded {
            tracing::error!(
                ?job,
                "could not record the failure in the store; handing the job back"
            );
            if let (Some(job), Ok(mut remembered)) = (&job, self.unrecorded.lock()) {
                remembered.insert(job.clone(), error);
            }
            self.hand_back(acker).await;
            return;
        }
        let letter = DeadLetter {
            message: job.clone(),
            path,
            error,
            attempts,
            worker: self.options.id.clone(),
        };
        let job_id = job.as_ref().map_or("unreadable", |j| j.job());
        if let Err(e) = self.queue.dead_letter(job_id, &letter).await {
            // Keep the job: better tried again than lost without a trace.
            tracing::error!(error = %e, "could not dead-letter the job; handing it back");
            self.hand_back(acker).await;
            return;
        }
        if let Err(e) = acker.double_ack().await {
            // Recorded and dead-lettered already: a job that comes back
            // is past its attempts and ends in the same place.
            tracing::warn!(?job, error = %e, "ack of a dead-lettered job not confirmed");
        }
    }

    /// Hands a job back to come again after the retry backoff.
    async fn hand_back(&self, acker: &Acker) {
        if let Err(e) = acker
            .ack_with(AckKind::Nak(Some(self.options.retry_backoff)))
            .await
        {
            tracing::warn!(error = %e, "nak not sent; the job comes back after the ack wait");
        }
    }

    /// Writes a job's state to the store, trying three times; false when
    /// every try failed (each is logged).
    async fn record<T: serde::Serialize + Sync>(&self, key: &str, value: &T) -> bool {
        for attempt in 1..=RECORD_ATTEMPTS {
            match jobs::put_json(&self.store, key, value).await {
                Ok(()) => return true,
                Err(e) => {
                    tracing::warn!(key, attempt, error = %e, "could not record the job's state");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
            }
        }
        false
    }

    /// An asset's progress as this worker reports it, at the start.
    fn progress(&self, state: ProgressState, attempt: i64, error: Option<String>) -> AssetProgress {
        AssetProgress {
            state,
            fraction: 0.0,
            worker: self.options.id.clone(),
            pid: std::process::id(),
            attempt,
            error,
        }
    }
}
