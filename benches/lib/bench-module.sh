# Shared by edge-vs-nginx.sh and cache-vs-edge.sh (sourced, not run): the bench
# module, made by the real pipeline, and a free loopback port. The caller
# defines die().

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
