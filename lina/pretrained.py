"""Where a model comes from: our folder format, the released checkpoints (Hub), or a tiny random model.

Our format is a folder with ``config.json`` + ``model.safetensors`` + the text tokenizer (``tokenizer.json``,
or ``phonemes.json`` for a model whose ``text_frontend`` is ``"phonemes"``) and the codec in ``codec/``
(``config.json`` + ``codec.safetensors``). The released Lina-Speech checkpoint, the
WavTokenizer checkpoint and ``bpe256.json`` are fetched at run time (never shipped) and cached.
"""
from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

from lina.checkpoint import load_into, load_released_checkpoint
from lina.codec import Codec, CodecConfig
from lina.codec.config import BackboneConfig, EncoderConfig, HeadConfig, QuantizerConfig
from lina.config import LinaConfig
from lina.int8_weights import dequantize_state
from lina.model import LinaModel
from lina.text_frontend import TOKENIZER_FILES, AnyTokenizer, frontend_of, load_tokenizer
from lina.tokenizer import TextTokenizer
from lina.unpickler import CheckpointError

RELEASED_REPO = "lina-speech/all-models"
RELEASED_SUBFOLDER = "lina_gla_gigaspeech_d1024l12_convblind_shortconv_lr2e-4"
CODEC_REPO = "novateur/WavTokenizer-medium-speech-75token"
CODEC_CHECKPOINT = "wavtokenizer_medium_speech_320_24k.ckpt"
CODEC_CONFIG = "wavtokenizer_mediumdata_frame75_3s_nq1_code4096_dim512_kmeans200_attn.yaml"
# The released text tokenizer lives in the original code repository, at a pinned commit.
TOKENIZER_URL = ("https://raw.githubusercontent.com/theodorblackbird/lina-speech/"
                 "273c823cb34827d401711a1335b87a6501ec6705/bpe256.json")
RELEASED = "released"
TINY_RANDOM = "tiny-random"
TINY_SEED = 1234
RELEASED_LICENSE = "CC BY-NC-SA 4.0"


@dataclass
class Bundle:
    """Everything a :class:`lina.tts.LinaTTS` is made of."""

    model: LinaModel
    tokenizer: AnyTokenizer  # the one the model's text_frontend names (lina.text_frontend)
    codec: Codec
    name: str
    license: str
    description: str


def character_tokenizer(alphabet: str = "abcdefghijklmnopqrstuvwxyz !\"'(),-./:;?") -> TextTokenizer:
    """A character-level tokenizer with the released conventions (specials 0/1/2, lowercasing)."""
    vocab = {"[PAD]": 0, "[BOS]": 1, "[EOS]": 2}
    for ch in alphabet:
        vocab.setdefault(ch, len(vocab))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Punctuation("isolated"),
                                                 pre_tokenizers.Split(" ", "isolated")])
    tok.add_special_tokens(["[PAD]", "[BOS]", "[EOS]"])
    return TextTokenizer(tok)


def tiny_random(text_frontend: str = "bpe") -> Bundle:
    """Random weights from a fixed seed: lets the app and its tests run before a trained model exists.
    ``text_frontend="phonemes"``: the same with the phoneme tokenizer (needs gruut)."""
    if text_frontend == "phonemes":
        from lina.phoneme_tokenizer import PhonemeTokenizer

        tokenizer = PhonemeTokenizer.default()
    else:
        tokenizer = character_tokenizer()
    codec_cfg = CodecConfig(encoder=EncoderConfig(n_filters=8, lstm_layers=1), quantizer=QuantizerConfig(bins=256),
                            backbone=BackboneConfig(dim=64, intermediate_dim=128, num_layers=1),
                            head=HeadConfig(dim=64))
    cfg = LinaConfig(d_model=64, n_layer=2, n_heads=2, text_layers=2, text_heads=2,
                     n_text_vocab=tokenizer.vocab_size, n_codebook=codec_cfg.quantizer.bins, model_id=TINY_RANDOM,
                     text_frontend=text_frontend)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        model, codec = LinaModel(cfg), Codec(codec_cfg)
        # Codec() starts with a codebook of zeros (trained weights replace it): kept, every code would sound the
        # same, and the tiny model's audio would not depend on the codes it generated.
        with torch.no_grad():
            codec.quantizer.codebook.normal_()
    return Bundle(model.eval(), tokenizer, codec.eval(), TINY_RANDOM, "MIT",
                  "tiny model with RANDOM weights: it produces noise, for testing the app only")


def save_folder(bundle: Bundle, folder: str | Path) -> None:
    folder = Path(folder)
    frontend = bundle.model.cfg.text_frontend
    if frontend_of(bundle.tokenizer) != frontend:
        raise ValueError(f"the model reads {frontend!r} text but the tokenizer is {frontend_of(bundle.tokenizer)!r}")
    folder.mkdir(parents=True, exist_ok=True)
    bundle.model.cfg.save(folder / "config.json")
    save_file({k: v.contiguous() for k, v in bundle.model.state_dict().items()}, str(folder / "model.safetensors"),
              metadata={"format": "lina", "model_id": bundle.model.cfg.model_id})
    (folder / TOKENIZER_FILES[frontend]).write_text(bundle.tokenizer.to_str(), encoding="utf-8")
    (folder / "card.json").write_text(json.dumps({"name": bundle.name, "license": bundle.license,
                                                  "description": bundle.description}, indent=2))
    bundle.codec.save_pretrained(folder / "codec")


def load_folder(folder: str | Path) -> Bundle:
    folder = Path(folder)
    missing = [f for f in ("config.json", "model.safetensors", "codec") if not (folder / f).exists()]
    cfg = None if missing else LinaConfig.load(folder / "config.json")
    if cfg is not None and not (folder / TOKENIZER_FILES[cfg.text_frontend]).exists():
        missing.append(TOKENIZER_FILES[cfg.text_frontend])
    if missing:
        raise CheckpointError(f"{folder} is not a Lina model folder: missing {missing}")
    model = LinaModel(cfg)
    load_into(model, {k: v.float() for k, v in dequantize_state(load_file(str(folder / "model.safetensors"))).items()})
    card = json.loads((folder / "card.json").read_text()) if (folder / "card.json").exists() else {}
    return Bundle(model.eval(), load_tokenizer(folder, cfg.text_frontend),
                  Codec.from_pretrained(folder / "codec").eval(), card.get("name", cfg.model_id or folder.name),
                  card.get("license", "see model card"), card.get("description", ""))


def _cached_url(url: str, name: str) -> Path:
    from huggingface_hub.constants import HF_HOME

    path = Path(HF_HOME) / "lina" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - a fixed https URL
            data = response.read()
        tmp = path.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path


def load_released(checkpoint: str | Path | None = None, codec_config: str | Path | None = None,
                  codec_checkpoint: str | Path | None = None, tokenizer: str | Path | None = None) -> Bundle:
    """The released model; each file from the given path, else downloaded from the Hub (cached)."""
    from huggingface_hub import hf_hub_download, list_repo_files

    if checkpoint is None:
        ckpts = sorted(f for f in list_repo_files(RELEASED_REPO)
                       if f.startswith(RELEASED_SUBFOLDER + "/") and f.endswith(".ckpt"))
        if not ckpts:
            raise CheckpointError(f"no .ckpt under {RELEASED_REPO}/{RELEASED_SUBFOLDER}")
        checkpoint = hf_hub_download(RELEASED_REPO, ckpts[-1])
    codec_config = codec_config or hf_hub_download(CODEC_REPO, CODEC_CONFIG)
    codec_checkpoint = codec_checkpoint or hf_hub_download(CODEC_REPO, CODEC_CHECKPOINT)
    tokenizer = tokenizer or _cached_url(TOKENIZER_URL, "bpe256.json")
    cfg, sd = load_released_checkpoint(checkpoint, model_id=f"{RELEASED_REPO}/{RELEASED_SUBFOLDER}")
    model = LinaModel(cfg)
    load_into(model, sd)
    return Bundle(model.eval(), TextTokenizer.from_file(tokenizer), Codec.from_released(codec_config, codec_checkpoint).eval(),
                  "Lina-Speech 169M (released)", RELEASED_LICENSE,
                  "Lina-Speech trained on LibriTTS(-R), MLS English and GigaSpeech XL (~10k h)")


def resolve(name_or_path: str | Path) -> Bundle:
    """``"tiny-random"``, ``"released"``, a local model folder, or a Hub repo id holding our folder format."""
    name = str(name_or_path)
    if name == TINY_RANDOM:
        return tiny_random()
    if name == RELEASED:
        return load_released()
    if Path(name).is_dir():
        return load_folder(name)
    if Path(name).suffix == ".ckpt" and Path(name).is_file():
        return load_released(checkpoint=name)
    from huggingface_hub import snapshot_download

    return load_folder(snapshot_download(name))
