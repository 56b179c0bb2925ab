"""Voice files: both layouts, metadata, and refusal of voices that do not fit the model."""
import pytest
import torch
from safetensors.torch import save_file

from lina.config import LinaConfig
from lina.voice import RELEASED_SCALE, Voice, VoiceError

CFG = LinaConfig(d_model=32, n_layer=2, n_heads=2, text_layers=1, text_heads=2, n_text_vocab=40, n_codebook=64,
                 model_id="tiny-test")


def _voice(rank=1, **meta):
    g = torch.Generator().manual_seed(0)
    return Voice(torch.randn(4, rank, 2, 16, generator=g), torch.randn(4, rank, 2, 32, generator=g), **meta)


def test_roundtrip_keeps_tensors_and_metadata(tmp_path):
    v = _voice(rank=2, scale=0.05, name="Ava", description="warm", style="happy", model_id="tiny-test")
    v.save(tmp_path / "v.safetensors")
    w = Voice.load(tmp_path / "v.safetensors")
    assert torch.equal(v.k, w.k) and torch.equal(v.v, w.v)
    assert (w.scale, w.name, w.description, w.style, w.model_id, w.rank) == (0.05, "Ava", "warm", "happy", "tiny-test", 2)
    for a, b in zip(v.initial_states(3), w.initial_states(3)):
        assert a.shape == (3, 2, 16, 32)
        torch.testing.assert_close(a, b)


def test_initial_state_formula():
    v = _voice(rank=3)
    s0 = v.initial_states(1)[1][0]  # layer 1
    expected = RELEASED_SCALE * sum(torch.outer(v.k[1, r, 0], v.v[1, r, 0]) for r in range(3))
    torch.testing.assert_close(s0[0], expected)


def test_original_layout_reads_with_released_scale(reference_dir):
    v = Voice.load(reference_dir / "lina_cli_voice_rank1.safetensors")
    assert v.scale == RELEASED_SCALE and v.rank == 1 and v.n_layers == 4 and v.model_id == ""


def test_check_refuses_other_shapes_and_models():
    _voice(model_id="tiny-test").check(CFG)
    with pytest.raises(VoiceError, match="model"):
        _voice(model_id="another-model").check(CFG)
    wrong = Voice(torch.zeros(6, 1, 2, 16), torch.zeros(6, 1, 2, 32))
    with pytest.raises(VoiceError, match="layers"):
        wrong.check(CFG)


@pytest.mark.parametrize("tensors, message", [
    ({"layer0_k": torch.zeros(1, 1, 2, 16, 1)}, "layer"),
    ({"layer0_k": torch.zeros(1, 1, 2, 16, 1, dtype=torch.int32), "layer0_v": torch.zeros(1, 1, 2, 1, 32)}, "floating"),
    ({"layer0_k": torch.zeros(1, 1, 2, 16), "layer0_v": torch.zeros(1, 1, 2, 1, 32)}, "shapes"),
    ({"layer0_k": torch.full((1, 1, 2, 16, 1), float("nan")), "layer0_v": torch.zeros(1, 1, 2, 1, 32)}, "finite"),
    ({"weights": torch.zeros(3)}, "unexpected"),
])
def test_malformed_voice_files(tmp_path, tensors, message):
    path = tmp_path / "bad.safetensors"
    save_file(tensors, str(path))
    with pytest.raises(VoiceError, match=message):
        Voice.load(path)


@pytest.mark.parametrize("blob", [b"", b"\x00" * 16, b"\xff\xff\xff\xff\xff\xff\xff\x7f{}", b"PK\x03\x04 pickle?"])
def test_non_safetensors_files(tmp_path, blob):
    path = tmp_path / "x.safetensors"
    path.write_bytes(blob)
    with pytest.raises(VoiceError):
        Voice.load(path)


def test_flipped_bytes_in_tensor_data_are_refused(tmp_path):
    path = tmp_path / "v.safetensors"
    _voice(rank=2, name="Ava").save(path)
    data = bytearray(path.read_bytes())
    header = 8 + int.from_bytes(data[:8], "little")
    rng = torch.Generator().manual_seed(1)
    for i in torch.randint(header, len(data), (200,), generator=rng).tolist():
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    with pytest.raises(VoiceError, match="damaged"):
        Voice.load(path)


def test_files_without_checksum_still_load(tmp_path):
    v = _voice()
    tensors = {f"layer{i}_{n}": (v.k[i][None, ..., None] if n == "k" else v.v[i][None, :, :, None])
               for i in range(v.n_layers) for n in "kv"}
    save_file(tensors, str(tmp_path / "old.safetensors"), metadata={"name": "old"})
    w = Voice.load(tmp_path / "old.safetensors")
    assert w.name == "old" and torch.equal(w.k, v.k)


def test_refusals_read_as_sentences(tmp_path):
    path = tmp_path / "x.safetensors"
    path.write_bytes(b"\xff\xff\xff\xff\xff\xff\xff\x7f{}")
    with pytest.raises(VoiceError) as err:
        Voice.load(path)
    assert "JSON" not in str(err.value) and "header" not in str(err.value) and str(err.value).endswith(".")
