"""Reads the released WavTokenizer YAML (Lightning CLI layout) into a `CodecConfig`.

Layout: `model.init_args.{feature_extractor, backbone, head}`, each `{class_path, init_args}`.
Classes are accepted by exact name from a fixed table: nothing is imported from the YAML.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import yaml

from lina.codec.config import BackboneConfig, CodecConfig, EncoderConfig, HeadConfig, QuantizerConfig
from lina.codec.errors import CodecFormatError

# The only encodec variant the released feature extractor knows.
ENCODEC_24KHZ = "encodec_24khz"
# The released models decode with the "same"-padded ISTFT; "center" would change the audio length.
SAME_PADDING = "same"


def _feature_extractor(args: dict[str, Any]) -> tuple[EncoderConfig, QuantizerConfig]:
    model_name = args.get("encodec_model", ENCODEC_24KHZ)
    if model_name != ENCODEC_24KHZ:
        raise CodecFormatError(f"feature_extractor.encodec_model {model_name!r}: only {ENCODEC_24KHZ!r} exists")
    n_q = int(args.get("num_quantizers", 1))
    if n_q != 1:
        raise CodecFormatError(f"num_quantizers={n_q}: this codec implements the single-codebook model only")
    encoder = EncoderConfig(ratios=tuple(args.get("dowmsamples", EncoderConfig.ratios)))
    quantizer = QuantizerConfig(bins=int(args["vq_bins"]), dim=encoder.dimension)
    return encoder, quantizer


def _backbone(args: dict[str, Any]) -> BackboneConfig:
    n_embed = args.get("adanorm_num_embeddings")
    if n_embed is None:
        raise CodecFormatError("backbone without adanorm_num_embeddings is not a WavTokenizer backbone")
    return BackboneConfig(
        input_channels=int(args["input_channels"]),
        dim=int(args["dim"]),
        intermediate_dim=int(args["intermediate_dim"]),
        num_layers=int(args["num_layers"]),
        adanorm_num_embeddings=int(n_embed),
    )


def _head(args: dict[str, Any]) -> HeadConfig:
    padding = args.get("padding", SAME_PADDING)
    if padding != SAME_PADDING:
        raise CodecFormatError(f"head padding {padding!r}: only {SAME_PADDING!r} is implemented")
    return HeadConfig(dim=int(args["dim"]), n_fft=int(args["n_fft"]), hop_length=int(args["hop_length"]))


# Accepted `class_path` strings, per section (the repo's own and its pip-packaged spelling).
FEATURE_EXTRACTORS: dict[str, Callable[[dict[str, Any]], tuple[EncoderConfig, QuantizerConfig]]] = {
    "decoder.feature_extractors.EncodecFeatures": _feature_extractor,
    "wavtokenizer.decoder.feature_extractors.EncodecFeatures": _feature_extractor,
}
BACKBONES: dict[str, Callable[[dict[str, Any]], BackboneConfig]] = {
    "decoder.models.VocosBackbone": _backbone,
    "wavtokenizer.decoder.models.VocosBackbone": _backbone,
}
HEADS: dict[str, Callable[[dict[str, Any]], HeadConfig]] = {
    "decoder.heads.ISTFTHead": _head,
    "wavtokenizer.decoder.heads.ISTFTHead": _head,
}


def _section(model_args: dict[str, Any], name: str, parsers: dict[str, Callable]) -> Any:
    entry = model_args.get(name)
    if not isinstance(entry, dict) or "class_path" not in entry:
        raise CodecFormatError(f"model.init_args.{name} must be a mapping with a class_path")
    parser = parsers.get(entry["class_path"])
    if parser is None:
        raise CodecFormatError(
            f"model.init_args.{name}.class_path {entry['class_path']!r} is not one of {sorted(parsers)}"
        )
    try:
        return parser(entry.get("init_args") or {})
    except KeyError as missing:
        raise CodecFormatError(f"model.init_args.{name}.init_args lacks {missing}") from None


def parse_released_config(data: dict[str, Any]) -> CodecConfig:
    """Config from the parsed YAML document (a dict)."""
    try:
        model_args = data["model"]["init_args"]
    except (KeyError, TypeError):
        raise CodecFormatError("expected a Lightning CLI config with model.init_args") from None
    encoder, quantizer = _section(model_args, "feature_extractor", FEATURE_EXTRACTORS)
    backbone = _section(model_args, "backbone", BACKBONES)
    head = _section(model_args, "head", HEADS)
    sample_rate = int(model_args.get("sample_rate", CodecConfig.sample_rate))
    try:
        return CodecConfig(encoder=encoder, quantizer=quantizer, backbone=backbone, head=head, sample_rate=sample_rate)
    except ValueError as error:
        raise CodecFormatError(str(error)) from None


def load_released_config(path: str | Path) -> CodecConfig:
    """Config from a released YAML file."""
    with open(path, encoding="utf-8") as handle:
        return parse_released_config(yaml.safe_load(handle))
