#!/usr/bin/env bash
# Long and big sources: does `lowband-pipeline ingest` keep its memory bounded?
# Generates lecture-like sources with the ffmpeg CLI and ingests each into its
# own file:// store under /usr/bin/time -v:
#
#   lecture-1min    1280x720, 25 fps, 1 minute
#   lecture-Nmin    the same lecture, LONG_MINUTES long (default 60)
#   4k60-Ss         3840x2160, 60 fps, CLIP_SECONDS long (default 10)
#
#   benches/long-sources.sh [LONG_MINUTES]   # default 60; e.g. 5 for a quick run
#
# The lectures are slides: a title bar and three bullet lines (DejaVu Sans via
# drawtext; testsrc2 stills if no font is found) whose numbers change every
# 20 s and are static in between, over speech-like mono AAC at 48 kHz (a
# 170 Hz tone and pink noise, band-limited to 120-3400 Hz, amplitude-modulated
# at 4 Hz like syllables). The 4K clip is testsrc2 (motion everywhere) with a
# tone. Sources are encoded cheaply (libx264 -preset ultrafast, high crf) and
# are not timed.
#
# Prints the CPU model (lscpu), the load average, and a table: per source its
# duration, peak RSS (Maximum resident set size of the ingest process), wall
# and CPU (user+sys) seconds, wall and CPU seconds per source minute, the
# ingest summary's own "s per source minute" (media_render_seconds over
# media_seconds of its --json report) and the mean 1-minute load average
# during the ingest; then the peak RSS ratio LONG / 1 minute. VmRSS is also
# sampled every 2 s, so the table shows the peak of the first and of the
# second half of each run: a source whose RSS still climbs in the second half
# grows with duration. Exits non-zero if any generation or ingest fails (the
# other sources are still ingested and the table printed).
#
# Environment:
#   CLIP_SECONDS=10  length of the 4K 60 fps clip
#   PROFILE=default  ladder profile (a name in profiles/ or a TOML file)
#   LOWBAND_BIN      the binary to measure (default: target/debug/lowband-pipeline,
#                    built with `cargo build -p lowband-pipeline --locked` if it is
#                    missing or older than the sources, unless NO_BUILD=1). It is
#                    copied into the temporary directory first, so a rebuild in
#                    the tree during a long run does not change what is measured.
#   KEEP=1           leaves the temporary directory (sources, stores, logs) in place
#
# Needs ffmpeg/ffprobe with libx264 and aac, python3 and /usr/bin/time
# (installed from Debian's `time` if missing). Disk: ~150 MB per source hour
# plus ~65 MB per 10 s of 4K, and the renditions.
set -euo pipefail

die() { echo "long-sources.sh: $*" >&2; exit 1; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

[[ $# -le 1 ]] || die "usage: benches/long-sources.sh [LONG_MINUTES]"
long_min=${1:-60}
clip_s=${CLIP_SECONDS:-10}
profile=${PROFILE:-default}
positive() { [[ $1 =~ ^[0-9]+([.][0-9]+)?$ ]] && awk -v x="$1" 'BEGIN { exit !(x > 0) }'; }
positive "$long_min" || die "LONG_MINUTES must be a positive number, got: $long_min"
positive "$clip_s" || die "CLIP_SECONDS must be a positive number, got: $clip_s"

# --- tools ----------------------------------------------------------------------
command -v ffmpeg >/dev/null || die "ffmpeg is not installed (Debian: apt-get install -y ffmpeg)"
command -v ffprobe >/dev/null || die "ffprobe is not installed (Debian: apt-get install -y ffmpeg)"
command -v python3 >/dev/null || die "python3 is not installed"
for enc in libx264 aac; do
    [[ $(ffmpeg -hide_banner -h encoder="$enc" 2>/dev/null) == *"Encoder $enc "* ]] \
        || die "this ffmpeg has no $enc encoder"
done
if [[ ! -x /usr/bin/time ]]; then
    echo "== /usr/bin/time is missing: installing the Debian package 'time'" >&2
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo=sudo
    $sudo apt-get install -y time >/dev/null || die "could not install /usr/bin/time (apt-get install -y time)"
fi

# --- the binary (dev profile) ------------------------------------------------------
target=${CARGO_TARGET_DIR:-$root/target}
lowband=${LOWBAND_BIN:-$target/debug/lowband-pipeline}
if [[ -z ${LOWBAND_BIN:-} && -z ${NO_BUILD:-} ]]; then
    stale=""
    if [[ ! -x $lowband ]]; then
        stale="missing"
    elif [[ -n $(find pipeline/src catalog/src pipeline/Cargo.toml catalog/Cargo.toml Cargo.toml Cargo.lock \
        -newer "$lowband" -type f -print -quit 2>/dev/null) ]]; then
        stale="older than the sources"
    fi
    if [[ -n $stale ]]; then
        echo "== $lowband is $stale: cargo build -p lowband-pipeline --locked (dev profile)" >&2
        cargo build -p lowband-pipeline --locked >&2 || die "cargo build -p lowband-pipeline --locked failed"
    fi
fi
[[ -x $lowband ]] || die "no binary at $lowband"

# --- temporary directory, cleanup ---------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lowband-long-sources.XXXXXX")
bg_pids=()
cleanup() {
    local rc=$? p
    for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [[ ${#bg_pids[@]} -eq 0 ]] || sleep 1
    if [[ -n ${KEEP:-} ]]; then
        echo "== KEEP is set: leaving $tmp" >&2
    else
        rm -rf "$tmp"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cp "$lowband" "$tmp/lowband-pipeline"
bin_info="$(stat -c '%y' "$lowband" | cut -d. -f1), $(sha256sum "$lowband" | cut -c1-12)"
lowband=$tmp/lowband-pipeline
# (the work directory of the renders follows TMPDIR: keep it inside $tmp too)
mkdir -p "$tmp/work"

cpu_model=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
[[ -n $cpu_model ]] || cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
echo "== long and big sources through lowband-pipeline ingest"
echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(nproc) CPUs ($cpu_model), $(free -m | awk '/^Mem:/ {printf "%.1f GiB", $2 / 1024}') RAM, load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo "binary:  ${LOWBAND_BIN:-$target/debug/lowband-pipeline} ($bin_info), profile $profile"
echo "tools:   $(ffmpeg -version | head -1 | cut -d' ' -f1-3)"
echo

# --- sources ----------------------------------------------------------------------------
font=""
for f in "$(fc-match -f '%{file}' 'DejaVu Sans' 2>/dev/null || true)" \
    /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf /usr/share/fonts/TTF/DejaVuSans.ttf; do
    [[ -n $f && -f $f ]] && { font=$f; break; }
done
slide_video() {
    if [[ -n $font ]]; then
        local n='%{eif\:floor(t/20)+1\:d}' d="drawtext=fontfile=$font:fontcolor=0x202020:fontsize=36:x=90"
        printf '%s' "color=c=0xf4f1e8:s=1280x720:r=25,drawbox=x=0:y=0:w=iw:h=120:color=0x1f3b73:t=fill," \
            "drawtext=fontfile=$font:fontcolor=white:fontsize=44:x=60:y=38:text='Lecture $n\: asking good questions'," \
            "$d:y=200:text='• point %{eif\:mod(floor(t/20)*37\,100)\:d}\: why questions matter'," \
            "$d:y=270:text='• example %{eif\:mod(floor(t/20)*53\,100)\:d}\: open versus closed'," \
            "$d:y=340:text='• exercise %{eif\:mod(floor(t/20)*71\,100)\:d}\: wait time'," \
            "format=yuv420p[v]"
    else
        # One testsrc2 picture every 20 s (each different), held at 25 fps.
        printf '%s' "testsrc2=s=1280x720:r=1/20,fps=25,format=yuv420p[v]"
    fi
}
speech_audio="sine=frequency=170:sample_rate=48000[s];anoisesrc=color=pink:sample_rate=48000:amplitude=0.3:seed=42[n];[s][n]amix=inputs=2:normalize=0,highpass=f=120,lowpass=f=3400,tremolo=f=4:d=0.8,volume=0.5[a]"

names=()
gen_failed=""
generate() {  # name seconds kind(lecture|4k)
    local name=$1 secs=$2 kind=$3 graph x264 t0 t1
    mkdir -p "$tmp/$name/module/lessons"
    printf 'id = "%s"\ntitle = "%s"\n' "$name" "$name" >"$tmp/$name/module/module.toml"
    if [[ $kind == lecture ]]; then
        graph="$(slide_video);$speech_audio"
        x264=(-preset ultrafast -crf 35 -g 250)
    else
        graph="testsrc2=size=3840x2160:rate=60,format=yuv420p[v];sine=frequency=220:sample_rate=48000,tremolo=f=4:d=0.8[a]"
        x264=(-preset ultrafast -crf 32 -g 120)
    fi
    echo "== generating $name (${secs} s)" >&2
    t0=$(date +%s.%N)
    if ! ffmpeg -hide_banner -nostdin -loglevel error -y -filter_complex "$graph" -map '[v]' -map '[a]' \
        -t "$secs" -c:v libx264 "${x264[@]}" -pix_fmt yuv420p -c:a aac -b:a 64k -ac 1 -ar 48000 \
        -movflags +faststart "$tmp/$name/module/lessons/$name.mp4" 2>"$tmp/$name/gen.err"; then
        cat "$tmp/$name/gen.err" >&2
        echo "long-sources.sh: generating $name failed" >&2
        gen_failed=1
        return 0
    fi
    t1=$(date +%s.%N)
    local info
    info=$(ffprobe -v error -select_streams v:0 -show_entries stream=width,height,r_frame_rate:format=duration,size \
        -of default=nw=1 "$tmp/$name/module/lessons/$name.mp4" | tr '\n' ' ')
    echo "   $info(made in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }') s)" >&2
    names+=("$name")
}
long_name="lecture-${long_min}min"
clip_name="4k60-${clip_s}s"
generate lecture-1min 60 lecture
generate "$clip_name" "$clip_s" 4k
generate "$long_name" "$(awk -v m="$long_min" 'BEGIN { print m * 60 }')" lecture
[[ -z $gen_failed ]] || die "a source could not be generated; nothing ingested"

# --- ingests ------------------------------------------------------------------------------
# Samples "elapsed_s vmrss_kb load1" of PID every 2 s until it exits.
sample_rss() {  # pid out
    local pid=$1 out=$2 t0 rss
    t0=$(date +%s.%N)
    while kill -0 "$pid" 2>/dev/null; do
        rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
        [[ -z $rss ]] || echo "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') $rss $(cut -d' ' -f1 /proc/loadavg)" >>"$out"
        sleep 2
    done
}

failed=()
for name in "${names[@]}"; do
    dir=$tmp/$name
    echo "== ingesting $name (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    : >"$dir/rss"
    TMPDIR=$tmp/work /usr/bin/time -v -o "$dir/time" \
        "$lowband" ingest "$dir/module" --store "file://$dir/store" \
        --profile "$profile" --profiles-dir "$root/profiles" --json \
        >"$dir/report.json" 2>"$dir/ingest.err" &
    time_pid=$!
    bg_pids=("$time_pid")
    child=""
    for _ in $(seq 100); do
        child=$(pgrep -P "$time_pid" 2>/dev/null | head -1 || true)
        [[ -z $child ]] || break
        kill -0 "$time_pid" 2>/dev/null || break
        sleep 0.05
    done
    if [[ -n $child ]]; then
        sample_rss "$child" "$dir/rss" &
        bg_pids+=($! "$child")  # the sampler, and the ingest itself (time would orphan it)
    fi
    rc=0
    wait "$time_pid" || rc=$?
    [[ ${#bg_pids[@]} -lt 2 ]] || wait "${bg_pids[1]}" 2>/dev/null || true
    bg_pids=()
    echo "$rc" >"$dir/rc"
    if [[ $rc -ne 0 ]]; then
        tail -n 30 "$dir/ingest.err" >&2
        echo "long-sources.sh: ingest of $name failed (exit $rc)" >&2
        failed+=("$name")
    fi
    rm -rf "$tmp/work"/* # what a failed run may leave behind
done

# --- table ----------------------------------------------------------------------------------
echo
python3 - "$tmp" "$long_name" "${names[@]}" <<'PY'
import json, os, re, sys

tmp, long_name, names = sys.argv[1], sys.argv[2], sys.argv[3:]

def parse_time(path):
    t = {}
    for line in open(path):
        k, _, v = line.strip().rpartition(": ")
        t[k] = v
    wall = 0.0
    for part in t["Elapsed (wall clock) time (h:mm:ss or m:ss)"].split(":"):
        wall = wall * 60 + float(part)
    return {"rss_mb": int(t["Maximum resident set size (kbytes)"]) / 1024,
            "wall": wall,
            "cpu": float(t["User time (seconds)"]) + float(t["System time (seconds)"])}

rows = [("source", "duration", "peak RSS MB", "1st half", "2nd half", "wall s", "CPU s",
         "wall s/min", "CPU s/min", "summary s/min", "load", "variants")]
peak = {}
for name in names:
    d = os.path.join(tmp, name)
    rc = int(open(os.path.join(d, "rc")).read())
    probe = os.popen(f"ffprobe -v error -show_entries format=duration -of csv=p=0 "
                     f"'{d}/module/lessons/{name}.mp4'").read().strip()
    dur = float(probe or 0)
    mins = dur / 60
    durs = f"{dur / 60:.0f} min" if dur >= 120 else f"{dur:.0f} s"
    if rc != 0 or not os.path.exists(os.path.join(d, "time")):
        rows.append((name, durs, f"FAILED (exit {rc})") + ("-",) * 9)
        continue
    t = parse_time(os.path.join(d, "time"))
    peak[name] = t["rss_mb"]
    samples = [tuple(map(float, l.split())) for l in open(os.path.join(d, "rss")) if l.strip()]
    half = t["wall"] / 2
    first = max((s[1] for s in samples if s[0] <= half), default=None)
    second = max((s[1] for s in samples if s[0] > half), default=None)
    load = sum(s[2] for s in samples) / len(samples) if samples else None
    summary, variants = "-", "-"
    try:
        r = json.load(open(os.path.join(d, "report.json")))
        variants = str(r.get("variants", "-"))
        if r.get("media_seconds"):
            summary = f"{r['media_render_seconds'] / (r['media_seconds'] / 60):.1f}"
    except (OSError, ValueError):
        pass
    mb = lambda kb: f"{kb / 1024:.0f}" if kb is not None else "-"
    rows.append((name, durs, f"{t['rss_mb']:.0f}", mb(first), mb(second),
                 f"{t['wall']:.1f}", f"{t['cpu']:.1f}",
                 f"{t['wall'] / mins:.1f}", f"{t['cpu'] / mins:.1f}", summary,
                 f"{load:.1f}" if load is not None else "-", variants))

widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
for k, r in enumerate(rows):
    print("  ".join(x.ljust(widths[c]) if c == 0 else x.rjust(widths[c]) for c, x in enumerate(r)))
    if k == 0:
        print("  ".join("-" * w for w in widths))
print("(peak RSS: Maximum resident set size from /usr/bin/time -v; 1st/2nd half: the highest VmRSS"
      " sampled every 2 s in each half of the run; CPU = user+sys; s/min = seconds per minute of"
      " source; summary s/min: the ingest report's own figure, video and sound only; load: mean"
      " 1-minute load average during the ingest)")
if "lecture-1min" in peak and long_name in peak and long_name != "lecture-1min":
    ratio = peak[long_name] / peak["lecture-1min"]
    verdict = "bounded" if ratio <= 1.25 else "GROWS with duration"
    print(f"peak RSS {long_name} / lecture-1min: {peak[long_name]:.0f} / {peak['lecture-1min']:.0f} MB"
          f" = {ratio:.2f} ({verdict})")
PY
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

if [[ ${#failed[@]} -gt 0 ]]; then
    die "ingest failed for: ${failed[*]} (KEEP=1 keeps the logs)"
fi
