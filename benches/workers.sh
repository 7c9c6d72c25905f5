#!/usr/bin/env bash
# Throughput of the queue workers: the same module through `lowband-pipeline
# serve` + ONE worker and + TWO workers, on one machine, in one run.
#
#   benches/workers.sh [PARTS] [RUNS]
#
# The module is the sample lecture cut into PARTS (default 4) distinct clips,
# plus the sample's page and photos, so there are several assets to share out.
# Each run starts a fresh nats-server (JetStream, loopback, its own store dir),
# a fresh file:// store, `serve` and the workers, uploads the module as a tar
# and times from the upload to the job's state "done" (manifest published).
# RUNS (default 2) per side, alternating 1 worker, 2 workers, ...; prints every
# run, the best of each side, and the ratio (1 worker / 2 workers: above 1
# means two workers finish sooner). Needs nats-server, ffmpeg, curl and python3
# (scripts/install-deps.sh --test). KEEP=1 keeps the temporary directory.
#
# Both workers share this machine's cores: each worker already spreads one
# video over every core (one thread per rung), so on a 2-core box the gain is
# bounded by what one worker leaves idle (tuning, the single-threaded parts,
# store I/O). The figure that matters for a cluster is one worker per machine.
set -euo pipefail

die() { echo "workers.sh: $*" >&2; exit 1; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
parts=${1:-4}
runs=${2:-2}
[[ $parts =~ ^[1-9][0-9]*$ ]] || die "PARTS must be a positive integer, got: $parts"
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, got: $runs"
for tool in nats-server ffmpeg ffprobe curl; do
  command -v "$tool" >/dev/null || die "$tool not found; run scripts/install-deps.sh --test"
done

cargo build -q -p lowband-pipeline --locked
bin="${CARGO_TARGET_DIR:-$root/target}/debug/lowband-pipeline"
[[ -x $bin ]] || die "no binary at $bin"
[[ -f samples/teaching-questions/lessons/lecture.mp4 ]] || die "no sample lecture; run samples/make-sample.sh"

work=$(mktemp -d /tmp/lowband-workers.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [[ ${KEEP:-0} == 1 ]]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# The module: the lecture in PARTS distinct clips, the page, the photos.
sample=samples/teaching-questions
module="$work/module/bench-workers"
mkdir -p "$module/lessons"
cp -r "$sample/img" "$sample/index.html" "$module/"
printf 'id = "bench-workers"\ntitle = "Workers bench"\n' >"$module/module.toml"
lecture="$sample/lessons/lecture.mp4"
duration=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$lecture")
slice=$(awk -v d="$duration" -v n="$parts" 'BEGIN { printf "%.2f", d / n }')
for ((i = 0; i < parts; i++)); do
  start=$(awk -v s="$slice" -v i="$i" 'BEGIN { printf "%.2f", s * i }')
  ffmpeg -nostdin -v error -y -ss "$start" -t "$slice" -i "$lecture" \
    -c:v libx264 -preset veryfast -crf 18 -c:a aac "$module/lessons/part$i.mp4"
done
tar -C "$work/module" -cf "$work/module.tar" bench-workers
echo "module: $parts clips of ${slice}s from $lecture, the sample page and photos ($(du -h "$work/module.tar" | cut -f1) tar)"

token="bench-token-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
echo "$token bench" >"$work/tokens"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# One timed run with $1 workers; prints the seconds.
run() {
  local n=$1 dir port nats store listen job state t0 t1
  dir=$(mktemp -d "$work/run.XXXX")
  port=$(free_port)
  nats-server -a 127.0.0.1 -p "$port" -js -sd "$dir/js" </dev/null >"$dir/nats.log" 2>&1 &
  local nats_pid=$!
  nats="nats://127.0.0.1:$port"
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  store="file://$dir/store"
  "$bin" serve --store "$store" --nats "$nats" --tokens "$work/tokens" --listen 127.0.0.1:0 </dev/null 2>"$dir/serve.log" &
  local serve_pid=$!
  local ws=()
  for ((w = 0; w < n; w++)); do
    LOWBAND_LOG=lowband_pipeline=info "$bin" worker --store "$store" --nats "$nats" </dev/null 2>"$dir/worker$w.log" &
    ws+=($!)
  done
  pids=("$nats_pid" "$serve_pid" "${ws[@]}")
  listen=""
  for _ in $(seq 300); do
    listen=$(grep -o 'http://[0-9.:]*' "$dir/serve.log" || true)
    [[ -n $listen ]] && break
    sleep 0.1
  done
  [[ -n $listen ]] || die "serve did not start: $(cat "$dir/serve.log")"
  t0=$(date +%s.%N)
  job=$(curl -sf -H "Authorization: Bearer $token" --data-binary @"$work/module.tar" \
    "$listen/api/v1/modules/bench-workers" | python3 -c 'import json, sys; print(json.load(sys.stdin)["job"])')
  [[ -n $job ]] || die "upload refused"
  while :; do
    state=$(curl -sf -H "Authorization: Bearer $token" "$listen/api/v1/jobs/$job" |
      python3 -c 'import json, sys; print(json.load(sys.stdin)["state"])')
    [[ $state == done ]] && break
    [[ $state == failed ]] && die "job failed; logs in $dir (KEEP=1)"
    sleep 0.5
  done
  t1=$(date +%s.%N)
  variants=$(curl -sf -H "Authorization: Bearer $token" "$listen/api/v1/modules/bench-workers" |
    python3 -c 'import json, sys; print(sum(len(a["variants"]) for a in json.load(sys.stdin)["assets"]))')
  echo "  $n worker(s): $variants variants published" >&2
  kill "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  pids=()
  [[ ${KEEP:-0} == 1 ]] || rm -rf "$dir/store" "$dir/js"
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }'
}

best1="" best2=""
for ((r = 1; r <= runs; r++)); do
  t=$(run 1); echo "run $r: 1 worker  ${t}s"
  [[ -z $best1 ]] || awk -v a="$t" -v b="$best1" 'BEGIN { exit !(a < b) }' && best1=$t
  t=$(run 2); echo "run $r: 2 workers ${t}s"
  [[ -z $best2 ]] || awk -v a="$t" -v b="$best2" 'BEGIN { exit !(a < b) }' && best2=$t
done
ratio=$(awk -v a="$best1" -v b="$best2" 'BEGIN { printf "%.2f", a / b }')
echo "best: 1 worker ${best1}s, 2 workers ${best2}s — throughput ratio (2 workers / 1) ${ratio}x on $(nproc) cores"
