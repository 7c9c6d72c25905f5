#!/usr/bin/env bash
# Side by side: the image ladder made by lowband-pipeline and by ImageMagick
# (one `convert` per source that decodes once and writes every width × format)
# on the same images, in one run.
#
#   benches/image-ladder.sh [IMAGE_DIR] [RUNS]
#
# IMAGE_DIR defaults to samples/teaching-questions/img, RUNS (per side,
# alternating lowband, magick, lowband, magick, ...) to 3. NO_BUILD=1 skips the
# release build (the binary is taken from $CARGO_TARGET_DIR or target/, or is
# LOWBAND_BIN).
# KEEP=1 leaves the temporary directory in place. PROFILE=<file> picks the
# ladder (default profiles/default.toml); both sides use its widths, formats
# and qualities. ImageMagick's sources run in parallel, one per core, as
# lowband's widths × formats do on rayon.
#
# Prints every run, the best wall time of each side with the CPU time
# (user+sys) of that run and the lowband / magick ratios; then per format the
# bytes of each side and the mean SSIM (ffmpeg's ssim filter, all planes,
# against the oriented source scaled to the same size with lanczos) — the
# bytes ratio is only meaningful next to the two SSIMs.
set -euo pipefail

die() { echo "image-ladder.sh: $*" >&2; exit 1; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

images=${1:-samples/teaching-questions/img}
runs=${2:-3}
profile=${PROFILE:-profiles/default.toml}
[[ -d $images ]] || die "no such directory: $images"
[[ -f $profile ]] || die "no such profile: $profile"
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, got: $runs"
images=$(realpath "$images")
profile=$(realpath "$profile")

command -v convert >/dev/null || die "ImageMagick is not installed (Debian: apt-get install -y imagemagick)"
command -v ffmpeg >/dev/null || die "ffmpeg is not installed (Debian: apt-get install -y ffmpeg)"
python3 -c 'import tomllib' 2>/dev/null || die "python3 3.11 or later (tomllib) is needed"
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing (Debian: apt-get install -y time)"

target=${CARGO_TARGET_DIR:-$root/target}
if [[ -z ${NO_BUILD:-} ]]; then
    echo "== building lowband-pipeline (release)" >&2
    cargo build --release -p lowband-pipeline >&2 || die "cargo build --release failed"
fi
lowband=${LOWBAND_BIN:-$target/release/lowband-pipeline}
[[ -x $lowband ]] || die "no binary at $lowband (build it, or unset NO_BUILD)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/lowband-image-ladder.XXXXXX")
if [[ -n ${KEEP:-} ]]; then
    echo "== KEEP is set: leaving the outputs in $tmp" >&2
else
    trap 'rm -rf "$tmp"' EXIT
fi

mkdir -p "$tmp/module/img"
sources=()
for f in "$images"/*; do
    case "${f,,}" in *.jpg | *.jpeg | *.png | *.webp | *.gif) ;; *) continue ;; esac
    cp "$f" "$tmp/module/img/"
    sources+=("$tmp/module/img/$(basename "$f")")
done
((${#sources[@]})) || die "no images in $images"
echo 'id = "bench"' >"$tmp/module/module.toml"

# ImageMagick's side, planned from the profile: widths never above the source's.
formats=$(python3 - "$profile" <<'PY'
import sys, tomllib
im = tomllib.load(open(sys.argv[1], "rb"))["image"]
print(" ".join(im["formats"]))
PY
)
[[ $formats == *avif* ]] && ! convert -list format 2>/dev/null | grep -q '^ *AVIF' \
    && die "this ImageMagick cannot write AVIF; use a profile without avif"
for src in "${sources[@]}"; do
    python3 - "$profile" "$src" "$(identify -format '%w' "$src"[0])" "$tmp/im" <<'PY' >"$src.im.args"
import os, sys, tomllib
profile, src, src_w, outdir = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
im = tomllib.load(open(profile, "rb"))["image"]
stem = os.path.splitext(os.path.basename(src))[0]
args, seen = [src, "-auto-orient", "-strip", "-colorspace", "sRGB", "-write", "mpr:src", "+delete"], set()
for rung in im["rungs"]:
    w = min(rung["width"], src_w)
    if w in seen:
        continue
    seen.add(w)
    for fmt in im["formats"]:
        ext = {"jpeg": "jpg"}.get(fmt, fmt)
        opts = {
            "jpeg": ["-interlace", "Plane", "-sampling-factor", "4:2:0"],
            "webp": ["-define", "webp:method=4"],
            "avif": [],
        }[fmt]
        out = f"{outdir}/{stem}-w{w}-{fmt}.{ext}"
        args += ["(", "mpr:src", "-filter", "Lanczos", "-resize", f"{w}x", "-quality",
                 str(rung["quality"]), *opts, "-write", out, "+delete", ")"]
args += ["mpr:src", "null:"]
print("\0".join(args), end="")
PY
done

lowband_run() {
    rm -rf "$tmp/store"
    /usr/bin/time -f '%e %U %S' -o "$tmp/time" \
        "$lowband" ingest "$tmp/module" --store "file://$tmp/store" --profile "$profile" --json \
        >"$tmp/lowband.json" 2>"$tmp/lowband.err" || { cat "$tmp/lowband.err" >&2; die "lowband failed"; }
}
magick_run() {
    rm -rf "$tmp/im" && mkdir -p "$tmp/im"
    /usr/bin/time -f '%e %U %S' -o "$tmp/time" \
        bash -c 'printf "%s\n" "$@" | xargs -P "$(nproc)" -I{} sh -c "xargs -0 convert <\"{}.im.args\""' \
        _ "${sources[@]}" || die "convert failed"
}

declare -A best_wall best_cpu
for ((i = 1; i <= runs; i++)); do
    for side in lowband magick; do
        "${side}_run"
        read -r wall user sys <"$tmp/time"
        cpu=$(echo "$user + $sys" | bc)
        printf 'run %d %-8s wall %6.2f s  cpu %6.2f s\n' "$i" "$side" "$wall" "$cpu"
        if [[ -z ${best_wall[$side]:-} ]] || (($(echo "$wall < ${best_wall[$side]}" | bc))); then
            best_wall[$side]=$wall
            best_cpu[$side]=$cpu
        fi
    done
done
echo
printf 'best    lowband wall %6.2f s cpu %6.2f s | magick wall %6.2f s cpu %6.2f s\n' \
    "${best_wall[lowband]}" "${best_cpu[lowband]}" "${best_wall[magick]}" "${best_cpu[magick]}"
printf 'ratio   wall %.2fx  cpu %.2fx  (lowband / magick; lower is faster)\n' \
    "$(echo "${best_wall[lowband]} / ${best_wall[magick]}" | bc -l)" \
    "$(echo "${best_cpu[lowband]} / ${best_cpu[magick]}" | bc -l)"
echo

# Bytes and SSIM per output. lowband's objects are found through its manifest.
python3 - "$tmp" "${sources[@]}" <<'PY'
import glob, json, os, subprocess, sys
from collections import defaultdict

tmp, sources = sys.argv[1], sys.argv[2:]
manifest = json.load(open(f"{tmp}/store/modules/bench/manifest.json"))

def to_png(path):
    # ffmpeg 5.1 reads no AVIF; ImageMagick (libheif) does.
    if path.endswith(".avif"):
        png = path + ".png"
        subprocess.run(["convert", path, png], check=True)
        return png
    return path

def ssim(out, src, w, h):
    ref = f"{tmp}/ref-{os.path.basename(src)}.png"
    if not os.path.exists(ref):
        subprocess.run(["convert", src, "-auto-orient", "-strip", ref], check=True)
    r = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostats", "-i", to_png(out), "-i", ref, "-lavfi",
         f"[1:v]scale={w}:{h}:flags=lanczos,format=yuv444p[ref];[0:v]format=yuv444p[o];[o][ref]ssim",
         "-f", "null", "-"], capture_output=True, text=True)
    for line in r.stderr.splitlines():
        if "SSIM" in line and "All:" in line:
            return float(line.split("All:")[1].split()[0])
    raise SystemExit(f"no SSIM for {out}: {r.stderr[-400:]}")

rows = defaultdict(lambda: {"lowband": [0, []], "magick": [0, []]})
for asset in manifest["assets"]:
    if asset["kind"] != "image":
        continue
    src = f"{tmp}/module/{asset['path']}"
    stem = os.path.splitext(os.path.basename(src))[0]
    for v in asset["variants"]:
        fmt = v["name"].split("-", 1)[1]
        key = v["key"]
        out = f"{tmp}/store/{key}"
        w, h = v["width"], v["height"]
        rows[fmt]["lowband"][0] += v["bytes"]
        rows[fmt]["lowband"][1].append(ssim(out, src, w, h))
        ext = {"jpeg": "jpg"}.get(fmt, fmt)
        im = f"{tmp}/im/{stem}-w{w}-{fmt}.{ext}"
        rows[fmt]["magick"][0] += os.path.getsize(im)
        rows[fmt]["magick"][1].append(ssim(im, src, w, h))
    print(f"{asset['path']}: placeholder {len(asset.get('placeholder') or '')} bytes as a data URI")

print(f"{'format':<7} {'lowband bytes':>13} {'SSIM':>7} {'magick bytes':>13} {'SSIM':>7} {'bytes ratio':>11}")
for fmt, sides in rows.items():
    lb, im = sides["lowband"], sides["magick"]
    mean = lambda xs: sum(xs) / len(xs)
    print(f"{fmt:<7} {lb[0]:>13} {mean(lb[1]):>7.4f} {im[0]:>13} {mean(im[1]):>7.4f} {lb[0] / im[0]:>10.2f}x")
PY
echo
echo "magick side, per source: convert $(tr '\0' ' ' <"${sources[0]}.im.args")"
