#!/usr/bin/env bash
# The test command of the README: installs nothing, runs the whole CPU suite.
set -euo pipefail
cd "$(dirname "$0")/.."
export GRADIO_ANALYTICS_ENABLED=False HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
exec python3 -m pytest -q "$@"
