"""Checkpoints and voices from strangers: nothing in them executes, and bad files fail clearly."""
import io
import os
import pickle
import zipfile

import pytest
import torch

from lina.checkpoint import load_into, load_released_checkpoint, rename_key
from lina.model import LinaModel
from lina.unpickler import CheckpointError, restricted_load


class _Exploit:
    """Pickles as a call to os.system: loading it with plain pickle would run a command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _zip_checkpoint(path, obj):
    """A torch.save-style archive around an arbitrary pickle."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps(obj, protocol=2))
        z.writestr("archive/version", "3\n")


def test_malicious_pickle_is_inert(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    _zip_checkpoint(path, {"state_dict": {}, "hyper_parameters": {"x": _Exploit(marker)}})
    loaded = restricted_load(path)  # os.system is not resolved: it becomes an inert record
    assert not marker.exists()
    assert type(loaded["hyper_parameters"]["x"]).__name__ == "system"
    with pytest.raises(CheckpointError, match="lacks"):
        load_released_checkpoint(path)
    assert not marker.exists()


def test_torch_save_of_exploit_is_inert(tmp_path):
    marker = tmp_path / "pwned2"
    path = tmp_path / "evil2.ckpt"
    torch.save({"state_dict": {"a": torch.zeros(2)}, "hp": _Exploit(marker)}, path)
    restricted_load(path)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"PK\x03\x04truncated"])
def test_garbage_files_fail_clearly(tmp_path, content):
    path = tmp_path / "bad.ckpt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError):
        restricted_load(path)


def test_truncated_real_checkpoint(tmp_path, reference_dir):
    data = (reference_dir / "lina_cli.ckpt").read_bytes()
    path = tmp_path / "cut.ckpt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError):
        load_released_checkpoint(path)


def test_archive_declaring_huge_sizes_is_refused(tmp_path, monkeypatch):
    import lina.unpickler as up

    path = tmp_path / "big.ckpt"
    _zip_checkpoint(path, {"state_dict": {}})
    monkeypatch.setattr(up, "MAX_TOTAL_BYTES", 10)  # the same check a zip bomb's header meets
    with pytest.raises(CheckpointError, match="more data"):
        restricted_load(path)


def test_tensor_with_wrong_byte_count_is_refused(tmp_path):
    path = tmp_path / "t.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(8)}}, path)
    with zipfile.ZipFile(path) as z:
        entries = {i.filename: z.read(i) for i in z.infolist()}
    data_key = next(k for k in entries if "/data/" in k)
    entries[data_key] = entries[data_key][:4]
    with zipfile.ZipFile(path, "w") as z:
        for name, blob in entries.items():
            z.writestr(name, blob)
    with pytest.raises(CheckpointError, match="bytes"):
        restricted_load(path)


def test_both_released_layouts_load(reference_dir):
    for name in ("lina_cli", "lina_pickled"):
        cfg, sd = load_released_checkpoint(reference_dir / f"{name}.ckpt")
        load_into(LinaModel(cfg), sd)


def _rewrite(reference_dir, tmp_path, edit):
    ckpt = torch.load(reference_dir / "lina_cli.ckpt", weights_only=True)
    edit(ckpt)
    path = tmp_path / "edited.ckpt"
    torch.save(ckpt, path)
    return path


def test_compiled_prefix_and_extra_entries_are_accepted(reference_dir, tmp_path):
    def edit(ck):
        ck["state_dict"] = {k.replace("model.", "model._orig_mod.", 1): v for k, v in ck["state_dict"].items()}
        ck["datamodule_hyper_parameters"] = {"batch_size": 8}
    cfg, sd = load_released_checkpoint(_rewrite(reference_dir, tmp_path, edit))
    load_into(LinaModel(cfg), sd)


def test_unexpected_and_missing_keys_are_listed(reference_dir, tmp_path):
    def edit(ck):
        ck["state_dict"]["model.attentive_rnn.encoder.0.tmix.extra.weight"] = torch.zeros(3)
        del ck["state_dict"]["model.attentive_rnn.decoder.1.cmix.p_out.bias"]
    cfg, sd = load_released_checkpoint(_rewrite(reference_dir, tmp_path, edit))
    with pytest.raises(CheckpointError) as err:
        load_into(LinaModel(cfg), sd)
    assert "decoder.1.ffn.proj_out.bias" in str(err.value)
    assert "encoder.0.mixer.extra.weight" in str(err.value)


def test_unsupported_variant_is_refused(reference_dir, tmp_path):
    def edit(ck):
        ck["hyper_parameters"]["attentive_rnn"]["init_args"]["pos_type"] = "sinusoidal"
    with pytest.raises(CheckpointError, match="pos_type"):
        load_released_checkpoint(_rewrite(reference_dir, tmp_path, edit))


def test_key_renames():
    assert rename_key("model.attentive_rnn.cross_att.pos_net.tmix.gk_proj.1.bias") == \
        "cross_attention.pos_net.mixer.gate_up.bias"
    assert rename_key("model.txt_encoder.sa.3.tmix.rotary.freqs") == "text_encoder.blocks.3.attn.freqs"
    assert rename_key("_orig_mod.model.rvq_embed.weight") == "audio_embed.weight"


def test_pickled_hyper_parameters_with_missing_modules_fail_clearly():
    from lina.checkpoint import check_hyper_parameters
    from lina.config import LinaConfig
    from lina.unpickler import _foreign_class

    rnn = _foreign_class("model.gla", "AttentiveGLA")()
    rnn.__setstate__({"_modules": {"encoder": _foreign_class("torch.nn", "ModuleList")()}})
    with pytest.raises(CheckpointError, match="blind=False"):  # no blind cross-attention record
        check_hyper_parameters({"attentive_rnn": rnn}, LinaConfig())
