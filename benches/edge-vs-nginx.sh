#!/usr/bin/env bash
# Side by side: lowband-edge against Debian's nginx serving the SAME
# precompressed bytes, on the same CPU(s), measured with wrk.
#
#   benches/edge-vs-nginx.sh [RUNS] [DURATION]
#
# RUNS (per side and scenario, alternating lowband, nginx, lowband, nginx, ...)
# defaults to 3, DURATION (seconds per wrk run) to 10.
# Environment:
#   SERVER_CPUS  CPUs both servers are pinned to (taskset list, default 0)
#   CLIENT_CPUS  CPUs wrk is pinned to (default 1; all CPUs when the machine has one)
#   CONNECTIONS  wrk connections (default 32); wrk runs one thread per client CPU
#   KEEP=1       leaves the temporary directory (store, nginx root, logs) in place
#   SCENARIOS    which scenarios to run (default "page-br object-br range-64k")
#   NO_BUILD=1   uses the existing release binaries instead of running cargo build
#   PIPELINE     a lowband-pipeline binary to ingest with (e.g. a debug build; only
#                the edge is measured), instead of building the release one
#
# Fairness: the edge's tokio runtime gets TOKIO_WORKER_THREADS = the number of
# SERVER_CPUS and nginx gets worker_processes = that same number; both whole
# processes (tokio's blocking pool included) run under `taskset -c SERVER_CPUS`.
# Both keep a connection for 1000 requests (the edge's default
# max_requests_per_connection, nginx's keepalive_requests set alike), nginx
# has access_log off, sendfile on, brotli_static and gzip_static on, and NOT
# Debian's tcp_nopush on: on loopback TCP_CORK around sendfile made nginx ~11x
# slower on the 64 KiB ranges (~860 req/s, p99 ~52 ms), which would flatter the edge.
#
# The data is made by the real pipeline: a generated module (a ~5 KB HTML page,
# 1 MiB of random bytes) is ingested into a temporary file:// store; nginx's root
# gets the very objects of that store (identity page, its .br and .gz copies,
# the 1 MiB object), and every scenario is checked first (status, headers,
# sha256 of the body equal on both sides and to the stored object).
#
# Scenarios, each for both servers:
#   page-br     the 5 KB page with Accept-Encoding: br; edge: the negotiated route
#               /m/bench/page.html, nginx: /page.html through brotli_static
#   object-br   the same brotli bytes by content address: edge /o/<key>, nginx /page.html.br
#   range-64k   a 64 KiB range at a random offset of the 1 MiB object
#               (Range: bytes=X-(X+65535)): edge /o/<key>, nginx /blob.bin
# Prints every run, then the median requests/s and median p99 latency per side
# and the lowband / nginx ratios.
set -euo pipefail

die() { echo "edge-vs-nginx.sh: $*" >&2; exit 1; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=benches/lib/edge-bench.sh
source "$root/benches/lib/edge-bench.sh"

bench_args "$@"

# --- dependencies -----------------------------------------------------------
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx)
[[ -f /usr/lib/nginx/modules/ngx_http_brotli_static_module.so ]] || need+=(libnginx-mod-http-brotli-static)
command -v curl >/dev/null || need+=(curl)
command -v taskset >/dev/null || need+=(util-linux)
install_missing "${need[@]}"
brotli_mod=/usr/lib/nginx/modules/ngx_http_brotli_static_module.so
[[ -f $brotli_mod ]] || die "no $brotli_mod (Debian: libnginx-mod-http-brotli-static)"

# --- CPUs ---------------------------------------------------------------------
bench_cpus

# --- build --------------------------------------------------------------------
bench_binaries

# --- temporary directory, cleanup ---------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lowband-edge-vs-nginx.XXXXXX")
edge_pid=""
nginx_pid=""
cleanup() {
    local rc=$?
    if [[ -n $edge_pid ]] && kill -0 "$edge_pid" 2>/dev/null; then
        kill -TERM "$edge_pid" 2>/dev/null || true
    fi
    if [[ -n $nginx_pid ]] && kill -0 "$nginx_pid" 2>/dev/null; then
        kill -QUIT "$nginx_pid" 2>/dev/null || true   # graceful: master stops its workers
    fi
    # shellcheck disable=SC2086 # unset pids drop out unquoted
    bench_cleanup "$tmp" $edge_pid $nginx_pid
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the module, through the real pipeline -------------------------------------
bench_module "$tmp" "$pipeline"

# nginx's root: the same bytes (hard links into the store when possible).
www=$tmp/nginx/www
mkdir -p "$www" "$tmp/nginx/logs" "$tmp/nginx/temp"
place() { ln "$tmp/store/$1" "$2" 2>/dev/null || cp "$tmp/store/$1" "$2"; }
place "$page_key" "$www/page.html"
place "$page_br_key" "$www/page.html.br"
place "$page_gz_key" "$www/page.html.gz"
place "$blob_key" "$www/blob.bin"

# --- servers --------------------------------------------------------------------
edge_port=$(free_port)
nginx_port=$(free_port)
[[ $edge_port != "$nginx_port" ]] || nginx_port=$(free_port)

# As root nginx would run its workers as nobody, who cannot enter the 0700
# temporary directory: keep them as root (loopback only, a throwaway root dir).
nginx_user=""
[[ $(id -u) -ne 0 ]] || nginx_user="user root root;"
cat >"$tmp/nginx/nginx.conf" <<EOF
load_module $brotli_mod;
$nginx_user
daemon off;
master_process on;
worker_processes $workers;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/logs/error.log error;
events { worker_connections 4096; }
http {
    types { text/html html; application/octet-stream bin; }
    default_type application/octet-stream;
    charset utf-8;
    access_log off;
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout 30s;
    keepalive_requests 1000;
    client_body_temp_path $tmp/nginx/temp/body;
    proxy_temp_path $tmp/nginx/temp/proxy;
    fastcgi_temp_path $tmp/nginx/temp/fastcgi;
    uwsgi_temp_path $tmp/nginx/temp/uwsgi;
    scgi_temp_path $tmp/nginx/temp/scgi;
    server {
        listen 127.0.0.1:$nginx_port;
        root $www;
        brotli_static on;
        gzip_static on;
        gzip_vary on;
        location / { }
    }
}
EOF
taskset -c "$server_cpus" nginx -p "$tmp/nginx" -e "$tmp/nginx/logs/error.log" -c "$tmp/nginx/nginx.conf" \
    >"$tmp/nginx/logs/stdout.log" 2>&1 &
nginx_pid=$!

TOKIO_WORKER_THREADS=$workers taskset -c "$server_cpus" "$edge" serve --store "file://$tmp/store" \
    --listen "127.0.0.1:$edge_port" --log warn >"$tmp/edge.log" 2>&1 &
edge_pid=$!

edge_url=http://127.0.0.1:$edge_port
nginx_url=http://127.0.0.1:$nginx_port
for _ in $(seq 100); do
    curl -fsS -o /dev/null "$edge_url/healthz" 2>/dev/null \
        && curl -fsS -o /dev/null "$nginx_url/page.html" 2>/dev/null && break
    kill -0 "$edge_pid" 2>/dev/null || { tail -n 20 "$tmp/edge.log" >&2; die "lowband-edge exited"; }
    kill -0 "$nginx_pid" 2>/dev/null || { tail -n 20 "$tmp/nginx/logs/"*.log >&2; die "nginx exited"; }
    sleep 0.1
done
curl -fsS -o /dev/null "$edge_url/healthz" || die "lowband-edge does not answer on $edge_url"
curl -fsS -o /dev/null "$nginx_url/page.html" || die "nginx does not answer on $nginx_url"
edge_threads=$(cat /proc/"$edge_pid"/task/*/comm 2>/dev/null | sort | uniq -c | awk '{printf "%s%s x%s", sep, $2, $1; sep=", "}' || true)
nginx_workers=$(pgrep -P "$nginx_pid" | wc -l || true)

# --- correctness, before any timing ------------------------------------------------
sha() { sha256sum "$1" | cut -d' ' -f1; }
check() {  # name url want_status want_sha [curl args...]
    local name=$1 url=$2 want_status=$3 want_sha=$4
    shift 4
    local status
    status=$(curl -sS -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' "$@" "$url") \
        || die "$name: curl $url failed"
    [[ $status == "$want_status" ]] || { cat "$tmp/headers" >&2; die "$name: $url answered $status, expected $want_status"; }
    local got
    got=$(sha "$tmp/body")
    [[ $got == "$want_sha" ]] || die "$name: $url: body sha256 $got, expected $want_sha"
}
header() { grep -i "^$1:" "$tmp/headers" | head -1 | cut -d: -f2- | tr -d '\r' | sed 's/^ *//'; }

br_sha=$(sha "$tmp/store/$page_br_key")
check "page-br lowband" "$edge_url/m/bench/page.html" 200 "$br_sha" -H 'Accept-Encoding: br'
[[ $(header content-encoding) == br ]] || die "page-br lowband: Content-Encoding is '$(header content-encoding)', expected br"
check "page-br nginx" "$nginx_url/page.html" 200 "$br_sha" -H 'Accept-Encoding: br'
[[ $(header content-encoding) == br ]] || die "page-br nginx: Content-Encoding is '$(header content-encoding)', expected br"
check "object-br lowband" "$edge_url/o/$page_br_key" 200 "$br_sha"
check "object-br nginx" "$nginx_url/page.html.br" 200 "$br_sha"
range_sha=$(python3 -c 'import hashlib, sys; d = open(sys.argv[1], "rb").read()[123457:123457 + 65536]; print(hashlib.sha256(d).hexdigest())' "$tmp/store/$blob_key")
check "range-64k lowband" "$edge_url/o/$blob_key" 206 "$range_sha" -H 'Range: bytes=123457-188992'
[[ $(header content-range) == "bytes 123457-188992/1048576" ]] || die "range-64k lowband: Content-Range '$(header content-range)'"
check "range-64k nginx" "$nginx_url/blob.bin" 206 "$range_sha" -H 'Range: bytes=123457-188992'
[[ $(header content-range) == "bytes 123457-188992/1048576" ]] || die "range-64k nginx: Content-Range '$(header content-range)'"
page_bytes=$(stat -c %s "$tmp/store/$page_key")
br_bytes=$(stat -c %s "$tmp/store/$page_br_key")

# --- wrk scripts ---------------------------------------------------------------------
wrk_scripts "$tmp"

# CPU time (user + system, clock ticks) the server's processes have used so far:
# the edge's one process, or nginx's master and workers.
cpu_ticks() {  # side
    local pids p total=0 fields
    if [[ $1 == lowband ]]; then pids=$edge_pid; else pids="$nginx_pid $(pgrep -P "$nginx_pid" | tr '\n' ' ')"; fi
    for p in $pids; do
        # comm (field 2) may hold spaces: count fields after its closing parenthesis.
        read -r -a fields < <(sed 's/^.*) //' /proc/"$p"/stat)
        total=$((total + fields[11] + fields[12]))
    done
    echo "$total"
}
tick_us=$((1000000 / $(getconf CLK_TCK)))


declare -A url_lowband url_nginx script
url_lowband[page-br]=$edge_url/m/bench/page.html;  url_nginx[page-br]=$nginx_url/page.html;    script[page-br]=$tmp/page-br.lua
url_lowband[object-br]=$edge_url/o/$page_br_key;  url_nginx[object-br]=$nginx_url/page.html.br; script[object-br]=$tmp/plain.lua
url_lowband[range-64k]=$edge_url/o/$blob_key;     url_nginx[range-64k]=$nginx_url/blob.bin;     script[range-64k]=$tmp/range-64k.lua
read -r -a scenarios <<<"${SCENARIOS:-page-br object-br range-64k}"
for s in "${scenarios[@]}"; do [[ -n ${script[$s]:-} ]] || die "unknown scenario: $s (page-br, object-br, range-64k)"; done

echo "== lowband-edge vs nginx: same bytes, same CPUs"
echo "machine: $ncpu CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo "servers: taskset -c $server_cpus; lowband-edge with TOKIO_WORKER_THREADS=$workers (threads at start: $edge_threads), $(nginx -v 2>&1 | sed 's/^nginx version: //') with $nginx_workers worker process(es)"
echo "client:  taskset -c $client_cpus; $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2) -t$wrk_threads -c$connections -d${duration}s --latency; $runs run(s) per side, alternating"
echo "data:    page.html $page_bytes B (br $br_bytes B), blob.bin 1048576 B of random bytes, ingested by lowband-pipeline"
echo "checked: statuses 200/206, Content-Encoding br, Content-Range, sha256 of every body equal on both sides and to the stored object"
echo

# Warm both (page cache, manifest cache, connections).
for s in "${scenarios[@]}"; do
    taskset -c "$client_cpus" wrk -t1 -c4 -d1s -s "${script[$s]}" "${url_lowband[$s]}" >/dev/null 2>&1 || true
    taskset -c "$client_cpus" wrk -t1 -c4 -d1s -s "${script[$s]}" "${url_nginx[$s]}" >/dev/null 2>&1 || true
done

for s in "${scenarios[@]}"; do
    for ((i = 1; i <= runs; i++)); do
        for side in lowband nginx; do
            if [[ $side == lowband ]]; then url=${url_lowband[$s]}; else url=${url_nginx[$s]}; fi
            before=$(cpu_ticks "$side")
            read -r rps p99 bad n < <(run_wrk "$tmp/wrk.$s.$side.$i" "$url" "${script[$s]}")
            cpu_us=$(( ($(cpu_ticks "$side") - before) * tick_us / (n > 0 ? n : 1) ))
            ((bad == 0)) || { cat "$tmp/wrk.$s.$side.$i" >&2; die "$s $side run $i: $bad bad responses or socket errors"; }
            echo "$s $side $i $rps $p99 $cpu_us" >>"$tmp/results"
            printf 'run %d  %-9s  %-7s  %10.0f req/s  p99 %8.3f ms  %4d µs CPU/req\n' "$i" "$s" "$side" "$rps" "$p99" "$cpu_us"
        done
    done
done
kill -0 "$edge_pid" 2>/dev/null || die "lowband-edge died during the runs"
kill -0 "$nginx_pid" 2>/dev/null || die "nginx died during the runs"
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
print(f"median of {runs} run(s) per side; ratio = lowband / nginx (req/s: higher is better, p99 and CPU: lower is better)")
print("CPU/req: the server's user + system time (all its threads or processes) over the requests served,")
print("which the other load on a shared machine disturbs far less than req/s")
hdr = ("scenario", "lowband req/s", "nginx req/s", "ratio", "lowband p99 ms", "nginx p99 ms", "ratio",
       "lowband µs CPU/req", "nginx µs CPU/req", "ratio")
out = [hdr]
for s in scen:
    lr, nr = med(s, "lowband", 3), med(s, "nginx", 3)
    lp, np_ = med(s, "lowband", 4), med(s, "nginx", 4)
    lc, nc = med(s, "lowband", 5), med(s, "nginx", 5)
    out.append((s, f"{lr:.0f}", f"{nr:.0f}", f"{lr / nr:.2f}", f"{lp:.2f}", f"{np_:.2f}", f"{lp / np_:.2f}",
                f"{lc:.0f}", f"{nc:.0f}", f"{lc / nc:.2f}" if nc else "-"))
w = [max(len(x[c]) for x in out) for c in range(len(hdr))]
for k, row in enumerate(out):
    print("  ".join(x.ljust(w[0]) if c == 0 else x.rjust(w[c]) for c, x in enumerate(row)))
    if k == 0:
        print("  ".join("-" * n for n in w))
PY
