#!/usr/bin/env bash
# Side by side: the video ladder made by lowband-pipeline and by ONE ffmpeg CLI
# process (decode once, split/asplit, every rung) on the same input.
#
#   benches/video-ladder.sh [INPUT] [RUNS]
#
# INPUT defaults to samples/teaching-questions/lessons/lecture.mp4, RUNS
# (per side, alternating lowband, ffmpeg, lowband, ffmpeg, ...) to 2.
# KEEP=1 leaves the temporary directory (store, ffmpeg outputs) in place.
# PROFILE=<file> picks the ladder (default profiles/default.toml); both sides
# use that same file. Prints every run, the best (minimum) wall time of each
# side with the CPU time (user+sys) of that run, their ratios
# (lowband / ffmpeg), bytes and kbit/s per rung, and the SSIM of the 144p rung
# of each side against the source scaled to 144p.
#
# The ffmpeg command mirrors pipeline/src/video/{plan,output}.rs: rungs not
# taller than the source, width = even(round(height * display aspect)),
# fps = min(rung, source), lanczos, setsar=1, yuv420p; libx264 main, preset,
# crf, maxrate = (max_kbps - audio_kbps) * 9 / 10, bufsize = 2 * maxrate,
# keyframes forced every keyframe_interval s, scenecut=0, forced-idr, g;
# "slides" rungs sample at fps first and keep changed pictures (mpdecimate,
# same thresholds as output.rs), variable frame rate; mono AAC per rung;
# audio-only renditions (AAC in fragmented MP4, Opus in WebM). ffmpeg's own
# threading is left at its defaults.
set -euo pipefail

die() { echo "video-ladder.sh: $*" >&2; exit 1; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

input=${1:-samples/teaching-questions/lessons/lecture.mp4}
runs=${2:-2}
profile=${PROFILE:-profiles/default.toml}
[[ -f $input ]] || die "no such input: $input"
[[ -f $profile ]] || die "no such profile: $profile"
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, got: $runs"
input=$(realpath "$input")
profile=$(realpath "$profile")

command -v ffmpeg >/dev/null || die "ffmpeg is not installed (Debian: apt-get install -y ffmpeg)"
command -v ffprobe >/dev/null || die "ffprobe is not installed (Debian: apt-get install -y ffmpeg)"
command -v python3 >/dev/null || die "python3 (3.11 or later, for tomllib) is not installed"
python3 -c 'import tomllib' 2>/dev/null || die "python3 has no tomllib: Python 3.11 or later is needed"
if [[ ! -x /usr/bin/time ]]; then
    echo "== /usr/bin/time is missing: installing the Debian package 'time'" >&2
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo=sudo
    $sudo apt-get install -y time >/dev/null || die "could not install /usr/bin/time (apt-get install -y time)"
fi
for enc in libx264 libsvtav1 aac; do
    [[ $(ffmpeg -hide_banner -h encoder="$enc" 2>/dev/null) == *"Encoder $enc "* ]] \
        || die "this ffmpeg has no $enc encoder"
done

echo "== building lowband-pipeline (release)" >&2
cargo build --release -p lowband-pipeline >&2 || die "cargo build --release -p lowband-pipeline failed"
lowband=$root/target/release/lowband-pipeline
[[ -x $lowband ]] || die "no binary at $lowband after the build"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/lowband-video-ladder.XXXXXX")
if [[ -n ${KEEP:-} ]]; then
    echo "== KEEP is set: leaving the outputs in $tmp" >&2
else
    trap 'rm -rf "$tmp"' EXIT
fi

# The module lowband ingests: only the input video, under lessons/.
name=$(basename "$input")
mkdir -p "$tmp/module/lessons"
ln "$input" "$tmp/module/lessons/$name" 2>/dev/null || cp "$input" "$tmp/module/lessons/$name"
echo 'id = "bench"' >"$tmp/module/module.toml"

# Plan the ffmpeg side from the profile and the source, as lowband's plan.rs does.
ffprobe -v error -show_streams -show_format -of json "$input" >"$tmp/probe.json" \
    || die "ffprobe cannot read $input"
fps_mode=-fps_mode
[[ $(ffmpeg -hide_banner -h long 2>/dev/null) == *$'\n-fps_mode '* ]] || fps_mode=-vsync
python3 - "$profile" "$tmp/probe.json" "$tmp/ff-out" "$input" "$fps_mode" \
    >"$tmp/plan.json" 3>"$tmp/ffmpeg.argv" 4>"$tmp/ffmpeg.cmd" <<'PY'
import json, math, os, shlex, sys, tomllib
from fractions import Fraction

profile_path, probe_path, outdir, source, fps_mode = sys.argv[1:6]
with open(profile_path, "rb") as f:
    video = tomllib.load(f)["video"]
probe = json.load(open(probe_path))
streams = probe["streams"]

def rate(s):
    for key in ("avg_frame_rate", "r_frame_rate"):
        try:
            r = Fraction(s.get(key, "0/0"))
        except (ValueError, ZeroDivisionError):
            continue
        if 0 < r <= 1000:
            return float(r)
    return None

def rotation(s):
    # ffprobe reports the display matrix counter-clockwise; lowband snaps to quarter turns.
    for sd in s.get("side_data_list", []):
        if "rotation" in sd:
            return round((-float(sd["rotation"])) % 360 / 90) % 4 * 90
    return 0

vids = [s for s in streams if s.get("codec_type") == "video"
        and not s.get("disposition", {}).get("attached_pic")]
v = max(vids, key=lambda s: s["width"] * s["height"]) if vids else None
auds = [s for s in streams if s.get("codec_type") == "audio"]
a = next((s for s in auds if s.get("disposition", {}).get("default")), auds[0] if auds else None)
if v is None:
    sys.exit("video-ladder.sh: the input has no video stream")

def rust_round(x):  # f64::round: halves away from zero
    return math.floor(x + 0.5)

def even(n):
    return max(n, 2) // 2 * 2

def rational_fps(fps):
    for num, den in ((24000, 1001), (30000, 1001), (60000, 1001)):
        if abs(fps - num / den) < 0.001:
            return f"{num}/{den}", num / den
    if abs(fps - round(fps)) < 0.001:
        return f"{round(fps)}/1", float(round(fps))
    return f"{round(fps * 1000)}/1000", round(fps * 1000) / 1000

sar = 1.0
try:
    r = Fraction(v.get("sample_aspect_ratio", "1:1").replace(":", "/"))
    if r > 0:
        sar = float(r)
except (ValueError, ZeroDivisionError):
    pass
dw, dh = v["width"] * sar, v["height"]
rot = rotation(v)
if rot % 180 == 90:
    dw, dh = float(v["height"]), rust_round(v["width"] * sar)
aspect = dw / dh
src_fps = rate(v)
gop_default = float(video["keyframe_interval"])

rungs = [r for r in video["rungs"] if r["height"] <= dh]
if not rungs:
    rungs = [min(video["rungs"], key=lambda r: r["height"])]

plan, vchains, achains, outs = [], [], [], []
for i, r in enumerate(rungs):
    h = even(min(r["height"], dh))
    w = even(int(rust_round(h * aspect)))
    fps = src_fps if src_fps is not None and src_fps < r["fps"] else r["fps"]
    fps_str, fps_val = rational_fps(fps)
    mode = r.get("mode", "motion")
    kint = float(r.get("keyframe_interval", gop_default))
    vkbps = (r["max_kbps"] - r["audio_kbps"]) * 9 // 10
    if mode == "slides":
        chain = (f"fps=fps={fps_str},scale=w={w}:h={h}:flags=lanczos,setsar=1,"
                 f"mpdecimate=hi=768:lo=320:frac=0.33,format=yuv420p")
    else:
        chain = f"fps=fps={fps_str},scale=w={w}:h={h}:flags=lanczos,setsar=1,format=yuv420p"
    vchains.append(chain)
    out = os.path.join(outdir, f"{r['name']}.mp4")
    o = ["-map", f"[v{i}]"]
    if a is not None:
        achains.append(f"aformat=sample_fmts=fltp:sample_rates={r['audio_sample_rate']}"
                       ":channel_layouts=mono")
        o += ["-map", f"[a{len(achains) - 1}]"]
    if r.get("codec", "h264") == "av1":
        # Mirrors svt_av1_options in output.rs: capped CRF, GOP = interval.
        o += ["-c:v", "libsvtav1", "-preset", str(r.get("preset", "8")),
              "-crf", str(r["crf"]), "-g", str(max(1, rust_round(fps_val * kint))),
              "-svtav1-params", f"mbr={vkbps}:scd=0:irefresh-type=2:lp=1",
              fps_mode, "passthrough"]
    else:
        o += ["-c:v", "libx264", "-preset", r.get("preset", "medium"), "-profile:v", "main",
              "-crf", str(r["crf"]), "-maxrate", f"{vkbps}k", "-bufsize", f"{2 * vkbps}k",
              "-g", str(math.ceil(fps_val * kint * 2)), "-forced-idr", "1",
              "-x264-params", "scenecut=0",
              "-force_key_frames", f"expr:gte(t,n_forced*{kint:g})",
              fps_mode, "passthrough"]
    if a is not None:
        o += ["-c:a", "aac", "-b:a", f"{r['audio_kbps']}k"]
    o += ["-map_metadata", "-1", "-map_chapters", "-1",
          "-movflags", "frag_keyframe+empty_moov+default_base_moof+global_sidx",
          "-f", "mp4", out]
    outs.append(o)
    plan.append({"name": r["name"], "kind": "video", "mode": mode, "width": w, "height": h,
                 "fps": fps_str, "file": out})

if a is not None:
    for r in video.get("audio", []):
        opus = r["codec"] == "opus"
        fmt = "flt" if opus else "fltp"
        achains.append(f"aformat=sample_fmts={fmt}:sample_rates={r['sample_rate']}"
                       ":channel_layouts=mono")
        o = ["-map", f"[a{len(achains) - 1}]"]
        if opus:
            out = os.path.join(outdir, f"{r['name']}.webm")
            o += ["-c:a", "libopus", "-b:a", f"{r['kbps']}k", "-application", "voip",
                  "-map_metadata", "-1", "-map_chapters", "-1",
                  "-cues_to_front", "1", "-f", "webm", out]
        else:
            out = os.path.join(outdir, f"{r['name']}.m4a")
            o += ["-c:a", "aac", "-b:a", f"{r['kbps']}k",
                  "-map_metadata", "-1", "-map_chapters", "-1",
                  "-movflags", "empty_moov+default_base_moof+global_sidx",
                  "-frag_duration", str(int(gop_default * 1_000_000)), "-f", "mp4", out]
        outs.append(o)
        plan.append({"name": r["name"], "kind": "audio", "codec": r["codec"], "file": out})

graph = []
n = len(vchains)
graph.append(f"[0:{v['index']}]split={n}" + "".join(f"[vs{i}]" for i in range(n)))
graph += [f"[vs{i}]{c}[v{i}]" for i, c in enumerate(vchains)]
if achains:
    m = len(achains)
    graph.append(f"[0:{a['index']}]asplit={m}" + "".join(f"[as{i}]" for i in range(m)))
    graph += [f"[as{i}]{c}[a{i}]" for i, c in enumerate(achains)]

argv = ["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", source,
        "-filter_complex", ";".join(graph)]
for o in outs:
    argv += o
with os.fdopen(3, "w") as f:
    f.write("\0".join(argv) + "\0")
# Readable and copy-pasteable: one output per line, INPUT and OUT for the paths.
def show(args):
    return shlex.join(a.replace(source, "INPUT").replace(outdir, "OUT") for a in args)
# (ffmpeg skips the whitespace between filter chains, so the graph may span lines.)
head = show(argv[:argv.index("-filter_complex")] + ["-filter_complex"])
head += " '" + ";\n    ".join(graph) + "'"
with os.fdopen(4, "w") as f:
    f.write(" \\\n  ".join([head] + [show(o) for o in outs]) + "\n")
duration = float(probe.get("format", {}).get("duration") or v.get("duration") or 0)
json.dump({"rungs": plan, "duration": duration, "source": {
    "width": v["width"], "height": v["height"], "fps": src_fps, "rotation": rot}}, sys.stdout)
PY
mapfile -d '' ffargv <"$tmp/ffmpeg.argv"
if grep -q libopus "$tmp/ffmpeg.argv"; then
    [[ $(ffmpeg -hide_banner -h encoder=libopus 2>/dev/null) == *"Encoder libopus "* ]] \
        || die "the profile has an Opus rendition but this ffmpeg has no libopus encoder"
fi

# One timed run: writes "<wall> <user> <sys>" to $tmp/time.<side>.<n>.
run_lowband() {  # $1 = run number
    local store=$tmp/store
    rm -rf "$store" && mkdir -p "$store"
    if ! /usr/bin/time -f '%e %U %S' -o "$tmp/time.lowband.$1" \
        "$lowband" ingest "$tmp/module" --store "$store" --profile "$profile" --json \
        >"$tmp/lowband.json" 2>"$tmp/lowband.err"; then
        cat "$tmp/lowband.err" >&2
        die "lowband-pipeline ingest failed (run $1)"
    fi
}
run_ffmpeg() {  # $1 = run number
    rm -rf "$tmp/ff-out" && mkdir -p "$tmp/ff-out"
    if ! /usr/bin/time -f '%e %U %S' -o "$tmp/time.ffmpeg.$1" "${ffargv[@]}" 2>"$tmp/ffmpeg.err"; then
        cat "$tmp/ffmpeg.err" >&2
        die "ffmpeg failed (run $1)"
    fi
}

echo "== lowband vs ffmpeg CLI: video ladder"
src_info=$(python3 -c 'import json, sys
p = json.load(open(sys.argv[1])); s = p["source"]
print("%sx%s, %s fps, %.1f s" % (s["width"], s["height"], s["fps"], p["duration"]))' "$tmp/plan.json")
echo "input:   ${input#"$root"/} ($src_info)"
echo "profile: ${profile#"$root"/}"
echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at start; $(ffmpeg -version | head -1 | cut -d' ' -f1-3)"
echo "ffmpeg command:"
sed 's/^/  /' "$tmp/ffmpeg.cmd"
echo
for ((i = 1; i <= runs; i++)); do
    run_lowband "$i"
    read -r w u s <"$tmp/time.lowband.$i"
    printf 'run %d  lowband  wall %6.2f s  cpu %6.2f s (user %.2f, sys %.2f)\n' "$i" "$w" "$(echo "$u $s" | awk '{print $1+$2}')" "$u" "$s"
    run_ffmpeg "$i"
    read -r w u s <"$tmp/time.ffmpeg.$i"
    printf 'run %d  ffmpeg   wall %6.2f s  cpu %6.2f s (user %.2f, sys %.2f)\n' "$i" "$w" "$(echo "$u $s" | awk '{print $1+$2}')" "$u" "$s"
done
echo

# Sizes, ratios, quality. The last run of each side is still on disk.
manifest=$tmp/store/modules/bench/manifest.json
[[ -f $manifest ]] || die "lowband wrote no manifest at modules/bench/manifest.json"
python3 - "$tmp" "$runs" "$manifest" "$tmp/plan.json" "$input" <<'PY'
import json, os, re, subprocess, sys

tmp, runs, manifest_path, plan_path, source = sys.argv[1], int(sys.argv[2]), *sys.argv[3:]
plan = json.load(open(plan_path))
manifest = json.load(open(manifest_path))
assets = [x for x in manifest["assets"] if x["kind"] == "video"]
if len(assets) != 1:
    sys.exit(f"video-ladder.sh: expected one video asset in the manifest, found {len(assets)}")
store = os.path.join(tmp, "store")
low = {v["name"]: v for v in assets[0]["variants"]}
duration = plan["duration"] or assets[0].get("duration") or 0

def times(side):
    out = []
    for i in range(1, runs + 1):
        w, u, s = map(float, open(os.path.join(tmp, f"time.{side}.{i}")).read().split()[:3])
        out.append((w, u + s))
    return out

def kbps(b):
    return f"{b * 8 / duration / 1000:.1f}" if b is not None and duration else "-"

def obj_path(v):
    key = v["key"]
    key = key if isinstance(key, str) else key.get("key", "")
    return os.path.join(store, key) if os.path.isfile(os.path.join(store, key)) else None

names = [r["name"] for r in plan["rungs"]] + [n for n in low if n not in {r["name"] for r in plan["rungs"]}]
rows = [("rung", "lowband bytes", "ffmpeg bytes", "lowband kbit/s", "ffmpeg kbit/s", "bytes ratio")]
tot_l = tot_f = 0
for n in names:
    lb = low[n]["bytes"] if n in low else None
    r = next((r for r in plan["rungs"] if r["name"] == n), None)
    fb = os.path.getsize(r["file"]) if r and os.path.isfile(r["file"]) else None
    label = n
    if r is None:
        label += " (lowband only)"
    else:
        tot_l += lb or 0
        tot_f += fb or 0
    if r and r["kind"] == "video":
        label += f" {r['width']}x{r['height']}@{r['fps']}" + (" vfr" if r.get("mode") == "slides" else "")
    rows.append((label, lb if lb is not None else "-", fb if fb is not None else "-",
                 kbps(lb), kbps(fb), f"{lb / fb:.2f}" if lb and fb else "-"))
rows.append(("total of the ladder", tot_l, tot_f, kbps(tot_l), kbps(tot_f), f"{tot_l / tot_f:.2f}" if tot_f else "-"))
widths = [max(len(str(row[c])) for row in rows) for c in range(len(rows[0]))]
for k, row in enumerate(rows):
    print("  ".join(str(x).ljust(widths[0]) if c == 0 else str(x).rjust(widths[c]) for c, x in enumerate(row)))
    if k == 0:
        print("  ".join("-" * w for w in widths))
print(f"(kbit/s = bytes * 8 / {duration:.2f} s source duration; bytes ratio = lowband / ffmpeg)")
if any(n not in {r["name"] for r in plan["rungs"]} for n in low):
    print("(lowband-only variants are extra work inside lowband's time, left out of the totals)")
print()

lt, ft = times("lowband"), times("ffmpeg")
lw, lc = min(lt)
fw, fc = min(ft)
print(f"wall: lowband {lw:.2f} s, ffmpeg {fw:.2f} s, ratio {lw / fw:.2f}   (best of {runs})")
print(f"cpu:  lowband {lc:.2f} s, ffmpeg {fc:.2f} s, ratio {lc / fc:.2f}   (user+sys of those runs;"
      f" min over runs: {min(c for _, c in lt):.2f} s / {min(c for _, c in ft):.2f} s)")
print()

# SSIM of the 144p rung (else the lowest motion rung) against the source scaled alike.
motion = [r for r in plan["rungs"] if r["kind"] == "video" and r.get("mode", "motion") == "motion"]
pick = next((r for r in motion if r["name"] == "144p"), None) or (min(motion, key=lambda r: r["height"]) if motion else None)
if pick is None:
    print("ssim: no motion rung to compare")
    sys.exit(0)
def ssim(path):
    graph = (f"[1:v]scale={pick['width']}:{pick['height']}:flags=lanczos,setsar=1,"
             f"fps={pick['fps']},format=yuv420p[ref];[0:v]format=yuv420p[dist];[dist][ref]ssim")
    p = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-i", path, "-i", source, "-an",
                        "-lavfi", graph, "-f", "null", "-"], capture_output=True, text=True)
    m = re.findall(r"SSIM Y:([\d.]+).*All:([\d.]+) \(([\d.inf]+)\)", p.stderr)
    return f"All {m[-1][1]} ({m[-1][2]} dB), Y {m[-1][0]}" if m else "failed: " + p.stderr.strip()[-300:]
lp = obj_path(low[pick["name"]]) if pick["name"] in low else None
print(f"ssim of {pick['name']} ({pick['width']}x{pick['height']}@{pick['fps']}) against the source scaled to it:")
print(f"  lowband {ssim(lp) if lp else 'no such object in the store'}")
print(f"  ffmpeg  {ssim(pick['file'])}")
PY
