"""One codec training run: mel L1 + commitment, and GAN (the discriminator families of the config), resumable.

State lives in `RUN/last.pt` (codec, EMA codebook, discriminators, both optimizers, step, RNG):
a run that stops on its time budget, or on SIGTERM, saves and a rerun with the same `RUN` continues.
Logs go to `RUN/log.jsonl`, one JSON object every `log_every` steps; held-out evaluations (if an
evaluator is given) to `RUN/eval.jsonl` (lab.training.codec.eval_hook).

Several processes (torchrun, lab.training.distributed): each rank trains on its share of the global
batch (`batch_size` / processes segments), the gradients of both optimizers are averaged over the
ranks and the EMA codebook pools every rank's latents, so a step is the step of one process on the
whole batch; rank 0 saves, logs and evaluates.
"""
from __future__ import annotations

import json
import math
import signal
import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import Tensor, nn

from lab.training import distributed
from lab.training.codec.configs import TrainConfig
from lab.training.codec.discriminators import Discriminators
from lab.training.codec.ema_codebook import EMACodebook
from lab.training.codec.freeze import check_frozen, codes_id
from lab.training.codec.losses import (
    MultiScaleMelLoss,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)
from lina.codec.codec import Codec
from lina.codec.config import CodecConfig

CHECKPOINT = "last.pt"
LOG = "log.jsonl"


def init_for_training(codec: Codec) -> Codec:
    """Starting values the inference modules leave to their checkpoints: unit AdaLayerNorm scales,
    zero shifts, and Vocos' ConvNeXt layer scale of 1 / depth (keeps the residual stream tame)."""
    for module in codec.backbone.modules():
        if hasattr(module, "scale") and hasattr(module, "shift"):
            nn.init.ones_(module.scale.weight)
            nn.init.zeros_(module.shift.weight)
    for block in codec.backbone.convnext:
        nn.init.constant_(block.gamma, 1.0 / len(codec.backbone.convnext))
    return codec


@dataclass
class Trainer:
    """Everything a step touches. Build with `Trainer.create`, restore with `load`."""

    codec: Codec
    ema: EMACodebook
    discriminators: Discriminators
    mel_loss: MultiScaleMelLoss
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer | None  # None without discriminators (a mel-only run)
    config: TrainConfig
    step: int = 0
    seconds: float = 0.0  # wall-clock seconds spent in train_step by this run (saved, so resumes add up)

    @classmethod
    def create(cls, codec_config: CodecConfig, config: TrainConfig, device: torch.device) -> Trainer:
        torch.manual_seed(config.seed)
        codec = init_for_training(Codec(codec_config)).to(device).train()
        ema = EMACodebook(codec.quantizer).to(device).train(config.train_encoder)
        discriminators = Discriminators(names=config.discriminators).to(device).train()
        mel_loss = MultiScaleMelLoss(sample_rate=codec_config.sample_rate).to(device)
        trained = ("backbone.", "head.") if not config.train_encoder else ("",)
        generator_params = [p for n, p in codec.named_parameters()
                            if not n.startswith("quantizer.") and n.startswith(trained)]
        opt_g = torch.optim.AdamW(generator_params, lr=config.learning_rate, betas=config.betas)
        opt_d = (torch.optim.AdamW(discriminators.parameters(), lr=config.learning_rate, betas=config.betas)
                 if config.discriminators else None)
        return cls(codec, ema, discriminators, mel_loss, opt_g, opt_d, config)

    @classmethod
    def warm_start(cls, codec: Codec, config: TrainConfig, device: torch.device) -> Trainer:
        """A new run (step 0, fresh discriminators and optimizers) from an exported codec's weights;
        its codebook counts as already initialized, so no k-means start replaces the trained table.
        A decoder-only config gets the codec's codes id, checked at every save."""
        if not config.train_encoder and config.codes_id is None:
            config = replace(config, codes_id=codes_id(codec.float()))
        trainer = cls.create(codec.config, config, device)
        trainer.codec.load_state_dict(codec.float().state_dict())
        with torch.no_grad():
            trainer.ema.cluster_size.fill_(1.0)
            trainer.ema.embed_sum.copy_(trainer.ema.table.float())
            trainer.ema.initialized.fill_(True)
        return trainer

    @property
    def device(self) -> torch.device:
        return self.codec.device

    def learning_rate(self) -> float:
        """Linear warmup, then flat ("constant") or cosine decay to `min_lr_ratio` at `total_steps` (flat after)."""
        c = self.config
        if self.step < c.warmup_steps:
            return c.learning_rate * (self.step + 1) / c.warmup_steps
        if c.lr_schedule == "constant":
            return c.learning_rate
        progress = min(1.0, (self.step - c.warmup_steps) / max(1, c.total_steps - c.warmup_steps))
        return c.learning_rate * (c.min_lr_ratio + (1 - c.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))

    def reconstruct(self, wav: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """`wav [B, S]` (S a multiple of the hop) -> audio `[B, S]`, codes `[B, S / hop]`, commitment."""
        if self.config.train_encoder:
            latent = self.codec.encoder(wav.unsqueeze(1))
            quantized, codes, commitment = self.ema(latent)
        else:
            # Frozen codes: the encoder runs in float32 outside autocast, as Codec.encode does, so the
            # decoder trains on exactly the codes the LM sees (bf16 latents would flip near-ties).
            with torch.no_grad(), torch.autocast(self.device.type, enabled=False):
                latent = self.codec.encoder(wav.float().unsqueeze(1))
                quantized, codes, commitment = self.ema(latent)
        audio = self.codec.head(self.codec.backbone(quantized))
        return audio, codes, commitment

    def train_step(self, wav: Tensor) -> dict[str, float]:
        """One generator (and, once the GAN is on, one discriminator) update on `wav [B, S]`."""
        c = self.config
        lr = self.learning_rate()
        for group in (*self.opt_g.param_groups, *(self.opt_d.param_groups if self.opt_d else ())):
            group["lr"] = lr
        use_gan = bool(c.discriminators) and self.step >= c.gan_start_step
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda")
        wav = wav.to(self.device)
        with autocast:
            audio, codes, commitment = self.reconstruct(wav)
        stats: dict[str, float] = {"lr": lr}
        if use_gan:
            with autocast:
                d_loss = discriminator_loss(self.discriminators(wav), self.discriminators(audio.detach()))
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            distributed.average_gradients(self.discriminators.parameters())
            nn.utils.clip_grad_norm_(self.discriminators.parameters(), c.grad_clip)
            self.opt_d.step()
            stats["d_loss"] = float(d_loss.detach())
        mel = self.mel_loss(audio, wav)
        loss = c.mel_weight * mel + c.commitment_weight * commitment
        if use_gan:
            with autocast:
                with torch.no_grad():  # the real maps are only targets (feature matching detaches them)
                    real = self.discriminators(wav)
                fake = self.discriminators(audio)
                adversarial = generator_adversarial_loss(fake)
                features = feature_matching_loss(real, fake)
            loss = loss + c.adversarial_weight * adversarial + c.feature_weight * features
            stats.update(adv=float(adversarial.detach()), fm=float(features.detach()))
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        distributed.average_gradients(self.opt_g.param_groups[0]["params"])
        stats["grad_norm"] = float(nn.utils.clip_grad_norm_(self.opt_g.param_groups[0]["params"], c.grad_clip))
        self.opt_g.step()
        self.step += 1
        stats.update(loss=float(loss.detach()), mel=float(mel.detach()), commit=float(commitment.detach()),
                     usage=self.ema.usage(codes), restarts=int(self.ema.restarts))
        return _mean_over_ranks(stats)

    # --- persistence ---------------------------------------------------------------------------

    def state_dict(self) -> dict:
        return {
            "codec_config": self.codec.config.to_dict(), "train_config": self.config.to_dict(),
            "codec": self.codec.state_dict(), "ema": self.ema.state_dict(),
            "discriminators": self.discriminators.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict() if self.opt_d else None,
            "step": self.step, "seconds": self.seconds,
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state() if self.device.type == "cuda" else None,
        }

    def save(self, run: Path) -> None:
        if not distributed.current().is_main:
            return
        check_frozen(self.codec, self.config.codes_id)
        run.mkdir(parents=True, exist_ok=True)
        tmp = run / (CHECKPOINT + ".tmp")
        torch.save(self.state_dict(), tmp)
        tmp.replace(run / CHECKPOINT)  # atomic: a kill mid-save leaves the previous checkpoint

    @classmethod
    def load(cls, run: Path, device: torch.device) -> Trainer:
        state = torch.load(run / CHECKPOINT, map_location=device, weights_only=True)
        trainer = cls.create(CodecConfig.from_dict(state["codec_config"]),
                             TrainConfig.from_dict(state["train_config"]), device)
        trainer.codec.load_state_dict(state["codec"])
        trainer.ema.load_state_dict(state["ema"])
        trainer.discriminators.load_state_dict(state["discriminators"])
        trainer.opt_g.load_state_dict(state["opt_g"])
        if trainer.opt_d is not None:
            trainer.opt_d.load_state_dict(state["opt_d"])
        trainer.step = state["step"]
        trainer.seconds = float(state.get("seconds", 0.0))  # checkpoints before codec v2 have none
        torch.set_rng_state(state["rng"].cpu())
        if state["cuda_rng"] is not None and device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"].cpu())
        return trainer


def _mean_over_ranks(stats: dict[str, float]) -> dict[str, float]:
    """Each logged number as the mean over the ranks (the loss of the global batch); counts stay."""
    world = distributed.current()
    if not world.active:
        return stats
    keys = [k for k in stats if k not in ("lr", "grad_norm", "restarts")]  # equal on every rank already
    means = distributed.all_sum([stats[k] for k in keys])
    return {**stats, **{k: v / world.size for k, v in zip(keys, means)}}


def train(trainer: Trainer, batches, run: Path, max_seconds: float, max_steps: int | None = None,
          log_every: int = 50, save_every_seconds: float = 120.0, log=print, evaluator=None) -> Trainer:
    """Step through `batches` (an iterator of `[B, S]`) until the time or step budget; save on exit.

    `evaluator` (an `eval_hook.HeldoutEval`, optional) scores the held-out clips when the step is one
    of its multiples, at the start of a warm-started run, and at the end if the last step was not scored.
    """
    run.mkdir(parents=True, exist_ok=True)
    main = distributed.current().is_main
    if not main:  # rank 0 logs and scores the held-out clips; the others wait in the next all-reduce
        log, evaluator = (lambda line: None), None
    stop = {"signal": False}
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.update(signal=True))
    start = last_save = time.time()
    first_step, window, window_start = trainer.step, [], time.time()

    def evaluate() -> None:
        row = evaluator(trainer)
        log("eval " + " ".join(f"{k}={v}" for k, v in row.items() if k not in ("fingerprint", "codes_id")))

    if evaluator is not None and (trainer.step or trainer.config.base_step) and trainer.step not in evaluator.logged_steps():
        evaluate()
    try:
        with (run / LOG).open("a", encoding="utf-8") if main else nullcontext() as log_file:
            for wav in batches:
                # agreed by all ranks: one rank's clock or signal must not leave the others waiting
                if distributed.any_true(stop["signal"] or time.time() - start > max_seconds):
                    break
                if max_steps is not None and trainer.step - first_step >= max_steps:
                    break
                step_start = time.time()
                window.append(trainer.train_step(wav))
                trainer.seconds += time.time() - step_start
                if trainer.step % log_every == 0:
                    if main:
                        mean = {k: sum(s.get(k, 0.0) for s in window) / len(window) for k in window[-1]}
                        mean.update(step=trainer.step, elapsed=round(time.time() - start, 1),
                                    steps_per_s=round(len(window) / (time.time() - window_start), 2))
                        log_file.write(json.dumps(mean) + "\n")
                        log_file.flush()
                        log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in mean.items()))
                    window, window_start = [], time.time()
                if evaluator is not None and evaluator.due(trainer.step):
                    evaluate()
                if time.time() - last_save > save_every_seconds:
                    trainer.save(run)
                    last_save = time.time()
        if (evaluator is not None and not stop["signal"] and trainer.step > first_step
                and trainer.step not in evaluator.logged_steps()):
            evaluate()
    finally:
        trainer.save(run)
        signal.signal(signal.SIGTERM, previous)
    distributed.barrier()  # rank 0's last save is on disk when any rank returns
    return trainer
