#!/usr/bin/env bash
# Installs system packages and Python dependencies. `--dev` adds what the tests need.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
APT_PKGS="ffmpeg libsndfile1"
# The browser test of the Space drives Debian's Chromium (Playwright never downloads a browser).
[ "${1:-}" = "--dev" ] && APT_PKGS="$APT_PKGS chromium"
missing=""
for p in $APT_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
say() { echo "setup: $*" >&2; }
if [ -n "$missing" ]; then
  say "installing Debian packages:$missing (apt-get)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
say "installing torch 2.13.0 (pip; the CPU wheel where one is provided locally)"
python3 -m pip install -q --disable-pip-version-check torch==2.13.0
say "installing the Python dependencies${1:+ ($1)}"
if [ "${1:-}" = "--dev" ]; then
  python3 -m pip install -q --disable-pip-version-check -r requirements-dev.txt
else
  python3 -m pip install -q --disable-pip-version-check -r requirements.txt
fi
python3 -m pip install -q --disable-pip-version-check --no-deps -e .
if [ "${1:-}" = "--dev" ]; then
  # The evaluation harness and the corpus generator are tested too: their engines and metrics.
  say "installing the evaluation tools (scripts/eval_setup.sh)"
  bash scripts/eval_setup.sh
  say "installing the corpus engines the tests use (scripts/corpus_setup.sh --tests)"
  bash scripts/corpus_setup.sh --tests
fi
say "done"
