#!/usr/bin/env bash
# make.sh — generate lowband's conformance corpus: short media files "as authors
# bring them" (phones, cameras, screen recorders, editors, old Flash/AVI/3GP
# files, DVD and broadcast recordings, voice notes, joined clips, and a few
# files that must be refused).
#
#   bash pipeline/tests/corpus/make.sh OUT_DIR
#
# writes every case into OUT_DIR and OUT_DIR/cases.tsv (see README.md next to
# this script for the columns). Needs only the ffmpeg/ffprobe CLI (written
# against Debian 12's FFmpeg 5.1 with libx264, libx265, libvpx, libaom,
# libsvtav1, libtheora, libmp3lame, libopus, libvorbis) and coreutils.
#
# Every case with picture and sound carries the same sync signal on one grid
# in presentation time, t = 0, P, 2P, ... (P = the period column, 2 s unless
# said otherwise): the whole picture goes white for 0.2 s (dark, moving test
# pattern otherwise, mean luma ~50) and a 1 kHz sine at -2 dBFS sounds for
# 0.2 s (a -60 dBFS 97 Hz hum otherwise). Audio-only cases have only the
# beeps, silent cases only the flashes. A lagging stream starts on a grid
# instant, so its own marks stay on the file's grid.
#
# Each case is built in the background (CORPUS_JOBS at a time, default: the
# number of CPUs), then checked; the script fails, showing the case's log, if
# a check does not hold. Publish cases must decode with `ffmpeg -xerror`,
# their flashes and beeps must be found where they belong (CORPUS_SYNC=0
# skips this), and what ffprobe reports (display size, languages, subtitle
# count, HDR transfer, start times, and per case codec, profile, ...) must
# match cases.tsv. Refuse cases must be what they claim (too large, too
# long, too many streams, or not media). KEEP_WORK=1 keeps the scratch
# directory. Output is deterministic for a given FFmpeg build: lavfi sources
# only, single-threaded encoders, +bitexact, no metadata copied.

# Encoder settings ($X264, av's VENC/AENC, ...) are word lists, split on purpose.
# shellcheck disable=SC2086
set -euo pipefail
export LC_ALL=C

if [ $# -ne 1 ]; then
    echo "usage: $0 OUT_DIR" >&2
    exit 2
fi
mkdir -p "$1"
OUT=$(cd "$1" && pwd)
T0=$(date +%s.%N)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/lowband-corpus.XXXXXX")
if [ "${KEEP_WORK:-0}" = 1 ]; then echo "keeping $WORK" >&2; else trap 'rm -rf "$WORK"' EXIT; fi
mkdir -p "$WORK/rows" "$WORK/logs" "$WORK/tmp"
JOBS=${CORPUS_JOBS:-$(nproc)}
export SVT_LOG=1 # SVT-AV1: errors only

FF=(ffmpeg -nostdin -hide_banner -v error -y)
# No metadata copied, no encoder/version strings, no creation times, fixed
# Matroska UIDs and Ogg serial numbers.
BX=(-map_metadata -1 -fflags +bitexact -flags:v +bitexact -flags:a +bitexact)

# Encoder settings: fast, small, single-threaded (so the bytes do not depend on
# the machine). Word lists, split on purpose where they are used.
X264="-c:v libx264 -preset veryfast -crf 34 -threads 1 -pix_fmt yuv420p"
X265P="log-level=error:pools=1:frame-threads=1"
X265="-c:v libx265 -preset ultrafast -crf 34 -tag:v hvc1 -pix_fmt yuv420p -x265-params $X265P"
# (VP8 in realtime mode picks its speed from the clock: not deterministic.)
VP8="-c:v libvpx -deadline good -cpu-used 5 -b:v 150k -threads 1"
VP9="-c:v libvpx-vp9 -deadline realtime -cpu-used 8 -crf 50 -b:v 0 -row-mt 0 -threads 1"
AAC="-c:a aac -b:a 64k"
OPUS="-c:a libopus -b:a 32k"

PERIOD=2 # seconds between sync marks; a case may override it for its builder

die() { echo "make.sh: $*" >&2; exit 1; }

# ----------------------------------------------------------------- sources

# pic WxH FPS DUR: lavfi graph of a dark moving test pattern (testsrc2, luma
# squeezed to ~16..90) that turns white (Y=235) for 0.2 s every PERIOD seconds.
# Odd sizes are cropped from the next even testsrc2 in 4:4:4.
pic() {
    local w=${1%x*} h=${1#*x} odd=""
    if (( w % 2 || h % 2 )); then odd="format=yuv444p,"; fi
    printf '%s' "testsrc2=s=$(( (w + 1) / 2 * 2 ))x$(( (h + 1) / 2 * 2 )):r=$2:d=$3,${odd}crop=$w:$h:0:0," \
        "lutyuv=y='16+(val-16)*0.35',drawbox=c=white:t=fill:enable='lt(mod(t+0.0001,$PERIOD),0.2)'"
}

# beep RATE:LAYOUT[:HZ] DUR: lavfi source with a HZ (1000) sine at 0.8 for
# 0.2 s every PERIOD seconds in every channel, a -60 dBFS 97 Hz hum otherwise.
beep() {
    local rate layout hz n e exprs
    IFS=: read -r rate layout hz <<<"$1"
    case $layout in mono) n=1 ;; stereo) n=2 ;; 5.1*) n=6 ;; 7.1*) n=8 ;; *) die "layout $layout" ;; esac
    e="0.8*sin(2*PI*${hz:-1000}*t)*lt(mod(t,$PERIOD),0.2)+0.001*sin(2*PI*97*t)"
    exprs=$e
    while (( --n )); do exprs+="|$e"; done
    printf '%s' "aevalsrc='$exprs':s=$rate:c=$layout:d=$2"
}

# ----------------------------------------------------------------- builders
# Each builder takes the output path first. Scratch files go in $T.

# av OUT SIZE FPS DUR AUDIO VENC AENC [output options...]
#   SIZE WxH, or - for no picture; DUR seconds, or VDUR/ADUR when picture and
#   sound differ; AUDIO RATE:LAYOUT[:HZ], or - for no sound. The plain
#   "one recorder, one file" case: picture and sound start together at 0.
av() {
    local out=$1 size=$2 fps=$3 dur=$4 audio=$5 venc=$6 aenc=$7
    shift 7
    local in=()
    [ "$size" = - ] || in+=(-f lavfi -i "$(pic "$size" "$fps" "${dur%/*}")")
    [ "$audio" = - ] || in+=(-f lavfi -i "$(beep "$audio" "${dur#*/}")")
    "${FF[@]}" "${in[@]}" "${BX[@]}" $venc $aenc "$@" "$out"
}

# rotated OUT CW SIZE FPS AUDIO VENC AENC: a phone recording: the sensor's
# frame stored as is, with a display matrix turning it CW degrees clockwise.
# FFmpeg 5.1 has no -display_rotation and ignores rotate= when encoding; on
# stream copy into MP4/MOV it writes rotate=N as N degrees counter-clockwise
# (ffprobe rotation=N), so CW degrees clockwise is rotate=360-CW.
rotated() {
    local out=$1 cw=$2
    av "$T/upright.${out##*.}" "$3" "$4" 4 "$5" "$6" "$7"
    "${FF[@]}" -i "$T/upright.${out##*.}" -map 0 -c copy "${BX[@]}" \
        -metadata:s:v:0 rotate=$(( (360 - cw) % 360 )) "$out"
}

# offset OUT LAG VDUR ADUR [output options...]: picture and sound encoded
# apart (H.264 in MP4, AAC in M4A, as an editor or a muxing tool has them),
# then put together with -c copy and the later one shifted by |LAG| seconds
# with -itsoffset. (Encoding with -itsoffset instead makes the CLI fill the
# gap by repeating the first frame, since MP4 output defaults to CFR.)
offset() {
    local out=$1 lag=$2 vd=$3 ad=$4
    shift 4
    av "$T/v.mp4" 320x240 25 "$vd" - "$X264" ""
    av "$T/a.m4a" - - "$ad" 48000:stereo "" "$AAC"
    local vin=(-i "$T/v.mp4") ain=(-i "$T/a.m4a")
    case $lag in
        -*) vin=(-itsoffset "${lag#-}" "${vin[@]}") ;;
        0) ;;
        *) ain=(-itsoffset "$lag" "${ain[@]}") ;;
    esac
    "${FF[@]}" "${vin[@]}" "${ain[@]}" -map 0:v -map 1:a -c copy "${BX[@]}" "$@" "$out"
}

# concat OUT N CLIPDUR SIZE FPS AUDIO VENC AENC: N clips made one by one (as
# a screen recorder or a camera splits them), joined with the concat demuxer
# and -c copy: each clip's audio priming and padding end up in the middle.
concat() {
    local out=$1 n=$2 d=$3 size=$4 fps=$5 audio=$6 venc=$7 aenc=$8 i
    : > "$T/list.txt"
    for (( i = 1; i <= n; i++ )); do
        av "$T/clip$i.${out##*.}" "$size" "$fps" "$d" "$audio" "$venc" "$aenc"
        echo "file '$T/clip$i.${out##*.}'" >> "$T/list.txt"
    done
    "${FF[@]}" -f concat -safe 0 -i "$T/list.txt" -map 0 -c copy "${BX[@]}" "$out"
}

# editcut OUT: a clip trimmed in a hurry: `ffmpeg -ss 2 -i long.mp4 -t 4 -c copy`
# from an 8 s source whose only keyframe is at 0. The MP4 keeps the packets
# from the keyframe and edit lists hide them (media_time 2.08 s for video: 2 s
# + the B-frame delay; 2.021 s for audio: 2 s + the AAC priming), so
# presentation starts at the old 2 s flash.
editcut() {
    av "$T/long.mp4" 320x240 25 8 48000:stereo "$X264 -g 1000 -sc_threshold 0 -bf 2" "$AAC"
    "${FF[@]}" -ss 2 -i "$T/long.mp4" -t 4 -map 0 -c copy "${BX[@]}" "$1"
}

# tsreset OUT: a recorder that restarted: two MPEG-TS recordings joined with
# cat, the first with timestamps from ~31.4 s, the second back at ~1.4 s
# (both flag a discontinuity on their first packets, as a restarting
# recorder does, so the demuxer does not call the joint corrupt).
tsreset() {
    av "$T/a.ts" 320x240 25 4 48000:stereo "$X264" "$AAC" -mpegts_flags +initial_discontinuity -output_ts_offset 30
    av "$T/b.ts" 320x240 25 4 48000:stereo "$X264" "$AAC" -mpegts_flags +initial_discontinuity
    cat "$T/a.ts" "$T/b.ts" > "$1"
}

# tsformat OUT: a recorder whose sound settings changed between two takes:
# two MPEG-TS recordings joined with cat, the clock running on, the first
# with 48 kHz stereo AAC, the second 22.05 kHz mono (ADTS says so per frame,
# so the decoder's rate and layout change mid-stream).
tsformat() {
    av "$T/a.ts" 320x240 25 4 48000:stereo "$X264" "$AAC" -mpegts_flags +initial_discontinuity
    av "$T/b.ts" 320x240 25 4 22050:mono "$X264" "$AAC" -mpegts_flags +initial_discontinuity -output_ts_offset 4
    cat "$T/a.ts" "$T/b.ts" > "$1"
}

# vfr OUT: a phone's variable frame rate: frames picked from a 60 fps pattern
# 2,1,2,2 ticks apart (33/17/33/33 ms), always keeping the frames at each grid
# instant and 0.2 s after it so the flash starts and ends on time; MP4 with
# the 600 Hz track timescale phones use.
vfr() {
    local keep="not(mod(n,120))+not(mod(n-12,120))+eq(mod(n,7),0)+eq(mod(n,7),2)+eq(mod(n,7),3)+eq(mod(n,7),5)"
    "${FF[@]}" -f lavfi -i "$(pic 320x240 60 6),select='$keep'" -f lavfi -i "$(beep 48000:stereo 6)" \
        $X264 $AAC -fps_mode vfr -video_track_timescale 600 "${BX[@]}" "$1"
}

# duppts OUT: every 5th frame carries the same timestamp as the one before
# (a muxer bug seen in screen recorders); Matroska accepts equal timestamps.
# Frames 4, 9, 14, ... share their time with 3, 8, 13, ...; none of them is
# a flash frame, and no time is lost (the next frame keeps its own time).
duppts() {
    "${FF[@]}" -f lavfi -i "$(pic 320x240 10 4),setpts='N-eq(mod(N,5),4)'" -f lavfi -i "$(beep 48000:mono 4)" \
        $X264 -bf 0 $AAC -fps_mode passthrough "${BX[@]}" "$1"
}

# langs OUT AENC LANG... : one picture and one sound track per language
# (1000, 500, 1500 Hz beeps on the same grid), the first marked default.
langs() {
    local out=$1 aenc=$2 hz=(1000 500 1500) in=() map=(-map 0:v) meta=() i=0 lang
    shift 2
    for lang in "$@"; do
        in+=(-f lavfi -i "$(beep "48000:stereo:${hz[i]}" 4)")
        map+=(-map "$(( i + 1 )):a")
        meta+=("-metadata:s:a:$i" language="$lang" "-disposition:a:$i" "$([ $i = 0 ] && echo default || echo 0)")
        i=$(( i + 1 ))
    done
    "${FF[@]}" -f lavfi -i "$(pic 320x240 25 4)" "${in[@]}" "${map[@]}" $X264 $aenc "${BX[@]}" "${meta[@]}" "$out"
}

# srt FILE LANG: SubRip cues at every grid instant of a 4 s clip.
srt() {
    local k text
    case $2 in khm) text="សញ្ញា" ;; *) text="Mark" ;; esac
    for k in 0 1; do
        printf '%d\n00:00:0%d,000 --> 00:00:0%d,500\n%s %d (%d s)\n\n' $(( k + 1 )) $(( 2 * k )) $(( 2 * k + 1 )) "$text" $(( k + 1 )) $(( 2 * k ))
    done > "$1"
}

# subs OUT SCODEC LANG... : H.264 + AAC with one text subtitle stream per LANG.
subs() {
    local out=$1 scodec=$2 in=() map=(-map 0:v -map 1:a) meta=() i=0 lang
    shift 2
    for lang in "$@"; do
        srt "$T/$lang.srt" "$lang"
        in+=(-i "$T/$lang.srt")
        map+=(-map "$(( i + 2 )):s")
        meta+=("-metadata:s:s:$i" language="$lang")
        i=$(( i + 1 ))
    done
    "${FF[@]}" -f lavfi -i "$(pic 320x240 25 4)" -f lavfi -i "$(beep 48000:stereo 4)" "${in[@]}" \
        "${map[@]}" $X264 $AAC -c:s "$scodec" "${BX[@]}" "${meta[@]}" "$out"
}

# attach OUT: Matroska with an attachment stream (here a text file; fonts for
# ASS subtitles are the usual case).
attach() {
    printf 'Lecture notes: this attachment must be ignored.\n' > "$T/notes.txt"
    av "$1" 320x240 25 4 48000:stereo "$X264" "$AAC" \
        -attach "$T/notes.txt" -metadata:s:t:0 mimetype=text/plain -metadata:s:t:0 filename=notes.txt
}

# cover OUT AENC [output options...]: a song-style audio file with a cover
# picture (attached_pic video stream): still an audio-only source.
cover() {
    local out=$1 aenc=$2
    shift 2
    "${FF[@]}" -f lavfi -i "testsrc2=s=240x240:r=1,lutyuv=y='16+(val-16)*0.35'" -frames:v 1 -c:v mjpeg "${BX[@]}" "$T/cover.jpg"
    "${FF[@]}" -f lavfi -i "$(beep 44100:stereo 4)" -i "$T/cover.jpg" -map 0:a -map 1:v $aenc -c:v copy \
        -disposition:v:0 attached_pic "${BX[@]}" "$@" "$out"
}

# manystreams OUT N: picture + N sound tracks (more streams than a profile's
# max_streams = 16 allows).
manystreams() {
    local out=$1 n=$2 map=(-map 0:v) i
    for (( i = 0; i < n; i++ )); do map+=(-map 1:a); done
    "${FF[@]}" -f lavfi -i "$(pic 160x120 5 4)" -f lavfi -i "$(beep 16000:mono 4)" "${map[@]}" \
        $X264 -c:a libopus -b:a 8k "${BX[@]}" "$out"
}

# longdur OUT SECONDS: a two-frame MJPEG Matroska whose second frame is at
# SECONDS: a tiny file that lasts longer than max_duration (3 h).
longdur() {
    "${FF[@]}" -f lavfi -i "$(pic 160x120 1 2),setpts='N*$2/TB'" -fps_mode passthrough \
        -c:v mjpeg -q:v 10 "${BX[@]}" "$1"
}

# ---- files that are not media an author could mean (the pipeline opens
# sources with an allow-list of demuxers and the file protocol only)

# An HLS playlist named .mp4 (the CLI follows it to a local segment).
playlist() {
    printf '#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:4.0,\nh264-aac.ts\n#EXT-X-ENDLIST\n' > "$1"
}
# An ffconcat list named .mp4 (the CLI reads the files it names).
concatlist() {
    printf "ffconcat version 1.0\nfile 'h264-high.mp4'\nfile 'h264-main.mov'\n" > "$1"
}
# A PNG still named .mp4 (only png_pipe/image2 read it).
pngstill() {
    "${FF[@]}" -f lavfi -i "$(pic 320x240 1 1)" -frames:v 1 -c:v png -f image2 "${BX[@]}" "$T/still.png"
    cp "$T/still.png" "$1"
}
# The first 300 bytes of a faststart MP4: ftyp and part of the moov.
truncated() {
    av "$T/whole.mp4" 320x240 25 4 48000:stereo "$X264" "$AAC" -movflags +faststart
    head -c 300 "$T/whole.mp4" > "$1"
}
# 64 KB of noise (deterministic: a seeded lavfi noise source) named .mp4.
garbage() {
    "${FF[@]}" -f lavfi -i "anoisesrc=seed=7:r=16000:d=2:c=white" -c:a pcm_s16le -f s16le "$1"
}
# An empty file named .mp4.
empty() { : > "$1"; }

# ------------------------------------------------------------------ checks

# decode FILE HAS_PICTURE HAS_SOUND FORMAT: `ffmpeg -xerror -i FILE -f null -`
# must succeed; the same run (unless CORPUS_SYNC=0) writes the picture's mean
# luma per frame to $T/y.txt and the sound's RMS level per 2 ms to
# $T/rms.txt, in the times the CLI decodes them at: the input's start time
# subtracted, sound gaps filled and overlaps dropped by timestamp (as a
# player does). MPEG-TS may jump back in time (ts-reset.ts): its timestamps
# are read as they are (-copyts), one segment after the other, and sound is
# neither filled nor dropped.
decode() {
    local f=$1 ts=() async=":async=1:min_hard_comp=0.01" more=() err
    : > "$T/y.txt"
    : > "$T/rms.txt"
    if [ "$4" = mpegts ]; then ts=(-copyts) async=""; fi
    if [ "${CORPUS_SYNC:-1}" != 0 ]; then
        [ "$2" = 0 ] || more+=(-map 0:V:0 -vf "format=yuv420p,signalstats,metadata=print:key=lavfi.signalstats.YAVG:file=$T/y.txt" -f null -)
        [ "$3" = 0 ] || more+=(-map 0:a:0 -af "aresample=8000$async,aformat=sample_fmts=flt:channel_layouts=mono,asetnsamples=n=16:p=0,astats=metadata=1:reset=1:measure_perchannel=none:measure_overall=RMS_level,ametadata=print:key=lavfi.astats.Overall.RMS_level:file=$T/rms.txt" -f null -)
    fi
    err=$(ffmpeg -nostdin -v error -xerror "${ts[@]}" -i "$f" -f null - "${more[@]}" 2>&1 >/dev/null) ||
        die "$f: ffmpeg -xerror fails: $err"
}

# marks: the sync marks in $T/y.txt and $T/rms.txt: "f T" for each flash
# onset (mean luma crosses from below 150 to above 200), "b T" for each beep
# onset (RMS above -20 dBFS for at least 0.1 s, so a codec's pre-echo in a
# priming frame does not count).
marks() {
    awk '
        /pts_time:/ { sub(/.*pts_time:/, ""); t = $1 + 0; next }
        /YAVG=/ { sub(/.*=/, ""); y = $1 + 0; if (y > 200 && !white) print "f", t; if (y > 200) white = 1; if (y < 150) white = 0 }' "$T/y.txt"
    awk '
        /pts_time:/ { sub(/.*pts_time:/, ""); t = $1 + 0; next }
        /RMS_level=/ { sub(/.*=/, ""); v = ($1 == "-inf" ? -200 : $1 + 0)
            if (v > -20 && !loud) { loud = 1; start = t }
            if (v < -40 && loud) { loud = 0; if (t - start >= 0.1) print "b", start }
            last = t }
        END { if (loud && last - start >= 0.1) print "b", start }' "$T/rms.txt"
}

# sync_check FILE KIND LAG: every flash that has a beep within half a period
# has it within 40 ms (one 25 fps frame; codec pre-echo and B-frame/priming
# rounding stay below that); the first beep comes LAG s after the first
# flash; the marks of a lone medium are whole periods apart.
sync_check() {
    local f=$1 out
    marks > "$T/marks.txt"
    out=$(awk -v P="$PERIOD" -v lag="$3" -v kind="$2" '
        function abs(x) { return x < 0 ? -x : x }
        $1 == "f" { F[++nf] = $2 } $1 == "b" { B[++nb] = $2 }
        END {
            if (kind == "video" && !nf) { print "no flash"; exit }
            if (!nf && !nb) { print "no beep"; exit }
            for (i = 1; i <= nf; i++) {
                best = 1e9
                for (j = 1; j <= nb; j++) if (abs(B[j] - F[i]) < abs(best)) best = B[j] - F[i]
                if (abs(best) <= P / 2) { pairs++; if (abs(best) > 0.04) printf "flash at %.3f has its beep %+.3f s off; ", F[i], best }
            }
            if (nf && nb && !pairs) printf "no flash has a beep near it; "
            if (nf && nb && abs(B[1] - F[1] - lag) > 0.04) printf "first beep %.3f s after first flash, lag is %s; ", B[1] - F[1], lag
            if (!nb || !nf) for (i = 2; i <= (nb ? nb : nf); i++) {
                d = (nb ? B[i] - B[1] : F[i] - F[1]) / P
                if (abs(d - int(d + 0.5)) * P > 0.04) printf "mark %d is %.3f s after the first; ", i, d * P
            }
        }' "$T/marks.txt")
    [ -z "$out" ] || die "$f: sync marks: $out(marks: $(tr '\n' ' ' < "$T/marks.txt"))"
}

# facts FILE LAG PROBES: one ffprobe of FILE, summed up by awk. Prints
#   KIND DISPLAY LANGS SUBS HDR HAS_PICTURE SOUND_TRACKS FORMAT
# as cases.tsv would say them (DISPLAY from the first picture stream that is
# not cover art: width times the pixel aspect, turned by the display matrix),
# then a line for each of PROBES that does not hold. PROBES: ';'-separated
# SEL.key=value where SEL is v (that picture stream), a, s, t, d (the first
# sound, subtitle, attachment, data stream) or f (the format), or -; e.g.
# 'v.codec_name=h264;v.profile=High 10'. MPEG-TS lists its streams again
# under their program: each stream counts once.
facts() {
    local keys
    keys=$(tr ';' '\n' <<<"$3" | awk -F'[.=]' '$1 != "f" && NF > 1 { printf ",%s", $2 }')
    ffprobe -v error -show_entries \
        "format:stream=index,codec_type,width,height,sample_aspect_ratio,color_transfer,start_time$keys:stream_tags=language:stream_disposition=attached_pic:stream_side_data=rotation" \
        -of compact "$1" | awk -F'|' -v lag="$2" -v probes="$3" '
        function abs(x) { return x < 0 ? -x : x }
        {
            split("", f)
            for (i = 1; i <= NF; i++) if ($i ~ /=/) { k = $i; sub(/=.*/, "", k); v = $i; sub(/^[^=]*=/, "", v); f[k] = v }
        }
        $1 == "format" { for (k in f) P["f", k] = f[k]; next }
        !("index" in f) || seen[f["index"]]++ { next }
        {
            type = f["codec_type"]
            sel = type == "video" ? (f["disposition:attached_pic"] == 1 ? "" : "v") : type == "audio" ? "a" : \
                type == "subtitle" ? "s" : type == "attachment" ? "t" : type == "data" ? "d" : ""
            if (sel != "" && !have[sel]++) for (k in f) P[sel, k] = f[k]
            if (type == "audio") { na++; tagged += ("tag:language" in f); langs = (langs == "" ? "" : langs ",") ("tag:language" in f ? f["tag:language"] : "und") }
            if (type == "subtitle") ns++
        }
        END {
            kind = have["v"] ? "video" : "audio"
            disp = "-"
            if (have["v"]) {
                w = P["v", "width"]; h = P["v", "height"]
                split(P["v", "sample_aspect_ratio"], r, ":"); if (r[1] > 0 && r[2] > 0) w = w * r[1] / r[2]
                w = int(w + 0.5); if (P["v", "rotation"] % 180) { t = w; w = h; h = t }
                disp = w "x" h
            }
            tr = P["v", "color_transfer"]
            hdr = tr == "arib-std-b67" ? "hlg" : tr == "smpte2084" ? "pq" : "-"
            # start times differ from the lag by audio priming / B-frame delay at most
            vs = P["v", "start_time"]; as = P["a", "start_time"]
            if (have["v"] && na && vs != "N/A" && as != "N/A" && abs(as - vs - lag) > 0.1)
                kind = kind "(sound-starts-" as - vs "-s-after-picture)"
            printf "%s %s %s %d %s %d %d %s\n", kind, disp, (na > 1 && tagged ? langs : "-"), ns, hdr, have["v"] + 0, na, P["f", "format_name"]
            n = split(probes == "-" ? "" : probes, items, ";")
            for (i = 1; i <= n; i++) {
                sel = items[i]; sub(/\..*/, "", sel); key = items[i]; sub(/^[^.]*\./, "", key)
                want = key; sub(/^[^=]*=/, "", want); sub(/=.*/, "", key)
                if (P[sel, key] != want) printf "%s %s is \"%s\", not \"%s\"; ", sel, key, P[sel, key], want
            }
        }'
}

# The demuxers lowband's source opener accepts (pipeline/src/video/source.rs):
# the "not media" refuse cases must not open with these (or not decode).
ALLOWED="mov,mp4,m4a,matroska,webm,mp3,wav,ogg,flac,aac,avi"

# check FILE EXPECT KIND LAG DISPLAY LANGS SUBS HDR PROBES: a publish case
# decodes, its sync marks are where they belong, and what ffprobe sees agrees
# with its cases.tsv row and PROBES (see facts); a refuse case is what it
# claims: PROBES hold, and a file that is not media at all does not open
# under the allow-list or does not decode.
check() {
    local f=$1 expect=$2 kind=$3 lag=$4 display=$5 langs=$6 subs=$7 hdr=$8 probes=$9 facts g bad
    facts=$(facts "$f" "$lag" "$probes" 2>/dev/null || true)
    read -r -a g <<<"${facts%%$'\n'*}"
    bad=${facts#*$'\n'}
    [ "$bad" != "$facts" ] || bad=""
    [ -z "$bad" ] || die "$f: $bad"
    if [ "$expect" = refuse ]; then
        if [ "$display" = - ] &&
            ffprobe -v error -protocol_whitelist file -format_whitelist "$ALLOWED" -i "$f" >/dev/null 2>&1 &&
            ffmpeg -nostdin -v error -xerror -i "$f" -f null - >/dev/null 2>&1; then
            die "$f: opens under the allow-list and decodes"
        fi
        return 0
    fi
    [ "${g[*]:0:5}" = "$kind $display $langs $subs $hdr" ] ||
        die "$f: ffprobe says '${g[*]:0:5}', cases.tsv says '$kind $display $langs $subs $hdr'"
    decode "$f" "${g[5]}" "${g[6]}" "${g[7]}"
    # SYNC=0 before a case: the CLI's own decode cannot time its marks
    # (a filter graph the CLI rebuilds mid-stream reopens, and so empties,
    # the file its levels are written to); lowband's rungs still are timed.
    [ "${CORPUS_SYNC:-1}" = 0 ] || [ "${SYNC:-1}" = 0 ] || sync_check "$f" "$kind" "$lag"
}

# ------------------------------------------------------------------- cases

NCASE=0
declare -A FILES=()

# c FILE EXPECT KIND LAG PERIOD DISPLAY LANGS SUBS HDR NOTE PROBES -- BUILDER ARGS...
# Runs `BUILDER OUT_DIR/FILE ARGS...` in the background with PERIOD set, then
# check; the row is kept only if both succeed.
c() {
    local file=$1 expect=$2 kind=$3 lag=$4 period=$5 display=$6 langs=$7 subs=$8 hdr=$9 row id
    local probes=${11}
    [ -z "${FILES[$file]:-}" ] || die "duplicate case $file"
    FILES[$file]=1
    row=$(IFS=$'\t'; echo "${*:1:10}")
    shift 11
    [ "${1:-}" = -- ] || die "$file: no -- before the builder"
    shift
    NCASE=$(( NCASE + 1 ))
    printf -v id '%03d' "$NCASE"
    while (( $(jobs -rp | wc -l) >= JOBS )); do wait -n || true; done
    (
        set -e
        T="$WORK/tmp/$id" PERIOD=$period
        mkdir -p "$T"
        rm -f "$OUT/$file"
        builder=$1
        shift
        "$builder" "$OUT/$file" "$@"
        check "$OUT/$file" "$expect" "$kind" "$lag" "$display" "$langs" "$subs" "$hdr" "$probes"
        rm -rf "$T"
        printf '%s\n' "$row" > "$WORK/rows/$id.tsv"
    ) > "$WORK/logs/$id.log" 2>&1 &
}

V=video A=audio P=publish R=refuse

# --- video codecs and containers: what cameras, phones, editors and old web
# video bring. 320x240, 4 s, AAC unless the name says otherwise.
c h264-baseline.mp4 $P $V 0 2 320x240 - 0 - "H.264 Constrained Baseline + AAC mono 44.1k, 30 fps: older Android phones, messaging apps" \
    'v.profile=Constrained Baseline;a.channels=1' -- av 320x240 30 4 44100:mono "$X264 -profile:v baseline" "$AAC"
c h264-main.mov $P $V 0 2 320x240 - 0 - "H.264 Main + AAC stereo 48k in QuickTime, 25 fps: QuickTime/Keynote export" \
    'v.profile=Main;f.format_name=mov,mp4,m4a,3gp,3g2,mj2' -- av 320x240 25 4 48000:stereo "$X264 -profile:v main" "$AAC"
c h264-high.mp4 $P $V 0 2 320x240 - 0 - "H.264 High + AAC stereo 48k, 24 fps (flash is 5 frames, 0.208 s): cameras, web downloads" \
    'v.profile=High' -- av 320x240 24 4 48000:stereo "$X264 -profile:v high" "$AAC"
c h264-high10.mp4 $P $V 0 2 320x240 - 0 - "H.264 High 10 (yuv420p10le) + AAC: 10-bit camera/editor export most hardware cannot decode" \
    'v.profile=High 10;v.pix_fmt=yuv420p10le' -- av 320x240 25 4 48000:stereo "$X264 -pix_fmt yuv420p10le -profile:v high10" "$AAC"
c h264-aac.m4v $P $V 0 2 320x240 - 0 - "H.264 + AAC in M4V (iPod muxer): iTunes/HandBrake exports" \
    'v.codec_name=h264' -- av 320x240 25 4 44100:stereo "$X264 -profile:v main" "$AAC"
c h264-aac.mkv $P $V 0 2 320x240 - 0 - "H.264 + AAC in Matroska: OBS recordings" \
    'f.format_name=matroska,webm' -- av 320x240 30 4 48000:stereo "$X264" "$AAC"
c h264-aac.flv $P $V 0 2 320x240 - 0 - "H.264 + AAC in FLV: RTMP/OBS stream recordings" \
    'f.format_name=flv' -- av 320x240 30 4 44100:stereo "$X264" "$AAC"
c h264-aac.ts $P $V 0 2 320x240 - 0 - "H.264 + AAC in MPEG-TS (starts at 1.4 s): HLS segments, IPTV/DVR recordings" \
    'f.format_name=mpegts' -- av 320x240 25 4 48000:stereo "$X264" "$AAC"
c h264-aac.3gp $P $V 0 2 320x240 - 0 - "H.264 + AAC mono 16k in 3GP: Android phones' MMS-size recordings" \
    'v.codec_name=h264;a.sample_rate=16000' -- av 320x240 15 4 16000:mono "$X264 -profile:v baseline" "-c:a aac -b:a 24k"
c h263-aac.3gp $P $V 0 2 176x144 - 0 - "H.263 QCIF + AAC mono 8k in 3GP: feature phones (AMR-NB, their usual sound, has no encoder in this FFmpeg)" \
    'v.codec_name=h263;a.sample_rate=8000' -- av 176x144 15 4 8000:mono "-c:v h263 -q:v 10" "-c:a aac -b:a 12k"
c hevc-main.mp4 $P $V 0 2 320x240 - 0 - "HEVC Main 8-bit (hvc1) + AAC: Android/iPhone 'high efficiency' SDR" \
    'v.codec_name=hevc;v.profile=Main;v.codec_tag_string=hvc1' -- av 320x240 30 4 48000:stereo "$X265" "$AAC"
c hevc-main10.mkv $P $V 0 2 320x240 - 0 - "HEVC Main 10 SDR + Opus in Matroska: 10-bit encodes from HandBrake et al." \
    'v.profile=Main 10;v.pix_fmt=yuv420p10le;a.codec_name=opus' -- av 320x240 25 4 48000:stereo "$X265 -pix_fmt yuv420p10le" "$OPUS"
c hevc-hlg.mov $P $V 0 2 320x240 - 0 hlg "HEVC Main 10 HLG (bt2020, arib-std-b67 in the VUI and the colr box) + AAC in MOV: iPhone HDR video" \
    'v.profile=Main 10;v.color_primaries=bt2020;v.color_space=bt2020nc' -- av 320x240 30 4 44100:stereo \
    "$X265:colorprim=bt2020:transfer=arib-std-b67:colormatrix=bt2020nc -pix_fmt yuv420p10le -color_primaries bt2020 -color_trc arib-std-b67 -colorspace bt2020nc" "$AAC"
c hevc-pq.mp4 $P $V 0 2 320x240 - 0 pq "HEVC Main 10 HDR10 (smpte2084, bt2020, mastering display + CLL SEI) + AAC: Android HDR10 recordings, HDR downloads" \
    'v.profile=Main 10;v.color_primaries=bt2020' -- av 320x240 30 4 48000:stereo \
    "$X265:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc:hdr10=1:master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1):max-cll=1000,400 -pix_fmt yuv420p10le -color_primaries bt2020 -color_trc smpte2084 -colorspace bt2020nc" "$AAC"
c hevc-hlg-portrait.mov $P $V 0 2 180x320 - 0 hlg "iPhone held upright: 320x180 HEVC HLG frame, display matrix 90° clockwise (ffprobe rotation -90)" \
    'v.codec_name=hevc' -- rotated 90 320x180 30 44100:stereo \
    "$X265:colorprim=bt2020:transfer=arib-std-b67:colormatrix=bt2020nc -pix_fmt yuv420p10le -color_primaries bt2020 -color_trc arib-std-b67 -colorspace bt2020nc" "$AAC"
c vp8-vorbis.webm $P $V 0 2 320x240 - 0 - "VP8 + Vorbis WebM: early WebM, old browser recordings" \
    'v.codec_name=vp8;a.codec_name=vorbis' -- av 320x240 25 4 44100:stereo "$VP8" "-c:a libvorbis -q:a 1"
c vp9-opus.webm $P $V 0 2 320x240 - 0 - "VP9 + Opus WebM: YouTube-style downloads" \
    'v.codec_name=vp9;a.codec_name=opus' -- av 320x240 30 4 48000:stereo "$VP9" "$OPUS"
c mediarecorder.webm $P $V 0 2 320x240 - 0 - "VP8 + Opus 'live' WebM without duration or cues: a browser MediaRecorder upload" \
    'f.duration=N/A' -- av 320x240 30 4 48000:mono "$VP8" "$OPUS" -live 1
c av1-opus.webm $P $V 0 2 320x240 - 0 - "AV1 (SVT-AV1 preset 12) + Opus WebM: modern browser/YouTube AV1" \
    'v.codec_name=av1' -- av 320x240 25 4 48000:stereo "-c:v libsvtav1 -preset 12 -crf 50 -svtav1-params lp=1" "$OPUS"
c av1-aac.mp4 $P $V 0 2 320x240 - 0 - "AV1 (libaom realtime) + AAC in MP4: newer Android phones' AV1 export" \
    'v.codec_name=av1' -- av 320x240 25 4 48000:stereo "-c:v libaom-av1 -usage realtime -cpu-used 8 -crf 50 -threads 1" "$AAC"
c mpeg4-mp3.avi $P $V 0 2 320x240 - 0 - "MPEG-4 Part 2 (XVID tag, B-frames) + MP3 in AVI: DivX/Xvid-era downloads (AVI cannot say the MP3 delay: sound 25 ms late, picture 40 ms)" \
    'v.codec_name=mpeg4;v.codec_tag_string=XVID;a.codec_name=mp3' -- av 320x240 25 4 44100:stereo "-c:v mpeg4 -q:v 8 -bf 1 -vtag XVID" "-c:a libmp3lame -b:a 64k"
c mpeg4-aac.mp4 $P $V 0 2 320x240 - 0 - "MPEG-4 Part 2 Simple + AAC in MP4: old pocket cameras and phones" \
    'v.codec_name=mpeg4' -- av 320x240 30 4 32000:mono "-c:v mpeg4 -q:v 8" "-c:a aac -b:a 32k"
c mjpeg-pcm.avi $P $V 0 2 320x240 - 0 - "Motion JPEG + PCM u8 mono 11025 Hz in AVI: old digital still cameras' movie mode" \
    'v.codec_name=mjpeg;a.codec_name=pcm_u8;a.sample_rate=11025' -- av 320x240 15 4 11025:mono "-c:v mjpeg -q:v 8" "-c:a pcm_u8"
c mjpeg-pcm.mov $P $V 0 2 320x240 - 0 - "Motion JPEG + PCM s16le stereo 32 kHz in MOV: compact camera / webcam recordings" \
    'v.codec_name=mjpeg;a.codec_name=pcm_s16le' -- av 320x240 30 4 32000:stereo "-c:v mjpeg -q:v 8" "-c:a pcm_s16le"
c theora-vorbis.ogv $P $V 0 2 320x240 - 0 - "Theora + Vorbis in Ogg: Wikimedia Commons" \
    'v.codec_name=theora;f.format_name=ogg' -- av 320x240 25 4 44100:stereo "-c:v libtheora -q:v 4" "-c:a libvorbis -q:a 1"
c flv1-mp3.flv $P $V 0 2 320x240 - 0 - "Sorenson Spark (FLV1) + MP3 22.05k in FLV: Flash-era web video" \
    'v.codec_name=flv1;a.codec_name=mp3' -- av 320x240 25 4 22050:mono "-c:v flv -q:v 8" "-c:a libmp3lame -b:a 32k"
c dvd-mpeg2-ac3.mkv $P $V 0 2 640x480 - 0 - "MPEG-2 720x480 4:3 (SAR 8:9) 29.97 fps + AC-3 5.1 in Matroska: a DVD rip (MakeMKV); flash starts 2 ms late" \
    'v.codec_name=mpeg2video;v.sample_aspect_ratio=8:9;a.codec_name=ac3;a.channels=6' -- av 720x480 30000/1001 4 48000:5.1\(side\) "-c:v mpeg2video -q:v 12 -aspect 4:3" "-c:a ac3 -b:a 192k"
c anamorphic-pal.ts $P $V 0 2 1024x576 - 0 - "MPEG-2 720x576 16:9 anamorphic (SAR 64:45), interlaced TFF + MP2 in MPEG-TS: a DVB recording" \
    'v.codec_name=mpeg2video;v.sample_aspect_ratio=64:45;v.field_order=tt;a.codec_name=mp2' -- av 720x576 25 4 48000:stereo "-c:v mpeg2video -q:v 16 -vf setfield=tff -flags:v +bitexact+ildct+ilme -top 1 -aspect 16:9" "-c:a mp2 -b:a 128k"
c h264-noaudio.mp4 $P $V 0 2 320x240 - 0 - "H.264 only, no sound track: silent screen captures, GIF conversions" \
    'v.codec_name=h264' -- av 320x240 30 4 - "$X264" ""
c fragmented.mp4 $P $V 0 2 320x240 - 0 - "fragmented MP4 (empty moov, a moof per second): OBS/browser recordings; no edit lists, so the AAC priming packet sits at 0 and the rest from 0.067 s" \
    'v.codec_name=h264' -- av 320x240 30 4 48000:stereo "$X264 -g 30" "$AAC" -movflags +frag_keyframe+empty_moov+default_base_moof

# --- sound codecs, layouts and rates inside video files
c h264-eac3-51.mp4 $P $V 0 2 320x240 - 0 - "H.264 + E-AC-3 5.1 in MP4: streaming-service style downloads" \
    'a.codec_name=eac3;a.channels=6' -- av 320x240 25 4 48000:5.1 "$X264" "-c:a eac3 -b:a 192k"
c h264-aac-71.mp4 $P $V 0 2 320x240 - 0 - "H.264 + AAC 7.1 (8 channels) in MP4" \
    'a.codec_name=aac;a.channels=8' -- av 320x240 25 4 48000:7.1 "$X264" "-c:a aac -b:a 256k"
c h264-flac-96k.mkv $P $V 0 2 320x240 - 0 - "H.264 + FLAC 24-bit 96 kHz stereo in Matroska: music lesson recorded on a field recorder" \
    'a.codec_name=flac;a.sample_rate=96000' -- av 320x240 25 4 96000:stereo "$X264" "-c:a flac -sample_fmt s32"
c h264-pcm-s16.mov $P $V 0 2 320x240 - 0 - "H.264 + PCM s16le stereo 48k in MOV: macOS screen recording / camera" \
    'a.codec_name=pcm_s16le' -- av 320x240 30 4 48000:stereo "$X264" "-c:a pcm_s16le"
c h264-pcm-s24.mov $P $V 0 2 320x240 - 0 - "H.264 + PCM s24le stereo 48k in MOV: prosumer cameras" \
    'a.codec_name=pcm_s24le' -- av 320x240 25 4 48000:stereo "$X264" "-c:a pcm_s24le"
c h264-pcm-f32.mov $P $V 0 2 320x240 - 0 - "H.264 + PCM f32le mono 44.1k in MOV: editor/DAW exports" \
    'a.codec_name=pcm_f32le' -- av 320x240 25 4 44100:mono "$X264" "-c:a pcm_f32le"
c h264-opus.mp4 $P $V 0 2 320x240 - 0 - "H.264 + Opus in MP4: newer Android/browser recordings" \
    'a.codec_name=opus' -- av 320x240 30 4 48000:stereo "$X264" "$OPUS"
c h264-mp3.mp4 $P $V 0 2 320x240 - 0 - "H.264 + MP3 in MP4: older converters" \
    'a.codec_name=mp3' -- av 320x240 25 4 44100:stereo "$X264" "-c:a libmp3lame -b:a 64k"

# --- sound only: voice notes, podcasts, songs. Cover art is still sound only.
c aac-lc.m4a $P $A 0 2 - - 0 - "AAC-LC stereo 44.1k in M4A: iTunes, voice recorders" \
    'a.codec_name=aac;a.profile=LC' -- av - - 4 44100:stereo "" "$AAC"
c aac-mono-22k.m4a $P $A 0 2 - - 0 - "AAC-LC mono 22.05 kHz in M4A: phone voice memo at low quality" \
    'a.sample_rate=22050;a.channels=1' -- av - - 4 22050:mono "" "-c:a aac -b:a 32k"
c aac-adts.aac $P $A 0 2 - - 0 - "raw ADTS AAC stream: dictaphones, stream rips (nothing says the priming: beeps decode 23 ms late)" \
    'f.format_name=aac' -- av - - 4 44100:stereo "" "$AAC"
c alac.m4a $P $A 0 2 - - 0 - "Apple Lossless (ALAC) stereo 44.1k in M4A: iTunes/GarageBand export" \
    'a.codec_name=alac' -- av - - 4 44100:stereo "" "-c:a alac"
c mp3-44k.mp3 $P $A 0 2 - - 0 - "MP3 CBR 128k stereo 44.1k with a LAME tag: podcasts, music (ffprobe start_time 0.025 s: the skipped encoder delay)" \
    'a.codec_name=mp3;a.sample_rate=44100' -- av - - 4 44100:stereo "" "-c:a libmp3lame -b:a 128k"
c mp3-8k-mono.mp3 $P $A 0 2 - - 0 - "MP3 (MPEG-2.5) mono 8 kHz: phone-call and dictaphone recordings (ffprobe start_time 0.138 s: the encoder delay the LAME tag skips)" \
    'a.sample_rate=8000;a.channels=1' -- av - - 4 8000:mono "" "-c:a libmp3lame -b:a 16k"
c mp3-cover.mp3 $P $A 0 2 - - 0 - "MP3 with an ID3v2 APIC cover (attached_pic MJPEG stream): a song or podcast episode" \
    'a.codec_name=mp3' -- cover "-c:a libmp3lame -b:a 64k" -id3v2_version 3
c m4a-cover.m4a $P $A 0 2 - - 0 - "AAC in M4A with covr cover art (attached_pic): iTunes audio" \
    'a.codec_name=aac' -- cover "$AAC"
c wav-s16-8k.wav $P $A 0 2 - - 0 - "WAV PCM s16le mono 8 kHz: telephone / voice recorder" \
    'a.codec_name=pcm_s16le;a.sample_rate=8000' -- av - - 4 8000:mono "" "-c:a pcm_s16le"
c wav-s24-96k.wav $P $A 0 2 - - 0 - "WAV PCM s24le mono 96 kHz: field recorder" \
    'a.codec_name=pcm_s24le;a.sample_rate=96000' -- av - - 4 96000:mono "" "-c:a pcm_s24le"
c wav-f32.wav $P $A 0 2 - - 0 - "WAV PCM f32le mono 48k (WAVE_FORMAT_IEEE_FLOAT): Audacity/DAW export" \
    'a.codec_name=pcm_f32le' -- av - - 4 48000:mono "" "-c:a pcm_f32le"
c flac-96k.flac $P $A 0 2 - - 0 - "FLAC 24-bit 96 kHz stereo" \
    'a.codec_name=flac;a.sample_rate=96000' -- av - - 4 96000:stereo "" "-c:a flac -sample_fmt s32"
c flac-51.flac $P $A 0 2 - - 0 - "FLAC 5.1 48k" \
    'a.channels=6' -- av - - 4 48000:5.1 "" "-c:a flac"
c vorbis.ogg $P $A 0 2 - - 0 - "Ogg Vorbis stereo 44.1k" \
    'a.codec_name=vorbis' -- av - - 4 44100:stereo "" "-c:a libvorbis -q:a 2"
c opus-voice.opus $P $A 0 2 - - 0 - "Ogg Opus mono from 16 kHz input, 16 kb/s: messaging-app voice note (decodes at 48 kHz)" \
    'a.codec_name=opus;a.channels=1' -- av - - 4 16000:mono "" "-c:a libopus -b:a 16k -application voip"
c audio-only.webm $P $A 0 2 - - 0 - "Opus-only WebM: a browser MediaRecorder audio upload" \
    'a.codec_name=opus;f.format_name=matroska,webm' -- av - - 4 48000:mono "" "$OPUS" -live 1

# --- timing: joined clips, edit lists, offsets, unequal lengths, restarts,
# frame rates from 0.5 to 120 fps, variable and broken timestamps
c concat-aac-5clips.mp4 $P $V 0 2 320x240 - 0 - "five 4 s H.264 + AAC mono 48k MP4 clips joined by the concat demuxer with -c copy: slides over speech, each clip's AAC priming trimmed by timestamps at the joins (counting decoded samples drifts 32 ms per join)" \
    'a.channels=1;a.sample_rate=48000' -- concat 5 4 320x240 5 48000:mono "$X264" "-c:a aac -b:a 32k"
c concat-mp3-3clips.mp4 $P $V 0 2 320x240 - 0 - "three 4 s H.264 + MP3 MP4 clips joined with concat -c copy: the MP3 delay trimmed by timestamps at the joins (counting samples drifts 49 ms per join)" \
    'a.codec_name=mp3' -- concat 3 4 320x240 10 44100:stereo "$X264" "-c:a libmp3lame -b:a 64k"
c concat-opus-3clips.mkv $P $V 0 2 320x240 - 0 - "three 4 s VP9 + Opus Matroska clips joined with concat -c copy: Opus pre-skip at the joins; clips last 4.007 s, so picture and sound both slip 7 ms per join" \
    'a.codec_name=opus' -- concat 3 4 320x240 10 48000:stereo "$VP9" "$OPUS"
c editlist-cut.mp4 $P $V 0 2 320x240 - 0 - "-ss 2 -c copy from a file keyed only at 0: edit lists skip 2.08 s of video (2 s + B-frame delay) and 2.021 s of AAC (2 s + priming); starts on a flash" \
    'v.start_time=0.000000' -- editcut
c audio-leads-2s.mp4 $P $V -2 2 320x240 - 0 - "sound from 0 s, picture from 2 s (empty edit in the video track): camera that starts sound first" \
    'v.start_time=2.000000' -- offset -2 4 6
c audio-lags-2s.mp4 $P $V 2 2 320x240 - 0 - "picture from 0 s, sound from 2 s (empty edit of 1.978 s in the audio track, then the AAC priming)" \
    'v.start_time=0.000000' -- offset 2 6 4
c audio-leads-2s.mkv $P $V -2 2 320x240 - 0 - "Matroska: sound from 0, picture from 2 s (block timestamps, no edit list; AAC priming shifts both by 21 ms)" \
    'a.start_time=0.000000' -- offset -2 4 6
c audio-ends-early.mp4 $P $V 0 2 320x240 - 0 - "6 s picture, sound ends after 4 s" \
    'v.duration=6.000000' -- av 320x240 25 6/4 48000:stereo "$X264" "$AAC"
c audio-ends-late.mp4 $P $V 0 2 320x240 - 0 - "4 s picture, sound goes on to 6 s" \
    'v.duration=4.000000' -- av 320x240 25 4/6 48000:stereo "$X264" "$AAC"
c ts-reset.ts $P $V 0 2 320x240 - 0 - "two MPEG-TS recordings joined with cat: timestamps 31.4-35.4 s then back to 1.4-5.4 s (marks on the grid in playing order)" \
    'f.format_name=mpegts' -- tsreset
SYNC=0 c ts-format-change.ts $P $V 0 2 320x240 - 0 - "two MPEG-TS takes joined with cat, the clock running on: 48 kHz stereo AAC, then 22.05 kHz mono (rate and layout change mid-stream)" \
    'f.format_name=mpegts' -- tsformat
c slowmo-120fps.mp4 $P $V 0 2 320x240 - 0 - "120 fps phone slow-motion capture (plays at 120 fps, flash 24 frames)" \
    'v.r_frame_rate=120/1' -- av 320x240 120 4 48000:stereo "$X264" "$AAC"
c screen-0.5fps.mkv $P $V 0 4 640x360 - 0 - "screen recording at 0.5 fps, 8 s: each frame lasts 2 s, the flash is one whole frame at 0 and 4 s, the beep 0.2 s" \
    'v.r_frame_rate=1/2' -- av 640x360 1/2 8 48000:mono "$X264 -tune stillimage" "-c:a aac -b:a 32k"
c vfr-phone.mp4 $P $V 0 2 320x240 - 0 - "variable frame rate: frames 17 or 33 ms apart (avg ~34 fps), timescale 600, flashes on the grid" \
    'v.codec_name=h264' -- vfr
c dup-timestamps.mkv $P $V 0 2 320x240 - 0 - "Matroska where every 5th frame repeats the previous frame's timestamp" \
    'v.codec_name=h264' -- duppts

# --- geometry: rotation, pixel aspect, odd and extreme sizes, portrait
c rotate-90.mp4 $P $V 0 2 240x320 - 0 - "320x240 frame with a display matrix turning it 90° clockwise (ffprobe rotation -90): phone held upright" \
    'v.width=320' -- rotated 90 320x240 30 48000:stereo "$X264" "$AAC"
c rotate-180.mp4 $P $V 0 2 320x240 - 0 - "display matrix 180° (ffprobe rotation -180): phone held upside down" \
    'v.width=320' -- rotated 180 320x240 30 48000:stereo "$X264" "$AAC"
c rotate-270.mp4 $P $V 0 2 240x320 - 0 - "display matrix 270° clockwise (ffprobe rotation 90): phone upright the other way" \
    'v.width=320' -- rotated 270 320x240 30 48000:stereo "$X264" "$AAC"
c rotate-90.mov $P $V 0 2 240x426 - 0 - "426x240 H.264 in MOV turned 90° clockwise: iPhone portrait SDR" \
    'v.width=426' -- rotated 90 426x240 30 44100:mono "$X264" "$AAC"
c portrait-240x426.mp4 $P $V 0 2 240x426 - 0 - "portrait frame stored upright, no display matrix (apps that re-encode)" \
    'v.height=426' -- av 240x426 30 4 48000:stereo "$X264" "$AAC"
c sar-12-11.mp4 $P $V 0 2 384x288 - 0 - "352x288 H.264 with SAR 12:11 (displayed 384x288): CIF camcorder/webcam, non-square pixels" \
    'v.sample_aspect_ratio=12:11' -- av 352x288 25 4 48000:stereo "$X264 -vf setsar=12/11" "$AAC"
c odd-321x241.mp4 $P $V 0 2 321x241 - 0 - "odd size 321x241: H.264 High 4:4:4 (4:2:0 cannot have odd sizes in x264)" \
    'v.width=321;v.pix_fmt=yuv444p' -- av 321x241 25 4 48000:stereo "$X264 -pix_fmt yuv444p" "$AAC"
c odd-321x241.avi $P $V 0 2 321x241 - 0 - "odd size 321x241 in 4:2:0: MPEG-4 Part 2 + MP3 in AVI (the MP3 delay shift leaves frame 0 two frames long, the rest 40 ms late, sound 25 ms late)" \
    'v.width=321;v.pix_fmt=yuv420p' -- av 321x241 25 4 44100:stereo "-c:v mpeg4 -q:v 8 -pix_fmt yuv420p" "-c:a libmp3lame -b:a 64k"
c tiny-64x64.mp4 $P $V 0 2 64x64 - 0 - "64x64 picture" \
    'v.width=64' -- av 64x64 25 4 48000:mono "$X264" "$AAC"
c uhd-3840x2160.mp4 $P $V 0 2 3840x2160 - 0 - "4K UHD, 1 s at 5 fps (one flash frame, one beep): within the 4096x4096 bound" \
    'v.width=3840' -- av 3840x2160 5 1 48000:stereo "-c:v libx264 -preset ultrafast -crf 45 -threads 1 -pix_fmt yuv420p" "$AAC"
c too-wide-4160x128.mp4 $R $V 0 2 4160x128 - 0 - "4160 pixels wide: past the profile's 4096x4096 bound" \
    'v.width=4160' -- av 4160x128 10 4 48000:mono "$X264 -crf 45" "$AAC"

# --- streams: several languages, text subtitles, attachments, data, many tracks
c langs-khm-eng.mp4 $P $V 0 2 320x240 khm,eng 0 - "two AAC tracks: khm (default, 1 kHz beeps), eng (500 Hz beeps) on the same grid" \
    - -- langs "$AAC" khm eng
c langs-khm-eng-fra.mkv $P $V 0 2 320x240 khm,eng,fra 0 - "three Opus tracks in Matroska: khm (default, 1 kHz), eng (500 Hz), fra (1.5 kHz)" \
    - -- langs "$OPUS" khm eng fra
c subs-srt.mkv $P $V 0 2 320x240 - 1 - "one SubRip stream (eng) in Matroska, cues at 0 and 2 s" \
    's.codec_name=subrip' -- subs srt eng
c subs-srt-2.mkv $P $V 0 2 320x240 - 2 - "two SubRip streams (khm, eng) in Matroska" \
    's.codec_name=subrip' -- subs srt khm eng
c subs-movtext.mp4 $P $V 0 2 320x240 - 1 - "one mov_text (3GPP timed text) stream (eng) in MP4" \
    's.codec_name=mov_text' -- subs mov_text eng
c subs-movtext-2.mp4 $P $V 0 2 320x240 - 2 - "two mov_text streams (khm, eng) in MP4" \
    's.codec_name=mov_text' -- subs mov_text khm eng
c attachment.mkv $P $V 0 2 320x240 - 0 - "Matroska with a text/plain attachment stream (to be ignored)" \
    't.codec_type=attachment' -- attach
c timecode.mov $P $V 0 2 320x240 - 0 - "MOV with a tmcd timecode data track (01:00:00:00) as cameras write it (to be ignored)" \
    'd.codec_tag_string=tmcd' -- av 320x240 25 4 48000:stereo "$X264" "$AAC" -timecode 01:00:00:00
c streams-17.mkv $R $V 0 2 160x120 - 0 - "one picture + 16 sound tracks: 17 streams, past max_streams = 16" \
    'f.nb_streams=17' -- manystreams 16
c duration-3h.mkv $R $V 0 2 160x120 - 0 - "two MJPEG frames, the second at 10801 s: lasts past max_duration = 3 h" \
    'f.duration=10802.000000' -- longdur 10801

# --- not media (refused before decoding)
c hls-playlist.mp4 $R $V 0 2 - - 0 - "an HLS playlist (naming h264-aac.ts) renamed .mp4: the CLI would follow it" \
    - -- playlist
c concat-list.mp4 $R $V 0 2 - - 0 - "an ffconcat list (naming two cases) named .mp4" \
    - -- concatlist
c png-still.mp4 $R $V 0 2 - - 0 - "a PNG still named .mp4 (png_pipe/image2 only)" \
    - -- pngstill
c truncated-300b.mp4 $R $V 0 2 - - 0 - "the first 300 bytes of a faststart MP4 (moov cut short)" \
    - -- truncated
c garbage.mp4 $R $V 0 2 - - 0 - "64 KB of noise named .mp4" \
    - -- garbage
c empty.mp4 $R $V 0 2 - - 0 - "an empty file named .mp4" \
    - -- empty

wait

# ----------------------------------------------------------------- results

failed=0
{
    printf 'file\texpect\tkind\tlag\tperiod\tdisplay\tlangs\tsubs\thdr\tnote\n'
    for (( i = 1; i <= NCASE; i++ )); do
        printf -v id '%03d' "$i"
        if [ -s "$WORK/rows/$id.tsv" ]; then
            cat "$WORK/rows/$id.tsv"
        else
            failed=$(( failed + 1 ))
            { echo "make.sh: case $id failed:"; cat "$WORK/logs/$id.log"; } >&2
        fi
    done
} > "$OUT/cases.tsv"
[ "$failed" = 0 ] || die "$failed of $NCASE cases failed"

npub=$(awk -F'\t' 'NR > 1 && $2 == "publish"' "$OUT/cases.tsv" | wc -l)
nref=$(awk -F'\t' 'NR > 1 && $2 == "refuse"' "$OUT/cases.tsv" | wc -l)
bytes=$(awk -F'\t' 'NR > 1 { print $1 }' "$OUT/cases.tsv" | (cd "$OUT" && xargs stat -c %s) | awk '{ s += $1 } END { print s }')
echo "corpus: $NCASE cases, $npub publish, $nref refuse, $(( bytes / 1024 )) KB in $OUT, $(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
