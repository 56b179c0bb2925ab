"""Bytes a decoding step must move, and the speed that allows: the memory floor of decoding.

Computed from the model's hyper-parameters (:class:`lina.config.LinaConfig`, pure Python: no torch),
per step of a batch of ``B`` rows:

* weights the step reads, once per step whatever the batch, in the run's dtype: every GLA block
  (encoder, position net, decoder), the cross-attention's query side (``q``, ``ln_q``), the output
  head, plus the ``B`` rows of the audio embedding it looks up (the text encoder, the text keys and
  values and the position table are computed once per utterance, not per step);
* GLA: per row, the recurrent matrices (float32) read and written once, the short-convolution windows
  (run dtype) read and written once, and the text context read (keys, values, positions twice: the two
  blind cross-attentions), ``text_tokens`` of each;
* self-attention baseline (`lab.bench.sa_baseline`): the same weights for its blocks (qkv, out, SwiGLU,
  norms), cross ``q``/``out``, head and embedding rows; per row the KV cache read (all positions so far:
  the mean over a generation of ``n`` tokens is ``(n + 1) / 2`` positions) plus the new position
  appended, and the text keys and values of its cross-attention.

Activations (``[B, d]`` vectors, the ``[B, V]`` logits, sampling) are left out: at most a few MB. The
floor is ``bytes / bandwidth``: the copy bandwidth `lab.bench.latency` measured (``bandwidth_gbs``, read +
write counted), else :data:`FALLBACK_BANDWIDTH` (3.0e12 B/s, an H100's HBM3 as measured by the speed benches).
"""
from __future__ import annotations

from lina.config import LinaConfig

FALLBACK_BANDWIDTH = 3.0e12  # B/s
TEXT_TOKENS = 120  # lab.bench.throughput's text length
STATE_BYTES = 4    # the recurrent state is float32 whatever the weights' dtype
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2, "float64": 8}


def dtype_bytes(dtype: str) -> int:
    """``"torch.bfloat16"`` or ``"bfloat16"`` -> 2."""
    return DTYPE_BYTES[str(dtype).removeprefix("torch.")]


def gla_block_params(cfg: LinaConfig) -> int:
    """Parameters of one GLA block (`lina.layers.GLABlock`)."""
    d, dk, dv, r, f = cfg.d_model, cfg.key_dim, cfg.value_dim, cfg.gate_low_rank, cfg.ffn_dim
    mixer = (d * (2 * dk + 2 * dv) + d * r + r * dk + dk + dv * d + (2 * dk + dv) * cfg.conv_size
             + cfg.head_v_dim)
    return 4 * d + mixer + d * 2 * f + 2 * f + f * d + d  # two LayerNorms, mixer, SwiGLU


def gla_weight_params(cfg: LinaConfig) -> int:
    """Parameters every GLA step reads regardless of batch (embedding rows excluded)."""
    d = cfg.d_model
    return (2 * cfg.n_layer + 1) * gla_block_params(cfg) + d * d + d + 2 * d + d * cfg.n_audio_vocab


def sa_weight_params(cfg: LinaConfig) -> int:
    """Parameters every step of `lab.bench.sa_baseline.SADecoder` reads (embedding rows excluded)."""
    d, f = cfg.d_model, cfg.ffn_dim
    block = 4 * d + 3 * d * d + d * d + d * 2 * f + 2 * f + f * d + d
    return (2 * cfg.n_layer + 1) * block + 2 * d * d + d * cfg.n_audio_vocab


def gla_row_bytes(cfg: LinaConfig, dtype: str, text_tokens: int = TEXT_TOKENS) -> dict[str, int]:
    """Per-row bytes of one GLA step: recurrent state, conv windows (both read + written), text context."""
    w, layers = dtype_bytes(dtype), 2 * cfg.n_layer + 1
    recurrent = layers * cfg.n_heads * cfg.head_k_dim * cfg.head_v_dim * STATE_BYTES
    conv = layers * (2 * cfg.key_dim + cfg.value_dim) * (cfg.conv_size - 1) * w
    return {"recurrent": 2 * recurrent, "conv": 2 * conv, "text": 4 * text_tokens * cfg.d_model * w,
            "embedding": cfg.d_model * w}


def sa_row_bytes(cfg: LinaConfig, dtype: str, tokens: int, text_tokens: int = TEXT_TOKENS) -> dict[str, float]:
    """Per-row bytes of one SA step, the KV cache read averaged over a generation of ``tokens``."""
    w, layers = dtype_bytes(dtype), 2 * cfg.n_layer + 1
    position = layers * 2 * cfg.d_model * w  # K and V of one position in every block
    return {"kv_read": position * (tokens + 1) / 2, "kv_append": position, "text": 2 * text_tokens * cfg.d_model * w,
            "embedding": cfg.d_model * w}


def step_bytes(cfg: LinaConfig, dtype: str, batch: int, tokens: int, model: str = "gla",
               text_tokens: int = TEXT_TOKENS) -> dict[str, float]:
    """``{"weights", "per_row", "total"}`` bytes of one decoding step (``model``: ``gla`` or ``sa``)."""
    w = dtype_bytes(dtype)
    if model == "gla":
        weights, row = gla_weight_params(cfg) * w, gla_row_bytes(cfg, dtype, text_tokens)
    elif model == "sa":
        weights, row = sa_weight_params(cfg) * w, sa_row_bytes(cfg, dtype, tokens, text_tokens)
    else:
        raise ValueError(f"model {model!r}: gla or sa")
    per_row = sum(row.values())
    return {"weights": weights, "per_row": per_row, "total": weights + batch * per_row, **row}


def floor(cfg: LinaConfig, dtype: str, batch: int, tokens: int, model: str = "gla",
          bandwidth: float | None = None, text_tokens: int = TEXT_TOKENS) -> dict[str, float]:
    """Bytes per step, floor ms/step and floor tokens/s at ``bandwidth`` B/s (default the fallback)."""
    bw = bandwidth or FALLBACK_BANDWIDTH
    total = step_bytes(cfg, dtype, batch, tokens, model, text_tokens)["total"]
    seconds = total / bw
    return {"bytes": total, "ms_per_step": 1000 * seconds, "tokens_per_s": batch / seconds, "bandwidth": bw}


def config_of(doc: dict | None) -> LinaConfig:
    """The config a result file records (``config``), else the released size it benchmarks."""
    data = (doc or {}).get("config")
    return LinaConfig.from_dict(data) if data else LinaConfig(model_id="random-released-size")


def bandwidth_of(found: dict) -> tuple[float, str]:
    """``(B/s, where from)``: the copy bandwidth of a latency file, else the fallback."""
    for key in ("latency", "latency_fla"):
        gbs = (found.get(key) or {}).get("bandwidth_gbs")
        if gbs:
            return gbs * 1e9, f"{key}.json copy bandwidth"
    return FALLBACK_BANDWIDTH, "fallback 3.0e12 B/s (H100 HBM3 copy bandwidth measured by the speed benches)"


def table_rows(cfg: LinaConfig, dtype: str, batches=(1, 16, 64, 256), lengths=(500, 1500, 3000),
               bandwidth: float | None = None, text_tokens: int = TEXT_TOKENS) -> list[list[str]]:
    rows = []
    for b in batches:
        for n in lengths:
            g, s = (floor(cfg, dtype, b, n, m, bandwidth, text_tokens) for m in ("gla", "sa"))
            rows.append([str(b), str(n), f"{g['bytes'] / 1e6:,.1f}", f"{g['ms_per_step']:.3f}",
                         f"{g['tokens_per_s']:,.0f}", f"{s['bytes'] / 1e6:,.1f}", f"{s['ms_per_step']:.3f}",
                         f"{s['tokens_per_s']:,.0f}", f"{s['tokens_per_s'] and g['tokens_per_s'] / s['tokens_per_s']:.2f}"])
    return rows


FLOOR_HEAD = ["batch", "tokens", "GLA MB/step", "GLA floor ms", "GLA floor tok/s", "SA MB/step", "SA floor ms",
              "SA floor tok/s", "GLA / SA floor"]


def main(argv: list[str] | None = None) -> str:
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--bandwidth", type=float, help=f"B/s (default {FALLBACK_BANDWIDTH:.1e})")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64, 256])
    ap.add_argument("--lengths", type=int, nargs="+", default=[500, 1500, 3000])
    args = ap.parse_args(argv)
    cfg = config_of(None)
    rows = table_rows(cfg, args.dtype, args.batches, args.lengths, args.bandwidth)
    bw = args.bandwidth or FALLBACK_BANDWIDTH
    lines = [(f"released size, {args.dtype}, {bw / 1e12:.2f} TB/s; GLA weights "
              f"{gla_weight_params(cfg) * dtype_bytes(args.dtype) / 1e6:.1f} MB, per row "
              f"{step_bytes(cfg, args.dtype, 1, 1)['per_row'] / 1e6:.2f} MB"), "",
             "| " + " | ".join(FLOOR_HEAD) + " |", "|" + "---|" * len(FLOOR_HEAD)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
