//! `Signals::from_request` on any header map and query, then `client_tier`
//! for every prefix of the built-in tiers and every default (in range or
//! not).
//!
//! Input: one `name: value` header a line; a line starting with `?` is the
//! query string (the last one wins).

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use lowband_catalog::{Profile, Tier};
use lowband_edge::choose::signals::{client_tier, Reason, Signals};
use lowband_edge_fuzz::{headers, lines};

fn tiers() -> &'static [Tier] {
    static TIERS: OnceLock<Vec<Tier>> = OnceLock::new();
    TIERS.get_or_init(|| Profile::builtin_default().tiers)
}

fuzz_target!(|data: &[u8]| {
    let query = lines(data)
        .filter_map(|l| l.strip_prefix(b"?"))
        .last()
        .map(String::from_utf8_lossy);
    let headers = headers(lines(data).filter(|l| !l.starts_with(b"?")));
    let signals = Signals::from_request(&headers, query.as_deref());

    if let Some(ect) = &signals.ect {
        assert!(!ect.is_empty() && ect.len() <= 16, "ect {ect:?}");
    }
    for chosen in [&signals.tier_query, &signals.tier_cookie]
        .into_iter()
        .flatten()
    {
        assert!(!chosen.is_empty() && chosen.len() <= 32, "tier {chosen:?}");
        assert_eq!(*chosen, chosen.to_ascii_lowercase());
    }
    for coding in &signals.encodings {
        assert_eq!(*coding, coding.to_ascii_lowercase());
        assert!(signals.accepts_encoding(coding));
    }

    let all = tiers();
    for count in 1..=all.len() {
        let tiers = &all[..count];
        for default in 0..=count + 1 {
            let (rank, reason) = client_tier(&signals, tiers, default);
            assert!(rank < count, "tier {rank} of {count}");
            match reason {
                Reason::Chosen => {
                    let name = &tiers[rank].name;
                    assert!(
                        [&signals.tier_query, &signals.tier_cookie]
                            .into_iter()
                            .flatten()
                            .any(|t| t.eq_ignore_ascii_case(name)),
                        "chose {name} from {signals:?}"
                    );
                }
                Reason::Default => assert_eq!(rank, default.min(count - 1)),
                Reason::SaveData => assert!(signals.save_data && rank == 1),
                Reason::Ect | Reason::Downlink | Reason::Rtt => {}
                // Only the server sets a connection estimate; no header can.
                Reason::Connection => assert!(signals.connection.is_some(), "{signals:?}"),
            }
            if signals.save_data && reason != Reason::Chosen {
                assert!(rank <= 1, "save-data got tier {rank} ({reason:?})");
            }
        }
    }
});
