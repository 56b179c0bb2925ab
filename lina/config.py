"""The model's hyper-parameters: one frozen dataclass, saved as ``config.json`` beside the weights."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from lina.constants import N_SPECIAL_TOKENS

# What the text encoder reads: "bpe" (a `tokenizers` BPE, as the released model and lina-mini v1) or
# "phonemes" (gruut phonemes, `lina.phoneme_tokenizer`). See docs/text_frontend.md.
TEXT_FRONTENDS = ("bpe", "phonemes")


@dataclass(frozen=True)
class LinaConfig:
    """Sizes of a Lina-Speech model (defaults: the released 169M-class family, d_model 1024, 6+6 GLA)."""

    d_model: int = 1024
    n_layer: int = 6                # GLA blocks before the cross-attention, and as many after it
    n_heads: int = 4                # GLA heads
    expand_k: float = 1.0           # key width = d_model * expand_k
    expand_v: float = 2.0           # value width = d_model * expand_v
    conv_size: int = 4              # short causal convolutions on q, k, v
    gate_low_rank: int = 16         # low-rank projection of the forget gate
    gate_normalizer: float = 16.0   # gate = logsigmoid(x) / gate_normalizer
    text_layers: int = 9
    text_heads: int = 4
    n_text_vocab: int = 256
    n_codebook: int = 4096
    max_text_len: int = 2000        # rows of the convolutional position table
    pos_kernel: int = 31            # depthwise convolution over the position table
    norm_eps: float = 1e-5          # RMSNorm of the GLA output gate
    model_id: str = ""              # identifies the weights; voices record it to refuse foreign models
    text_frontend: str = "bpe"      # one of TEXT_FRONTENDS; configs saved before it existed read as "bpe"

    def __post_init__(self) -> None:
        if self.text_frontend not in TEXT_FRONTENDS:
            raise ValueError(f"unknown text_frontend {self.text_frontend!r}; expected one of {TEXT_FRONTENDS}")
        if self.key_dim % self.n_heads or self.value_dim % self.n_heads:
            raise ValueError(f"GLA widths {self.key_dim}/{self.value_dim} not divisible by {self.n_heads} heads")
        if self.d_model % self.text_heads:
            raise ValueError(f"d_model {self.d_model} not divisible by {self.text_heads} text heads")

    @property
    def key_dim(self) -> int:
        return int(self.d_model * self.expand_k)

    @property
    def value_dim(self) -> int:
        return int(self.d_model * self.expand_v)

    @property
    def head_k_dim(self) -> int:
        return self.key_dim // self.n_heads

    @property
    def head_v_dim(self) -> int:
        return self.value_dim // self.n_heads

    @property
    def ffn_dim(self) -> int:
        """Hidden width of the SwiGLU feed-forward blocks (4/3 of d_model, as released)."""
        return self.d_model * 4 // 3

    @property
    def n_audio_vocab(self) -> int:
        """Audio-token vocabulary: PAD, BOS, EOS, then the codec ids."""
        return self.n_codebook + N_SPECIAL_TOKENS

    @property
    def n_tunable_layers(self) -> int:
        """GLA layers that carry a tuned initial state (encoder then decoder; not the position net)."""
        return 2 * self.n_layer

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "LinaConfig":
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ValueError(f"unknown LinaConfig fields: {unknown}")
        return cls(**data)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "LinaConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))
