#!/usr/bin/env bash
# The sample course page's bytes per tier and content-coding, as lowband makes
# them, against the authored page and against `brotli -q 11` of it (the best a
# plain server with precompression does), plus each tier's first-load weight
# (the page and what it fetches before any tap) against the authored page's.
#
#   benches/page-bytes.sh [MODULE_DIR]
#
# MODULE_DIR defaults to samples/teaching-questions; its index.html is the page.
# BUILD=debug uses a debug build (the bytes are the same; only ingest is slower);
# NO_BUILD=1 skips cargo and uses the binary already built. KEEP=1 leaves the
# temporary store in place. Needs python3 and the brotli CLI (installed from
# Debian's `brotli` if missing).
#
# The "authored page served plainly" row is what a phone fetches from a plain
# server with brotli_static: brotli -q 11 of the page, every <img> it shows
# as authored (not lazy: the sample's are plain <img src>), the stylesheets and
# scripts it links and its default caption track, all as stored in the module.
set -euo pipefail

die() { echo "page-bytes.sh: $*" >&2; exit 1; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

module=${1:-samples/teaching-questions}
[[ -f $module/index.html ]] || die "no index.html in $module"
module=$(realpath "$module")
build=${BUILD:-release}
[[ $build == release || $build == debug ]] || die "BUILD must be release or debug, got: $build"

command -v python3 >/dev/null || die "python3 is not installed"
if ! command -v brotli >/dev/null; then
    echo "== the brotli CLI is missing: installing the Debian package 'brotli'" >&2
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo=sudo
    $sudo apt-get install -y brotli >/dev/null || die "could not install brotli (apt-get install -y brotli)"
fi

target=${CARGO_TARGET_DIR:-$root/target}
lowband=$target/$build/lowband-pipeline
if [[ -z ${NO_BUILD:-} ]]; then
    echo "== building lowband-pipeline ($build)" >&2
    flags=()
    [[ $build == release ]] && flags=(--release)
    cargo build "${flags[@]}" -p lowband-pipeline >&2 || die "cargo build -p lowband-pipeline failed"
fi
[[ -x $lowband ]] || die "no binary at $lowband"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/lowband-page-bytes.XXXXXX")
if [[ -n ${KEEP:-} ]]; then
    echo "== KEEP is set: leaving the store in $tmp" >&2
else
    trap 'rm -rf "$tmp"' EXIT
fi

echo "== ingesting $module" >&2
"$lowband" ingest "$module" --store "file://$tmp/store" --json >"$tmp/report.json" \
    || die "ingest failed"
id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["module"])' "$tmp/report.json")

brotli -q 11 -c "$module/index.html" >"$tmp/original.html.br"
gzip -9 -c "$module/index.html" >"$tmp/original.html.gz"

python3 - "$tmp/store/modules/$id/manifest.json" "$module" "$tmp" <<'PY'
import json, os, re, sys

manifest_path, module, tmp = sys.argv[1:]
m = json.load(open(manifest_path))
tiers = [t["name"] for t in m["tiers"]]
rank = {t: i for i, t in enumerate(tiers)}
page = next(a for a in m["assets"] if a["path"] == "index.html")
original = os.path.getsize(os.path.join(module, "index.html"))
br11 = os.path.getsize(os.path.join(tmp, "original.html.br"))
gz9 = os.path.getsize(os.path.join(tmp, "original.html.gz"))

copies = [v for v in page["variants"] if v["kind"] == "page" and v["name"] != "original"]

def served(tier, coding):
    """The variant the edge picks: best fitting tier, then the coding."""
    fitting = [rank[v["tier"]] for v in copies if rank[v["tier"]] <= rank[tier]]
    best = max(fitting) if fitting else min(rank[v["tier"]] for v in copies)
    want = None if coding == "identity" else coding
    return next((v for v in copies if rank[v["tier"]] == best and v.get("encoding") == want), None)

print(f"page: {module}/index.html, {original:,} bytes authored; "
      f"brotli -q 11 of it: {br11:,}; gzip -9 of it: {gz9:,}")
print()
print(f"{'tier':8} {'coding':9} {'variant':18} {'bytes':>8} {'vs authored':>12} {'vs br11(authored)':>18} {'first load':>11}")
for tier in tiers:
    for coding in ["identity", "br", "zstd", "gzip"]:
        v = served(tier, coding)
        if v is None:
            continue
        fl = v.get("first_load_bytes")
        print(f"{tier:8} {coding:9} {v['name']:18} {v['bytes']:>8,} {v['bytes']/original:>11.2f}x "
              f"{v['bytes']/br11:>17.2f}x {fl if fl is None else format(fl, ','):>11}")

# What the authored page costs a phone from a plain server (see the header).
html = open(os.path.join(module, "index.html"), encoding="utf-8").read()
fetched = []
for tag in re.findall(r"<(?:img|script|link|track)\b[^>]*>", html, flags=re.I):
    name = tag[1:].split()[0].lower()
    if name == "link" and not re.search(r'rel="?[^">]*stylesheet', tag, re.I):
        continue
    if name == "track" and not re.search(r"\bdefault\b", tag, re.I):
        continue
    if name == "img" and re.search(r'loading="?lazy', tag, re.I):
        continue
    attr = re.search(r'\b(?:src|href)="([^"]+)"', tag)
    if attr and not re.match(r"[a-z]+:|/", attr.group(1)):
        fetched.append(attr.group(1))
plain = br11 + sum(os.path.getsize(os.path.join(module, p)) for p in fetched)
print()
print(f"authored page served plainly (br11 + {', '.join(fetched) or 'nothing'}): {plain:,} bytes on first load")
for tier in tiers:
    v = served(tier, "br")
    print(f"first load on {tier:8} with br: {v['first_load_bytes']:>9,} bytes "
          f"({v['first_load_bytes']/plain:.3f}x the authored page served plainly)")
PY
