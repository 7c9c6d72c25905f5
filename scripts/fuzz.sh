#!/usr/bin/env bash
# Builds the edge's fuzz targets (edge-server/fuzz: signals, range, paths,
# conditional) with libFuzzer on the stable toolchain, and runs them.
#   scripts/fuzz.sh                       every target for ${FUZZ_SECONDS:-10} s each from its
#                                         seed corpus; fails on any crash (scripts/test.sh runs this)
#   scripts/fuzz.sh <target> [OPTION...]  one target until stopped, with libFuzzer's options
#                                         (-max_total_time=600, -jobs=2, a crash file to replay)
# New inputs go to target/fuzz/corpus/<target>, crashes to target/fuzz/artifacts/<target>;
# the seeds in edge-server/fuzz/corpus/<target> are only read.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
fuzz="$root/edge-server/fuzz"
out="$root/target/fuzz"
targets=(signals range paths conditional)

if (($#)) && [[ " ${targets[*]} " != *" $1 "* ]]; then
  echo "fuzz.sh: no target $1 (${targets[*]})" >&2
  exit 2
fi

# What `cargo fuzz build --sanitizer none` passes, all of it stable rustc:
# coverage counters and comparison tracing for libFuzzer, `cfg(fuzzing)`.
# A target dir of its own, since these flags would rebuild the main one.
# Naming the host target keeps build scripts and proc macros uninstrumented.
unset CARGO_ENCODED_RUSTFLAGS
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table
  -Cllvm-args=-sanitizer-coverage-trace-compares"
export CARGO_TARGET_DIR="$out"
host="$(rustc -vV | sed -n 's/^host: //p')"
cargo build --manifest-path "$fuzz/Cargo.toml" --release --locked --target "$host" --bins
bin="$out/$host/release"

# libFuzzer writes new inputs to the first corpus directory: ours, not the
# seeds. Given a file, it runs just that input (a crash to replay).
run() {
  local target="$1"
  shift
  local corpora=("$out/corpus/$target" "$fuzz/corpus/$target")
  for arg in "$@"; do
    [[ -f "$arg" ]] && corpora=()
  done
  mkdir -p "$out/corpus/$target" "$out/artifacts/$target"
  "$bin/$target" -artifact_prefix="$out/artifacts/$target/" -timeout=10 -rss_limit_mb=2048 \
    "$@" "${corpora[@]}"
}

if (($#)); then
  target="$1"
  shift
  run "$target" "$@"
  exit
fi

seconds="${FUZZ_SECONDS:-10}"
for target in "${targets[@]}"; do
  log="$out/$target.log"
  if run "$target" -max_total_time="$seconds" >"$log" 2>&1; then
    echo "fuzz $target: $(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$log"), no crash" >&2
  else
    tail -n 60 "$log" >&2
    echo "fuzz $target: crashed (above; full log $log); replay: scripts/fuzz.sh $target <crash file>" >&2
    exit 1
  fi
done
