# Shared by edge-vs-nginx.sh and cache-vs-edge.sh (sourced, not run): their
# arguments, Debian packages, CPUs, binaries, the bench module made by the real
# pipeline, wrk's scripts and one wrk run. The caller defines die() and root.

# bench_args [RUNS] [DURATION]: sets runs (default 3), duration (seconds, default
# 10) and connections (CONNECTIONS, default 32), each a positive integer.
bench_args() {
    runs=${1:-3}
    duration=${2:-10}
    connections=${CONNECTIONS:-32}
    [[ $runs =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, got: $runs"
    [[ $duration =~ ^[1-9][0-9]*$ ]] || die "DURATION must be a positive integer (seconds), got: $duration"
    [[ $connections =~ ^[1-9][0-9]*$ ]] || die "CONNECTIONS must be a positive integer, got: $connections"
}

# install_missing [PACKAGE...]: installs the Debian packages named (none: nothing)
# with apt-get, through sudo when not root; then checks python3 is there.
install_missing() {
    if (($#)); then
        echo "== installing the Debian packages: $*" >&2
        local sudo=()
        [[ $(id -u) -eq 0 ]] || sudo=(sudo)
        "${sudo[@]}" apt-get update -qq || die "apt-get update failed"
        # policy-rc.d is not touched: on a machine with an init system a package
        # may start its service (nginx on port 80); the benches never use it.
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
            || die "could not install $* (apt-get install -y $*)"
    fi
    command -v python3 >/dev/null || die "python3 is not installed"
}

# bench_cpus: sets ncpu, server_cpus (SERVER_CPUS, default 0), client_cpus
# (CLIENT_CPUS, default the others; all when there is one), workers (CPUs the
# server gets) and wrk_threads (CPUs the client gets).
bench_cpus() {
    ncpu=$(nproc)
    server_cpus=${SERVER_CPUS:-0}
    if [[ -n ${CLIENT_CPUS:-} ]]; then
        client_cpus=$CLIENT_CPUS
    elif ((ncpu > 1)); then
        client_cpus=1-$((ncpu - 1))
    else
        client_cpus=0
    fi
    workers=$(taskset -c "$server_cpus" nproc) || die "bad SERVER_CPUS: $server_cpus"
    wrk_threads=$(taskset -c "$client_cpus" nproc) || die "bad CLIENT_CPUS: $client_cpus"
}

# bench_binaries: builds lowband-edge (and lowband-pipeline unless PIPELINE names
# one) in release unless NO_BUILD is set; sets edge and pipeline to their paths.
bench_binaries() {
    local target=${CARGO_TARGET_DIR:-$root/target}
    if [[ -z ${NO_BUILD:-} ]]; then
        local crates=(-p lowband-edge)
        [[ -n ${PIPELINE:-} ]] || crates+=(-p lowband-pipeline)
        echo "== building ${crates[*]} (release)" >&2
        cargo build --release "${crates[@]}" >&2 || die "cargo build --release failed"
    fi
    edge=$target/release/lowband-edge
    pipeline=${PIPELINE:-$target/release/lowband-pipeline}
    [[ -x $edge ]] || die "no binary at $edge"
    [[ -x $pipeline ]] || die "no binary at $pipeline"
}

# wrk_scripts DIR: writes wrk's scripts into DIR: page-br.lua (Accept-Encoding:
# br), plain.lua (nothing added) and range-64k.lua (a 64 KiB range at a random
# offset of the 1 MiB object; the path comes from wrk's URL).
wrk_scripts() {
    local dir=$1
    cat >"$dir/page-br.lua" <<'LUA'
wrk.headers["Accept-Encoding"] = "br"
LUA
    : >"$dir/plain.lua"
    cat >"$dir/range-64k.lua" <<'LUA'
local size, len = 1048576, 65536
local counter = 0
function setup(thread) counter = counter + 1; thread:set("seed", counter) end
function init(args) math.randomseed(seed or 1) end
request = function()
    local x = math.random(0, size - len)
    wrk.headers["Range"] = "bytes=" .. x .. "-" .. (x + len - 1)
    return wrk.format("GET")
end
LUA
}

# run_wrk OUT URL SCRIPT: one measured wrk run on the client CPUs, its output kept
# in OUT; prints "<req/s> <p99 ms> <non2xx+errors> <requests>".
run_wrk() {
    local out=$1 url=$2 script=$3
    taskset -c "$client_cpus" wrk -t"$wrk_threads" -c"$connections" -d"${duration}s" --latency \
        -s "$script" "$url" >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed on $url"; }
    python3 - "$out" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
m = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", t, re.M)
p99 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
bad = sum(int(x) for x in re.findall(r"Non-2xx or 3xx responses:\s+(\d+)", t))
e = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
if e:
    bad += sum(map(int, e.groups()))
n = int(re.search(r"(\d+) requests in", t).group(1))
print(f"{rps:.1f} {p99:.3f} {bad} {n}")
PY
}

# A free TCP port on 127.0.0.1 (the kernel's choice; released before use).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# bench_module TMP PIPELINE: writes the bench module under TMP/module (a ~5 KB
# lesson page, deterministic and text-like so it compresses as real HTML does,
# and 1 MiB of random bytes), ingests it with PIPELINE into the file:// store
# TMP/store, and sets page_key, page_br_key, page_gz_key and blob_key to the
# store keys of the identity page, its br and gzip copies and the 1 MiB
# object (each checked to be in the store), and manifest to its path.
bench_module() {
    local tmp=$1 pipeline=$2
    mkdir -p "$tmp/module"
    echo 'id = "bench"' >"$tmp/module/module.toml"
    python3 - "$tmp/module/page.html" <<'PY'
import random, sys
rng = random.Random(7)
words = ("the teacher asks a question and waits for learners to think before they answer "
         "open questions invite reasoning closed questions check recall use names wait "
         "three seconds praise effort not speed write the key idea on the board").split()
parts = ['<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
         '<meta name="viewport" content="width=device-width,initial-scale=1">'
         '<title>Asking good questions</title><style>body{font:16px/1.5 sans-serif;'
         'max-width:40em;margin:auto;padding:1em}h2{margin-top:1.5em}</style></head><body>\n'
         '<h1>Asking good questions</h1>\n']
n = 0
while sum(map(len, parts)) < 5000:
    n += 1
    if n % 4 == 1:
        parts.append(f"<h2>Part {n // 4 + 1}</h2>\n")
    s = " ".join(rng.choice(words) for _ in range(rng.randint(20, 40)))
    parts.append(f"<p>{s[0].upper()}{s[1:]}.</p>\n")
parts.append("</body></html>\n")
open(sys.argv[1], "w").write("".join(parts))
PY
    head -c 1048576 /dev/urandom >"$tmp/module/blob.bin"

    echo "== ingesting the bench module into $tmp/store" >&2
    "$pipeline" ingest "$tmp/module" --store "$tmp/store" --json >"$tmp/ingest.json" 2>"$tmp/ingest.err" \
        || { cat "$tmp/ingest.err" >&2; die "lowband-pipeline ingest failed"; }
    manifest=$tmp/store/modules/bench/manifest.json
    [[ -f $manifest ]] || die "the pipeline wrote no $manifest"

    read -r page_key page_br_key page_gz_key blob_key < <(python3 - "$manifest" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
assets = {a["path"]: a for a in m["assets"]}
def key(v):
    k = v["key"]
    return k if isinstance(k, str) else k["key"]
page = assets["page.html"]["variants"]
enc = {(v.get("encoding") or "identity"): key(v) for v in page}
for e in ("identity", "br", "gzip"):
    if e not in enc:
        sys.exit(f"bench module: page.html has no {e} variant (has {sorted(enc)})")
blob = assets["blob.bin"]["variants"]
if len(blob) != 1:
    sys.exit(f"bench module: blob.bin has {len(blob)} variants, expected 1")
print(enc["identity"], enc["br"], enc["gzip"], key(blob[0]))
PY
    ) || die "cannot read the keys from $manifest"
    local k
    for k in "$page_key" "$page_br_key" "$page_gz_key" "$blob_key"; do
        [[ -f $tmp/store/$k ]] || die "object $k is in the manifest but not in the store"
    done
}

# bench_cleanup TMP [PID...]: waits up to 5 s for each process (already told to
# stop) to end and kills what is left, then removes TMP unless KEEP is set.
bench_cleanup() {
    local tmp=$1 p
    shift
    for p in "$@"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
    done
    if [[ -n ${KEEP:-} ]]; then
        echo "== KEEP is set: leaving $tmp" >&2
    else
        rm -rf "$tmp"
    fi
}
