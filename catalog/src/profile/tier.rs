//! Tiers: the bandwidth classes a profile's renditions are made for, and the
//! thresholds that put a client's link in one. The edge measures and hints;
//! this is where a figure becomes a tier, so that a profile's `max_kbps`
//! and the round-trip classes are read the same way everywhere.

use serde::{Deserialize, Serialize};

/// A bandwidth class of client links, named as the `ECT` client hint names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    pub name: String,
    /// Upper bound of the link in kbit/s; absent for the fastest tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_kbps: Option<u32>,
}

impl Tier {
    /// The tier (index into `tiers`, slowest first) a link of `kbps`
    /// belongs to: the first whose bound it fits under, else the fastest.
    pub fn rank_for_kbps(tiers: &[Tier], kbps: u32) -> usize {
        tiers
            .iter()
            .position(|t| t.max_kbps.is_none_or(|max| kbps <= max))
            .unwrap_or(tiers.len().saturating_sub(1))
    }
}

/// Chromium's effective-connection-type thresholds on HTTP round-trip time
/// (what the `RTT` client hint reports); `None` for 0, which means unknown.
pub fn ect_for_http_rtt(rtt_ms: u32) -> Option<&'static str> {
    match rtt_ms {
        0 => None,
        2000.. => Some("slow-2g"),
        1400.. => Some("2g"),
        270.. => Some("3g"),
        _ => Some("4g"),
    }
}

/// Chromium's effective-connection-type thresholds on *transport* RTT (what
/// the edge reads from `TCP_INFO`): lower than the HTTP ones, since no
/// server time is in a TCP round trip.
pub fn ect_for_transport_rtt(rtt_ms: u32) -> Option<&'static str> {
    match rtt_ms {
        0 => None,
        1870.. => Some("slow-2g"),
        1280.. => Some("2g"),
        204.. => Some("3g"),
        _ => Some("4g"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiers() -> Vec<Tier> {
        [
            ("slow-2g", Some(70)),
            ("2g", Some(150)),
            ("3g", Some(700)),
            ("4g", None),
        ]
        .map(|(name, max_kbps)| Tier {
            name: name.into(),
            max_kbps,
        })
        .into()
    }

    #[test]
    fn a_rate_falls_in_the_first_tier_that_carries_it() {
        let tiers = tiers();
        for (kbps, rank) in [
            (0, 0),
            (70, 0),
            (71, 1),
            (150, 1),
            (700, 2),
            (701, 3),
            (u32::MAX, 3),
        ] {
            assert_eq!(Tier::rank_for_kbps(&tiers, kbps), rank, "{kbps} kbit/s");
        }
        let bounded = &tiers[..2];
        assert_eq!(
            Tier::rank_for_kbps(bounded, 10_000),
            1,
            "faster than all: the fastest"
        );
        assert_eq!(Tier::rank_for_kbps(&[], 10), 0);
    }

    #[test]
    fn round_trips_map_as_chromium_maps_them() {
        assert_eq!(ect_for_http_rtt(0), None);
        assert_eq!(ect_for_http_rtt(2000), Some("slow-2g"));
        assert_eq!(ect_for_http_rtt(1999), Some("2g"));
        assert_eq!(ect_for_http_rtt(270), Some("3g"));
        assert_eq!(ect_for_http_rtt(269), Some("4g"));
        assert_eq!(ect_for_transport_rtt(0), None);
        assert_eq!(ect_for_transport_rtt(1870), Some("slow-2g"));
        assert_eq!(ect_for_transport_rtt(1280), Some("2g"));
        assert_eq!(ect_for_transport_rtt(204), Some("3g"));
        assert_eq!(ect_for_transport_rtt(203), Some("4g"));
    }
}
