//! What the connection itself says about a client's link, for the many
//! browsers that send no hints (every browser but Chromium, and Chromium
//! too over plain HTTP, where it sends no client hints at all).
//!
//! The kernel measures each TCP connection; [`super::probe`] reads its
//! `TCP_INFO` when a response body has been handed to the socket and when
//! the connection ends. Everything here is pure.
//! [`TcpSample::between`] turns two readings into a rate: bytes the client
//! acknowledged over the time the connection was busy sending them
//! (`tcpi_bytes_acked` / `tcpi_busy_time`), so idle keep-alive time does
//! not count. [`Estimator`] keeps, per client address, a time-decaying
//! average of those rates and of `tcpi_min_rtt`; it is pure (time is
//! passed in) and bounded in size. [`Estimate::rank`] turns an average into
//! a tier.
//!
//! Why not `tcpi_delivery_rate`: it is the kernel's *last* rate sample,
//! one round trip wide, and on a real 100 kbit/s link (the `netns` test)
//! it read 80-110 Mbit/s after the client acknowledged the FIN or a
//! recovery burst. An average over the whole transfer does not jump so.
//!
//! What a sample is worth: the kernel flags its last rate sample as
//! *app-limited* when the sender had nothing more to send (a small
//! response, a loopback link): the link was at least that fast. Such a
//! sample is a lower bound, so it may raise the average but never lowers
//! it; so is a transfer that finished within one tick of the kernel's busy
//! clock. Until [`MIN_BYTES_ACKED`] more have been acknowledged since the
//! last sample, a connection has said nothing new (slow start, tiny
//! responses) and its readings accumulate.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

use lowband_catalog::Tier;

use lowband_catalog::profile::ect_for_transport_rtt;

/// Samples count half as much after this long: a phone moves between
/// cells, a carrier's NAT puts several phones behind one address.
pub const HALF_LIFE: Duration = Duration::from_secs(120);
/// Clients remembered at once; the least recently sampled go first.
pub const MAX_CLIENTS: usize = 65_536;
/// A connection's rate is trusted once this much has been acknowledged.
pub const MIN_BYTES_ACKED: u64 = 16 * 1024;
/// A connection is read at most this often while it lasts (and once more
/// at its end): a fast client making many requests adds nothing by being
/// measured after each, and the reading in between is not lost, only longer.
/// A slow link's responses take longer than this anyway.
pub const MIN_SAMPLE_INTERVAL: Duration = Duration::from_millis(200);
/// An average whose weight has decayed below this (a single sample, two
/// half-lives old) is forgotten.
const MIN_WEIGHT: f64 = 0.25;
/// Rates above this (10 Gbit/s) are clamped: the tiers end long before.
const MAX_KBPS: f64 = 10_000_000.0;
/// The busy clock counts kernel ticks (4 ms at HZ=250, the coarsest
/// common setting): a shorter transfer reads as this long, a lower bound.
const BUSY_TICK_US: u64 = 4_000;

/// One reading of a connection's `TCP_INFO`; counters are cumulative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpReading {
    /// `tcpi_bytes_acked`.
    pub bytes_acked: u64,
    /// `tcpi_busy_time`, microseconds with data queued or in flight
    /// (including time limited by the receive window or send buffer).
    pub busy_us: u64,
    /// `tcpi_delivery_rate_app_limited`: the last rate sample was limited
    /// by the sender, not the link.
    pub app_limited: bool,
    /// `tcpi_min_rtt`, microseconds (0: not measured yet).
    pub min_rtt_us: u32,
}

/// What a connection said between two readings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TcpSample {
    /// Bytes acknowledged per busy second.
    pub rate: u64,
    /// A lower bound on the link, not a measure of it.
    pub app_limited: bool,
    /// `tcpi_min_rtt`, microseconds (0: not measured yet).
    pub min_rtt_us: u32,
}

impl TcpSample {
    /// The sample from `before` to `now`, or `None` while fewer than
    /// [`MIN_BYTES_ACKED`] have been acknowledged in between (then `before`
    /// should be kept, so small responses add up).
    pub fn between(before: &TcpReading, now: &TcpReading) -> Option<Self> {
        let acked = now.bytes_acked.checked_sub(before.bytes_acked)?;
        let busy = now.busy_us.saturating_sub(before.busy_us);
        if acked < MIN_BYTES_ACKED {
            return None;
        }
        Some(Self {
            rate: acked.saturating_mul(1_000_000) / busy.max(BUSY_TICK_US),
            app_limited: now.app_limited || busy < BUSY_TICK_US,
            min_rtt_us: now.min_rtt_us,
        })
    }

    fn kbps(&self) -> f64 {
        (self.rate as f64 * 8.0 / 1000.0).min(MAX_KBPS)
    }
}

/// What a client's link looks like from the connections it made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    pub kbps: u32,
    /// Smallest round trip, averaged; `None` when never measured.
    pub min_rtt_ms: Option<u32>,
}

impl Estimate {
    /// The tier (index into `tiers`, slowest first) for this link: the
    /// slower of what its rate and its round trip allow, as for hints.
    pub fn rank(&self, tiers: &[Tier]) -> usize {
        let by_rate = Tier::rank_for_kbps(tiers, self.kbps);
        let by_rtt = self
            .min_rtt_ms
            .and_then(ect_for_transport_rtt)
            .and_then(|name| tiers.iter().position(|t| t.name == name));
        by_rtt.map_or(by_rate, |r| r.min(by_rate))
    }
}

/// What [`Estimator::record`] did with a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Averaged in as a measure of the link.
    Rate,
    /// App-limited but above the average: averaged in as a lower bound.
    LowerBound,
    /// App-limited and at or below the average: says nothing new.
    BelowAverage,
    /// A zero rate: nothing to average (readings below
    /// [`MIN_BYTES_ACKED`] never become samples at all).
    NoRate,
}

impl Recorded {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rate => "rate",
            Self::LowerBound => "lower_bound",
            Self::BelowAverage => "below_average",
            Self::NoRate => "no_rate",
        }
    }
}

/// A value whose past samples weigh less the older they are.
#[derive(Debug, Clone, Copy, Default)]
struct Decaying {
    sum: f64,
    weight: f64,
}

impl Decaying {
    fn decay(&mut self, factor: f64) {
        self.sum *= factor;
        self.weight *= factor;
    }

    fn add(&mut self, value: f64) {
        self.sum += value;
        self.weight += 1.0;
    }

    fn mean(&self) -> Option<f64> {
        (self.weight >= MIN_WEIGHT).then(|| self.sum / self.weight)
    }
}

#[derive(Debug, Clone, Copy)]
struct Client {
    rate: Decaying,
    rtt: Decaying,
    updated: Instant,
}

impl Client {
    fn decayed(&self, now: Instant, half_life: Duration) -> Self {
        let age = now.saturating_duration_since(self.updated).as_secs_f64();
        let factor = 0.5f64.powf(age / half_life.as_secs_f64().max(1e-3));
        let mut c = *self;
        c.rate.decay(factor);
        c.rtt.decay(factor);
        c.updated = now;
        c
    }
}

/// Per-client decaying averages of connection samples, bounded in size.
#[derive(Debug)]
pub struct Estimator {
    half_life: Duration,
    capacity: usize,
    /// A plain map, not moka: every negotiated request looks its client up
    /// here, and a moka `get` cost about 600 instructions a request
    /// (callgrind, `benches/cache-vs-edge.sh`; see [`crate::bounded`]).
    /// It also forgets by what a sample is still worth, which only the
    /// estimator knows, and takes its time as an argument so that it stays
    /// pure: a full map drops the averages that have decayed away, then the
    /// least recently sampled quarter ([`Estimator::make_room`]).
    clients: HashMap<IpAddr, Client>,
}

impl Default for Estimator {
    fn default() -> Self {
        Self::new(HALF_LIFE, MAX_CLIENTS)
    }
}

impl Estimator {
    pub fn new(half_life: Duration, capacity: usize) -> Self {
        Self {
            half_life,
            capacity: capacity.max(1),
            clients: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// Folds one sample from a connection of `client` into its average.
    pub fn record(&mut self, client: IpAddr, sample: &TcpSample, now: Instant) -> Recorded {
        if sample.rate == 0 {
            return Recorded::NoRate;
        }
        let key = client_key(client);
        let mut current = match self.clients.get(&key) {
            Some(c) => c.decayed(now, self.half_life),
            None => {
                self.make_room(now);
                Client {
                    rate: Decaying::default(),
                    rtt: Decaying::default(),
                    updated: now,
                }
            }
        };
        if sample.min_rtt_us > 0 {
            current.rtt.add(f64::from(sample.min_rtt_us) / 1000.0);
        }
        let kbps = sample.kbps();
        let outcome = match (sample.app_limited, current.rate.mean()) {
            (false, _) => Recorded::Rate,
            (true, Some(mean)) if kbps <= mean => Recorded::BelowAverage,
            (true, _) => Recorded::LowerBound,
        };
        if outcome != Recorded::BelowAverage {
            current.rate.add(kbps);
        }
        self.clients.insert(key, current);
        outcome
    }

    /// The client's current estimate, if it has a recent enough one.
    pub fn estimate(&self, client: IpAddr, now: Instant) -> Option<Estimate> {
        let c = self
            .clients
            .get(&client_key(client))?
            .decayed(now, self.half_life);
        let kbps = c.rate.mean()?;
        Some(Estimate {
            kbps: kbps.round() as u32,
            min_rtt_ms: c.rtt.mean().map(|ms| ms.round() as u32),
        })
    }

    /// Before a new client is added at capacity: forget the clients whose
    /// averages have decayed away, then, if that is not enough, the least
    /// recently sampled quarter (amortised: one pass per many inserts).
    fn make_room(&mut self, now: Instant) {
        if self.clients.len() < self.capacity {
            return;
        }
        let half_life = self.half_life;
        self.clients.retain(|_, c| {
            let c = c.decayed(now, half_life);
            c.rate.mean().is_some() || c.rtt.mean().is_some()
        });
        if self.clients.len() < self.capacity {
            return;
        }
        let mut times: Vec<Instant> = self.clients.values().map(|c| c.updated).collect();
        let drop = (self.capacity / 4).max(1);
        let (_, cutoff, _) = times.select_nth_unstable(drop - 1);
        let cutoff = *cutoff;
        let mut left = drop;
        self.clients.retain(|_, c| {
            if left > 0 && c.updated <= cutoff {
                left -= 1;
                false
            } else {
                true
            }
        });
    }
}

/// Clients are told apart by address; an IPv6 client by its /64, since a
/// phone rotates privacy addresses within the prefix its network gave it.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 @ IpAddr::V4(_) => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KB: u64 = 1000 / 8; // bytes/s per kbit/s

    fn sample(kbps: u64, app_limited: bool) -> TcpSample {
        TcpSample {
            rate: kbps * KB,
            app_limited,
            min_rtt_us: 0,
        }
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    fn tiers() -> Vec<Tier> {
        lowband_catalog::Profile::builtin_default().tiers
    }

    #[test]
    fn averages_and_decays() {
        let t0 = Instant::now();
        let mut e = Estimator::new(Duration::from_secs(60), 16);
        assert_eq!(e.estimate(ip(1), t0), None);
        assert_eq!(e.record(ip(1), &sample(100, false), t0), Recorded::Rate);
        assert_eq!(e.record(ip(1), &sample(300, false), t0), Recorded::Rate);
        assert_eq!(e.estimate(ip(1), t0).unwrap().kbps, 200);
        // One half-life later the old pair weighs as much as one new sample.
        let t1 = t0 + Duration::from_secs(60);
        e.record(ip(1), &sample(800, false), t1);
        assert_eq!(e.estimate(ip(1), t1).unwrap().kbps, 500);
        // Unsampled for long enough, the client is forgotten.
        assert_eq!(e.estimate(ip(1), t1 + Duration::from_secs(600)), None);
        assert_eq!(e.estimate(ip(2), t1), None);
    }

    #[test]
    fn app_limited_samples_only_raise() {
        let t = Instant::now();
        let mut e = Estimator::default();
        assert_eq!(e.record(ip(1), &sample(100, false), t), Recorded::Rate);
        assert_eq!(
            e.record(ip(1), &sample(20, true), t),
            Recorded::BelowAverage
        );
        assert_eq!(e.estimate(ip(1), t).unwrap().kbps, 100);
        assert_eq!(e.record(ip(1), &sample(300, true), t), Recorded::LowerBound);
        assert_eq!(e.estimate(ip(1), t).unwrap().kbps, 200);
        // With nothing known, a lower bound is the best there is.
        assert_eq!(e.record(ip(2), &sample(50, true), t), Recorded::LowerBound);
        assert_eq!(e.estimate(ip(2), t).unwrap().kbps, 50);
    }

    #[test]
    fn a_sample_is_acked_bytes_over_busy_time() {
        let reading = |acked: u64, busy_ms: u64, app_limited: bool| TcpReading {
            bytes_acked: acked,
            busy_us: busy_ms * 1000,
            app_limited,
            min_rtt_us: 600_000,
        };
        let start = reading(1_000, 10, false);
        // 50 kB in 4 busy seconds: 12.5 kB/s, a 100 kbit/s link.
        let s = TcpSample::between(&start, &reading(51_000, 4_010, false)).unwrap();
        assert_eq!(
            (s.rate, s.app_limited, s.min_rtt_us),
            (12_500, false, 600_000)
        );
        // Too little acknowledged since: nothing yet, the start is kept.
        assert_eq!(
            TcpSample::between(&start, &reading(10_000, 900, false)),
            None
        );
        // A reading from before the start (a reset counter): nothing.
        assert_eq!(TcpSample::between(&start, &reading(0, 0, false)), None);
        // Done within one tick of the busy clock: a lower bound.
        let quick = TcpSample::between(&start, &reading(101_000, 10, false)).unwrap();
        assert_eq!((quick.rate, quick.app_limited), (25_000_000, true));
        assert!(
            TcpSample::between(&start, &reading(51_000, 900, true))
                .unwrap()
                .app_limited
        );
    }

    #[test]
    fn zero_rates_are_ignored() {
        let t = Instant::now();
        let mut e = Estimator::default();
        assert_eq!(e.record(ip(1), &sample(0, false), t), Recorded::NoRate);
        assert!(e.is_empty());
    }

    #[test]
    fn rank_takes_the_slower_of_rate_and_rtt() {
        let t = tiers();
        let name = |e: Estimate| t[e.rank(&t)].name.clone();
        let est = |kbps, rtt| Estimate {
            kbps,
            min_rtt_ms: rtt,
        };
        assert_eq!(name(est(40, None)), "slow-2g");
        assert_eq!(name(est(120, None)), "2g");
        assert_eq!(name(est(500, Some(50))), "3g");
        assert_eq!(name(est(50_000, Some(5))), "4g");
        assert_eq!(name(est(50_000, Some(1500))), "2g");
    }

    #[test]
    fn ipv6_clients_are_keyed_by_prefix() {
        let t = Instant::now();
        let mut e = Estimator::default();
        let a: IpAddr = "2001:db8:1:2::aaaa".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        e.record(a, &sample(100, false), t);
        assert_eq!(e.estimate(b, t).unwrap().kbps, 100);
        assert_eq!(e.estimate(other, t), None);
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        e.record(mapped, &sample(70, false), t);
        assert_eq!(e.estimate(ip(1), t).unwrap().kbps, 70);
    }

    #[test]
    fn stays_bounded_and_forgets_the_oldest() {
        let t0 = Instant::now();
        let mut e = Estimator::new(Duration::from_secs(3600), 8);
        for i in 0..200u8 {
            e.record(
                ip(i),
                &sample(100, false),
                t0 + Duration::from_secs(u64::from(i)),
            );
            assert!(e.len() <= 8);
        }
        // The newest clients are still known.
        let now = t0 + Duration::from_secs(200);
        assert!(e.estimate(ip(199), now).is_some());
        assert!(e.estimate(ip(0), now).is_none());
    }

    proptest! {
        #[test]
        fn the_average_stays_within_its_samples(rates in proptest::collection::vec((1u64..100_000, any::<bool>(), 0u64..600), 1..40)) {
            let mut e = Estimator::new(Duration::from_secs(60), 4);
            let mut now = Instant::now();
            let (mut lo, mut hi) = (f64::MAX, 0f64);
            for (kbps, app_limited, gap) in rates {
                now += Duration::from_secs(gap);
                if e.record(ip(1), &sample(kbps, app_limited), now) != Recorded::BelowAverage {
                    lo = lo.min(kbps as f64);
                    hi = hi.max(kbps as f64);
                }
                if let Some(est) = e.estimate(ip(1), now) {
                    prop_assert!(f64::from(est.kbps) >= lo.floor() && f64::from(est.kbps) <= hi.ceil());
                }
            }
        }

        #[test]
        fn a_faster_link_never_ranks_lower(a in 0u32..100_000, b in 0u32..100_000, rtt in proptest::option::of(0u32..5_000)) {
            let t = tiers();
            let (lo, hi) = (a.min(b), a.max(b));
            let slow = Estimate { kbps: lo, min_rtt_ms: rtt }.rank(&t);
            let fast = Estimate { kbps: hi, min_rtt_ms: rtt }.rank(&t);
            prop_assert!(slow <= fast);
            prop_assert!(fast < t.len());
        }
    }
}
