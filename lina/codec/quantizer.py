"""Single euclidean codebook: nearest-entry encoding and table-lookup decoding."""
from __future__ import annotations

import torch
from torch import nn

from lina.codec.config import QuantizerConfig


class Codebook(nn.Module):
    """`codebook [bins, dim]`: latent frames -> ids, ids -> latent frames."""

    def __init__(self, config: QuantizerConfig):
        super().__init__()
        self.codebook = nn.Parameter(torch.zeros(config.bins, config.dim), requires_grad=False)

    @property
    def bins(self) -> int:
        return self.codebook.shape[0]

    def encode(self, latent: torch.Tensor) -> torch.Tensor:
        """Nearest entry by euclidean distance: `[B, dim, T]` -> ids `[B, T]` (int64).

        The distance is expanded as |x|^2 - 2 x.e + |e|^2 over all frames flattened together, the
        same arithmetic as the original, so that near-ties round alike and ids match exactly.
        """
        batch, dim, frames = latent.shape
        flat = latent.transpose(1, 2).reshape(batch * frames, dim)
        table = self.codebook.to(flat.dtype)
        distance = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ table.t() + table.pow(2).sum(1)[None, :]
        return distance.argmin(dim=-1).view(batch, frames)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Ids `[B, T]` -> latent frames `[B, dim, T]`."""
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.bins):
            raise ValueError(f"codes must lie in [0, {self.bins}), got [{int(codes.min())}, {int(codes.max())}]")
        return nn.functional.embedding(codes, self.codebook).transpose(1, 2)
