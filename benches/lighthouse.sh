#!/usr/bin/env bash
# Lighthouse (npm lighthouse@12.2.3, mobile preset: a Moto G-class phone on
# simulated slow 4G with 4x CPU slowdown) on the teacher pages, with Debian's
# chromium: prints the performance score and the metrics behind it, and the
# page weights Lighthouse counted.
#
# Lighthouse is installed from benches/lighthouse/package-lock.json with npm ci
# into ${LOWBAND_TOOLS:-~/.cache/lowband}/lighthouse-node (once per lock file).
# The sample module is ingested into STORE (default target/lesson-edge-store)
# and served on loopback. Usage: benches/lighthouse.sh [PATH ...]
# (default: the lesson page and the catalog page). RUNS (3): runs per page, the
# median reported.
set -euo pipefail
cd "$(dirname "$0")/.."
MODULE=teaching-questions
target="${CARGO_TARGET_DIR:-target}"
STORE="${STORE:-$target/lesson-edge-store}"
tools="${LOWBAND_TOOLS:-$HOME/.cache/lowband}/lighthouse-node"
lock=benches/lighthouse/package-lock.json
stamp="$(node --version) $(sha256sum <"$lock" | cut -d' ' -f1)"
if [[ ! -x "$tools/node_modules/.bin/lighthouse" || "$(cat "$tools/.lowband-stamp" 2>/dev/null)" != "$stamp" ]]; then
  echo "installing lighthouse into $tools" >&2
  rm -rf "$tools"
  mkdir -p "$tools"
  cp "$lock" benches/lighthouse/package.json "$tools/"
  (cd "$tools" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$stamp" >"$tools/.lowband-stamp"
fi

cargo build --quiet --bin lowband-edge --bin lowband-pipeline
"$target/debug/lowband-pipeline" ingest "samples/$MODULE" --store "file://$STORE" >/dev/null
port=$((20000 + $$ % 20000))
"$target/debug/lowband-edge" serve --store "file://$STORE" --listen "127.0.0.1:$port" >/dev/null 2>&1 &
edge_pid=$!
out="$(mktemp -d)"
trap 'kill $edge_pid 2>/dev/null || true; rm -rf "$out"' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done

paths=("$@")
((${#paths[@]})) || paths=("/m/$MODULE/lessons/lecture.mp4/watch" "/")
# Lighthouse's own advice: scores vary between runs (here, with other work on the
# cores), so each page runs RUNS times (default 3) and the median run is reported.
RUNS="${RUNS:-3}"
for path in "${paths[@]}"; do
  for run in $(seq "$RUNS"); do
    CHROME_PATH="${LOWBAND_CHROMIUM:-/usr/bin/chromium}" "$tools/node_modules/.bin/lighthouse" \
      "http://127.0.0.1:$port$path" --only-categories=performance --output=json --output-path="$out/run-$run.json" \
      --chrome-flags="--headless=new --no-sandbox --disable-dev-shm-usage" --quiet
  done
  python3 - "$path" "$out" <<'EOF'
import glob, json, sys
path, out = sys.argv[1], sys.argv[2]
reports = sorted((json.load(open(f)) for f in glob.glob(f"{out}/run-*.json")),
                 key=lambda r: r["categories"]["performance"]["score"])
report = reports[len(reports) // 2]
audits = report["audits"]
scores = ", ".join(f"{r['categories']['performance']['score'] * 100:.0f}" for r in reports)
score = report["categories"]["performance"]["score"]
print(f"{path}: performance {score * 100:.0f} (median of {len(reports)} runs: {scores}; "
      f"{report['configSettings']['formFactor']}, {report['configSettings']['throttlingMethod']} throttling, "
      f"host benchmarkIndex {report['environment']['benchmarkIndex']:.0f})")
for key in ["first-contentful-paint", "largest-contentful-paint", "total-blocking-time", "cumulative-layout-shift", "speed-index"]:
    print(f"  {audits[key]['title']}: {audits[key]['displayValue']}")
items = [i for i in audits["network-requests"]["details"]["items"] if not i["url"].startswith("data:")]
total = sum(i.get("transferSize", 0) for i in items)
print(f"  transferred: {total:,} bytes in {len(items)} requests")
for i in items:
    print(f"    {i.get('transferSize', 0):>7,}  {i.get('resourceType', '?'):<9} {i['url'].split('//', 1)[-1].split('/', 1)[-1][:70]}")
EOF
  rm -f "$out"/run-*.json
done
