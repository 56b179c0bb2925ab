"""Training-time codebook: k-means start, EMA updates and dead-code restarts.

The inference `Codebook` (lina.codec.quantizer) only looks entries up. Training moves its table
without gradients, the way VQ-VAE-2 / EnCodec / WavTokenizer do: each entry drifts to the running
mean of the latents assigned to it, which keeps every used entry on the data and is far more stable
than learning the table by gradient. Entries nobody picks ("dead") are re-seeded from current
latents, which is what keeps codebook usage high.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lab.training import distributed
from lina.codec.quantizer import Codebook


@dataclass(frozen=True)
class EMAConfig:
    decay: float = 0.99
    # Laplace smoothing of the cluster counts, so an entry's mean never divides by zero.
    epsilon: float = 1e-5
    # Batches of latents pooled before the k-means start: the table has thousands of entries and
    # one batch holds only a few thousand frames.
    init_batches: int = 8
    kmeans_iters: int = 15
    # An entry whose EMA count falls below this (about one pick per this-many-inverse batches) is re-seeded.
    dead_threshold: float = 0.05


class EMACodebook(nn.Module):
    """Wraps a `Codebook` whose table it updates in place; `forward(latent [B, D, T])`.

    Returns `(quantized [B, D, T], codes [B, T], commitment loss)`. `quantized` carries the
    straight-through gradient to the encoder. Before the k-means start (the first
    `init_batches` calls in training) latents pass through unquantized and the codes are -1.

    Under several processes (lab.training.distributed) the k-means pool and the EMA statistics take
    the latents of every rank, so all ranks keep one table: the one a single process would have.
    """

    def __init__(self, codebook: Codebook, config: EMAConfig = EMAConfig()):
        super().__init__()
        self.codebook = codebook
        self.config = config
        bins, dim = codebook.codebook.shape
        self.register_buffer("cluster_size", torch.zeros(bins))
        self.register_buffer("embed_sum", torch.zeros(bins, dim))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))
        self.register_buffer("restarts", torch.zeros((), dtype=torch.long))
        self._pool: list[Tensor] = []

    @property
    def table(self) -> Tensor:
        return self.codebook.codebook

    def forward(self, latent: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        flat = latent.detach().float().transpose(1, 2).reshape(-1, latent.shape[1])  # [N, D]
        if not bool(self.initialized):
            if not self.training:
                raise RuntimeError("the codebook was never initialized: train before encoding")
            self._pool.append(distributed.gather_rows(flat))
            if len(self._pool) >= self.config.init_batches:
                self._kmeans_init(torch.cat(self._pool))
                self._pool.clear()
            codes = torch.full(latent.shape[::2], -1, dtype=torch.long, device=latent.device)
            return latent, codes, latent.new_zeros(()).float()
        codes = self.nearest(flat)
        quantized = F.embedding(codes, self.table).view(latent.shape[0], latent.shape[2], -1).transpose(1, 2)
        if self.training:
            self._ema_update(distributed.gather_rows(flat), distributed.gather_rows(codes))
        commitment = F.mse_loss(latent.float(), quantized.detach().float())
        quantized = latent + (quantized.to(latent.dtype) - latent).detach()
        return quantized, codes.view(latent.shape[0], latent.shape[2]), commitment

    def nearest(self, flat: Tensor) -> Tensor:
        """`[N, D]` float32 -> ids `[N]`; chunked so the `[N, bins]` distance matrix stays bounded."""
        table = self.table.float()
        norms = table.pow(2).sum(1)
        out = []
        for chunk in flat.split(8192):
            out.append((norms[None, :] - 2 * chunk @ table.t()).argmin(dim=-1))
        return torch.cat(out)

    @torch.no_grad()
    def _kmeans_init(self, samples: Tensor) -> None:
        bins = self.table.shape[0]
        generator = torch.Generator(device="cpu").manual_seed(0)
        pick = torch.randint(len(samples), (bins,), generator=generator).to(samples.device)
        centers = samples[pick].clone()
        for _ in range(self.config.kmeans_iters):
            assign = self._assign(samples, centers)
            counts = torch.bincount(assign, minlength=bins).float()
            sums = torch.zeros_like(centers).index_add_(0, assign, samples)
            used = counts > 0
            centers[used] = sums[used] / counts[used, None]
        self.table.data.copy_(centers)
        self.cluster_size.fill_(1.0)
        self.embed_sum.copy_(centers)
        self.initialized.fill_(True)

    @staticmethod
    def _assign(samples: Tensor, centers: Tensor) -> Tensor:
        norms = centers.pow(2).sum(1)
        return torch.cat([(norms[None, :] - 2 * c @ centers.t()).argmin(-1) for c in samples.split(8192)])

    @torch.no_grad()
    def _ema_update(self, flat: Tensor, codes: Tensor) -> None:
        cfg, bins = self.config, self.table.shape[0]
        counts = torch.bincount(codes, minlength=bins).float()
        sums = torch.zeros_like(self.embed_sum).index_add_(0, codes, flat)
        self.cluster_size.mul_(cfg.decay).add_(counts, alpha=1 - cfg.decay)
        self.embed_sum.mul_(cfg.decay).add_(sums, alpha=1 - cfg.decay)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + cfg.epsilon) / (total + bins * cfg.epsilon) * total
        self.table.data.copy_(self.embed_sum / smoothed[:, None])
        dead = self.cluster_size < cfg.dead_threshold
        n_dead = int(dead.sum())
        if n_dead:
            # Re-seed on random current latents (with a little noise so twins split apart).
            pick = torch.randint(len(flat), (n_dead,), device=flat.device)
            fresh = flat[pick] + 1e-3 * flat.std() * torch.randn_like(flat[pick])
            self.table.data[dead] = fresh
            self.embed_sum[dead] = fresh
            self.cluster_size[dead] = 1.0
            self.restarts += n_dead

    def usage(self, codes: Tensor) -> float:
        """Fraction of the table's entries that appear in `codes` (any shape; -1 ignored)."""
        valid = codes[codes >= 0]
        return float(torch.unique(valid).numel()) / self.table.shape[0]
