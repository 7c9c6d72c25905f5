#!/usr/bin/env bash
# Time to first frame of the sample lecture on an emulated EDGE link, per rung
# and for the original source file, in headless Chromium; prints a table.
#
# The link: a network namespace joined by a veth pair whose edge-side end is
# shaped with tbf to RATE (240 kbit/s), and ROUND_TRIP (800 ms) added by
# benches/delay-proxy.py running next to the browser in the namespace (netem
# is not available on this kernel). The edge runs outside, so its own TCP
# connection crosses the shaped link ("Auto" is what its TCP_INFO estimate picks).
# The proxy delays what crosses it, not the edge's TCP clock: slow start grows
# at the veth's round trip, so first frames here are somewhat optimistic for a
# real 800 ms link.
#
# Each case: a fresh browser context (empty cache) opens the lesson page
# (/m/<module>/<video>/watch), plays at once, and the clock runs from the
# start of the navigation to the first video frame presented (for sound only,
# to the start of playback); bytes are all that came over the wire by then.
#
# Needs root, ip, tc, python3, node, chromium and playwright-core
# (scripts/install-deps.sh --test). Usage: benches/lesson-edge.sh
# Every case runs REPEAT times (3), interleaved; the table gives the median.
# Environment: RATE (240kbit), ROUND_TRIP (800, ms), STORE (a store to reuse;
# default a fresh one under target/), CARGO_TARGET_DIR, ONLY (a comma-separated
# list of cases, e.g. 144p,original), LOWBAND_TTFF_REQUESTS=1 (print each case's
# requests with their timings, as JSON, to stderr), EDGE_LOG (a file for the
# edge's log) with EDGE_LOG_FILTER (e.g. lowband_edge=trace: every TCP_INFO sample).
set -euo pipefail
cd "$(dirname "$0")/.."
RATE="${RATE:-240kbit}"
ROUND_TRIP="${ROUND_TRIP:-800}"
MODULE=teaching-questions
VIDEO=lessons/lecture.mp4
SOURCE="samples/$MODULE/$VIDEO"
target="${CARGO_TARGET_DIR:-target}"
STORE="${STORE:-$target/lesson-edge-store}"
NODE_MODULES="${LOWBAND_NODE_MODULES:-${LOWBAND_TOOLS:-$HOME/.cache/lowband}/browser-node/node_modules}"
[[ -d "$NODE_MODULES/playwright-core" ]] || { echo "playwright-core missing in $NODE_MODULES: run scripts/install-deps.sh --test" >&2; exit 1; }

cargo build --quiet --bin lowband-edge --bin lowband-pipeline
"$target/debug/lowband-pipeline" ingest "samples/$MODULE" --store "file://$STORE" >/dev/null

# The original, as an object the edge serves like any other.
hash="$(sha256sum <"$SOURCE" | cut -d' ' -f1)"
mkdir -p "$STORE/objects/${hash:0:2}"
cp "$SOURCE" "$STORE/objects/${hash:0:2}/$hash.mp4"

ns="lowband-edge-bench-$$"
host_if="lbb$(($$ % 100000))h"
peer_if="lbb$(($$ % 100000))p"
net="10.222.$(($$ % 250))"
edge_pid="" proxy_pid=""
cleanup() {
  [[ -n "$proxy_pid" ]] && kill "$proxy_pid" 2>/dev/null || true
  [[ -n "$edge_pid" ]] && kill "$edge_pid" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  ip link del "$host_if" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$ns"
ip link add "$host_if" type veth peer name "$peer_if"
ip link set "$peer_if" netns "$ns"
ip addr add "$net.1/30" dev "$host_if"
ip link set "$host_if" up
ip netns exec "$ns" ip addr add "$net.2/30" dev "$peer_if"
ip netns exec "$ns" ip link set "$peer_if" up
ip netns exec "$ns" ip link set lo up
tc qdisc add dev "$host_if" root tbf rate "$RATE" burst 4kb latency 2s

port=$((20000 + $$ % 20000))
"$target/debug/lowband-edge" serve --store "file://$STORE" --listen "$net.1:$port" --log "${EDGE_LOG_FILTER:-warn}" >"${EDGE_LOG:-/dev/null}" 2>&1 &
edge_pid=$!
# On the namespace's own address, not loopback: Chromium treats http://127.0.0.1 as a
# secure context and sends its own ECT (4g until it has measured anything), which
# would outrank what the edge measures; over plain HTTP elsewhere it sends no hints.
ip netns exec "$ns" python3 benches/delay-proxy.py "$net.2:$port" "$net.1:$port" "$ROUND_TRIP" >/dev/null &
proxy_pid=$!
for _ in $(seq 50); do
  curl -sf "http://$net.1:$port/healthz" >/dev/null && break
  sleep 0.1
done
sleep 0.5

base="http://$net.2:$port"
watch="$base/m/$MODULE/$VIDEO/watch"
cases="$(python3 - "$STORE/modules/$MODULE/manifest.json" "$VIDEO" "$watch" "$hash" "${ONLY:-}" "${REPEAT:-3}" <<'EOF'
import json, sys
manifest, video, watch, source, only, repeat = sys.argv[1:]
asset = next(a for a in json.load(open(manifest))["assets"] if a["path"] == video)
cases = []
for v in sorted(asset["variants"], key=lambda v: v["bytes"]):
    if v["kind"] in ("video", "audio"):
        cases.append({"name": v["name"], "tier": v["tier"], "bytes": v["bytes"], "url": watch, "src": "/o/" + v["key"]})
cases.append({"name": "original", "tier": "-", "bytes": asset["source"]["bytes"], "url": watch, "src": "/o/objects/%s/%s.mp4" % (source[:2], source)})
cases.append({"name": "auto", "tier": "?", "bytes": 0, "url": watch})
cases = [c for c in cases if not only or c["name"] in only.split(",")]
print(json.dumps(cases * int(repeat)))
EOF
)"
echo "lesson-edge: $MODULE/$VIDEO over tbf $RATE + ${ROUND_TRIP} ms round trip (delay proxy), Chromium $(chromium --version 2>/dev/null | awk '{print $2}')" >&2
results="$(ip netns exec "$ns" env LOWBAND_NODE_MODULES="$NODE_MODULES" LOWBAND_TTFF_REQUESTS="${LOWBAND_TTFF_REQUESTS:-}" node benches/lesson-ttff.mjs "$cases")"
[[ -n "${LOWBAND_TTFF_REQUESTS:-}" ]] && echo "$results" >&2
python3 - "$cases" "$results" <<'EOF'
import json, statistics, sys
cases = {c["name"]: c for c in json.loads(sys.argv[1])}
runs = {}
for line in sys.argv[2].splitlines():
    if line.strip():
        r = json.loads(line)
        runs.setdefault(r["name"], []).append(r)
print(f"| {'variant':<10} | {'tier':<7} | {'file bytes':>10} | {'picture':>8} | {'first frame (median)':>20} | {'runs':<22} | {'bytes by then':>13} |")
print(f"|{'-'*12}|{'-'*9}|{'-'*12}|{'-'*10}|{'-'*22}|{'-'*24}|{'-'*15}|")
for name, rs in runs.items():
    c = cases[name]
    ok = sorted((r for r in rs if "ttffMs" in r and not r.get("error")), key=lambda r: r["ttffMs"])
    med = ok[len(ok) // 2] if ok else rs[0]
    pic = f"{med.get('width', 0)}x{med.get('height', 0)}" if med.get("width") else "sound"
    ttff = f"{statistics.median(r['ttffMs'] for r in ok) / 1000:.1f} s" if ok else "no frame"
    each = ", ".join(f"{r['ttffMs'] / 1000:.1f}" if "ttffMs" in r and not r.get("error") else "fail" for r in rs)
    size = f"{c['bytes']:,}" if c["bytes"] else "-"
    print(f"| {name:<10} | {c['tier']:<7} | {size:>10} | {pic:>8} | {ttff:>20} | {each:<22} | {med['bytes']:>13,} |")
EOF
