//! From a link's measured speed or round trip to a tier of the module's
//! profile: the thresholds that both the request's hints ([`super::signals`])
//! and the connection's own measure ([`super::estimate`]) are read with.
//!
//! Pure, and below both: neither needs the other to turn a number into a tier.

use lowband_catalog::Tier;

/// The slowest tier whose bound covers a link of `kbps`.
pub fn tier_for_kbps(kbps: u32, tiers: &[Tier]) -> usize {
    tiers
        .iter()
        .position(|t| t.max_kbps.is_none_or(|max| kbps <= max))
        .unwrap_or(tiers.len().saturating_sub(1))
}

/// Chromium's effective-connection-type thresholds on HTTP round-trip
/// time (the `RTT` hint).
pub fn ect_for_http_rtt(rtt_ms: u32) -> Option<&'static str> {
    match rtt_ms {
        0 => None,
        2000.. => Some("slow-2g"),
        1400.. => Some("2g"),
        270.. => Some("3g"),
        _ => Some("4g"),
    }
}

/// Chromium's effective-connection-type thresholds on *transport* RTT
/// (lower than its HTTP-RTT ones: no server time in a TCP round trip).
pub fn ect_for_transport_rtt(rtt_ms: u32) -> Option<&'static str> {
    match rtt_ms {
        0 => None,
        1870.. => Some("slow-2g"),
        1280.. => Some("2g"),
        204.. => Some("3g"),
        _ => Some("4g"),
    }
}
