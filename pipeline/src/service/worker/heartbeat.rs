//! What a worker writes down about its jobs, where the upload API reads it:
//! each asset's progress while it runs (with the progress acks that keep the
//! job), its failure, and the dead letter of a job given up on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::message::Acker;
use async_nats::jetstream::AckKind;
use lowband_catalog::Store;
use tokio::sync::watch;

use super::Worker;
use crate::ingest::Progress;
use crate::service::jobs::{self, AssetProgress, ProgressState};
use crate::service::queue::{DeadLetter, JobMessage};

/// Tries at recording a job's state before handing the job back instead.
const RECORD_ATTEMPTS: u32 = 3;

impl Worker {
    /// Sends a job to the dead-letter subject, records why, and takes it off the queue.
    pub(super) async fn give_up(
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
    pub(super) async fn record<T: serde::Serialize + Sync>(&self, key: &str, value: &T) -> bool {
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
    pub(super) fn progress(
        &self,
        state: ProgressState,
        attempt: i64,
        error: Option<String>,
    ) -> AssetProgress {
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

/// Progress hooks that feed the heartbeat.
pub(super) struct Fraction(pub watch::Sender<f64>);

impl Progress for Fraction {
    fn asset_progress(&self, _path: &str, fraction: f64) {
        self.0.send_replace(fraction);
    }
}

/// While a job runs: a progress ack every third of the ack wait, and the
/// asset's progress in the store when it moved (at most once a second).
pub(super) async fn heartbeat(
    acker: Arc<Acker>,
    store: Store,
    progress: Option<(String, AssetProgress)>,
    mut fraction: watch::Receiver<f64>,
    ack_wait: Duration,
) {
    let ack_every = ack_wait / 3;
    let tick = ack_every.clamp(Duration::from_millis(100), Duration::from_secs(1));
    let mut last_ack = Instant::now();
    let mut written: Option<f64> = None;
    loop {
        if let Some((key, base)) = &progress {
            let f = *fraction.borrow_and_update();
            if written != Some(f) {
                let p = AssetProgress {
                    fraction: f,
                    ..base.clone()
                };
                if jobs::put_json(&store, key, &p).await.is_ok() {
                    written = Some(f);
                }
            }
        }
        if last_ack.elapsed() >= ack_every {
            if let Err(e) = acker.ack_with(AckKind::Progress).await {
                tracing::warn!(error = %e, "progress ack not sent");
            }
            last_ack = Instant::now();
        }
        tokio::time::sleep(tick).await;
    }
}
