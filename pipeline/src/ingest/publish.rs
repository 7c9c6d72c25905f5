//! The module's last step: its pages, rendered once everything they point
//! at is, then the manifest, published in one put. An unchanged module is
//! not published again, which makes a repeated last step (a redelivered
//! job) harmless.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use lowband_catalog::manifest::{Asset, AssetKind, Caption, Manifest, ModuleInfo, MANIFEST_SCHEMA};
use lowband_catalog::{Profile, Store, StoreError};

use super::asset::{render_asset, Tally};
use super::context::Context;
use super::error::IngestError;
use crate::discover::SourceAsset;
use crate::page::ModuleView;

/// One of the module's assets on its way to the manifest, in discovery order.
#[derive(Debug)]
pub enum Slot {
    /// Rendered (or reused) and uploaded.
    Done(Asset),
    /// A page, rendered by [`publish_module`] once every other asset is done.
    Page(SourceAsset),
}

/// What [`publish_module`] did.
#[derive(Debug)]
pub struct Finished {
    pub manifest: Manifest,
    /// False when the manifest equalled the previous one and was left as it was.
    pub published: bool,
    /// What rendering the pages did.
    pub pages: Tally,
}

/// Renders the pages and publishes the manifest, last.
pub async fn publish_module(
    ctx: &Context<'_>,
    info: &ModuleInfo,
    slots: Vec<Slot>,
) -> Result<Finished, IngestError> {
    let (mut assets, pages) = render_pages(ctx, info, slots).await?;
    link_captions(&mut assets);
    let published_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let manifest = Manifest {
        schema: MANIFEST_SCHEMA,
        module: info.clone(),
        profile: ctx.profile.name.clone(),
        tiers: ctx.profile.tiers.clone(),
        published_at,
        assets,
    };
    let unchanged = ctx.previous.as_ref().is_some_and(|p| {
        p.module == manifest.module
            && p.profile == manifest.profile
            && p.tiers == manifest.tiers
            && p.assets == manifest.assets
    });
    if !unchanged {
        ctx.store.publish(&manifest).await?;
    }
    Ok(Finished {
        manifest,
        published: !unchanged,
        pages,
    })
}

/// Every slot as an asset, the pages rendered against what the rest became.
async fn render_pages(
    ctx: &Context<'_>,
    module: &ModuleInfo,
    slots: Vec<Slot>,
) -> Result<(Vec<Asset>, Tally), IngestError> {
    let mut tally = Tally::default();
    let mut view = None;
    if slots.iter().any(|s| matches!(s, Slot::Page(_))) {
        let ready: Vec<&Asset> = slots
            .iter()
            .filter_map(|s| match s {
                Slot::Done(asset) => Some(asset),
                Slot::Page(_) => None,
            })
            .collect();
        view = Some(Arc::new(
            module_view(module, ctx.profile, &ready, ctx.store).await?,
        ));
    }
    let mut assets = Vec::with_capacity(slots.len());
    for slot in slots {
        assets.push(match slot {
            Slot::Done(asset) => asset,
            Slot::Page(src) => {
                let out = render_asset(ctx, &src, view.as_ref()).await?;
                tally.add(&out);
                out.asset
            }
        });
    }
    Ok((assets, tally))
}

/// What pages can point at: the module's other assets, and the videos'
/// placeholders read back from the store to be inlined as posters.
async fn module_view(
    module: &ModuleInfo,
    profile: &Profile,
    done: &[&Asset],
    store: &Store,
) -> Result<ModuleView, StoreError> {
    use base64::Engine as _;
    let mut posters = BTreeMap::new();
    for asset in done.iter().filter(|a| a.kind == AssetKind::Video) {
        let Some(v) = asset.variants.iter().find(|v| v.name == "placeholder") else {
            continue;
        };
        if v.bytes > 1024 {
            continue;
        }
        if let Some(bytes) = store.get_bytes(&v.key.to_string()).await? {
            let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
            posters.insert(asset.path.clone(), format!("data:{};base64,{b64}", v.mime));
        }
    }
    Ok(ModuleView {
        id: module.id.to_string(),
        language: module.language.clone(),
        tiers: profile.tiers.iter().map(|t| t.name.clone()).collect(),
        assets: done
            .iter()
            .map(|a| (a.path.clone(), (*a).clone()))
            .collect(),
        posters,
    })
}

/// Points each video and audio asset at the WebVTT files beside it:
/// `lessons/intro.vtt` and `lessons/intro.<lang>.vtt` caption `lessons/intro.mp4`.
fn link_captions(assets: &mut [Asset]) {
    let vtts: Vec<String> = assets
        .iter()
        .filter(|a| {
            std::path::Path::new(&a.path)
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("vtt"))
        })
        .map(|a| a.path.clone())
        .collect();
    for asset in assets
        .iter_mut()
        .filter(|a| matches!(a.kind, AssetKind::Video | AssetKind::Audio))
    {
        let stem = asset
            .path
            .rsplit_once('.')
            .map_or(asset.path.as_str(), |(stem, _)| stem);
        // Captions taken from the file itself stay; the files beside it are found again.
        asset.captions.retain(|c| c.key.is_some());
        let beside: Vec<Caption> = vtts
            .iter()
            .filter_map(|vtt| {
                let middle = vtt.strip_prefix(stem)?.strip_suffix(".vtt")?;
                let language = match middle {
                    "" => None,
                    tag => {
                        let tag = tag.strip_prefix('.')?;
                        let ok = (2..=35).contains(&tag.len())
                            && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
                        Some(ok.then(|| tag.to_owned())?)
                    }
                };
                Some(Caption {
                    path: vtt.clone(),
                    language,
                    key: None,
                })
            })
            .collect();
        asset.captions.splice(0..0, beside);
    }
}
