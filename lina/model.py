"""The Lina-Speech language model: text encoder -> GLA encoder -> blind cross-attention -> GLA decoder."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lina.config import LinaConfig
from lina.constants import BOS_ID, PAD_ID, TEXT_PAD_ID
from lina.cross_attention import BlindCrossAttention, TextContext
from lina.layers import GLABlock
from lina.state import GLAState, LinaState, zero_gla_state
from lina.text_encoder import TextEncoder


@dataclass
class ModelOutput:
    logits: Tensor      # [B, T, V] (or [B, V] for a step)
    state: LinaState
    alignment: Tensor   # [B, 2, T, Tx]: weights of the two cross-attentions (or [B, 2, Tx] for a step)


class LinaModel(nn.Module):
    def __init__(self, cfg: LinaConfig):
        super().__init__()
        self.cfg = cfg
        self.text_embed = nn.Embedding(cfg.n_text_vocab, cfg.d_model, padding_idx=TEXT_PAD_ID)
        self.text_encoder = TextEncoder(cfg)
        self.audio_embed = nn.Embedding(cfg.n_audio_vocab, cfg.d_model, padding_idx=PAD_ID)
        self.encoder = nn.ModuleList(GLABlock(cfg) for _ in range(cfg.n_layer))
        self.cross_attention = BlindCrossAttention(cfg)
        self.decoder = nn.ModuleList(GLABlock(cfg) for _ in range(cfg.n_layer))
        self.head = nn.Linear(cfg.d_model, cfg.n_audio_vocab, bias=False)

    @property
    def device(self) -> torch.device:
        return self.head.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.head.weight.dtype

    def init_state(self, batch: int, initial: list[Tensor] | None = None) -> LinaState:
        """Zero state for ``batch`` rows; ``initial`` gives the tunable layers' matrices ``[B, H, Dk, Dv]``."""
        c = self.cfg
        new = lambda: zero_gla_state(batch, c.key_dim, c.value_dim, c.n_heads, c.conv_size,  # noqa: E731
                                     self.device, self.dtype)
        state = LinaState([new() for _ in range(c.n_layer)], [new() for _ in range(c.n_layer)], new())
        return state if initial is None else state.with_initial(initial)

    def encode_text(self, text: Tensor, lengths: Tensor, training_positions: bool = False) -> TextContext:
        """``text: [B, Tx]`` ids (padded with 0), ``lengths: [B]`` -> :class:`TextContext`.

        ``training_positions``: position embeddings over the padded length, as in training (teacher
        forcing, voice tuning); the default gives each row what it would get alone (generation).
        """
        valid = torch.arange(text.shape[1], device=text.device)[None, :] < lengths[:, None]
        encoded = self.text_encoder(self.text_embed(text), valid)
        return self.cross_attention.context(encoded, valid, training_positions)

    def forward(self, ctx: TextContext, audio: Tensor, state: LinaState) -> ModelOutput:
        """Whole sequence (teacher forcing, prompt prefill, voice tuning).

        ``audio: [B, T]`` model-space ids (BOS first; codec ids + 3) -> logits ``[B, T, V]`` predicting the
        next token at each position. Padding at the end of a row only affects that row's later positions.
        GLA kernels: fla's chunked kernel on CUDA where installed (see `lina.ops.dispatch.fla_kernels`).
        """
        x = self.audio_embed(audio)
        enc_states, dec_states = [], []
        for block, s in zip(self.encoder, state.encoder):
            x, s = block(x, s)
            enc_states.append(s)
        v, pos_state, alignment = self.cross_attention(x, ctx, state.pos_net)
        x = x + v
        for block, s in zip(self.decoder, state.decoder):
            x, s = block(x, s)
            dec_states.append(s)
        return ModelOutput(self.head(x), LinaState(enc_states, dec_states, pos_state), alignment)

    def step(self, ctx: TextContext, token: Tensor, state: LinaState, inplace: bool = False) -> ModelOutput:
        """One decoding step through the modules' own ``step`` methods: ``token: [B]`` -> logits
        ``[B, V]`` for the next token. The reference of every fast step (`lina.backends`); any device,
        dtype and autograd.

        ``inplace``: the recurrent matrices may be updated in place, the returned state then holding
        the input's tensors (no autograd; what a CUDA graph's static buffers want)."""
        x = self.audio_embed(token)
        enc_states, dec_states = [], []
        for block, s in zip(self.encoder, state.encoder):
            x, s = block.step(x, s, inplace=inplace)
            enc_states.append(s)
        v, pos_state, alignment = self.cross_attention.step(x, ctx, state.pos_net, inplace=inplace)
        x = x + v
        for block, s in zip(self.decoder, state.decoder):
            x, s = block.step(x, s, inplace=inplace)
            dec_states.append(s)
        return ModelOutput(self.head(x), LinaState(enc_states, dec_states, pos_state), alignment)


def teacher_forcing_loss(logits: Tensor, targets: Tensor, lengths: Tensor) -> Tensor:
    """Mean next-token cross-entropy over valid positions, as trained.

    ``logits: [B, T, V]`` from inputs ``audio[:, :-1]``; ``targets: [B, T]`` = ``audio[:, 1:]``;
    ``lengths: [B]`` lengths of the full ``audio`` rows (BOS..EOS). Targets equal to BOS are ignored.
    """
    valid = torch.arange(targets.shape[1], device=targets.device)[None, :] < (lengths[:, None] - 1)
    return F.cross_entropy(logits[valid].float(), targets[valid], ignore_index=BOS_ID)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["LinaModel", "ModelOutput", "TextContext", "GLAState", "teacher_forcing_loss", "count_parameters"]
