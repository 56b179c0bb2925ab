"""Codec sizes and training settings for lina-codec-mini.

`MINI` keeps the released WavTokenizer layout (SEANet encoder, one 4096-entry codebook, Vocos
backbone with the attention pos-net, ISTFT head; 24 kHz, hop 320 = 75 codes/s) and shrinks the
widths: a 256-wide latent, a 1-layer LSTM, a 384-wide 6-block backbone. About 16 M parameters
(the released one has about 80 M): small enough to ship in the repo and to decode on a CPU.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from lina.codec.config import (
    BackboneConfig,
    CodecConfig,
    EncoderConfig,
    HeadConfig,
    QuantizerConfig,
)

MINI = CodecConfig(
    encoder=EncoderConfig(n_filters=32, dimension=256, lstm_layers=1),
    quantizer=QuantizerConfig(bins=4096, dim=256),
    backbone=BackboneConfig(input_channels=256, dim=384, intermediate_dim=1152, num_layers=6),
    head=HeadConfig(dim=384, n_fft=1280),
)

# For tests: every part present, a few thousand parameters.
TINY = CodecConfig(
    encoder=EncoderConfig(n_filters=4, dimension=32, lstm_layers=1),
    quantizer=QuantizerConfig(bins=64, dim=32),
    backbone=BackboneConfig(input_channels=32, dim=32, intermediate_dim=64, num_layers=1),
    head=HeadConfig(dim=32, n_fft=1280),
)

CONFIGS = {"mini": MINI, "tiny": TINY}


@dataclass(frozen=True)
class TrainConfig:
    """Optimization settings (the loss weights are those of HiFi-GAN / Vocos / WavTokenizer)."""

    segment_seconds: float = 1.6
    batch_size: int = 48
    learning_rate: float = 3e-4
    betas: tuple[float, float] = (0.8, 0.99)
    warmup_steps: int = 500
    # The cosine decay runs to this step; a run may stop earlier and resume later.
    total_steps: int = 14_000
    min_lr_ratio: float = 0.1
    # Mel-only steps before the discriminators join: the decoder first learns the rough spectrum.
    gan_start_step: int = 1_500
    mel_weight: float = 45.0
    adversarial_weight: float = 1.0
    feature_weight: float = 2.0
    commitment_weight: float = 1.0
    grad_clip: float = 1_000.0
    seed: int = 0
    # False: encoder and codebook stay frozen and only the decoder (backbone + head) trains, so the
    # codes a language model was trained on keep their meaning while the audio they decode to improves.
    train_encoder: bool = True
    # Discriminator families (lab.training.codec.discriminators.FAMILIES); () is a mel-only run.
    discriminators: tuple[str, ...] = ("mpd", "mrd")
    # "cosine": warmup then cosine decay to min_lr_ratio at total_steps. "constant": warmup then flat,
    # so that a run can be continued by the next one without a schedule that already ended.
    lr_schedule: str = "cosine"
    # Steps of the earlier runs this one continues (from the exported codec it started from): the
    # held-out curve is drawn against base_step + step.
    base_step: int = 0
    # Training seconds of those earlier runs (the model card reports GPU minutes of the lineage).
    base_seconds: float = 0.0
    # With train_encoder False: the id of the frozen encoder + codebook (lab.training.codec.freeze);
    # the trainer refuses to save a codec whose codes id moved.
    codes_id: str | None = None

    def __post_init__(self):
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        data = dict(data)
        for key in ("betas", "discriminators"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)


LR_SCHEDULES = ("cosine", "constant")

# Codec v2 phases (lab/notes/codec_v2.md). Runs of a phase continue one another: a constant learning rate
# after warm-up, so no run ends a schedule that the next would have to restart.
#   mel:  encoder + codebook + decoder, mel + commitment losses only (no discriminator): the codes.
#   gan:  the decoder alone (codes frozen) with MPD + MRD + multi-band complex STFT discriminators and
#         feature matching, from the first step (the decoder already knows the spectrum from `mel`).
PHASES = {
    "mel": TrainConfig(discriminators=(), lr_schedule="constant", learning_rate=3e-4, warmup_steps=500),
    "gan": TrainConfig(discriminators=("mpd", "mrd", "mbstft"), lr_schedule="constant", learning_rate=2e-4,
                       warmup_steps=200, gan_start_step=0, train_encoder=False),
}


def phase_config(name: str, **overrides) -> TrainConfig:
    """A phase's settings with some replaced (e.g. batch_size)."""
    if name not in PHASES:
        raise ValueError(f"unknown phase {name!r}; known: {', '.join(PHASES)}")
    return replace(PHASES[name], **overrides)
