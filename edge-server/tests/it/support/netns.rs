//! A network namespace joined to this one by a veth pair whose edge-side
//! end is shaped with `tc qdisc ... tbf` (netem is not available on every
//! kernel; tbf is), for a client on a real slow link. Needs root (or
//! CAP_NET_ADMIN), `ip` and `tc`.

use std::net::IpAddr;
use std::process::Command;

/// Runs a command, returning its stdout or a message naming it and its stderr.
pub fn run(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if !out.status.success() {
        return Err(format!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A namespace and veth pair, removed when dropped (a failed assertion included).
pub struct ShapedLink {
    pub ns: String,
    pub host_if: String,
    /// The edge side's address; the namespace side is the next one.
    pub host_ip: [u8; 4],
}

impl ShapedLink {
    /// A link whose download (what the edge sends) runs at `rate` (`tc`'s
    /// syntax, e.g. `100kbit`).
    pub fn create(rate: &str) -> Result<Self, String> {
        // Unique per process and per call, short enough for an interface name (15).
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pid = std::process::id();
        let tag = format!("{:x}{n}", pid % 0x10_0000);
        let net = [10, 200 + (pid % 50) as u8, ((pid / 50) % 256) as u8];
        let link = Self {
            ns: format!("lowband-{tag}"),
            host_if: format!("lbh{tag}"),
            // One /30 per link, so links of one process can coexist.
            host_ip: [net[0], net[1], net[2], (4 * (n % 64) + 1) as u8],
        };
        let peer_if = format!("lbp{tag}");
        let host_ip = IpAddr::from(link.host_ip);
        let peer_ip = link.peer_ip();
        let ns = link.ns.as_str();
        // From here on, `link` drops (and cleans up) on any failure.
        let cmd = |line: String| run(&line.split_whitespace().collect::<Vec<_>>());
        let host_if = &link.host_if;
        cmd(format!("ip netns add {ns}"))?;
        cmd(format!(
            "ip link add {host_if} type veth peer name {peer_if}"
        ))?;
        cmd(format!("ip link set {peer_if} netns {ns}"))?;
        cmd(format!("ip addr add {host_ip}/30 dev {host_if}"))?;
        cmd(format!("ip link set {host_if} up"))?;
        cmd(format!(
            "ip netns exec {ns} ip addr add {peer_ip}/30 dev {peer_if}"
        ))?;
        cmd(format!("ip netns exec {ns} ip link set {peer_if} up"))?;
        cmd(format!("ip netns exec {ns} ip link set lo up"))?;
        // Shape what the edge sends (the download). The bucket holds 4 KB,
        // so only the first few packets pass at the veth's own speed.
        cmd(format!(
            "tc qdisc add dev {host_if} root tbf rate {rate} burst 4kb latency 500ms"
        ))?;
        Ok(link)
    }

    pub fn peer_ip(&self) -> IpAddr {
        let [a, b, c, d] = self.host_ip;
        IpAddr::from([a, b, c, d + 1])
    }

    /// Runs `curl` inside the namespace.
    pub fn curl(&self, args: &[&str]) -> Result<String, String> {
        let mut all = vec!["ip", "netns", "exec", self.ns.as_str(), "curl"];
        all.extend_from_slice(args);
        run(&all)
    }
}

impl Drop for ShapedLink {
    fn drop(&mut self) {
        // Deleting the namespace deletes its end of the pair, and with it ours.
        let _ = run(&["ip", "netns", "del", &self.ns]);
        let _ = run(&["ip", "link", "del", &self.host_if]);
    }
}
