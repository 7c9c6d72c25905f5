#!/usr/bin/env bash
# Cache hits against the plain edge: a cache node (serve --upstream --cache-dir
# --cache-size) serving objects it holds, side by side with the plain edge
# serving the same objects from its own file:// store, on the same CPU(s),
# measured with wrk. This is the check of issue 6's done-means:
#
#   "cache-hit throughput within 10% of the plain edge serving from its local store"
#
# read here as: for every scenario, the median requests/s of the cache node
# divided by the median requests/s of the plain edge is >= 0.90 ("ratio" in the
# table; the verdict column says "ok" or "BELOW"). p99 latency and CPU per
# request are printed beside it (there lower is better).
#
#   benches/cache-vs-edge.sh [RUNS] [DURATION]
#
# RUNS (per side and scenario; the sides alternate, the order flipping each run:
# plain, cache, cache, plain, ...) defaults to 3, DURATION (seconds per wrk run) to 10.
# Environment:
#   SERVER_CPUS  CPUs every server is pinned to (taskset list, default 0)
#   CLIENT_CPUS  CPUs wrk is pinned to (default: the others; all CPUs when the machine has one)
#   CONNECTIONS  wrk connections (default 32); wrk runs one thread per client CPU
#   KEEP=1       leaves the temporary directory (store, cache dirs, logs) in place
#   SCENARIOS    which scenarios to run (default "page-br object-br range-64k upstream-edge")
#   UPSTREAM_EDGE_AS  the request the upstream-edge scenario makes: page-br (default),
#                object-br or range-64k
#   NO_BUILD=1   uses the existing release binaries instead of running cargo build
#   PIPELINE     a lowband-pipeline binary to ingest with (e.g. a debug build; only
#                the edge is measured), instead of building the release one
#   INSTRUCTIONS=1  instead of wrk, count the instructions one request costs on each
#                side under valgrind's callgrind (deterministic: immune to a noisy
#                machine; page-br, object-br, range-64k; see below)
#
# The data is that of edge-vs-nginx.sh, made by the real pipeline: a generated
# module (a ~5 KB HTML page, 1 MiB of random bytes) ingested into a temporary
# file:// store. Servers, all running at once on loopback, each pinned with
# `taskset -c SERVER_CPUS` and given TOKIO_WORKER_THREADS = the number of those CPUs:
#   plain  lowband-edge serve --store file://<store>
#   cache  lowband-edge serve --upstream file://<store> --cache-dir <tmp>/cache --cache-size 2GB
#   chain  lowband-edge serve --upstream http://<plain's address> --cache-dir <tmp>/chain
#          --cache-size 2GB (only for the upstream-edge scenario: a node whose
#          upstream is another edge)
# Before any timing the cache nodes are warmed (every scenario URL requested
# until the object answers Lowband-Cache: hit), and every scenario is checked on
# every side: status, Content-Encoding, Content-Range, Lowband-Cache (absent on
# the plain edge, "hit" on the cache nodes), and the sha256 of the body equal on
# all sides and to the stored object (or its slice).
#
# Scenarios (same request on both sides):
#   page-br        /m/bench/page.html with Accept-Encoding: br (negotiated: manifest, selection)
#   object-br      /o/<key> of the page's brotli copy
#   range-64k      /o/<key> of the 1 MiB object, Range: bytes=X-(X+65535), X random per request
#   upstream-edge  the UPSTREAM_EDGE_AS request on the chain node against the plain edge
# Prints every run, then per scenario the median requests/s, p99 and CPU µs per
# request (the server's user + system time from /proc/<pid>/stat over the requests
# wrk counted) of both sides and the cache / plain ratios. Afterwards it reads the
# cache nodes' /metrics: a miss or pass during the measured runs (every request
# should have been a hit) fails the script, after the table.
set -euo pipefail

die() { echo "cache-vs-edge.sh: $*" >&2; exit 1; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=benches/lib/edge-bench.sh
source "$root/benches/lib/edge-bench.sh"

bench_args "$@"
upstream_edge_as=${UPSTREAM_EDGE_AS:-page-br}
case $upstream_edge_as in
    page-br | object-br | range-64k) ;;
    *) die "UPSTREAM_EDGE_AS must be page-br, object-br or range-64k, got: $upstream_edge_as" ;;
esac

# --- dependencies -----------------------------------------------------------
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v curl >/dev/null || need+=(curl)
command -v taskset >/dev/null || need+=(util-linux)
install_missing "${need[@]}"

# --- CPUs ---------------------------------------------------------------------
bench_cpus

# --- build --------------------------------------------------------------------
bench_binaries

# --- scenarios ------------------------------------------------------------------
read -r -a scenarios <<<"${SCENARIOS:-page-br object-br range-64k upstream-edge}"
want_chain=""
for s in "${scenarios[@]}"; do
    case $s in
        page-br | object-br | range-64k) ;;
        upstream-edge) want_chain=1 ;;
        *) die "unknown scenario: $s (page-br, object-br, range-64k, upstream-edge)" ;;
    esac
done

# --- temporary directory, cleanup ---------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lowband-cache-vs-edge.XXXXXX")
declare -A pid=()
cleanup() {
    local rc=$?
    local p
    for p in "${pid[@]}"; do
        if kill -0 "$p" 2>/dev/null; then kill -TERM "$p" 2>/dev/null || true; fi
    done
    bench_cleanup "$tmp" "${pid[@]}"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the module, through the real pipeline -------------------------------------
bench_module "$tmp" "$pipeline"

# --- servers --------------------------------------------------------------------
declare -A url=()
start_edge() {  # side args...
    local side=$1
    shift
    local port
    port=$(free_port)
    for u in "${url[@]}"; do [[ $u != *":$port" ]] || port=$(free_port); done
    TOKIO_WORKER_THREADS=$workers taskset -c "$server_cpus" "$edge" serve "$@" \
        --listen "127.0.0.1:$port" --log warn >"$tmp/$side.log" 2>&1 &
    pid[$side]=$!
    url[$side]=http://127.0.0.1:$port
}
wait_edge() {  # side
    local side=$1
    for _ in $(seq 100); do
        curl -fsS -o /dev/null "${url[$side]}/healthz" 2>/dev/null && return 0
        kill -0 "${pid[$side]}" 2>/dev/null || { tail -n 20 "$tmp/$side.log" >&2; die "the $side edge exited"; }
        sleep 0.1
    done
    die "the $side edge does not answer on ${url[$side]}"
}

start_edge plain --store "file://$tmp/store"
start_edge cache --upstream "file://$tmp/store" --cache-dir "$tmp/cache" --cache-size 2GB
wait_edge plain
wait_edge cache
sides=(plain cache)
if [[ -n $want_chain ]]; then
    start_edge chain --upstream "${url[plain]}" --cache-dir "$tmp/chain" --cache-size 2GB
    wait_edge chain
    sides+=(chain)
fi
threads_of() { cat /proc/"${pid[$1]}"/task/*/comm 2>/dev/null | sort | uniq -c | awk '{printf "%s%s x%s", sep, $2, $1; sep=", "}' || true; }
edge_threads=$(threads_of plain)

# --- requests of each kind ------------------------------------------------------------
declare -A path=() script=() curl_args=()
path[page-br]=/m/bench/page.html
path[object-br]=/o/$page_br_key
path[range-64k]=/o/$blob_key
wrk_scripts "$tmp"
script[page-br]=$tmp/page-br.lua
script[object-br]=$tmp/plain.lua
script[range-64k]=$tmp/range-64k.lua
curl_args[page-br]="-H Accept-Encoding:br"
curl_args[object-br]=""
curl_args[range-64k]="-H Range:bytes=123457-188992"
kinds=(page-br object-br range-64k)

sha() { sha256sum "$1" | cut -d' ' -f1; }
header() { { grep -i "^$1:" "$tmp/headers" || true; } | head -1 | cut -d: -f2- | tr -d '\r' | sed 's/^ *//'; }
fetch() {  # side kind -> status; body in $tmp/body, headers in $tmp/headers
    local side=$1 kind=$2
    local -a args
    read -r -a args <<<"${curl_args[$kind]}"
    curl -sS -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' "${args[@]}" "${url[$side]}${path[$kind]}" \
        || die "$kind $side: curl ${url[$side]}${path[$kind]} failed"
}

# --- warm the cache nodes: every URL until its object is a hit ----------------------
for side in "${sides[@]}"; do
    [[ $side != plain ]] || continue
    for kind in "${kinds[@]}"; do
        first=""
        ok=""
        for i in $(seq 150); do
            status=$(fetch "$side" "$kind")
            [[ $status == 200 || $status == 206 ]] || { cat "$tmp/headers" >&2; die "warming $kind on $side: status $status"; }
            got=$(header lowband-cache)
            [[ -n $first ]] || first=${got:-none}
            if [[ $got == hit ]]; then ok=1; break; fi
            # The page's manifest is fetched on the first request; a fill finishes in the background.
            sleep 0.1
        done
        [[ -n $ok ]] || { cat "$tmp/headers" >&2; die "warming $kind on $side: still Lowband-Cache '$got' after 150 requests (first: $first)"; }
        echo "warmed: $side $kind (first answer Lowband-Cache: $first, hit after $i request(s))" >&2
        echo "$side $kind $first $i" >>"$tmp/warm"
    done
done
[[ -n $(find "$tmp/cache/objects" -type f 2>/dev/null) ]] || die "the cache node holds no file under $tmp/cache/objects after warming"

# --- correctness, before any timing ------------------------------------------------
br_sha=$(sha "$tmp/store/$page_br_key")
range_sha=$(python3 -c 'import hashlib, sys; d = open(sys.argv[1], "rb").read()[123457:123457 + 65536]; print(hashlib.sha256(d).hexdigest())' "$tmp/store/$blob_key")
declare -A want_status=([page-br]=200 [object-br]=200 [range-64k]=206)
declare -A want_sha=([page-br]=$br_sha [object-br]=$br_sha [range-64k]=$range_sha)
for kind in "${kinds[@]}"; do
    for side in "${sides[@]}"; do
        status=$(fetch "$side" "$kind")
        [[ $status == "${want_status[$kind]}" ]] || { cat "$tmp/headers" >&2; die "$kind $side: status $status, expected ${want_status[$kind]}"; }
        got=$(sha "$tmp/body")
        [[ $got == "${want_sha[$kind]}" ]] || die "$kind $side: body sha256 $got, expected ${want_sha[$kind]} (the stored object)"
        case $kind in
            page-br) [[ $(header content-encoding) == br ]] || die "$kind $side: Content-Encoding '$(header content-encoding)', expected br" ;;
            range-64k) [[ $(header content-range) == "bytes 123457-188992/1048576" ]] || die "$kind $side: Content-Range '$(header content-range)'" ;;
        esac
        lc=$(header lowband-cache)
        if [[ $side == plain ]]; then
            [[ -z $lc ]] || die "$kind plain: the plain edge answered Lowband-Cache: $lc"
        else
            [[ $lc == hit ]] || die "$kind $side: Lowband-Cache '$lc' after warming, expected hit"
        fi
    done
done
page_bytes=$(stat -c %s "$tmp/module/page.html")
br_bytes=$(stat -c %s "$tmp/store/$page_br_key")

# --- INSTRUCTIONS=1: instructions per request (callgrind) instead of wrk ----------------
# Counted, not timed: the same for the same binary and requests whatever else the
# machine does. Each side is started afresh under valgrind, serves N1 then (another
# start) N2 keep-alive requests of one kind; (total(N2) - total(N1)) / (N2 - N1) is
# what one request costs, start-up and shutdown cancelling out. The cache side uses
# the warmed cache directory, so every request is a hit.
if [[ -n ${INSTRUCTIONS:-} ]]; then
    command -v valgrind >/dev/null || die "INSTRUCTIONS=1 needs valgrind (apt-get install valgrind)"
    n1=200
    n2=1200
    declare -A side_args=(
        [plain]="--store file://$tmp/store"
        [cache]="--upstream file://$tmp/store --cache-dir $tmp/cache --cache-size 2GB"
    )
    declare -A client_header=([page-br]="Accept-Encoding: br" [object-br]="" [range-64k]="Range: bytes=123457-188992")
    instructions() {  # side kind n -> total instructions
        local side=$1 kind=$2 n=$3 port vpid
        local -a args
        read -r -a args <<<"${side_args[$side]}"
        port=$(free_port)
        TOKIO_WORKER_THREADS=1 valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.$side.$kind.$n" \
            "$edge" serve "${args[@]}" --listen "127.0.0.1:$port" --log warn >"$tmp/cg.$side.log" 2>&1 &
        vpid=$!
        for _ in $(seq 200); do
            curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null && break
            sleep 0.2
        done
        python3 - "$port" "${path[$kind]}" "$n" "${client_header[$kind]}" <<'PY' || die "$kind $side: requests under valgrind failed"
import http.client, sys
port, path, n, header = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
headers = dict([header.split(": ", 1)]) if header else {}
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
for _ in range(n):
    c.request("GET", path, headers=headers)
    r = c.getresponse()
    r.read()
    if r.status not in (200, 206):
        sys.exit(f"status {r.status}")
PY
        kill -INT "$vpid"
        wait "$vpid" 2>/dev/null || true
        awk '/^(summary|totals):/ {print $2; exit}' "$tmp/cg.$side.$kind.$n"
    }
    echo
    printf '%-10s  %22s  %22s  %5s\n' scenario "plain instructions/req" "cache instructions/req" ratio
    for kind in "${kinds[@]}"; do
        declare -A per=()
        for side in plain cache; do
            a=$(instructions "$side" "$kind" "$n1")
            b=$(instructions "$side" "$kind" "$n2")
            per[$side]=$(((b - a) / (n2 - n1)))
        done
        printf '%-10s  %22s  %22s  %5s\n' "$kind" "${per[plain]}" "${per[cache]}" \
            "$(python3 -c "print(f'{${per[cache]} / ${per[plain]}:.3f}')")"
    done
    exit 0
fi

# --- counters ------------------------------------------------------------------------
# "hit miss coalesced pass upstream_requests upstream_errors stale" of a cache node.
cache_counters() {  # side
    curl -fsS "${url[$1]}/metrics" | python3 -c '
import re, sys
t = sys.stdin.read()
def v(pat):
    return sum(float(x) for x in re.findall(r"^" + pat + r"\s+([\d.e+]+)$", t, re.M))
print(" ".join(str(int(x)) for x in (
    v(r"lowband_cache_requests_total\{result=\"hit\"\}"),
    v(r"lowband_cache_requests_total\{result=\"miss\"\}"),
    v(r"lowband_cache_requests_total\{result=\"coalesced\"\}"),
    v(r"lowband_cache_requests_total\{result=\"pass\"\}"),
    v(r"lowband_cache_upstream_requests_total"),
    v(r"lowband_cache_upstream_errors_total\{[^}]*\}"),
    v(r"lowband_cache_stale_total\{[^}]*\}"))))
'
}

# CPU time (user + system, clock ticks) a server's process has used so far.
cpu_ticks() {  # side
    local fields
    # comm (field 2) may hold spaces: count fields after its closing parenthesis.
    read -r -a fields < <(sed 's/^.*) //' /proc/"${pid[$1]}"/stat)
    echo $((fields[11] + fields[12]))
}
tick_us=$((1000000 / $(getconf CLK_TCK)))


# scenario -> the request kind and the side measured against plain
declare -A kind_of=([page-br]=page-br [object-br]=object-br [range-64k]=range-64k [upstream-edge]=$upstream_edge_as)
declare -A other_of=([page-br]=cache [object-br]=cache [range-64k]=cache [upstream-edge]=chain)

echo "== cache node hits vs the plain edge: same bytes, same CPUs"
echo "machine: $ncpu CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo "servers: taskset -c $server_cpus; each lowband-edge with TOKIO_WORKER_THREADS=$workers (plain's threads at start: $edge_threads)"
echo "         plain: --store file://<store>; cache: --upstream file://<store> --cache-dir <tmp>/cache --cache-size 2GB"
[[ -z $want_chain ]] || echo "         chain: --upstream ${url[plain]} (the plain edge) --cache-dir <tmp>/chain --cache-size 2GB; upstream-edge makes the $upstream_edge_as request"
echo "client:  taskset -c $client_cpus; $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2) -t$wrk_threads -c$connections -d${duration}s --latency; $runs run(s) per side, alternating"
echo "data:    page.html $page_bytes B (br $br_bytes B), blob.bin 1048576 B of random bytes, ingested by lowband-pipeline"
echo "warmed:  $(awk '{printf "%s%s %s: first %s, hit after %s", sep, $1, $2, $3, $4; sep="; "}' "$tmp/warm")"
echo "checked: statuses 200/206, Content-Encoding br, Content-Range, Lowband-Cache hit on the cache nodes (absent on plain),"
echo "         sha256 of every body equal on all sides and to the stored object"
echo

# Warm the connections and page cache of every side (not measured).
for s in "${scenarios[@]}"; do
    k=${kind_of[$s]}
    for side in plain "${other_of[$s]}"; do
        taskset -c "$client_cpus" wrk -t1 -c4 -d1s -s "${script[$k]}" "${url[$side]}${path[$k]}" >/dev/null 2>&1 || true
    done
done

declare -A before=()
for side in "${sides[@]}"; do
    [[ $side == plain ]] || before[$side]=$(cache_counters "$side")
done

for s in "${scenarios[@]}"; do
    k=${kind_of[$s]}
    for ((i = 1; i <= runs; i++)); do
        if ((i % 2)); then order=(plain "${other_of[$s]}"); else order=("${other_of[$s]}" plain); fi
        for side in "${order[@]}"; do
            t0=$(cpu_ticks "$side")
            read -r rps p99 bad n < <(run_wrk "$tmp/wrk.$s.$side.$i" "${url[$side]}${path[$k]}" "${script[$k]}")
            cpu_us=$(( ($(cpu_ticks "$side") - t0) * tick_us / (n > 0 ? n : 1) ))
            ((bad == 0)) || { cat "$tmp/wrk.$s.$side.$i" >&2; die "$s $side run $i: $bad bad responses or socket errors"; }
            label=$side
            [[ $side == plain ]] || label=cache   # the table's column; chain is the cache side of upstream-edge
            echo "$s $label $i $rps $p99 $cpu_us" >>"$tmp/results"
            printf 'run %d  %-13s  %-5s  %10.0f req/s  p99 %8.3f ms  %4d µs CPU/req\n' "$i" "$s" "$side" "$rps" "$p99" "$cpu_us"
        done
    done
done
for side in "${sides[@]}"; do
    kill -0 "${pid[$side]}" 2>/dev/null || die "the $side edge died during the runs"
done
echo

python3 - "$tmp/results" "$runs" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
runs = int(sys.argv[2])
scen = []
for r in rows:
    if r[0] not in scen:
        scen.append(r[0])
def med(s, side, col):
    return statistics.median(float(r[col]) for r in rows if r[0] == s and r[1] == side)
print(f"median of {runs} run(s) per side; ratio = cache / plain (req/s: higher is better, p99 and CPU: lower is better)")
print("done-means of issue 6: cache-hit req/s within 10% of the plain edge = req/s ratio >= 0.90 ('ok', else 'BELOW')")
print("CPU/req: the server's user + system time (all its threads) over the requests served")
hdr = ("scenario", "cache req/s", "plain req/s", "ratio", "verdict", "cache p99 ms", "plain p99 ms", "ratio",
       "cache µs CPU/req", "plain µs CPU/req", "ratio")
out = [hdr]
for s in scen:
    cr, pr = med(s, "cache", 3), med(s, "plain", 3)
    cp, pp = med(s, "cache", 4), med(s, "plain", 4)
    cc, pc = med(s, "cache", 5), med(s, "plain", 5)
    ratio = cr / pr
    out.append((s, f"{cr:.0f}", f"{pr:.0f}", f"{ratio:.2f}", "ok" if ratio >= 0.90 else "BELOW",
                f"{cp:.2f}", f"{pp:.2f}", f"{cp / pp:.2f}", f"{cc:.0f}", f"{pc:.0f}", f"{cc / pc:.2f}" if pc else "-"))
w = [max(len(x[c]) for x in out) for c in range(len(hdr))]
for k, row in enumerate(out):
    print("  ".join(x.ljust(w[0]) if c == 0 else x.rjust(w[c]) for c, x in enumerate(row)))
    if k == 0:
        print("  ".join("-" * n for n in w))
PY

# --- every measured request should have been a hit --------------------------------------
echo
failed=""
for side in "${sides[@]}"; do
    [[ $side != plain ]] || continue
    read -r h0 m0 c0 p0 u0 e0 s0 <<<"${before[$side]}"
    read -r h1 m1 c1 p1 u1 e1 s1 <<<"$(cache_counters "$side")"
    echo "$side node during the runs: hits +$((h1 - h0)), misses +$((m1 - m0)), coalesced +$((c1 - c0)), passes +$((p1 - p0)), upstream requests +$((u1 - u0)), upstream errors +$((e1 - e0)), stale serves +$((s1 - s0))"
    if ((m1 > m0 || c1 > c0 || p1 > p0 || e1 > e0)); then
        echo "cache-vs-edge.sh: the $side node missed, passed or failed upstream during the measured runs (every request should be a hit)" >&2
        failed=1
    fi
done
for side in "${sides[@]}"; do
    if grep -qE 'WARN|ERROR' "$tmp/$side.log"; then
        echo "$side log ($(grep -cE 'WARN|ERROR' "$tmp/$side.log") warning/error line(s)), last ones:"
        grep -E 'WARN|ERROR' "$tmp/$side.log" | tail -n 5
    fi
done
[[ -z $failed ]] || exit 1
