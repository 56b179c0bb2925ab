"""Building blocks of the audio stack: short convolutions, gated linear attention, SwiGLU, GLA blocks."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lina.config import LinaConfig
from lina.ops import gla_sequence, gla_single_step
from lina.state import GLAState


class ShortConv(nn.Module):
    """Depthwise causal convolution followed by SiLU; its state is the last ``W-1`` inputs."""

    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(channels, 1, kernel_size))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Conv1d's default initialisation

    def forward(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """``x: [B, T, D]``, ``state: [B, D, W-1]`` -> ``(y [B, T, D], state)``."""
        window = torch.cat([state.to(x.dtype), x.transpose(1, 2)], dim=2)  # [B, D, W-1+T]
        y = F.conv1d(window, self.weight, groups=self.weight.shape[0])
        return F.silu(y).transpose(1, 2), window[:, :, window.shape[2] - state.shape[2]:]

    def step(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """``x: [B, D]`` -> ``(y [B, D], state)``; a multiply-add instead of a convolution launch."""
        window = torch.cat([state.to(x.dtype), x.unsqueeze(2)], dim=2)  # [B, D, W]
        y = (window * self.weight[:, 0]).sum(-1)
        return F.silu(y), window[:, :, 1:]


class GatedLinearAttention(nn.Module):
    """GLA time mixing (Yang et al. 2023) as released with Lina-Speech.

    q, k, v through short convolutions; forget gate ``logsigmoid(up(down(x))) / normalizer`` per key
    channel; output ``o_proj(RMSNorm(o) * silu(g_proj(x)))`` with the norm per head.
    """

    def __init__(self, cfg: LinaConfig):
        super().__init__()
        d, dk, dv = cfg.d_model, cfg.key_dim, cfg.value_dim
        self.n_heads = cfg.n_heads
        self.gate_normalizer = cfg.gate_normalizer
        self.norm_eps = cfg.norm_eps
        self.scale = cfg.head_k_dim ** -0.5
        self.q_proj = nn.Linear(d, dk, bias=False)
        self.k_proj = nn.Linear(d, dk, bias=False)
        self.v_proj = nn.Linear(d, dv, bias=False)
        self.g_proj = nn.Linear(d, dv, bias=False)
        self.gate_down = nn.Linear(d, cfg.gate_low_rank, bias=False)
        self.gate_up = nn.Linear(cfg.gate_low_rank, dk, bias=True)
        self.o_proj = nn.Linear(dv, d, bias=False)
        self.q_conv = ShortConv(dk, cfg.conv_size)
        self.k_conv = ShortConv(dk, cfg.conv_size)
        self.v_conv = ShortConv(dv, cfg.conv_size)
        self.out_norm = nn.Parameter(torch.ones(cfg.head_v_dim))

    def _gate(self, x: Tensor) -> Tensor:
        return F.logsigmoid(self.gate_up(self.gate_down(x))) / self.gate_normalizer

    def _output(self, o: Tensor, x: Tensor) -> Tensor:
        """``o: [..., H, Dv]`` (any dtype), ``x: [..., d]`` -> ``[..., d]``."""
        g = self.g_proj(x).unflatten(-1, (self.n_heads, -1))
        of = o.float()
        of = of * torch.rsqrt(of.pow(2).mean(-1, keepdim=True) + self.norm_eps)
        o = (of.to(x.dtype) * self.out_norm) * F.silu(g)
        return self.o_proj(o.flatten(-2))

    def forward(self, x: Tensor, state: GLAState) -> tuple[Tensor, GLAState]:
        """Whole sequence: ``x: [B, T, d]`` -> ``(y [B, T, d], state)`` (kernels: `lina.ops.dispatch`)."""
        q, cq = self.q_conv(self.q_proj(x), state.conv_q)
        k, ck = self.k_conv(self.k_proj(x), state.conv_k)
        v, cv = self.v_conv(self.v_proj(x), state.conv_v)
        heads = lambda t: t.unflatten(-1, (self.n_heads, -1))  # noqa: E731  [B, T, H, D]
        o, s = gla_sequence(heads(q), heads(k), heads(v), heads(self._gate(x)), state.recurrent,
                            self.scale)
        return self._output(o, x), GLAState(cq, ck, cv, s)

    def step(self, x: Tensor, state: GLAState, inplace: bool = False) -> tuple[Tensor, GLAState]:
        """One step: ``x: [B, d]`` -> ``(y [B, d], state)``. ``inplace``: the recurrent matrix may be
        updated in place (see :func:`lina.ops.dispatch.gla_single_step`, which also picks the kernel)."""
        q, cq = self.q_conv.step(self.q_proj(x), state.conv_q)
        k, ck = self.k_conv.step(self.k_proj(x), state.conv_k)
        v, cv = self.v_conv.step(self.v_proj(x), state.conv_v)
        heads = lambda t: t.unflatten(-1, (self.n_heads, -1))  # noqa: E731  [B, H, D]
        o, s = gla_single_step(heads(q), heads(k), heads(v), heads(self._gate(x)), state.recurrent, self.scale,
                                inplace=inplace)
        return self._output(o, x), GLAState(cq, ck, cv, s)


class SwiGLU(nn.Module):
    """Feed-forward ``out(silu(a) * b)`` with ``[a, b] = in(x)``."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.proj_in = nn.Linear(dim, 2 * hidden)
        self.proj_out = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        gate, value = self.proj_in(x).chunk(2, dim=-1)
        return self.proj_out(F.silu(gate) * value)


class GLABlock(nn.Module):
    """Pre-LayerNorm residual block: GLA time mixing, then SwiGLU."""

    def __init__(self, cfg: LinaConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.d_model)
        self.mixer = GatedLinearAttention(cfg)
        self.norm2 = nn.LayerNorm(cfg.d_model)
        self.ffn = SwiGLU(cfg.d_model, cfg.ffn_dim)

    def forward(self, x: Tensor, state: GLAState) -> tuple[Tensor, GLAState]:
        """``x: [B, T, d]`` -> ``(y [B, T, d], state)``."""
        h, state = self.mixer(self.norm1(x), state)
        x = x + h
        return x + self.ffn(self.norm2(x)), state

    def step(self, x: Tensor, state: GLAState, inplace: bool = False) -> tuple[Tensor, GLAState]:
        """``x: [B, d]`` -> ``(y [B, d], state)``."""
        h, state = self.mixer.step(self.norm1(x), state, inplace=inplace)
        x = x + h
        return x + self.ffn(self.norm2(x)), state
