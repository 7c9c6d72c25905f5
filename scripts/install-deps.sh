#!/usr/bin/env bash
# Installs what building and testing lowband needs on Debian 12, skipping
# what is already there:
#   build: FFmpeg 5.1 development libraries, clang/libclang (bindgen), pkg-config, nasm (mozjpeg)
#   tests: rustfmt and clippy (rustup components), the ffmpeg CLI (ffprobe checks outputs), g++ (builds libFuzzer for the fuzz targets),
#          the brotli CLI (benches/page-bytes.sh), s3s-fs (an S3-compatible server on loopback),
#          nats-server 2.9 (JetStream; the queue workers' tests start it on loopback),
#          REDbot (HTTP lint, run on the edge) in a Python venv at
#          ${LOWBAND_TOOLS:-~/.cache/lowband}/redbot-venv, versions from scripts/redbot-requirements.txt,
#          Debian's chromium and Node.js/npm (edge-server/tests/it/browser.rs), with playwright-core from
#          edge-server/tests/browser/package-lock.json installed by npm ci into
#          ${LOWBAND_TOOLS:-~/.cache/lowband}/browser-node (it drives that chromium; it downloads no browser)
# Usage: scripts/install-deps.sh [--test]
set -euo pipefail

packages=(
  libavcodec-dev libavformat-dev libavfilter-dev libavdevice-dev libavutil-dev
  libswscale-dev libswresample-dev pkg-config clang libclang-dev nasm ca-certificates
)
if [[ "${1:-}" == "--test" ]]; then
  packages+=(ffmpeg g++ brotli python3 python3-venv nats-server curl chromium fonts-khmeros)
  # Node.js from Debian unless one is already installed (e.g. from NodeSource, whose
  # nodejs carries npm and conflicts with Debian's npm package).
  command -v node >/dev/null || packages+=(nodejs)
  command -v npm >/dev/null || packages+=(npm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=()
  [[ "$(id -u)" -ne 0 ]] && sudo=(sudo)
  echo "installing: ${missing[*]}" >&2
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ "${1:-}" == "--test" ]]; then
  export PATH="$HOME/.cargo/bin:$PATH"
  # The test command checks formatting and lints; a minimal rustup profile lacks both.
  if command -v rustup >/dev/null && ! { cargo fmt --version && cargo clippy --version; } >/dev/null 2>&1; then
    echo "installing rustfmt and clippy" >&2
    rustup component add rustfmt clippy
  fi
  if ! command -v s3s-fs >/dev/null; then
    echo "installing s3s-fs (S3 test server, a few minutes once)" >&2
    cargo install s3s-fs@0.14.1 --features binary --locked --quiet
  fi

  # REDbot: a venv of its own, reinstalled only when the pinned requirements
  # or the interpreter change (the stamp records both).
  here="$(cd "$(dirname "$0")" && pwd)"
  requirements="$here/redbot-requirements.txt"
  venv="${LOWBAND_TOOLS:-$HOME/.cache/lowband}/redbot-venv"
  python="${LOWBAND_PYTHON:-/usr/bin/python3}"
  stamp="$("$python" --version 2>&1) $(sha256sum <"$requirements" | cut -d' ' -f1)"
  if [[ ! -x "$venv/bin/redbot" || "$(cat "$venv/.lowband-stamp" 2>/dev/null)" != "$stamp" ]]; then
    echo "installing REDbot into $venv" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv"
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/pip" install --quiet --no-cache-dir -r "$requirements"
    echo "$stamp" >"$venv/.lowband-stamp"
  fi
  # playwright-core for the browser test, reinstalled only when its lock file
  # or Node.js change. PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: the test uses Debian's chromium.
  lock="$here/../edge-server/tests/browser/package-lock.json"
  nodedir="${LOWBAND_TOOLS:-$HOME/.cache/lowband}/browser-node"
  stamp="$(node --version) $(sha256sum <"$lock" | cut -d' ' -f1)"
  if [[ ! -d "$nodedir/node_modules/playwright-core" || "$(cat "$nodedir/.lowband-stamp" 2>/dev/null)" != "$stamp" ]]; then
    echo "installing playwright-core into $nodedir" >&2
    rm -rf "$nodedir"
    mkdir -p "$nodedir"
    cp "$lock" "$here/../edge-server/tests/browser/package.json" "$nodedir/"
    (cd "$nodedir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    echo "$stamp" >"$nodedir/.lowband-stamp"
  fi
fi
