"""Int8 storage of shipped weights: bounded error, small tensors kept, loaders accept both formats."""
import pytest
import torch
from safetensors.torch import load_file

from lina.int8_weights import (
    INT8_SUFFIX,
    SCALE_SUFFIX,
    dequantize_state,
    quantize_file,
    quantize_state,
)


def test_round_trip_error_is_half_a_step_per_row():
    torch.manual_seed(0)
    state = {"w": torch.randn(64, 32, 3) * torch.logspace(-2, 1, 64)[:, None, None], "bias": torch.randn(64),
             "ids": torch.arange(5)}
    packed = quantize_state(state)
    assert packed["w" + INT8_SUFFIX].dtype == torch.int8 and packed["w" + SCALE_SUFFIX].shape == (64,)
    assert packed["bias"].dtype == torch.float16 and torch.equal(packed["ids"], state["ids"])
    back = dequantize_state(packed)
    assert set(back) == set(state)
    step = packed["w" + SCALE_SUFFIX].float()  # one step of a row: its absmax / 127 (fp16)
    assert torch.allclose(step, state["w"].abs().amax(dim=(1, 2)) / 127, rtol=1e-3)
    error = (back["w"] - state["w"]).abs().amax(dim=(1, 2))
    assert bool((error <= 0.5 * step + 1e-6).all())  # each row keeps its own precision


def test_plain_files_pass_through_and_broken_scales_are_refused():
    plain = {"w": torch.randn(8, 8)}
    assert torch.equal(dequantize_state(plain)["w"], plain["w"])
    with pytest.raises(ValueError, match="scale"):
        dequantize_state({"w" + INT8_SUFFIX: torch.zeros(8, 8, dtype=torch.int8), "w" + SCALE_SUFFIX: torch.ones(3)})


def test_quantized_codec_folder_loads_like_the_original(tmp_path):
    from lina.codec.codec import Codec
    from lina.pretrained import tiny_random

    codec = tiny_random().codec
    codec.save_pretrained(tmp_path)
    reference = codec.decode(torch.randint(0, codec.quantizer.bins, (1, 12)))
    quantize_file(str(tmp_path / "codec.safetensors"))
    assert any(k.endswith(INT8_SUFFIX) for k in load_file(str(tmp_path / "codec.safetensors")))
    loaded = Codec.from_pretrained(tmp_path)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    torch.manual_seed(1)
    codes = torch.randint(0, codec.quantizer.bins, (1, 12))
    assert torch.allclose(loaded.decode(codes), codec.decode(codes), atol=0.05 * float(reference.abs().max()) + 1e-4)
