//! `lowband-edge sync`: fills a cache directory ahead of need with the
//! variants that clients on chosen tiers are sent, so a provincial node
//! serves them with the uplink down.
//!
//! Every object goes through the same fill as a request's miss: resumed
//! from its partial file after an interruption, hashed to its key before it
//! is kept. Objects already held are hashed again (a sync is also the
//! node's check of its disk). A rate limit shares the uplink with teachers.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use lowband_catalog::manifest::{Manifest, Variant};
use lowband_catalog::{ModuleId, ObjectKey};

use super::docs::Held;
use super::upstream::Doc;
use super::{disk, Cache, Miss, MissError};

/// What to prefetch.
#[derive(Debug, Clone, Default)]
pub struct SyncPlan {
    /// Tier names (`2g`, `3g`); `None`: every tier of a module but its fastest.
    pub tiers: Option<Vec<String>>,
    /// Modules; `None`: every module in the index.
    pub modules: Option<Vec<ModuleId>>,
    /// Objects fetched at once.
    pub jobs: usize,
}

/// What a sync did.
#[derive(Debug, Default)]
pub struct Summary {
    pub modules: usize,
    pub objects: u64,
    pub bytes: u64,
    pub fetched: u64,
    pub fetched_bytes: u64,
    /// Already held and verified.
    pub skipped: u64,
    pub failed: Vec<(String, String)>,
    pub elapsed: Duration,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mb = |b: u64| b as f64 / 1e6;
        write!(
            f,
            "sync: {} modules, {} objects ({:.1} MB): {} fetched ({:.1} MB), {} already held and verified, {} failed, in {:.1} s",
            self.modules,
            self.objects,
            mb(self.bytes),
            self.fetched,
            mb(self.fetched_bytes),
            self.skipped,
            self.failed.len(),
            self.elapsed.as_secs_f64()
        )
    }
}

/// Progress so far, for a periodic report.
#[derive(Debug, Default)]
pub struct Counters {
    pub done: AtomicU64,
    pub bytes_done: AtomicU64,
    pub total: AtomicU64,
    pub bytes_total: AtomicU64,
}

/// Why a sync could not run at all (as opposed to objects that failed).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("cannot read the module index from {upstream}: {reason}")]
    Index { upstream: String, reason: String },
    #[error("module {0} is not in the upstream's index")]
    UnknownModule(ModuleId),
    #[error("module {module} has no tier {tier} (it has {known})")]
    UnknownTier {
        module: ModuleId,
        tier: String,
        known: String,
    },
    #[error("the chosen tiers need {need} bytes, more than the cache's budget of {budget} bytes (--cache-size)")]
    OverBudget { need: u64, budget: u64 },
}

/// Runs the sync; `counters` follow its progress.
pub async fn run(
    cache: &Arc<Cache>,
    plan: &SyncPlan,
    counters: &Counters,
) -> Result<Summary, SyncError> {
    let start = Instant::now();
    let docs = cache.docs();
    let index = match docs.current(Doc::Index).await {
        Ok(Held::Index(index)) => index,
        Ok(_) => Arc::new(Default::default()),
        Err(e) => {
            return Err(SyncError::Index {
                upstream: cache.upstream().url().to_owned(),
                reason: e.to_string(),
            })
        }
    };
    let modules: Vec<ModuleId> = match &plan.modules {
        Some(chosen) => {
            for id in chosen {
                if !index.modules.iter().any(|m| &m.id == id) {
                    return Err(SyncError::UnknownModule(id.clone()));
                }
            }
            chosen.clone()
        }
        None => index.modules.iter().map(|m| m.id.clone()).collect(),
    };
    let mut summary = Summary {
        modules: modules.len(),
        ..Summary::default()
    };
    let mut wanted = BTreeMap::new();
    for id in &modules {
        match docs.current(Doc::Manifest(id.clone())).await {
            Ok(Held::Manifest(manifest)) => {
                for (key, bytes) in objects_for(&manifest, plan.tiers.as_deref())? {
                    wanted.insert(key, bytes);
                }
            }
            Ok(_) => summary.failed.push((
                id.to_string(),
                "listed in the index, but has no manifest".into(),
            )),
            Err(e) => summary.failed.push((id.to_string(), e.to_string())),
        }
    }
    let need: u64 = wanted.values().sum();
    if need > cache.dir().budget() {
        return Err(SyncError::OverBudget {
            need,
            budget: cache.dir().budget(),
        });
    }
    summary.objects = wanted.len() as u64;
    summary.bytes = need;
    counters.total.store(summary.objects, Ordering::Relaxed);
    counters.bytes_total.store(need, Ordering::Relaxed);

    let outcomes: Vec<_> = stream::iter(wanted)
        .map(|(key, bytes)| async move {
            let outcome = one(cache, &key).await;
            counters.done.fetch_add(1, Ordering::Relaxed);
            counters.bytes_done.fetch_add(bytes, Ordering::Relaxed);
            (key, bytes, outcome)
        })
        .buffer_unordered(plan.jobs.max(1))
        .collect()
        .await;
    for (key, bytes, outcome) in outcomes {
        match outcome {
            Ok(Got::Fetched) => {
                summary.fetched += 1;
                summary.fetched_bytes += bytes;
            }
            Ok(Got::Held) => summary.skipped += 1,
            Err(reason) => summary.failed.push((key.to_string(), reason)),
        }
    }
    summary.elapsed = start.elapsed();
    Ok(summary)
}

enum Got {
    Fetched,
    Held,
}

/// Makes sure `key` is held and verified.
async fn one(cache: &Arc<Cache>, key: &ObjectKey) -> Result<Got, String> {
    let path = cache.dir().object_path(key);
    if path.is_file() {
        let check = path.clone();
        let want = key.clone();
        let good = tokio::task::spawn_blocking(move || disk::verify(&check, &want))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        if good {
            if let Ok(meta) = std::fs::metadata(&path) {
                cache.dir().touch(key, meta.len());
            }
            return Ok(Got::Held);
        }
        tracing::warn!(path = %path.display(), "held object does not match its hash: fetching it again");
        cache.dir().remove(key);
    }
    match cache.miss(key).await {
        Ok(Miss::Stored) => Ok(Got::Held),
        Ok(Miss::Filling(fill, _)) => fill
            .done()
            .await
            .map(|_| Got::Fetched)
            .map_err(|e| e.to_string()),
        Ok(Miss::Pass(len)) => Err(format!(
            "{len} bytes: larger than the cache's budget, or being fetched by another process"
        )),
        Err(MissError::NotFound) => Err("the upstream has no such object".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// The objects clients on `tiers` may be sent from `manifest`, with sizes:
/// for each asset, kind of variant and tier, the variants of the fastest
/// tier that fits (every format and coding of it), or the smallest when
/// none fits; and the HLS playlists of those.
pub fn objects_for(
    manifest: &Manifest,
    tiers: Option<&[String]>,
) -> Result<Vec<(ObjectKey, u64)>, SyncError> {
    let ranks: Vec<usize> = match tiers {
        Some(names) => names
            .iter()
            .map(|name| {
                manifest
                    .tier_rank(name)
                    .ok_or_else(|| SyncError::UnknownTier {
                        module: manifest.module.id.clone(),
                        tier: name.clone(),
                        known: manifest
                            .tiers
                            .iter()
                            .map(|t| t.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
            })
            .collect::<Result<_, _>>()?,
        None => (0..manifest.tiers.len().saturating_sub(1).max(1)).collect(),
    };
    let rank = |v: &Variant| manifest.tier_rank(&v.tier);
    let mut out = Vec::new();
    for asset in &manifest.assets {
        let mut kinds: Vec<_> = asset.variants.iter().map(|v| v.kind).collect();
        kinds.sort_by_key(|k| format!("{k:?}"));
        kinds.dedup();
        for kind in kinds {
            let of_kind = || asset.variants.iter().filter(move |v| v.kind == kind);
            for &r in &ranks {
                let fitting = of_kind().filter_map(rank).filter(|&x| x <= r).max();
                let chosen: Vec<&Variant> = match fitting {
                    Some(m) => of_kind().filter(|v| rank(v) == Some(m)).collect(),
                    None => of_kind().min_by_key(|v| v.bytes).into_iter().collect(),
                };
                for v in chosen {
                    out.push((v.key.clone(), v.bytes));
                    if let Some(playlist) = &v.playlist {
                        // Its size is not in the manifest; it is small.
                        out.push((playlist.clone(), 0));
                    }
                }
            }
        }
    }
    out.sort();
    out.dedup_by(|a, b| a.0 == b.0);
    Ok(out)
}
