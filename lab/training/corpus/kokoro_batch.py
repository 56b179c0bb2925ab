"""Batched Kokoro forward: utterances of different lengths in one padded batch, each as if it ran alone.

The text side (ALBERT, duration encoder, text encoder) takes masks already; what does not is the frame side,
whose instance norms take statistics over time and whose convolutions read past a row's end. So for the
frame-rate modules (predictor.F0 / N and the decoder):
- every AdaIN1d's InstanceNorm1d is replaced by `MaskedInstanceNorm` (statistics over a row's valid frames);
- every Conv1d / ConvTranspose1d gets a forward pre-hook that zeroes its input past the row's end, which is
  what the zero padding of a batch of one reads there;
- the LSTMs run packed; the STFTs and the sine source's interpolation are done per row (kokoro_torch).
A row's valid length at any resolution is k * frames + e, with k = L // max_frames and e = L % max_frames
(the generator's reflection pad and the STFT add one frame: 120 * frames + 1).
`KokoroTorch.reference` (the library's batch-1 forward) is the naive reference the tests compare this with.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .kokoro_shapes import SAMPLES_PER_FRAME, STYLE_HALF


class FrameLengths:
    """The batch's alignment frames per row, or None outside a batched call; masks cached per length (no syncs)."""

    def __init__(self) -> None:
        self.set(None)

    def set(self, frames: torch.Tensor | None) -> None:
        """frames: [B] long tensor of the running batch, or None."""
        self.frames, self._masks = frames, {}
        self._top = int(frames.max()) if frames is not None else 0

    def valid(self, length: int) -> torch.Tensor | None:
        if self.frames is None:
            return None
        return (length // self._top) * self.frames + (length % self._top)

    def mask(self, x: torch.Tensor) -> torch.Tensor | None:
        """[B, 1, L] float mask of x [B, C, L]'s valid positions."""
        if self.frames is None:
            return None
        length = x.shape[-1]
        if length not in self._masks:
            valid = self.valid(length).to(x.device)
            self._masks[length] = (torch.arange(length, device=x.device)[None, :] < valid[:, None]).to(x.dtype)[:, None, :]
        return self._masks[length]


class MaskedInstanceNorm(torch.nn.Module):
    """InstanceNorm1d (affine, eps, biased variance) over each row's valid positions only."""

    def __init__(self, norm: torch.nn.InstanceNorm1d, lengths: FrameLengths) -> None:
        super().__init__()
        self.weight, self.bias, self.eps, self.lengths = norm.weight, norm.bias, norm.eps, lengths

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.lengths.mask(x)
        if m is None:
            return torch.nn.functional.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)
        count = m.sum(-1, keepdim=True)
        mean = (x * m).sum(-1, keepdim=True) / count
        var = (((x - mean) * m) ** 2).sum(-1, keepdim=True) / count
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight[:, None] + self.bias[:, None]


def install_masks(net: torch.nn.Module) -> FrameLengths:
    """Make the frame-rate modules batch-safe (see the module docstring); returns the shared length holder."""
    lengths = FrameLengths()

    def zero_past_end(module, args):
        m = lengths.mask(args[0])
        return None if m is None else (args[0] * m, *args[1:])

    roots = [net.predictor.F0, net.predictor.N, net.predictor.F0_proj, net.predictor.N_proj, net.decoder]
    for root in roots:
        for module in list(root.modules()):
            if isinstance(module, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)):
                module.register_forward_pre_hook(zero_past_end)
            for name, child in list(module.named_children()):
                if isinstance(child, torch.nn.InstanceNorm1d):
                    setattr(module, name, MaskedInstanceNorm(child, lengths))
    return lengths


def _packed(lstm: torch.nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """x [B, T, C] -> [B, T, H] with each row's sequence ending at its length (a batch of one sees no padding)."""
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    return pad_packed_sequence(lstm(packed)[0], batch_first=True, total_length=x.shape[1])[0]


@torch.no_grad()
def forward(kt, ids: list, styles: list, speeds: list[float], seeds: list[int], durations: list | None = None) -> dict:
    """Rows of (ids [1, n + 2], style [1, 256], speed, seed) -> {"audio", "durations", "f0", "n"}: lists, one per row.

    `durations` (optional, [n + 2] ints per row) replaces the predicted ones: used to compare the frame side
    with another back end on equal alignments.
    """
    net, dev = kt.net, kt.device
    rows = [torch.as_tensor(np.asarray(i), dtype=torch.long).reshape(-1) for i in ids]
    tokens = torch.as_tensor([len(r) for r in rows], device=dev)
    b, t = len(rows), int(tokens.max())
    input_ids = torch.zeros(b, t, dtype=torch.long, device=dev)
    for i, r in enumerate(rows):
        input_ids[i, : len(r)] = r.to(dev)
    style = torch.cat([torch.as_tensor(np.asarray(s), dtype=torch.float32).reshape(1, -1) for s in styles]).to(dev)
    pad = torch.arange(t, device=dev)[None, :] >= tokens[:, None]  # True past a row's end
    s_pro, s_dec = style[:, STYLE_HALF:], style[:, :STYLE_HALF]

    bert = net.bert(input_ids, attention_mask=(~pad).int())
    d_en = net.bert_encoder(bert).transpose(-1, -2)
    d = net.predictor.text_encoder(d_en, s_pro, tokens, pad)  # [B, T, 640]
    x = _packed(net.predictor.lstm, d, tokens)
    speed = torch.as_tensor(speeds, dtype=torch.float32, device=dev)[:, None]
    dur = torch.round(torch.sigmoid(net.predictor.duration_proj(x)).sum(-1) / speed).clamp(min=1).long()
    if durations is not None:
        for i, given in enumerate(durations):
            dur[i, : len(rows[i])] = torch.as_tensor(np.asarray(given), device=dev).reshape(-1)
    dur = dur.masked_fill(pad, 0)
    frames = dur.sum(-1)
    n_frames = int(frames.max())
    aln = torch.zeros(b, t, n_frames, device=dev)  # one-hot alignment: token j covers dur[j] frames
    ends = dur.cumsum(-1)
    pos = torch.arange(n_frames, device=dev)[None, None, :]
    aln[((pos >= (ends - dur)[..., None]) & (pos < ends[..., None]))] = 1.0

    kt.lengths.set(frames)
    samples = [int(f) * SAMPLES_PER_FRAME for f in frames]
    sine, stft = kt.sine_gen, net.decoder.generator.stft
    sine.seeds, sine.lengths, stft.lengths = list(seeds), samples, samples
    try:
        en = d.transpose(-1, -2) @ aln  # [B, 640, F]
        shared = _packed(net.predictor.shared, en.transpose(-1, -2), frames).transpose(-1, -2)
        f0, n = shared, shared
        for block in net.predictor.F0:
            f0 = block(f0, s_pro)
        for block in net.predictor.N:
            n = block(n, s_pro)
        f0, n = net.predictor.F0_proj(f0).squeeze(1), net.predictor.N_proj(n).squeeze(1)  # [B, 2F]
        asr = net.text_encoder(input_ids, tokens, pad) @ aln
        audio = net.decoder(asr, f0, n, s_dec).reshape(b, -1)
    finally:
        kt.lengths.set(None)
        sine.lengths, stft.lengths = None, None
    return {"audio": [audio[i, : samples[i]] for i in range(b)],
            "durations": [dur[i, : len(rows[i])].cpu() for i in range(b)],
            "f0": [f0[i, : 2 * int(frames[i])].cpu() for i in range(b)], "n": [n[i, : 2 * int(frames[i])].cpu() for i in range(b)]}
