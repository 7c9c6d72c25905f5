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
use lowband_catalog::manifest::{Manifest, Variant, VariantKind};
use lowband_catalog::{ModuleId, ObjectKey};

use super::docs::Held;
use super::fill::FillError;
use super::upstream::{Doc, UpstreamError};
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
    /// What failed (a module, an object's key), and why.
    pub failed: Vec<(String, Failure)>,
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

/// Why one module or object could not be synced.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("listed in the index, but has no manifest")]
    NoManifest,
    #[error(transparent)]
    Manifest(UpstreamError),
    /// Hashing the copy held failed.
    #[error(transparent)]
    Verify(std::io::Error),
    #[error(transparent)]
    Fill(Arc<FillError>),
    #[error("{len} bytes: larger than the cache's budget, or being fetched by another process")]
    NotKept { len: u64 },
    #[error("the upstream has no such object")]
    NotFound,
    #[error(transparent)]
    Miss(MissError),
}

/// Runs the sync; `counters` follow its progress.
pub async fn run(
    cache: &Arc<Cache>,
    plan: &SyncPlan,
    counters: &Counters,
) -> Result<Summary, SyncError> {
    let start = Instant::now();
    let modules = chosen_modules(cache, plan).await?;
    let mut summary = Summary {
        modules: modules.len(),
        ..Summary::default()
    };
    let wanted = wanted_objects(cache, &modules, plan, &mut summary).await?;
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
            Err(failure) => summary.failed.push((key.to_string(), failure)),
        }
    }
    summary.elapsed = start.elapsed();
    Ok(summary)
}

/// The modules the plan names (each checked against the upstream's index), or all it lists.
async fn chosen_modules(cache: &Cache, plan: &SyncPlan) -> Result<Vec<ModuleId>, SyncError> {
    let index = match cache.docs().current(Doc::Index).await {
        Ok(Held::Index(index)) => index,
        Ok(_) => Arc::new(Default::default()),
        Err(e) => {
            return Err(SyncError::Index {
                upstream: cache.upstream().url().to_owned(),
                reason: e.to_string(),
            })
        }
    };
    match &plan.modules {
        Some(chosen) => {
            for id in chosen {
                if !index.modules.iter().any(|m| &m.id == id) {
                    return Err(SyncError::UnknownModule(id.clone()));
                }
            }
            Ok(chosen.clone())
        }
        None => Ok(index.modules.iter().map(|m| m.id.clone()).collect()),
    }
}

/// The objects (and their sizes) the plan's tiers need from `modules`'
/// current manifests; a module whose manifest cannot be had is a failure
/// in `summary`.
async fn wanted_objects(
    cache: &Cache,
    modules: &[ModuleId],
    plan: &SyncPlan,
    summary: &mut Summary,
) -> Result<BTreeMap<ObjectKey, u64>, SyncError> {
    let mut wanted = BTreeMap::new();
    for id in modules {
        match cache.docs().current(Doc::Manifest(id.clone())).await {
            Ok(Held::Manifest(manifest)) => {
                wanted.extend(objects_for(&manifest, plan.tiers.as_deref())?);
            }
            Ok(_) => summary.failed.push((id.to_string(), Failure::NoManifest)),
            Err(e) => summary.failed.push((id.to_string(), Failure::Manifest(e))),
        }
    }
    Ok(wanted)
}

enum Got {
    Fetched,
    Held,
}

/// Makes sure `key` is held and verified.
async fn one(cache: &Arc<Cache>, key: &ObjectKey) -> Result<Got, Failure> {
    let path = cache.dir().object_path(key);
    if path.is_file() {
        let check = path.clone();
        let want = key.clone();
        let good = tokio::task::spawn_blocking(move || disk::verify(&check, &want))
            .await
            .map_err(|e| Failure::Verify(std::io::Error::other(e)))?
            .map_err(Failure::Verify)?;
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
            .map_err(Failure::Fill),
        Ok(Miss::Pass(len)) => Err(Failure::NotKept { len }),
        Err(MissError::NotFound) => Err(Failure::NotFound),
        Err(e) => Err(Failure::Miss(e)),
    }
}

/// The objects clients on `tiers` may be sent from `manifest`, with sizes:
/// for each asset, kind of variant and tier, the variants of the fastest
/// tier that fits (every format and coding of it), or the smallest when
/// none fits; and the HLS playlists of those. Besides: a video's further
/// sound tracks, which its master playlist offers beside any picture rung
/// (never chosen by tier, so that they cannot crowd out the main audio),
/// and the WebVTT of captions taken from inside the video (no asset of
/// their own lists them).
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
    let fastest = ranks.iter().copied().max();
    let mut sent: Vec<&Variant> = Vec::new();
    let mut out = Vec::new();
    for asset in &manifest.assets {
        let main = || asset.variants.iter().filter(|v| !v.alternate);
        let mut kinds: Vec<_> = main().map(|v| v.kind).collect();
        kinds.sort_by_key(|k| format!("{k:?}"));
        kinds.dedup();
        for kind in kinds {
            let of_kind = || main().filter(move |v| v.kind == kind);
            for &r in &ranks {
                let fitting = of_kind().filter_map(rank).filter(|&x| x <= r).max();
                let chosen: Vec<&Variant> = match fitting {
                    Some(m) => of_kind().filter(|v| rank(v) == Some(m)).collect(),
                    None => of_kind().min_by_key(|v| v.bytes).into_iter().collect(),
                };
                sent.extend(chosen);
            }
        }
        // As the master playlist decides: a streamed picture rung within the tiers.
        let pictured = main().any(|v| {
            v.kind == VariantKind::Video
                && v.playlist.is_some()
                && v.mode.is_none()
                && fastest.is_some_and(|f| rank(v).is_some_and(|r| r <= f))
        });
        if pictured {
            sent.extend(
                asset
                    .variants
                    .iter()
                    .filter(|v| v.alternate && v.playlist.is_some()),
            );
        }
        // A caption's size is not in the manifest, nor a playlist's; they are small.
        out.extend(
            asset
                .captions
                .iter()
                .filter_map(|c| Some((c.key.clone()?, 0))),
        );
    }
    for v in sent {
        out.push((v.key.clone(), v.bytes));
        if let Some(playlist) = &v.playlist {
            out.push((playlist.clone(), 0));
        }
    }
    out.sort();
    out.dedup_by(|a, b| a.0 == b.0);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lowband_catalog::manifest::{Asset, AssetKind, Caption, VariantKind};

    fn manifest() -> Manifest {
        let v = |name: &str, kind: VariantKind, tier: &str, bytes: u64| {
            let key = ObjectKey::for_bytes(name.as_bytes(), "mp4");
            let playlist = ObjectKey::for_bytes(format!("{name}.m3u8").as_bytes(), "m3u8");
            Variant::builder(name, kind, tier, key, bytes, "video/mp4").playlist(playlist)
        };
        let intro = Asset::builder("intro.mkv", AssetKind::Video)
            .duration(60.0)
            .caption(Caption {
                path: "intro.mkv#2".into(),
                language: Some("eng".into()),
                key: Some(ObjectKey::for_bytes(b"WEBVTT", "vtt")),
            })
            .variants([
                v("144p", VariantKind::Video, "2g", 400).build(),
                v("480p", VariantKind::Video, "4g", 3000).build(),
                v("audio-aac", VariantKind::Audio, "slow-2g", 200).build(),
                // Of a faster tier than the main audio: it must not displace it.
                v("audio-eng", VariantKind::Audio, "2g", 150)
                    .language("eng")
                    .alternate(true)
                    .build(),
            ]);
        Manifest::builder("m").language("km").asset(intro).build()
    }

    fn names(m: &Manifest, tiers: &[&str]) -> Vec<String> {
        let tiers: Vec<String> = tiers.iter().map(|t| (*t).to_owned()).collect();
        let keys = objects_for(m, Some(&tiers)).unwrap();
        let asset = &m.assets[0];
        let mut out: Vec<String> = asset
            .variants
            .iter()
            .filter(|v| keys.iter().any(|(k, _)| *k == v.key))
            .map(|v| v.name.clone())
            .collect();
        let caption = asset.captions[0].key.as_ref().unwrap();
        if keys.iter().any(|(k, _)| k == caption) {
            out.push("captions".into());
        }
        out
    }

    #[test]
    fn main_audio_first_alternates_beside_pictures_captions_always() {
        let m = manifest();
        // At slow-2g the master lists no picture rung: no alternative sound offered.
        assert_eq!(names(&m, &["slow-2g"]), ["144p", "audio-aac", "captions"]);
        assert_eq!(
            names(&m, &["2g"]),
            ["144p", "audio-aac", "audio-eng", "captions"]
        );
        let keys = objects_for(&m, Some(&["2g".to_owned()])).unwrap();
        let eng = m.assets[0].variants[3].playlist.clone().unwrap();
        assert!(keys.iter().any(|(k, _)| *k == eng), "{keys:?}");
    }
}
