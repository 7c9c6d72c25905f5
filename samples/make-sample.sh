#!/usr/bin/env bash
# make-sample.sh — regenerate the sample course module samples/teaching-questions/
#
# The module is a small but realistic "course module" for lowband to chew on:
#
#   teaching-questions/
#     module.toml            module metadata (id, title, language)
#     index.html             the course page (Khmer + English, video, photos)
#     lessons/lecture.mp4    ~72 s slide lecture, 1280x720 25 fps H.264 + AAC
#     lessons/lecture.vtt    English captions
#     lessons/lecture.km.vtt Khmer captions
#     img/classroom.jpg      "photo" of a classroom   (1600x1067, q82)
#     img/chalkboard.jpg     "photo" of a chalkboard  (1600x1067, q82)
#
# Everything is synthesised locally from nothing but:
#   ffmpeg/ffprobe (libx264, aac), espeak-ng, sox, ImageMagick 6 (convert,
#   with the pango: coder for Khmer text shaping), fonts-khmeros, fonts-dejavu.
#
# Usage:  samples/make-sample.sh          (from anywhere)
#
# The script is idempotent: it builds into a scratch directory next to the
# output and only replaces samples/teaching-questions/ once everything has
# been generated. Random sources use fixed seeds (ImageMagick -seed, sox -R)
# and x264 runs with a fixed thread count, so on a given set of tool versions
# two runs produce byte-identical files. Takes about 2-3 minutes.

set -euo pipefail
export LC_ALL=C.UTF-8

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT="$SCRIPT_DIR/teaching-questions"

# ---------------------------------------------------------------------------
# Preconditions
# ---------------------------------------------------------------------------
for tool in ffmpeg ffprobe espeak-ng sox soxi convert fc-list awk; do
    command -v "$tool" >/dev/null || { echo "error: '$tool' not found" >&2; exit 1; }
done
# (grep without -q: with pipefail an early exit would SIGPIPE the producer)
fc-list : family | grep "Khmer OS Battambang" >/dev/null \
    || { echo "error: Khmer OS fonts missing (apt-get install fonts-khmeros)" >&2; exit 1; }
convert -list format | grep -i '^ *PANGO' >/dev/null \
    || { echo "error: ImageMagick lacks the pango: coder (needed to shape Khmer)" >&2; exit 1; }

# Scratch space on the same filesystem so the final move is a cheap rename.
# Set KEEP_WORK=1 to keep it for debugging.
WORK=$(mktemp -d "$SCRIPT_DIR/.make-sample.XXXXXX")
if [[ "${KEEP_WORK:-0}" == 1 ]]; then
    echo "keeping scratch directory $WORK" >&2
else
    trap 'rm -rf "$WORK"' EXIT
fi
STAGE="$WORK/teaching-questions"
mkdir -p "$STAGE/lessons" "$STAGE/img" "$WORK/slides" "$WORK/audio"

# ---------------------------------------------------------------------------
# Shared settings
# ---------------------------------------------------------------------------
W=1280 H=720 FPS=25
SLIDE_SECS=12                      # each slide is on screen this long
VOICE="en-us+m3"                   # espeak-ng has no Khmer voice: English narration
SPEED=150                          # words per minute
LATIN_FONT="DejaVu Sans"
KHMER_FONT="Khmer OS Battambang"
ACCENT="#1d4e89"                   # dark blue
ACCENT2="#e08a1e"                  # orange
INK="#1c2733"
DEJAVU_MONO=$(fc-match -f '%{file}' "DejaVu Sans Mono")

# ---------------------------------------------------------------------------
# Lecture content: one entry per slide.
#   TITLE   slide title
#   BUL     3 bullet lines, separated by '|'
#   KM      optional Khmer line shown on the slide
#   EN_A/B  the two narration sentences (also the English captions)
#   KM_A/B  Khmer translation of the two sentences (Khmer captions)
# Text is inserted into Pango markup, so avoid raw & < > characters.
# ---------------------------------------------------------------------------
TITLE=(
    "Asking good questions in class"
    "Why questions matter"
    "Closed and open questions"
    "Give students time to think"
    "Follow-up questions"
    "Try it this week"
)
BUL=(
    "A one-minute lesson for teachers|Closed and open questions|Wait time and follow-up questions"
    "Questions make students think|They show what students already know|They keep the whole class involved"
    "Closed: “What is 3 × 4?” – one right answer|Open: “How did you find the answer?”|Open questions ask students to explain"
    "Ask, then wait 3 to 5 seconds|Let every student think first|Call on many students, not only volunteers"
    "“Why do you think so?”|“How do you know?”|“What if we change one number?”"
    "Plan three open questions for one lesson|Count your wait time silently|Write down one surprising answer"
)
KM=(
    "ការសួរសំណួរល្អនៅក្នុងថ្នាក់រៀន"
    "សំណួរជួយឱ្យសិស្សគិត"
    "សំណួរបិទ និងសំណួរបើកចំហ"
    "រង់ចាំ ៣ ទៅ ៥ វិនាទី"
    "ហេតុអ្វី? ដឹងដោយរបៀបណា? ចុះបើ...?"
    "សាកល្បងវានៅសប្តាហ៍នេះ"
)
EN_A=(
    "Welcome. In this short lesson, we look at how to ask good questions in class."
    "Questions make students think, and they show us what students already know."
    "A closed question has one short answer, like: what is three times four?"
    "After you ask a question, wait three to five seconds before anyone answers."
    "Use follow-up questions, like: why do you think so? How do you know?"
    "This week, plan three open questions for one lesson, and count your wait time."
)
EN_B=(
    "Good questions help every student learn, not only the fastest ones."
    "When we ask well, the whole class stays involved."
    "An open question asks students to explain, like: how did you find it?"
    "Then call on different students, not only the ones who raise their hands."
    "You can also ask: what would happen if one thing changed?"
    "Write down one answer that surprised you. Thank you for listening."
)
KM_A=(
    "សូមស្វាគមន៍។ នៅក្នុងមេរៀនខ្លីនេះ យើងនឹងរៀនពីរបៀបសួរសំណួរល្អនៅក្នុងថ្នាក់រៀន។"
    "សំណួរធ្វើឱ្យសិស្សគិត ហើយបង្ហាញយើងថាសិស្សដឹងអ្វីខ្លះរួចហើយ។"
    "សំណួរបិទមានចម្លើយខ្លីតែមួយ ដូចជា៖ បីគុណនឹងបួនស្មើប៉ុន្មាន?"
    "បន្ទាប់ពីអ្នកសួរសំណួរ សូមរង់ចាំបីទៅប្រាំវិនាទី មុនពេលនរណាម្នាក់ឆ្លើយ។"
    "ប្រើសំណួរតាមដាន ដូចជា៖ ហេតុអ្វីបានជាអ្នកគិតដូច្នេះ? តើអ្នកដឹងដោយរបៀបណា?"
    "សប្តាហ៍នេះ សូមរៀបចំសំណួរបើកចំហបីសម្រាប់មេរៀនមួយ ហើយរាប់ពេលរង់ចាំរបស់អ្នក។"
)
KM_B=(
    "សំណួរល្អជួយឱ្យសិស្សគ្រប់រូបរៀន មិនមែនតែសិស្សដែលរៀនលឿនជាងគេនោះទេ។"
    "នៅពេលយើងសួរបានល្អ សិស្សទាំងថ្នាក់ចូលរួមជានិច្ច។"
    "សំណួរបើកចំហសុំឱ្យសិស្សពន្យល់ ដូចជា៖ តើអ្នករកចម្លើយបានដោយរបៀបណា?"
    "បន្ទាប់មក សូមហៅសិស្សផ្សេងៗគ្នា មិនមែនតែសិស្សដែលលើកដៃប៉ុណ្ណោះទេ។"
    "អ្នកក៏អាចសួរថា៖ តើនឹងមានអ្វីកើតឡើង ប្រសិនបើរបស់មួយផ្លាស់ប្តូរ?"
    "សូមកត់ត្រាចម្លើយមួយដែលធ្វើឱ្យអ្នកភ្ញាក់ផ្អើល។ សូមអរគុណសម្រាប់ការស្តាប់។"
)
NSLIDES=${#TITLE[@]}
TOTAL=$((NSLIDES * SLIDE_SECS))

# Small float helper (bash has integer arithmetic only).
calc() { awk "BEGIN { printf \"%.3f\", $* }"; }
# Seconds -> WebVTT timestamp HH:MM:SS.mmm
vtt_time() { awk -v s="$1" 'BEGIN { ms = int(s * 1000 + 0.5);
    printf "%02d:%02d:%02d.%03d", int(ms / 3600000), int(ms / 60000) % 60, int(ms / 1000) % 60, ms % 1000 }'; }

# ---------------------------------------------------------------------------
# 1. Photos
# ---------------------------------------------------------------------------
# EXIF APP1 payload with a single IFD0 entry: Orientation (0x0112) = 1.
printf 'Exif\0\0MM\0*\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x01\0\0\0\0\0\0' > "$WORK/orient.app1"

PW=1600 PH=1067

# Seeded plasma turned grey, then mapped between two colours: a natural-looking
# mottled texture (plaster, tiles, wood, slate) without plasma's rainbow hues.
texture() {  # seed WxH blur dark light out
    convert -seed "$1" -size "$2" plasma:fractal -colorspace gray -blur "0x$3" \
        -auto-level +level-colors "$4","$5" "$6"
}

# Common "camera" finish: lens softness, window light from the left, uneven
# exposure, luminance + a little chroma noise, vignette; JPEG q82, EXIF
# orientation 1.
photo_finish() {  # in.png out.jpg seed
    convert "$1" -blur 0x1.1 \
        \( -size "${PH}x${PW}" gradient:'#ffffff-#c9c1b3' -rotate -90 \) \
        -compose multiply -composite \
        \( -size "${PW}x${PH}" radial-gradient:'#ffffff-#4a4a4a' -level 0%,60% \) \
        -compose multiply -composite \
        \( -seed "$3" -size "${PW}x${PH}" xc:gray50 -attenuate 0.9 +noise Gaussian \
           -colorspace gray -blur 0x0.5 \) -compose overlay -composite \
        -seed "$(( $3 + 1 ))" -attenuate 0.15 +noise Gaussian \
        -profile "APP1:$WORK/orient.app1" -orient top-left \
        -sampling-factor 2x2 -interlace none -quality 82 "$2"
}

# --- classroom.jpg: the view from the back of a Cambodian classroom --------
# Plaster wall, tiled floor in perspective, windows on the left, blackboard
# and teacher at the front, rows of desks with students in white school
# shirts (seen from behind), some raising their hands.
texture 11 "${PW}x${PH}" 10 '#c2b48d' '#e6dbbb' "$WORK/wall.png"
texture 12 "${PW}x${PH}" 3 '#857664' '#b2a48e' "$WORK/floor.png"

draw=()
# Floor tiles: joints converge on a vanishing point at (800,250).
for xb in $(seq 360 80 1240); do
    xe=$(calc "800 + ($xb - 800) * (1067 - 250) / (560 - 250)")
    draw+=(-stroke '#00000022' -strokewidth 2 -draw "line $xb,560 $xe,1067")
done
for k in 0 1 2 3 4 5 6; do
    yy=$(calc "250 + 310 * 1.28 ^ $k")
    # clip to the floor polygon (the side walls end at y=800)
    xl=$(calc "$yy < 800 ? 360 - ($yy - 560) * 1.5 : 0"); xr=$(calc "$PW - $xl")
    draw+=(-stroke '#00000022' -strokewidth 2 -draw "line $xl,$yy $xr,$yy")
done
draw+=(-stroke none)
# Sunlight from the windows falling on the floor.
draw+=(-fill '#fff6dc30' -draw "polygon 360,600 520,590 700,1067 250,1067")

# Rows of desks, back row first so nearer rows overlap.
for row in 0 1 2 3; do
    read -r s y <<<"$(awk -v r="$row" 'BEGIN { printf "%.3f %d", 0.55 + 0.30 * r, 560 + 95 * r + 28 * r * r }')"
    for col in 0 1 2; do
        cx=$(calc "800 + ($col - 1) * 470 * $s")
        dw=$(calc "360 * $s"); dh=$(calc "34 * $s"); fh=$(calc "70 * $s")
        x0=$(calc "$cx - $dw / 2"); x1=$(calc "$cx + $dw / 2")
        y1=$(calc "$y + $dh"); y2=$(calc "$y + $dh + $fh"); yl=$(calc "$y2 + 40 * $s")
        # soft shadow of the desk on the floor
        draw+=(-fill '#00000030' -draw "ellipse $cx,$yl $(calc "$dw * 0.55"),$(calc "14 * $s") 0,360")
        for k in -1 1; do
            n=$(( row * 6 + col * 2 + (k + 1) / 2 ))
            hx=$(calc "$cx + $k * 85 * $s + (($n * 37) % 11 - 5) * $s")
            hr=$(calc "(29 + ($n * 13) % 5) * $s")
            hy=$(calc "$y - (92 + ($n * 7) % 9) * $s")
            by0=$(calc "$hy + 22 * $s")
            shirt=$([[ $((n % 5)) == 2 ]] && echo '#dfe7ee' || echo '#ecebe4')
            draw+=(-fill "$shirt" -draw "roundrectangle $(calc "$hx - 58*$s"),$by0 $(calc "$hx + 58*$s"),$(calc "$y + 4") $(calc "26*$s"),$(calc "26*$s")")
            draw+=(-fill '#0000001c' -draw "roundrectangle $(calc "$hx - 58*$s"),$(calc "($by0 + $y) / 2") $(calc "$hx + 58*$s"),$(calc "$y + 4") $(calc "20*$s"),$(calc "20*$s")")
            draw+=(-fill '#b0794f' -draw "rectangle $(calc "$hx - 9*$s"),$(calc "$hy + 18*$s") $(calc "$hx + 9*$s"),$(calc "$by0 + 6*$s")")
            draw+=(-fill '#17120e' -draw "circle $hx,$hy $(calc "$hx + $hr"),$hy")
            draw+=(-fill '#ffffff16' -draw "ellipse $(calc "$hx - 8*$s"),$(calc "$hy - 12*$s") $(calc "12*$s"),$(calc "7*$s") 0,360")
            # some students have a pony-tail
            if (( n % 3 == 1 )); then
                draw+=(-fill '#17120e' -draw "ellipse $hx,$(calc "$hy + $hr + 8*$s") $(calc "7*$s"),$(calc "16*$s") 0,360")
            fi
            # a few raised hands: students who want to answer
            if (( n % 4 == 1 )); then
                ax=$(calc "$hx + 46 * $s"); tx=$(calc "$ax + 14*$s"); ty=$(calc "$hy - 90*$s")
                draw+=(-stroke '#eceae2' -strokewidth "$(calc "18*$s")" -draw "line $ax,$(calc "$by0 + 12*$s") $(calc "$ax + 6*$s"),$(calc "$hy - 20*$s")"
                       -stroke '#ad764d' -strokewidth "$(calc "12*$s")" -draw "line $(calc "$ax + 6*$s"),$(calc "$hy - 20*$s") $tx,$ty" -stroke none
                       -fill '#ad764d' -draw "ellipse $tx,$ty $(calc "9*$s"),$(calc "13*$s") 0,360")
            fi
        done
        draw+=(-fill '#8b5a34' -draw "rectangle $x0,$y $x1,$y1")
        draw+=(-fill '#a87148' -draw "rectangle $x0,$(calc "$y1 - 5*$s") $x1,$y1")
        draw+=(-fill '#5f3b20' -draw "rectangle $x0,$y1 $x1,$y2")
        draw+=(-fill '#3f2714' -draw "rectangle $(calc "$x0 + 8*$s"),$y2 $(calc "$x0 + 20*$s"),$yl")
        draw+=(-fill '#3f2714' -draw "rectangle $(calc "$x1 - 20*$s"),$y2 $(calc "$x1 - 8*$s"),$yl")
    done
done

LATIN_OBLIQUE=$(fc-match -f '%{file}' 'DejaVu Sans:oblique')
convert "$WORK/wall.png" "$WORK/floor.png" \
    \( -size "${PW}x${PH}" xc:black -fill white \
       -draw "polygon 0,800 360,560 1240,560 1600,800 1600,1067 0,1067" -blur 0x1 \) \
    -compose over -composite \
    -fill '#7fa596' -draw "rectangle 360,470 1600,560" \
    -fill '#0000001e' -draw "polygon 0,0 360,80 360,560 0,800" \
    -fill '#7fa596c0' -draw "polygon 0,690 360,505 360,560 0,800" \
    -fill '#f1ead2' -draw "polygon 0,0 1600,0 1600,70 360,80" \
    -fill '#fdfdf4' -draw "rectangle 520,32 760,46" -draw "rectangle 860,32 1100,46" \
    -fill '#dcebf3' -draw "polygon 40,90 150,115 150,470 40,530" \
                    -draw "polygon 200,125 300,145 300,440 200,480" \
    -fill '#f6fbfd' -draw "polygon 50,100 140,122 140,300 50,300" -draw "polygon 208,133 292,151 292,280 208,280" \
    -stroke '#6a5a3c' -strokewidth 6 -fill none \
    -draw "polygon 40,90 150,115 150,470 40,530" -draw "polygon 200,125 300,145 300,440 200,480" \
    -draw "line 95,102 95,500" -draw "line 250,135 250,460" -stroke none \
    -fill '#00000028' -draw "rectangle 462,158 1152,488" \
    -fill '#6b4a2b' -draw "rectangle 455,150 1145,480" \
    -fill '#284638' -draw "rectangle 470,165 1130,465" \
    -fill '#d9d6c8' -font "$LATIN_OBLIQUE" -pointsize 54 \
    -annotate -2x-2+560+270 "Why?  How?  What if?" \
    -pointsize 30 -annotate +600+360 "Open questions  →  thinking" \
    -fill '#7a5233' -draw "rectangle 1270,505 1520,565" -fill '#5c3c22' -draw "rectangle 1270,565 1520,615" \
    -fill '#00000030' -draw "ellipse 1190,588 40,8 0,360" \
    -fill '#b0794f' -draw "rectangle 1176,520 1184,586" -draw "rectangle 1194,520 1202,586" \
    -fill '#1f2a44' -draw "polygon 1166,470 1212,470 1220,535 1158,535" \
    -fill '#f3f1ea' -draw "roundrectangle 1164,418 1214,476 12,12" \
    -stroke '#f3f1ea' -strokewidth 11 -draw "line 1168,428 1128,402" \
    -stroke '#b0794f' -strokewidth 8 -draw "line 1128,402 1098,372" -stroke none \
    -fill '#b0794f' -draw "circle 1189,400 1189,385" \
    -fill '#17120e' -draw "ellipse 1189,392 16,11 180,360" \
    "${draw[@]}" \
    "$WORK/classroom.png"
photo_finish "$WORK/classroom.png" "$STAGE/img/classroom.jpg" 13

# --- chalkboard.jpg: close-up of a blackboard after a lesson ---------------
texture 21 "${PW}x${PH}" 12 '#1b3027' '#2f4e40' "$WORK/slate.png"
# Eraser smears: broad, faint, blurred strokes of chalk dust.
convert -size "${PW}x${PH}" xc:none -fill none -stroke '#ffffff26' -strokewidth 90 \
    -draw "path 'M 60,320 C 380,180 760,460 1180,260'" \
    -draw "path 'M 200,760 C 520,640 900,860 1500,700'" \
    -stroke '#ffffff18' -strokewidth 140 -draw "path 'M 900,120 C 1100,300 1300,120 1560,360'" \
    -blur 0x30 "$WORK/smear.png"
# The ghost of yesterday's lesson, badly erased.
convert -background none -size 1400x pango:"<span font='$LATIN_FONT 60' foreground='#ffffff'>3 × 4 = 12     7 + 5 = 12</span>" \
    -channel A -evaluate multiply 0.10 +channel -blur 0x4 "$WORK/ghost.png"
# Chalk writing, shaped with Pango (Khmer needs shaping), then broken up with
# a noise mask so strokes look dusty.
convert -background none -size 1400x pango:"<span font='$LATIN_FONT Oblique 84' foreground='#f2f0e6'>Why?   How?   What if?</span>
<span font='Khmer OS Freehand 58' foreground='#f6e7a6'>ហេតុអ្វី?   យ៉ាងដូចម្តេច?   ចុះបើ...?</span>
<span font='$LATIN_FONT Oblique 40' foreground='#e8e6dc'>Good questions → students explain their thinking</span>" \
    "$WORK/chalk-text.png"
convert "$WORK/chalk-text.png" -alpha extract \
    \( +clone -seed 23 -fill gray50 -colorize 100 -attenuate 1.0 +noise Random \
       -colorspace gray -blur 0x0.6 -auto-level -threshold 30% \) \
    -compose multiply -composite "$WORK/chalk-alpha.png"
convert "$WORK/chalk-text.png" "$WORK/chalk-alpha.png" -compose copy-opacity -composite \
    -background none -rotate -2 -blur 0x0.7 "$WORK/chalk-text2.png"
# Wooden frame (grain = motion-blurred texture) and chalk tray.
texture 24 "${PW}x90"  2 '#4e321b' '#8a6040' "$WORK/wood-top.png"
texture 25 "${PW}x130" 2 '#46301a' '#83593a' "$WORK/wood-tray.png"
convert "$WORK/slate.png" \
    "$WORK/smear.png" -compose over -composite \
    "$WORK/ghost.png" -geometry +220+560 -compose over -composite \
    "$WORK/chalk-text2.png" -geometry +120+170 -compose over -composite \
    -stroke '#efeee6d0' -strokewidth 5 -fill none \
    -draw "path 'M 140,588 Q 420,578 690,570'" \
    -draw "ellipse 1380,820 110,62 10,350" \
    -stroke none -fill '#efeee6' -font "$LATIN_OBLIQUE" -pointsize 60 -annotate +1357+843 "?" \
    \( "$WORK/wood-top.png" -motion-blur 0x60+0 \) -geometry +0+0 -compose over -composite \
    \( "$WORK/wood-tray.png" -motion-blur 0x60+0 \) -geometry +0+937 -compose over -composite \
    -fill '#00000050' -draw "rectangle 0,90 1600,104" \
    -fill '#2e1d0e' -draw "rectangle 0,937 1600,950" \
    -fill '#00000040' -draw "ellipse 360,978 64,6 0,360" -draw "ellipse 515,980 48,6 0,360" \
    -fill '#f4f2ea' -draw "roundrectangle 300,955 420,975 8,8" -draw "roundrectangle 470,958 560,976 8,8" \
    -fill '#f3e28f' -draw "roundrectangle 610,956 700,975 8,8" \
    -fill '#2d2d33' -draw "rectangle 1080,945 1290,990" -fill '#b8a07a' -draw "rectangle 1080,990 1290,1010" \
    \( -size "${PW}x${PH}" xc:none -fill '#ffffff22' -draw "ellipse 1250,200 420,160 0,360" -blur 0x60 \) \
    -compose screen -composite \
    "$WORK/chalkboard.png"
photo_finish "$WORK/chalkboard.png" "$STAGE/img/chalkboard.jpg" 26

# ---------------------------------------------------------------------------
# 2. Slides (PNG, 1280x720)
# ---------------------------------------------------------------------------
# Layout: title + orange rule top left, three bullets, optional Khmer line in
# a tinted box, a framed "speaker" window bottom right (the video fills it),
# footer with module name and slide number, progress-bar track at the bottom.
ROW0=178 ROWSTEP=72          # bullet rows (the laser pointer follows these)
SPK_X=990 SPK_Y=420 SPK_W=240 SPK_H=180

pango() {  # font size colour text  -> writes markup string
    printf "<span font='%s %s' foreground='%s'>%s</span>" "$1" "$2" "$3" "$4"
}

for ((i = 0; i < NSLIDES; i++)); do
    args=(-size "${W}x${H}" xc:'#fbfaf6'
          -fill "$ACCENT" -draw "rectangle 0,0 $W,9"
          \( -background none pango:"$(pango "$LATIN_FONT Bold" 40 "$INK" "${TITLE[$i]}")" \)
          -geometry +70+44 -compose over -composite
          -fill "$ACCENT2" -draw "rectangle 70,118 330,123")
    IFS='|' read -r -a bullets <<<"${BUL[$i]}"
    for ((b = 0; b < ${#bullets[@]}; b++)); do
        y=$((ROW0 + b * ROWSTEP))
        args+=(-fill "$ACCENT" -draw "circle 86,$((y + 20)) 92,$((y + 20))"
               \( -background none -size 860x pango:"$(pango "$LATIN_FONT" 28 '#2b3440' "${bullets[$b]}")" \)
               -geometry +110+$y -compose over -composite)
    done
    if [[ -n "${KM[$i]}" ]]; then
        y=$((ROW0 + ${#bullets[@]} * ROWSTEP + 22))
        args+=(-fill '#e9f0f8' -draw "roundrectangle 66,$((y - 10)) 930,$((y + 62)) 12,12"
               \( -background none pango:"$(pango "$KHMER_FONT" 28 "$ACCENT" "${KM[$i]}")" \)
               -geometry +86+$((y + 2)) -compose over -composite)
    fi
    args+=(-fill '#dfe5ec' -draw "roundrectangle $((SPK_X - 6)),$((SPK_Y - 6)) $((SPK_X + SPK_W + 5)),$((SPK_Y + SPK_H + 5)) 8,8"
           \( -background none pango:"$(pango "$LATIN_FONT" 15 '#6b7480' "Presenter")" \)
           -geometry +$SPK_X+$((SPK_Y + SPK_H + 12)) -compose over -composite
           -fill '#e4e1d8' -draw "rectangle 0,$((H - 8)) $W,$H"
           -fill '#d3d0c6' -draw "line 70,$((H - 50)) $((W - 70)),$((H - 50))"
           \( -background none pango:"$(pango "$LATIN_FONT" 16 '#7a8088' "Asking good questions in class · ការសួរសំណួរល្អ")" \)
           -geometry +70+$((H - 44)) -compose over -composite
           \( -background none pango:"$(pango "$LATIN_FONT Bold" 16 '#7a8088' "$((i + 1)) / $NSLIDES")" \)
           -geometry +$((W - 110))+$((H - 44)) -compose over -composite
           -alpha off "$WORK/slides/slide$((i + 1)).png")
    convert "${args[@]}"
done

# Moving parts for the video:
#  - plasma "webcam" background that drifts inside the speaker window
#  - a presenter silhouette that sways gently
#  - a red laser-pointer dot that follows the bullets
texture 31 720x540 7 '#76899a' '#dccfb0' "$WORK/plasma.png"
convert -size 150x150 xc:none -fill '#2e3440e0' \
    -draw "ellipse 75,152 66,58 0,360" -draw "circle 75,58 75,24" \
    -fill '#3b4250e0' -draw "rectangle 66,80 84,100" "$WORK/speaker.png"
convert -size 40x40 xc:none -fill '#ff2a2a30' -draw "circle 20,20 20,4" \
    -fill '#ff3030c0' -draw "circle 20,20 20,12" -fill '#ffd0d0' -draw "circle 20,20 20,17" \
    "$WORK/pointer.png"

# ---------------------------------------------------------------------------
# 3. Narration (espeak-ng -> sox) and caption timing
# ---------------------------------------------------------------------------
# Each slide: sentence A starts 0.6 s into the slide, sentence B 0.6 s after
# A ends. Silence fills the rest. Cue times are recorded for the VTT files.
# Every sox call gets -R ("repeatable"): otherwise its dither noise is
# randomly seeded and the audio (hence the MP4) differs on every run.
SR=48000
CUE_START=() CUE_END=() CUE_EN=() CUE_KM=()
parts=()
cursor=0
n=0
for ((i = 0; i < NSLIDES; i++)); do
    start=$(calc "$i * $SLIDE_SECS + 0.6")
    for which in A B; do
        if [[ $which == A ]]; then en=${EN_A[$i]} km=${KM_A[$i]}; else en=${EN_B[$i]} km=${KM_B[$i]}; fi
        n=$((n + 1))
        espeak-ng -v "$VOICE" -s "$SPEED" -p 42 -w "$WORK/audio/raw$n.wav" "$en"
        # mono 22.05 kHz -> stereo 48 kHz, trim espeak's leading/trailing silence,
        # gentle voice EQ so it sounds less thin
        sox -R "$WORK/audio/raw$n.wav" -r "$SR" -c 2 "$WORK/audio/s$n.wav" \
            silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse \
            highpass 90 bass +3 200 treble -2 6000 rate -v "$SR"
        dur=$(soxi -D "$WORK/audio/s$n.wav")
        gap=$(calc "$start - $cursor")
        sox -R -n -r "$SR" -c 2 "$WORK/audio/gap$n.wav" trim 0 "$gap"
        parts+=("$WORK/audio/gap$n.wav" "$WORK/audio/s$n.wav")
        CUE_START+=("$start"); CUE_END+=("$(calc "$start + $dur + 0.3")")
        CUE_EN+=("$en"); CUE_KM+=("$km")
        cursor=$(calc "$start + $dur")
        start=$(calc "$cursor + 0.6")
    done
    slide_end=$(calc "($i + 1) * $SLIDE_SECS - 0.2")
    if awk "BEGIN { exit !($cursor > $slide_end) }"; then
        echo "error: narration for slide $((i + 1)) runs ${cursor}s past ${slide_end}s; shorten it" >&2
        exit 1
    fi
done

# Silence up to the end, concatenate, add a faint room tone (seeded with -R).
sox -R -n -r "$SR" -c 2 "$WORK/audio/tail.wav" trim 0 "$(calc "$TOTAL - $cursor")"
parts+=("$WORK/audio/tail.wav")
sox -R "${parts[@]}" "$WORK/audio/voice.wav"
sox -R -n -r "$SR" -c 2 "$WORK/audio/room.wav" synth "$TOTAL" brownnoise lowpass 900 vol 0.003
sox -R -m -v 1 "$WORK/audio/voice.wav" -v 1 "$WORK/audio/room.wav" "$WORK/audio/mix.wav" \
    compand 0.005,0.2 -70,-70,-30,-30,-20,-22,0,-10 0 -90 0 norm -1

# Two-pass EBU R128 loudness normalisation to -16 LUFS; the true-peak ceiling
# of -3.5 dBTP leaves room for AAC overshoot (decoded peak stays below -1 dBFS).
LN="I=-16:TP=-3.5:LRA=11"
stats=$(ffmpeg -hide_banner -nostats -i "$WORK/audio/mix.wav" \
        -af "loudnorm=$LN:print_format=json" -f null - 2>&1 | sed -n '/^{/,/^}/p')
get() { printf '%s\n' "$stats" | sed -n "s/.*\"$1\" : \"\([^\"]*\)\".*/\1/p"; }
ffmpeg -hide_banner -loglevel error -y -i "$WORK/audio/mix.wav" \
    -af "loudnorm=$LN:measured_I=$(get input_i):measured_TP=$(get input_tp):measured_LRA=$(get input_lra):measured_thresh=$(get input_thresh):offset=$(get target_offset):linear=true" \
    -ar "$SR" -ac 2 -c:a pcm_s16le "$WORK/audio/narration.wav"

# ---------------------------------------------------------------------------
# 4. Captions (WebVTT), English and Khmer, same cue times
# ---------------------------------------------------------------------------
write_vtt() {  # lang outfile
    {
        printf 'WEBVTT\n\n'
        if [[ $1 == en ]]; then
            printf 'NOTE Asking good questions in class — English captions\n\n'
        else
            printf 'NOTE ការសួរសំណួរល្អនៅក្នុងថ្នាក់រៀន — Khmer captions (translation of the English narration)\n\n'
        fi
        for ((c = 0; c < ${#CUE_START[@]}; c++)); do
            printf '%d\n%s --> %s\n' "$((c + 1))" "$(vtt_time "${CUE_START[$c]}")" "$(vtt_time "${CUE_END[$c]}")"
            if [[ $1 == en ]]; then printf '%s\n\n' "${CUE_EN[$c]}"; else printf '%s\n\n' "${CUE_KM[$c]}"; fi
        done
    } > "$2"
}
write_vtt en "$STAGE/lessons/lecture.vtt"
write_vtt km "$STAGE/lessons/lecture.km.vtt"

# ---------------------------------------------------------------------------
# 5. Video: slides + moving parts + narration -> H.264/AAC MP4 (faststart)
# ---------------------------------------------------------------------------
SEG=$(calc "$SLIDE_SECS / 3")
inputs=()
concat_in=""
for ((i = 1; i <= NSLIDES; i++)); do
    inputs+=(-loop 1 -framerate "$FPS" -t "$SLIDE_SECS" -i "$WORK/slides/slide$i.png")
    concat_in+="[$((i - 1)):v]"
done
P=$NSLIDES   # index of the first non-slide input
inputs+=(-loop 1 -framerate "$FPS" -t "$TOTAL" -i "$WORK/plasma.png"
         -loop 1 -framerate "$FPS" -t "$TOTAL" -i "$WORK/speaker.png"
         -loop 1 -framerate "$FPS" -t "$TOTAL" -i "$WORK/pointer.png"
         -f lavfi -t "$TOTAL" -i "color=c=$ACCENT:s=${W}x8:r=$FPS"
         -i "$WORK/audio/narration.wav")

# The filter graph goes into a file to keep shell quoting sane.
cat > "$WORK/graph.txt" <<EOF
${concat_in}concat=n=$NSLIDES:v=1:a=0,format=yuv420p[slides];
[$P:v]crop=$SPK_W:$SPK_H:x='240+200*sin(t/6)':y='180+150*sin(t/8.5+1)',format=yuv420p[bg];
[bg][$((P + 1)):v]overlay=x='45+5*sin(t*0.9)':y='32+3*sin(t*1.7)':format=yuv420[spk];
[slides][spk]overlay=x=$SPK_X:y=$SPK_Y[v1];
[v1][$((P + 2)):v]overlay=format=yuv420:x='110+380*mod(mod(t,$SLIDE_SECS),$SEG)/$SEG+3*sin(t*7.3)-20':y='$ROW0+20+$ROWSTEP*floor(mod(t,$SLIDE_SECS)/$SEG)+2*sin(t*5.1)-20'[v2];
[v2][$((P + 3)):v]overlay=x='-$W+$W*t/$TOTAL':y=$((H - 8))[v3];
[v3]drawtext=fontfile=$DEJAVU_MONO:fontsize=16:fontcolor=0x7a8088:x=$((W - 250)):y=$((H - 42)):text='%{eif\:floor(t/60)\:d\:2}\:%{eif\:mod(t,60)\:d\:2} / %{eif\:floor($TOTAL/60)\:d\:2}\:%{eif\:mod($TOTAL,60)\:d\:2}',format=yuv420p[vout]
EOF

# x264: slides are mostly static, so -tune stillimage and a long GOP keep the
# file around 1.7 MB (~100 kb/s video + 80 kb/s AAC). -threads is pinned so
# the output does not depend on the machine's core count; bitexact flags and
# -map_metadata -1 keep encoder/version strings out of the file.
ffmpeg -hide_banner -loglevel error -y "${inputs[@]}" \
    -filter_complex_script "$WORK/graph.txt" \
    -map '[vout]' -map "$((P + 4)):a" -t "$TOTAL" -r "$FPS" \
    -c:v libx264 -preset slow -tune stillimage -crf 26 -profile:v high -level 3.1 \
    -pix_fmt yuv420p -g 250 -threads 2 \
    -c:a aac -b:a 80k -ar "$SR" -ac 2 \
    -map_metadata -1 -fflags +bitexact -flags:v +bitexact -flags:a +bitexact \
    -metadata title="Asking good questions in class" -metadata:s:a:0 language=eng \
    -movflags +faststart \
    "$STAGE/lessons/lecture.mp4"

# ---------------------------------------------------------------------------
# 6. module.toml and index.html
# ---------------------------------------------------------------------------
cat > "$STAGE/module.toml" <<'EOF'
id = "teaching-questions"
title = "Asking good questions in class"
language = "km"
EOF

cat > "$STAGE/index.html" <<'HTML'
<!DOCTYPE html>
<html lang="km">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ការសួរសំណួរល្អនៅក្នុងថ្នាក់រៀន · Asking good questions in class</title>
<style>
  body {
    margin: 0;
    font-family: "Khmer OS Battambang", "Noto Sans Khmer", "Hanuman", sans-serif;
    line-height: 1.8;
    color: #1c2733;
    background: #fbfaf6;
  }
  header { background: #1d4e89; color: #fff; padding: 1rem 1.25rem; }
  header h1 { margin: 0; font-size: 1.6rem; }
  header p { margin: .25rem 0 0; opacity: .85; }
  nav { max-width: 46rem; margin: 0 auto; padding: .5rem 1.25rem; }
  nav a { color: #1d4e89; margin-right: 1rem; }
  main { max-width: 46rem; margin: 0 auto; padding: 0 1.25rem 3rem; }
  h2 {
    color: #1d4e89;
    border-bottom: 3px solid #e08a1e;
    padding-bottom: .2rem;
    margin-top: 2rem;
  }
  [lang="en"] { font-family: "DejaVu Sans", Arial, sans-serif; line-height: 1.5; }
  p.en, li .en { color: #4a5563; font-size: .95rem; }
  video, img { display: block; width: 100%; height: auto; border-radius: 6px; background: #ddd; }
  figure { margin: 1.5rem 0; }
  figcaption { font-size: .9rem; color: #555; margin-top: .4rem; }
  .tip { background: #e9f0f8; border-left: 5px solid #1d4e89; padding: .6rem 1rem; margin: 1rem 0; }
  ol.quiz li { margin: .5rem 0; }
  .answers { background: #fff4e5; border: 1px solid #e08a1e; border-radius: 6px; padding: .5rem 1rem; }
  .answers[hidden] { display: none; }
  button {
    font: inherit;
    padding: .4rem 1rem;
    border: 0;
    border-radius: 4px;
    background: #e08a1e;
    color: #fff;
    cursor: pointer;
  }
  button:focus { outline: 3px solid #1d4e89; }
  footer { font-size: .85rem; color: #6b7480; text-align: center; padding: 1rem; border-top: 1px solid #e4e1d8; }
  @media (min-width: 48rem) {
    .photos { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; }
  }
</style>
</head>
<body>
<header>
  <h1>ការសួរសំណួរល្អនៅក្នុងថ្នាក់រៀន</h1>
  <p lang="en">Asking good questions in class · Teacher training module</p>
</header>

<nav>
  <a href="#video">វីដេអូ</a>
  <a href="#ideas">គំនិតសំខាន់ៗ</a>
  <a href="#photos">រូបភាព</a>
  <a href="#practice">លំហាត់</a>
</nav>

<main>
<section id="intro">
  <h2>សេចក្តីផ្តើម</h2>
  <p>គ្រូល្អសួរសំណួរបើកចំហ ដើម្បីឱ្យសិស្សគិត និងពន្យល់ពីគំនិតរបស់ខ្លួន។ សំណួរបិទមានចម្លើយត្រឹមត្រូវតែមួយ ដូចជា «៧ បូក ៥ ស្មើប៉ុន្មាន?»។ សំណួរបើកចំហអាចមានចម្លើយល្អច្រើន ដូចជា «តើអ្នករកចម្លើយនេះបានដោយរបៀបណា?»។</p>
  <p>ម៉ូឌុលនេះមានវីដេអូខ្លីមួយ រូបភាពពីរ និងលំហាត់អនុវត្តមួយ។ អ្នកអាចរៀនវាក្នុងរយៈពេលប្រហែលដប់ប្រាំនាទី។</p>
  <p class="en" lang="en">Good teachers ask open questions so that students think and explain their ideas. A closed question has one right answer; an open question can have many good answers. This module has a short video lecture, two photos and a practice exercise, and takes about fifteen minutes.</p>
</section>

<section id="video">
  <h2>មេរៀនវីដេអូ</h2>
  <p>សូមមើលវីដេអូខ្លីនេះ (ប្រហែលមួយនាទី)។ វីដេអូមានអក្សររត់ជាភាសាខ្មែរ និងភាសាអង់គ្លេស។</p>
  <video controls preload="metadata" width="1280" height="720" src="lessons/lecture.mp4">
    <track kind="captions" src="lessons/lecture.km.vtt" srclang="km" label="ភាសាខ្មែរ" default>
    <track kind="captions" src="lessons/lecture.vtt" srclang="en" label="English">
    <p>កម្មវិធីរុករករបស់អ្នកមិនអាចចាក់វីដេអូនេះបានទេ។ <a href="lessons/lecture.mp4">ទាញយកវីដេអូ</a></p>
  </video>
  <p class="en" lang="en">The narration is in English. Khmer captions are switched on by default; English captions are also available.</p>
</section>

<section id="ideas">
  <h2>គំនិតសំខាន់ៗ</h2>
  <ul>
    <li><strong>សួរសំណួរបើកចំហ។</strong> ចាប់ផ្តើមសំណួរដោយពាក្យ «ហេតុអ្វី» «យ៉ាងដូចម្តេច» ឬ «ចុះបើ»។</li>
    <li><strong>រង់ចាំបន្តិច។</strong> បន្ទាប់ពីសួរសំណួរ សូមរង់ចាំយ៉ាងហោចណាស់បីវិនាទី។ ពេលរង់ចាំនេះផ្តល់ឱកាសឱ្យសិស្សគ្រប់រូបគិត មិនមែនតែសិស្សដែលឆ្លើយលឿនជាងគេនោះទេ។</li>
    <li><strong>សួរសំណួរតាមដាន។</strong> នៅពេលសិស្សឆ្លើយ សូមសួរថា «ហេតុអ្វីបានជាអ្នកគិតដូច្នេះ?» ឬ «តើអ្នកដឹងដោយរបៀបណា?»។</li>
    <li><strong>ហៅសិស្សផ្សេងៗគ្នា។</strong> កុំហៅតែសិស្សដែលលើកដៃ។ សិស្សស្រី និងសិស្សប្រុស សិស្សនៅខាងមុខ និងនៅខាងក្រោយ គួរតែមានឱកាសឆ្លើយដូចគ្នា។</li>
  </ul>
  <p class="en" lang="en">Ask open questions that start with “why”, “how” or “what if”. Wait at least three seconds after asking. Follow up with “Why do you think so?” and “How do you know?”. Call on girls and boys, at the front and at the back, not only on volunteers.</p>
  <p class="tip"><strong>គន្លឹះ៖</strong> ប្រសិនបើគ្មាននរណាម្នាក់ឆ្លើយ កុំឆ្លើយដោយខ្លួនឯងភ្លាមៗ។ សូមសួរសំណួរដដែលម្តងទៀតដោយប្រើពាក្យផ្សេង ឬឱ្យសិស្សពិភាក្សាជាមួយមិត្តនៅក្បែរមួយនាទីសិន។</p>
</section>

<section id="photos">
  <h2>រូបភាព</h2>
  <div class="photos">
    <figure>
      <img src="img/classroom.jpg" width="1600" height="1067" alt="Classroom seen from the back: students in white shirts at wooden desks, some raising their hands, facing a green blackboard">
      <figcaption>ថ្នាក់រៀនមួយនៅពេលគ្រូសួរសំណួរ។ សិស្សជាច្រើនលើកដៃចង់ឆ្លើយ។ <span lang="en">A class after the teacher asks a question.</span></figcaption>
    </figure>
    <figure>
      <img src="img/chalkboard.jpg" width="1600" height="1067" alt="Green chalkboard with the words Why? How? What if? written in English and Khmer">
      <figcaption>ពាក្យសំណួរបើកចំហនៅលើក្តារខៀន៖ ហេតុអ្វី? យ៉ាងដូចម្តេច? ចុះបើ...? <span lang="en">Open question words on the chalkboard.</span></figcaption>
    </figure>
  </div>
</section>

<section id="practice">
  <h2>លំហាត់អនុវត្ត</h2>
  <p>តើសំណួរណាខ្លះជាសំណួរបើកចំហ? តើសំណួរណាខ្លះជាសំណួរបិទ?</p>
  <ol class="quiz">
    <li>តើ ៧ បូក ៥ ស្មើប៉ុន្មាន? <span class="en" lang="en">(What is 7 + 5?)</span></li>
    <li>ហេតុអ្វីបានជាត្រីត្រូវការទឹក? <span class="en" lang="en">(Why do fish need water?)</span></li>
    <li>តើរាជធានីនៃប្រទេសកម្ពុជាឈ្មោះអ្វី? <span class="en" lang="en">(What is the capital of Cambodia?)</span></li>
    <li>តើអ្នកនឹងដោះស្រាយលំហាត់នេះដោយរបៀបណា ប្រសិនបើគ្មានម៉ាស៊ីនគិតលេខ? <span class="en" lang="en">(How would you solve this without a calculator?)</span></li>
  </ol>
  <p><button type="button" id="show-answers" aria-expanded="false" aria-controls="answers">បង្ហាញចម្លើយ</button></p>
  <div class="answers" id="answers" hidden>
    <p>សំណួរទី ២ និងទី ៤ ជាសំណួរបើកចំហ ព្រោះសិស្សត្រូវពន្យល់ពីគំនិតរបស់ខ្លួន។ សំណួរទី ១ និងទី ៣ ជាសំណួរបិទ ព្រោះមានចម្លើយត្រឹមត្រូវតែមួយ។</p>
    <p class="en" lang="en">Questions 2 and 4 are open: students must explain their thinking. Questions 1 and 3 are closed: each has one right answer.</p>
  </div>

  <h2>សម្រាប់សប្តាហ៍នេះ</h2>
  <ol>
    <li>រៀបចំសំណួរបើកចំហបីសម្រាប់មេរៀនមួយរបស់អ្នក។</li>
    <li>រាប់ពេលរង់ចាំដោយស្ងាត់ៗ៖ មួយ ពីរ បី។</li>
    <li>កត់ត្រាចម្លើយសិស្សមួយដែលធ្វើឱ្យអ្នកភ្ញាក់ផ្អើល ហើយចែករំលែកវាជាមួយមិត្តរួមការងារ។</li>
  </ol>
</section>
</main>

<footer>
  ម៉ូឌុលបណ្តុះបណ្តាលគ្រូ · <span lang="en">Teacher training module (lowband sample)</span>
</footer>

<script>
  // Show or hide the answers to the practice questions.
  var btn = document.getElementById("show-answers");
  var box = document.getElementById("answers");
  btn.addEventListener("click", function () {
    box.hidden = !box.hidden;
    btn.textContent = box.hidden ? "បង្ហាញចម្លើយ" : "លាក់ចម្លើយ";
    btn.setAttribute("aria-expanded", String(!box.hidden));
  });
</script>
</body>
</html>
HTML

# ---------------------------------------------------------------------------
# Swap the freshly built module into place.
# ---------------------------------------------------------------------------
rm -rf "$OUT"
mv "$STAGE" "$OUT"
echo "wrote $OUT:"
(cd "$OUT" && find . -type f | sort | while read -r f; do printf '  %8d  %s\n' "$(stat -c %s "$f")" "$f"; done)
