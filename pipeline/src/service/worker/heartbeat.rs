//! A running job's signs of life: progress acks, so the job stays with its
//! worker however long a transcode takes, and the asset's progress in the
//! store, where the upload API reads it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::message::Acker;
use async_nats::jetstream::AckKind;
use lowband_catalog::Store;
use tokio::sync::watch;

use crate::ingest::Progress;
use crate::service::jobs::{self, AssetProgress};

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
