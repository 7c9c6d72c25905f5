//! Reading a connection's `TCP_INFO`: the one effect behind the edge's
//! connection estimate ([`super::estimate`]).
//!
//! [`Probe`] holds a duplicate of an accepted socket and reads the kernel's
//! counters (one `getsockopt`) when a response body has been handed to the
//! socket and when the connection ends, at most once per
//! [`MIN_SAMPLE_INTERVAL`] and only once [`MIN_BYTES_ACKED`] more could
//! have been acknowledged, so small responses cost no system call.

#![allow(
    unsafe_code,
    reason = "getsockopt(TCP_INFO) on the connection's socket, which std does not offer"
)]

use std::net::IpAddr;
use std::time::Instant;

use super::estimate::{TcpReading, TcpSample, MIN_BYTES_ACKED, MIN_SAMPLE_INTERVAL};

/// The kernel's `struct tcp_info` (`include/uapi/linux/tcp.h`) up to
/// `tcpi_delivered` (Linux 4.18; `tcpi_busy_time` is 4.10). Declared here
/// rather than taken from `libc` because libc's glibc layout leaves out
/// the byte holding the app-limited bit.
#[cfg(target_os = "linux")]
#[repr(C)]
#[derive(Default)]
struct RawTcpInfo {
    state: u8,
    ca_state: u8,
    retransmits: u8,
    probes: u8,
    backoff: u8,
    options: u8,
    wscale: u8,
    /// `tcpi_delivery_rate_app_limited:1, tcpi_fastopen_client_fail:2`.
    app_limited_bits: u8,
    rto: u32,
    ato: u32,
    snd_mss: u32,
    rcv_mss: u32,
    unacked: u32,
    sacked: u32,
    lost: u32,
    retrans: u32,
    fackets: u32,
    last_data_sent: u32,
    last_ack_sent: u32,
    last_data_recv: u32,
    last_ack_recv: u32,
    pmtu: u32,
    rcv_ssthresh: u32,
    rtt: u32,
    rttvar: u32,
    snd_ssthresh: u32,
    snd_cwnd: u32,
    advmss: u32,
    reordering: u32,
    rcv_rtt: u32,
    rcv_space: u32,
    total_retrans: u32,
    pacing_rate: u64,
    max_pacing_rate: u64,
    bytes_acked: u64,
    bytes_received: u64,
    segs_out: u32,
    segs_in: u32,
    notsent_bytes: u32,
    min_rtt: u32,
    data_segs_in: u32,
    data_segs_out: u32,
    delivery_rate: u64,
    busy_time: u64,
    rwnd_limited: u64,
    sndbuf_limited: u64,
    delivered: u32,
    delivered_ce: u32,
}

/// Reads one connection's `TCP_INFO`: its own duplicate of the socket, so
/// a response body that outlives the connection's stream (HTTP/2 runs
/// bodies on their own tasks) never reads a reused descriptor.
#[derive(Debug)]
pub struct Probe {
    peer: IpAddr,
    #[cfg(target_os = "linux")]
    fd: std::os::fd::OwnedFd,
    /// The reading the next sample starts from.
    last: std::sync::Mutex<TcpReading>,
    /// Bytes handed to the socket since that reading (a little more, with
    /// an allowance for response heads): while fewer than
    /// [`MIN_BYTES_ACKED`], no sample can count and `TCP_INFO` is not read.
    unsampled: std::sync::atomic::AtomicU64,
    /// When the probe was made; `next_ms` counts from it.
    born: Instant,
    /// Milliseconds after `born` before which no sample is taken mid-connection.
    next_ms: std::sync::atomic::AtomicU64,
}

impl Probe {
    /// A probe for an accepted TCP connection; `None` where `TCP_INFO` is
    /// not available or the descriptor cannot be duplicated.
    pub fn new(stream: &tokio::net::TcpStream, peer: IpAddr) -> Option<Self> {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsFd;
            let fd = stream.as_fd().try_clone_to_owned().ok()?;
            Some(Self {
                peer,
                fd,
                last: std::sync::Mutex::new(TcpReading::default()),
                unsampled: std::sync::atomic::AtomicU64::new(0),
                born: Instant::now(),
                next_ms: std::sync::atomic::AtomicU64::new(0),
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (stream, peer);
            None
        }
    }

    pub fn peer(&self) -> IpAddr {
        self.peer
    }

    /// Counts a response handed to the socket: `body` bytes and its head.
    /// Returns whether enough has been sent since the last sample for a new
    /// one to count, and long enough ago ([`MIN_SAMPLE_INTERVAL`]), so that
    /// small responses and a fast client's stream of them cost no `getsockopt`.
    pub fn sent(&self, body: u64) -> bool {
        use std::sync::atomic::Ordering;
        /// About what a response head takes on the wire.
        const HEAD_BYTES: u64 = 256;
        let before = self
            .unsampled
            .fetch_add(body + HEAD_BYTES, Ordering::Relaxed);
        before + body + HEAD_BYTES >= MIN_BYTES_ACKED
            && self.age_ms() >= self.next_ms.load(Ordering::Relaxed)
    }

    fn age_ms(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether enough was sent since the last sample for a reading to count:
    /// true after a response whose end came before its bytes were acknowledged,
    /// until a reading takes them (at the next request, or at the end), and
    /// no reading was taken in the last [`MIN_SAMPLE_INTERVAL`].
    pub fn due(&self) -> bool {
        use std::sync::atomic::Ordering;
        self.unsampled.load(Ordering::Relaxed) >= MIN_BYTES_ACKED
            && self.age_ms() >= self.next_ms.load(Ordering::Relaxed)
    }

    /// What the connection did since the last sample, if enough to tell
    /// (`None` too if the socket cannot be read).
    pub fn sample(&self) -> Option<TcpSample> {
        let now = self.read()?;
        let next = self
            .age_ms()
            .saturating_add(MIN_SAMPLE_INTERVAL.as_millis() as u64);
        self.next_ms
            .store(next, std::sync::atomic::Ordering::Relaxed);
        let mut last = self.last.lock().ok()?;
        let sample = TcpSample::between(&last, &now)?;
        *last = now;
        self.unsampled
            .store(0, std::sync::atomic::Ordering::Relaxed);
        Some(sample)
    }

    #[cfg(target_os = "linux")]
    fn read(&self) -> Option<TcpReading> {
        use std::os::fd::AsRawFd;
        let mut info = RawTcpInfo::default();
        let mut len = std::mem::size_of::<RawTcpInfo>() as libc::socklen_t;
        // SAFETY: `info` is a plain repr(C) struct of `len` bytes that the
        // kernel fills (up to `len`); the descriptor is owned by `self`.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                (&mut info as *mut RawTcpInfo).cast(),
                &mut len,
            )
        };
        // Kernels before 4.18 fill less: no delivery rate to read.
        if rc != 0 || (len as usize) < std::mem::size_of::<RawTcpInfo>() {
            return None;
        }
        // The first bit-field member takes the low bit on little-endian
        // targets, the high bit on big-endian ones.
        let app_limited_mask = if cfg!(target_endian = "little") {
            0x01
        } else {
            0x80
        };
        Some(TcpReading {
            bytes_acked: info.bytes_acked,
            busy_us: info.busy_time,
            app_limited: info.app_limited_bits & app_limited_mask != 0,
            min_rtt_us: info.min_rtt,
        })
    }

    #[cfg(not(target_os = "linux"))]
    fn read(&self) -> Option<TcpReading> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A probe reads `TCP_INFO` only once enough has been sent, and then
    /// at most once per interval while the connection lasts.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn probe_reads_after_enough_bytes_and_at_most_once_per_interval() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut server, peer) = listener.accept().await.unwrap();
        let probe = Probe::new(&server, peer.ip()).unwrap();
        assert!(!probe.sent(100), "a small response does not read TCP_INFO");

        let body = vec![7u8; 64 * 1024];
        server.write_all(&body).await.unwrap();
        let mut got = vec![0u8; body.len()];
        client.read_exact(&mut got).await.unwrap();
        assert!(probe.sent(body.len() as u64));
        let read_at = Instant::now();
        probe.sample();
        let again = probe.sent(body.len() as u64);
        if read_at.elapsed() < MIN_SAMPLE_INTERVAL {
            assert!(!again, "read again within the interval");
        }
        tokio::time::sleep(MIN_SAMPLE_INTERVAL + Duration::from_millis(20)).await;
        assert!(
            probe.sent(body.len() as u64),
            "due again after the interval"
        );
    }
}
