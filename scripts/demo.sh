#!/usr/bin/env bash
# Installs what is missing, builds, ingests the sample module into the
# default local store (.lowband/store) and serves it on 127.0.0.1:8080.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release --bins
store="file://.lowband/store"
for module in samples/*/; do
  ./target/release/lowband-pipeline ingest "$module" --store "$store"
done
cat <<MSG

lowband edge on http://127.0.0.1:8080 (Ctrl-C stops it)
  catalog          http://127.0.0.1:8080/
  course page      http://127.0.0.1:8080/m/teaching-questions/index.html
  lecture          http://127.0.0.1:8080/m/teaching-questions/lessons/lecture.mp4   (try: curl -H 'ECT: 2g' ...)
  lecture on 2G    http://127.0.0.1:8080/m/teaching-questions/lessons/lecture.mp4?tier=2g
  manifest         http://127.0.0.1:8080/api/v1/modules/teaching-questions
MSG
exec ./target/release/lowband-edge serve --store "$store" --listen 127.0.0.1:8080
