"""Two facts of Kokoro-82M's layout that both the model builder (`kokoro_torch`) and the batched forward
(`kokoro_batch`) read; here so that kokoro_torch -> kokoro_batch runs one way."""
from __future__ import annotations

STYLE_HALF = 128  # style[:, :128] conditions the decoder, style[:, 128:] the prosody predictor
SAMPLES_PER_FRAME = 600  # one alignment frame = 2 F0 frames = 600 samples at 24 kHz
