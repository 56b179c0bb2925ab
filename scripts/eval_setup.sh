#!/usr/bin/env bash
# Installs what the evaluation harness needs on top of scripts/setup.sh: flite and espeak-ng
# (reference speech for the built-in test lists and the harness tests) and requirements-eval.txt,
# then resemblyzer without its declared dependencies (they are provided by requirements-eval.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
APT_PKGS="flite espeak-ng"
missing=""
for p in $APT_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
python3 -m pip install -q --disable-pip-version-check -r requirements-eval.txt
python3 -m pip install -q --disable-pip-version-check --no-deps resemblyzer==0.1.4
python3 - <<'PY'
import torch
assert torch.__version__.startswith("2.13.0"), f"the evaluation install changed torch to {torch.__version__}"
PY
