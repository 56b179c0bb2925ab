"""What every codec discriminator returns, and the activation slope they share.

Its own module so that `discriminators` (which builds every family) and `stft_discriminator`
(one family) both take these from below instead of from each other.
"""
from __future__ import annotations

from torch import Tensor

# (logits, feature maps): one discriminator's verdict on one batch.
DiscriminatorOutput = tuple[Tensor, list[Tensor]]

# Slope of every leaky ReLU (HiFi-GAN / UnivNet value).
LEAKY_SLOPE = 0.1
