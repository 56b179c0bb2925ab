"""Where a codec loses quality: the same clips through the whole codec and through parts of it.

Variants, each scored against the input clip (PESQ-wb, STOI, log-mel L1, SNR, voicing share):
  `codec`        encode -> nearest codebook entry -> decode: what the LM's codes sound like;
  `unquantized`  the encoder's latent straight into the decoder (codebook bypassed): the most the
                 decoder can give from what the encoder keeps. The decoder was trained on codebook
                 entries only, so a latent off the table is slightly out of its distribution: a lower
                 bound of what a decoder trained on these latents would reach;
  `istft`        the input through the ISTFT head's own analysis/synthesis (same window, hop and
                 "same" framing, exact spectrum): whether the head's representation itself limits.
Reading: `unquantized` ~ `codec` -> the codebook costs little, the decoder (or the encoder's latent) is
the limit; `unquantized` >> `codec` -> the codebook is. Also reported: the codebook's relative
quantization error ||z - q||^2 / ||z||^2 and the share of the table the clips use.
"""
from __future__ import annotations

import numpy as np
import torch

from lab.training.codec.evaluate import mean_scores, score_pair
from lina.codec.codec import Codec
from lina.codec.istft_head import istft_same

VARIANTS = ("codec", "unquantized", "istft")


def stft_same(wav: torch.Tensor, window: torch.Tensor, hop: int) -> torch.Tensor:
    """Analysis matching `istft_same`: `wav [B, S]` -> complex `[B, n_fft / 2 + 1, ceil(S / hop)]`.

    Frame t covers samples [t * hop - trim, t * hop - trim + n_fft) with trim = (n_fft - hop) / 2,
    zero outside the clip, so that `istft_same` of the result returns `wav` (zero-padded to T * hop).
    """
    n_fft = window.shape[0]
    trim = (n_fft - hop) // 2
    frames = -(-wav.shape[1] // hop)
    right = (frames - 1) * hop + n_fft - trim - wav.shape[1]
    padded = torch.nn.functional.pad(wav, (trim, right))
    return torch.fft.rfft(padded.unfold(-1, n_fft, hop) * window, dim=-1).transpose(1, 2)


@torch.inference_mode()
def variants(codec: Codec, audio: np.ndarray) -> tuple[dict[str, np.ndarray], dict]:
    """`audio [S]` -> ({variant: decoded [S]}, latent stats {rel_quant_error, codes})."""
    wav = torch.from_numpy(audio).float()[None].to(codec.device)
    length = wav.shape[1]
    latent = codec.encoder(wav.unsqueeze(1))  # [1, D, T]
    codes = codec.quantizer.encode(latent)  # [1, T]
    quantized = codec.quantizer.decode(codes)
    decode = lambda features: codec.head(codec.backbone(features))[0, :length]  # noqa: E731
    window = codec.head.window.float()
    out = {
        "codec": decode(quantized),
        "unquantized": decode(latent),
        "istft": istft_same(stft_same(wav, window, codec.hop_length), window, codec.hop_length)[0, :length],
    }
    error = float((latent - quantized).pow(2).sum() / latent.pow(2).sum().clamp(min=1e-12))
    stats = {"rel_quant_error": error, "codes": codes[0].cpu().numpy()}
    return {k: v.float().cpu().numpy() for k, v in out.items()}, stats


def ceiling(codec: Codec, clips: dict[str, np.ndarray], groups: dict[str, str] | None = None, log=None) -> dict:
    """Scores of every variant on every clip, their means (overall and per group, e.g. engine)."""
    codec = codec.float().eval()
    per_clip: dict[str, dict] = {}
    all_codes = []
    for name, audio in clips.items():
        decoded, stats = variants(codec, audio)
        all_codes.append(stats.pop("codes"))
        per_clip[name] = {v: score_pair(audio, decoded[v], codec.sample_rate) for v in VARIANTS}
        per_clip[name]["rel_quant_error"] = stats["rel_quant_error"]
        if log:
            row = per_clip[name]
            log(f"{name}: " + "  ".join(f"{v} pesq={row[v]['pesq_wb'] or float('nan'):.2f} "
                                         f"stoi={row[v]['stoi']:.3f}" for v in VARIANTS))

    def means(names: list[str]) -> dict:
        out = {v: mean_scores({n: per_clip[n][v] for n in names}) for v in VARIANTS}
        out["rel_quant_error"] = round(float(np.mean([per_clip[n]["rel_quant_error"] for n in names])), 4)
        out["clips"] = len(names)
        return out

    used = np.unique(np.concatenate(all_codes)).size if all_codes else 0
    report = {"mean": {**means(list(per_clip)), "usage": round(used / codec.quantizer.bins, 4)}, "by_group": {}}
    for group in sorted(set((groups or {}).values())):
        report["by_group"][group] = means([n for n in per_clip if groups[n] == group])
    report["clips"] = per_clip
    return report


def table(report: dict) -> str:
    """Markdown table of the means: one row per (group, variant)."""
    lines = ["| clips | variant | PESQ-wb | STOI | log-mel L1 | SNR dB | voicing (source) |",
             "|---|---|---|---|---|---|---|"]
    sections = [("all", report["mean"]), *report["by_group"].items()]
    for name, means in sections:
        for v in VARIANTS:
            m = means[v]
            pesq = "n/a" if m["pesq_wb"] is None else f"{m['pesq_wb']:.2f}"
            voicing = "n/a" if m["voicing"] is None else f"{100 * m['voicing']:.0f} % ({100 * m['voicing_ref']:.0f} %)"
            lines.append(f"| {name} ({means['clips']}) | {v} | {pesq} | {m['stoi']:.3f} | {m['mel_l1']:.3f} | "
                         f"{m['snr_db']:.1f} | {voicing} |")
    return "\n".join(lines)
