"""`Codec`: WavTokenizer inference (waveform <-> one code per 320 samples at 24 kHz)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from lina.codec.backbone import VocosBackbone
from lina.codec.config import CodecConfig
from lina.codec.errors import CodecFormatError
from lina.codec.istft_head import ISTFTHead
from lina.codec.quantizer import Codebook
from lina.codec.released_config import load_released_config
from lina.codec.released_weights import read_lightning_state, translate_released_state
from lina.codec.seanet import SEANetEncoder
from lina.codec.streaming import STREAMING, StreamConfig, StreamingDecoder
from lina.int8_weights import dequantize_state

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "codec.safetensors"
FORMAT_NAME = "lina-codec"
FORMAT_VERSION = 1


def frame_mask(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """Per-row lengths `[B]` -> boolean mask `[B, frames]`, True on valid frames."""
    return torch.arange(frames, device=lengths.device)[None, :] < lengths[:, None]


class Codec(nn.Module):
    """Encoder, codebook, backbone and ISTFT head.

    `encode(wav [B, S]) -> codes [B, T]` with `T = ceil(S / hop_length)`;
    `decode(codes [B, T]) -> audio [B, T * hop_length]`.
    """

    def __init__(self, config: CodecConfig):
        super().__init__()
        self.config = config
        self.encoder = SEANetEncoder(config.encoder)
        self.quantizer = Codebook(config.quantizer)
        self.backbone = VocosBackbone(config.backbone)
        self.head = ISTFTHead(config.head)

    @property
    def hop_length(self) -> int:
        return self.config.hop_length

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def device(self) -> torch.device:
        return self.quantizer.codebook.device

    # --- inference -----------------------------------------------------------------------------

    @torch.inference_mode()
    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """Waveform `[B, S]` at `sample_rate` -> codes `[B, ceil(S / hop_length)]` (int64)."""
        if wav.dim() != 2 or wav.shape[1] == 0:
            raise ValueError(f"encode expects a non-empty waveform [B, S], got shape {tuple(wav.shape)}")
        dtype = self.quantizer.codebook.dtype
        latent = self.encoder(wav.to(self.device, dtype).unsqueeze(1))
        return self.quantizer.encode(latent)

    @torch.inference_mode()
    def features(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes `[B, T]` -> codebook features `[B, dim, T]`."""
        if codes.dim() != 2:
            raise ValueError(f"codes must be [B, T], got shape {tuple(codes.shape)}")
        return self.quantizer.decode(codes.to(self.device, torch.long))

    def prepare(
        self, codes: torch.Tensor, lengths: Optional[torch.Tensor] = None
    ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Codes `[B, T]`, lengths `[B]` or None -> backbone-dtype features `[B, dim, T]` and
        a boolean frame mask `[B, T]` (None without lengths); checks the lengths."""
        features = self.features(codes).to(self.backbone.embed.weight.dtype)
        if lengths is None:
            return features, None
        lengths = torch.as_tensor(lengths, device=self.device)
        if lengths.shape != codes.shape[:1] or int(lengths.min()) < 1 or int(lengths.max()) > codes.shape[1]:
            raise ValueError(f"lengths must be [B] in [1, {codes.shape[1]}], got {lengths.tolist()}")
        return features, frame_mask(lengths, codes.shape[1])

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Codes `[B, T]` -> audio `[B, T * hop_length]` (float32).

        With `lengths [B]`, row b holds `lengths[b]` valid codes followed by padding (any valid
        id); it decodes as if alone and `audio[b, lengths[b] * hop_length:]` is zero.
        """
        features, mask = self.prepare(codes, lengths)
        conv_mask = None if mask is None else mask[:, None, :].to(features.dtype)
        return self.head(self.backbone(features, conv_mask), mask)

    def decode_batch(self, codes: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        """Padded codes `[B, T]` with `lengths [B]` -> one waveform `[lengths[b] * hop_length]` per row."""
        audio = self.decode(codes, lengths)
        return [row[: int(n) * self.hop_length] for row, n in zip(audio, torch.as_tensor(lengths).tolist())]

    def streaming_decoder(self, config: StreamConfig = STREAMING) -> StreamingDecoder:
        """Decoder taking code chunks `[B, T_i]` (`push`) and returning audio chunks; `flush` at the end.

        Approximate by nature (the future is unknown): see `lina.codec.streaming`.
        """
        return StreamingDecoder(self, config)

    # --- loading and saving -------------------------------------------------------------------

    def load_weights(self, state: dict[str, torch.Tensor]) -> None:
        """Strict load: every parameter present with its shape, nothing extra (errors list all)."""
        expected = self.state_dict()
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        wrong = sorted(
            f"{k}: {tuple(state[k].shape)} != {tuple(expected[k].shape)}"
            for k in set(state) & set(expected)
            if state[k].shape != expected[k].shape
        )
        problems = [
            f"{label}: {items}"
            for label, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatch", wrong))
            if items
        ]
        if problems:
            raise CodecFormatError("codec weights do not fit the config; " + "; ".join(problems))
        self.load_state_dict(state)
        try:
            self.head.check_window()
        except ValueError as error:
            raise CodecFormatError(str(error)) from None

    @classmethod
    def from_released(cls, config_yaml: str | Path, checkpoint: str | Path) -> "Codec":
        """Released WavTokenizer: Lightning YAML + `.ckpt` (local paths), in eval mode on CPU."""
        config = load_released_config(config_yaml)
        codec = cls(config)
        codec.load_weights(translate_released_state(read_lightning_state(checkpoint), config.encoder))
        return codec.eval()

    def save_pretrained(self, folder: str | Path) -> None:
        """Write `config.json` and `codec.safetensors` (float32 unless the codec was cast)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        header = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "config": self.config.to_dict()}
        (folder / CONFIG_FILE).write_text(json.dumps(header, indent=2) + "\n", encoding="utf-8")
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(folder / WEIGHTS_FILE), metadata={"format": FORMAT_NAME})

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> "Codec":
        """Inverse of `save_pretrained`, in eval mode on CPU."""
        folder = Path(folder)
        try:
            header = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise CodecFormatError(f"{folder / CONFIG_FILE}: {error}") from None
        if header.get("format") != FORMAT_NAME or header.get("version") != FORMAT_VERSION:
            raise CodecFormatError(
                f"{folder / CONFIG_FILE}: expected format {FORMAT_NAME!r} version {FORMAT_VERSION}, "
                f"got {header.get('format')!r} version {header.get('version')!r}"
            )
        try:
            config = CodecConfig.from_dict(header["config"])
        except (KeyError, TypeError, ValueError) as error:
            raise CodecFormatError(f"{folder / CONFIG_FILE}: bad config ({error})") from None
        codec = cls(config)
        codec.load_weights(dequantize_state(load_file(str(folder / WEIGHTS_FILE))))
        return codec.eval()
