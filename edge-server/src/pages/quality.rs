//! The quality picker of a lesson: which choices it offers, what each
//! plays and costs, which one is current, and the cookies that remember a
//! pick. Pure: the manifest and the request's signals in.
//!
//! Its choice is kept in the `lowband_tier` cookie that every negotiated
//! asset already honours (Audio only adds `lowband_quality=audio`, which
//! only the lesson pages read).

use lowband_catalog::manifest::{Asset, AssetKind, Manifest, Variant, VariantKind};

use super::words::Words;
use crate::choose::request::{cookies, query_values};
use crate::choose::select::{playable, select};
use crate::choose::signals::{Signals, TIER_COOKIE};
use crate::http::error::EdgeError;

/// Cookie that asks the lesson page for sound only (the tier cookie cannot say it).
pub const QUALITY_COOKIE: &str = "lowband_quality";
/// How long the picker's choice is remembered.
const COOKIE_MAX_AGE: u32 = 365 * 24 * 3600;
/// Query parameter of the picker form.
pub const PICK_PARAM: &str = "q";

/// Whether an asset gets a lesson page: a video with something to play.
pub fn is_lesson(asset: &Asset) -> bool {
    asset.kind == AssetKind::Video && asset.variants.iter().any(is_media)
}

pub fn is_media(v: &Variant) -> bool {
    matches!(v.kind, VariantKind::Video | VariantKind::Audio)
}

/// One entry of the quality picker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// The edge picks when the video is fetched (hints, then the measured
    /// link): `<video>/play` redirects to that rung's immutable object, so
    /// the player's later range requests all read the same bytes.
    Auto,
    /// Sound only: the smallest audio rendition.
    Audio,
    /// The best rung a tier (index into the manifest's tiers) can carry.
    Tier(usize),
}

impl Choice {
    /// The picker's query value.
    pub fn value(self, manifest: &Manifest) -> String {
        match self {
            Self::Auto => "auto".into(),
            Self::Audio => "audio".into(),
            Self::Tier(r) => manifest
                .tiers
                .get(r)
                .map_or_else(String::new, |t| t.name.clone()),
        }
    }
}

/// A choice and the variant it plays.
#[derive(Debug, Clone, Copy)]
pub struct Offer<'a> {
    pub choice: Choice,
    pub variant: &'a Variant,
}

impl Offer<'_> {
    /// What a teacher calls it: the tiers of the default ladder by name
    /// (`choice-2g` is "Data saver"), any other tier by its own name.
    pub fn label(&self, manifest: &Manifest, words: &Words) -> String {
        let tier = |r: usize| manifest.tiers.get(r).map(|t| t.name.as_str());
        match self.choice {
            Choice::Auto => words.get("picker-auto").into_owned(),
            Choice::Audio => words.get("choice-audio").into_owned(),
            Choice::Tier(_) if self.variant.mode.as_deref() == Some("slides") => {
                words.get("choice-slides").into_owned()
            }
            Choice::Tier(r) => match tier(r) {
                Some(name @ ("2g" | "3g" | "4g")) => {
                    words.get(&format!("choice-{name}")).into_owned()
                }
                Some(other) => other.to_owned(),
                None => String::new(),
            },
        }
    }

    /// What the picture is, for the label's detail (`144p`, `sound only`, `slides`).
    pub fn detail(&self, words: &Words) -> String {
        match (self.variant.kind, self.variant.mode.as_deref()) {
            (VariantKind::Audio, _) => words.get("detail-sound-only").into_owned(),
            (_, Some("slides")) => words.get("detail-slides").into_owned(),
            _ => self
                .variant
                .height
                .map_or_else(|| self.variant.name.clone(), |h| format!("{h}p")),
        }
    }
}

/// The fixed choices of a lesson (Audio only, then one per tier whose rung
/// differs from the slower tiers'), smallest first. A further sound track
/// (another language) is never one: every choice plays the main sound.
pub fn offers<'a>(manifest: &Manifest, asset: &'a Asset, signals: &Signals) -> Vec<Offer<'a>> {
    let mut out: Vec<Offer<'a>> = Vec::new();
    if let Some(audio) = asset
        .variants_of(VariantKind::Audio)
        .filter(|v| !v.alternate && playable(v, signals))
        .min_by_key(|v| v.bytes)
    {
        out.push(Offer {
            choice: Choice::Audio,
            variant: audio,
        });
    }
    for rank in 0..manifest.tiers.len() {
        let Some(v) = select(asset, &manifest.tiers, rank, signals) else {
            continue;
        };
        if v.kind != VariantKind::Video || out.iter().any(|o| o.variant.key == v.key) {
            continue;
        }
        out.push(Offer {
            choice: Choice::Tier(rank),
            variant: v,
        });
    }
    out
}

/// The current choice: `?tier=` for this view, else the picker's cookies.
pub fn current_choice(headers: &http::HeaderMap, manifest: &Manifest, signals: &Signals) -> Choice {
    if let Some(r) = signals
        .tier_query
        .as_deref()
        .and_then(|t| manifest.tier_rank(t))
    {
        return Choice::Tier(r);
    }
    if cookie(headers, QUALITY_COOKIE).as_deref() == Some("audio") {
        return Choice::Audio;
    }
    cookie(headers, TIER_COOKIE)
        .and_then(|t| manifest.tier_rank(&t))
        .map_or(Choice::Auto, Choice::Tier)
}

/// The offer a choice plays: a tier whose rung another offer already holds
/// (a tier without a rung of its own) is that offer.
pub fn resolve_choice(
    choice: Choice,
    offers: &[Offer<'_>],
    manifest: &Manifest,
    asset: &Asset,
    signals: &Signals,
) -> Choice {
    let Choice::Tier(rank) = choice else {
        return choice;
    };
    select(asset, &manifest.tiers, rank, signals)
        .and_then(|v| offers.iter().find(|o| o.variant.key == v.key))
        .map_or(Choice::Auto, |o| o.choice)
}

/// The value of the cookie `name`, lowercased.
fn cookie(headers: &http::HeaderMap, name: &str) -> Option<String> {
    cookies(headers)
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_ascii_lowercase())
}

/// The picker's answer (`?q=`): the `Set-Cookie` values that remember it,
/// or `None` when the request holds no choice.
pub fn pick(query: Option<&str>, manifest: &Manifest) -> Result<Option<Vec<String>>, EdgeError> {
    let Some(q) = query_values(query, PICK_PARAM).next() else {
        return Ok(None);
    };
    let set = |name: &str, value: &str| {
        format!("{name}={value}; Path=/; Max-Age={COOKIE_MAX_AGE}; SameSite=Lax; HttpOnly")
    };
    let clear = |name: &str| format!("{name}=; Path=/; Max-Age=0; SameSite=Lax; HttpOnly");
    let q = q.to_ascii_lowercase();
    let cookies = match q.as_str() {
        "auto" => vec![clear(TIER_COOKIE), clear(QUALITY_COOKIE)],
        // Sound only; pages and pictures elsewhere as for the slowest tier.
        "audio" => {
            let slowest = manifest.tiers.first().map_or("", |t| t.name.as_str());
            vec![set(TIER_COOKIE, slowest), set(QUALITY_COOKIE, "audio")]
        }
        tier => match manifest.tier_rank(tier) {
            Some(r) => vec![
                set(TIER_COOKIE, &manifest.tiers[r].name),
                clear(QUALITY_COOKIE),
            ],
            None => {
                return Err(EdgeError::BadRequest(
                    "unknown quality: q must be auto, audio or a tier the lesson page lists",
                ))
            }
        },
    };
    Ok(Some(cookies))
}
