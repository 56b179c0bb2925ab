"""Codec parity with the original WavTokenizer (reference fixtures), configs and loading."""
from __future__ import annotations

import math

import pytest
import torch
import yaml
from safetensors.torch import load_file

from lina.codec import Codec, CodecConfig
from lina.codec.backbone import ATTENTION_QUERY_BLOCK
from lina.codec.errors import CodecFormatError
from lina.codec.istft_head import check_window, istft_same
from lina.codec.quantizer import Codebook
from lina.codec.config import QuantizerConfig
from lina.codec.released_config import load_released_config, parse_released_config
from lina.codec.released_weights import fold_weight_norm, is_ignored, read_lightning_state

ATOL = RTOL = 1e-4
TINY_YAML, TINY_CKPT = "wavtokenizer_tiny.yaml", "wavtokenizer_tiny.ckpt"


@pytest.fixture(scope="module")
def codec(reference_dir) -> Codec:
    return Codec.from_released(reference_dir / TINY_YAML, reference_dir / TINY_CKPT)


@pytest.fixture(scope="module")
def expected(reference_dir) -> dict[str, torch.Tensor]:
    return load_file(str(reference_dir / "wavtokenizer_tiny_expected.safetensors"))


# --- parity with the original --------------------------------------------------------------------


def test_encode_matches_reference_codes_exactly(codec, expected):
    codes = codec.encode(expected["wav"])
    reference = expected["codes"][0]  # stored as [n_q, B, T]
    assert codes.shape == reference.shape == (1, 113)
    assert torch.equal(codes, reference)


def test_features_and_audio_match_reference(codec, expected):
    codes = expected["codes"][0]
    features = codec.features(codes)
    torch.testing.assert_close(features, expected["features"], atol=ATOL, rtol=RTOL)
    audio = codec.decode(codes)
    assert audio.shape == expected["audio"].shape == (1, 113 * 320)
    torch.testing.assert_close(audio, expected["audio"], atol=ATOL, rtol=RTOL)
    # Measured: features bit-exact, audio max-abs 7.2e-7 (peak 0.52).
    assert (audio - expected["audio"]).abs().max() < 5e-6


def test_batched_encode_gives_each_row_its_codes(codec, expected):
    wav = expected["wav"]
    batch = torch.cat([wav, 0.5 * wav.flip(1)])
    codes = codec.encode(batch)
    assert torch.equal(codes[:1], expected["codes"][0])
    assert torch.equal(codes[1:], codec.encode(0.5 * wav.flip(1)))


def test_encode_length_rounds_up_to_whole_frames(codec):
    for samples in (1, 319, 320, 321, 5000):
        assert codec.encode(torch.randn(1, samples) * 0.1).shape == (1, math.ceil(samples / 320))


def test_codebook_picks_the_nearest_entry():
    torch.manual_seed(0)
    book = Codebook(QuantizerConfig(bins=64, dim=8))
    with torch.no_grad():
        book.codebook.normal_()
    latent = torch.randn(3, 8, 50)
    brute = torch.cdist(latent.transpose(1, 2), book.codebook[None].expand(3, -1, -1)).argmin(-1)
    assert torch.equal(book.encode(latent), brute)
    torch.testing.assert_close(book.decode(brute), book.codebook[brute].transpose(1, 2))
    with pytest.raises(ValueError, match="codes must lie in"):
        book.decode(torch.tensor([[64]]))


# --- configs ---------------------------------------------------------------------------------------


def test_tiny_config(reference_dir):
    config = load_released_config(reference_dir / TINY_YAML)
    assert config.quantizer.bins == 1024 and config.quantizer.dim == 512
    assert (config.backbone.dim, config.backbone.intermediate_dim, config.backbone.num_layers) == (64, 192, 2)
    assert config.backbone.adanorm_num_embeddings == 4
    assert config.encoder.ratios == (8, 5, 4, 2) and config.encoder.dimension == 512
    assert (config.head.n_fft, config.head.hop_length) == (1280, 320)


def test_official_config(reference_dir):
    config = load_released_config(reference_dir / "wavtokenizer_official_layout.yaml")
    assert config.quantizer.bins == 4096
    assert (config.backbone.dim, config.backbone.intermediate_dim, config.backbone.num_layers) == (768, 2304, 12)
    assert (config.head.dim, config.head.n_fft, config.head.hop_length) == (768, 1280, 320)
    assert config.encoder.hop_length == 320 and config.encoder.lstm_layers == 2
    assert config == CodecConfig()  # the defaults are the released model


def _tiny_yaml(reference_dir) -> dict:
    return yaml.safe_load((reference_dir / TINY_YAML).read_text())


@pytest.mark.parametrize(
    "section, field, value, message",
    [
        ("backbone", "class_path", "evil.module.Backdoor", "is not one of"),
        ("head", "init_args.padding", "center", "only 'same'"),
        ("feature_extractor", "init_args.num_quantizers", 2, "single-codebook"),
        ("feature_extractor", "init_args.encodec_model", "encodec_48khz", "encodec_24khz"),
        ("head", "init_args.dim", 32, "backbone.dim 64 != head.dim 32"),
    ],
)
def test_config_refusals(reference_dir, section, field, value, message):
    data = _tiny_yaml(reference_dir)
    target = data["model"]["init_args"][section]
    *parents, leaf = field.split(".")
    for parent in parents:
        target = target[parent]
    target[leaf] = value
    with pytest.raises(CodecFormatError, match=message):
        parse_released_config(data)


def test_config_dict_roundtrip():
    config = CodecConfig()
    assert CodecConfig.from_dict(config.to_dict()) == config
    with pytest.raises(TypeError):
        CodecConfig.from_dict({**config.to_dict(), "head": {"dim": 768, "n_fft": 1280, "bogus": 1}})


# --- weights -------------------------------------------------------------------------------------


def test_save_and_load_our_format(codec, tmp_path, expected):
    codec.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["codec.safetensors", "config.json"]
    again = Codec.from_pretrained(tmp_path)
    assert again.config == codec.config
    codes = expected["codes"][0]
    assert torch.equal(again.decode(codes), codec.decode(codes))
    assert torch.equal(again.encode(expected["wav"]), expected["codes"][0])


def test_our_format_refuses_foreign_files(tmp_path):
    (tmp_path / "config.json").write_text('{"format": "something-else", "version": 1}')
    with pytest.raises(CodecFormatError, match="expected format"):
        Codec.from_pretrained(tmp_path)


def _write_checkpoint(path, state):
    torch.save({"state_dict": state, "hyper_parameters": {"sample_rate": 24000}}, path)


@pytest.fixture(scope="module")
def inference_state(reference_dir) -> dict[str, torch.Tensor]:
    """The reference checkpoint minus the keys inference ignores (keeps crafted files small)."""
    return {k: v for k, v in read_lightning_state(reference_dir / TINY_CKPT).items() if not is_ignored(k)}


def test_unknown_key_is_named(reference_dir, tmp_path, inference_state):
    _write_checkpoint(tmp_path / "extra.ckpt", {**inference_state, "backbone.extra_block.weight": torch.zeros(1)})
    with pytest.raises(CodecFormatError, match=r"backbone\.extra_block\.weight"):
        Codec.from_released(reference_dir / TINY_YAML, tmp_path / "extra.ckpt")


def test_missing_key_is_named(reference_dir, tmp_path, inference_state):
    state = {k: v for k, v in inference_state.items() if k != "head.out.bias"}
    _write_checkpoint(tmp_path / "missing.ckpt", state)
    with pytest.raises(CodecFormatError, match=r"missing keys: \['head\.out\.bias'\]"):
        Codec.from_released(reference_dir / TINY_YAML, tmp_path / "missing.ckpt")


def test_wrong_shape_is_named(reference_dir, tmp_path, inference_state):
    state = dict(inference_state)
    state["backbone.final_layer_norm.weight"] = torch.ones(65)
    _write_checkpoint(tmp_path / "shape.ckpt", state)
    with pytest.raises(CodecFormatError, match=r"backbone\.final_layer_norm\.weight: \(65,\)"):
        Codec.from_released(reference_dir / TINY_YAML, tmp_path / "shape.ckpt")


def test_compiled_prefix_is_accepted(reference_dir, tmp_path, inference_state, expected):
    state = {k.replace("backbone.", "backbone._orig_mod.", 1): v for k, v in inference_state.items()}
    _write_checkpoint(tmp_path / "compiled.ckpt", state)
    loaded = Codec.from_released(reference_dir / TINY_YAML, tmp_path / "compiled.ckpt")
    torch.testing.assert_close(loaded.decode(expected["codes"][0]), expected["audio"], atol=ATOL, rtol=RTOL)


PICKLE_RAN = []


class _Payload:
    """An object whose unpickling would run code: a safe loader must refuse it."""

    def __reduce__(self):
        return (PICKLE_RAN.append, ("pickle code ran",))


def test_checkpoint_loading_runs_no_pickle_code(reference_dir, tmp_path):
    torch.save({"state_dict": {}, "hyper_parameters": _Payload()}, tmp_path / "evil.ckpt")
    with pytest.raises(CodecFormatError, match="refused to unpickle"):
        Codec.from_released(reference_dir / TINY_YAML, tmp_path / "evil.ckpt")
    assert PICKLE_RAN == []


def test_ignored_keys():
    ignored = [
        "feature_extractor.encodec.decoder.model.0.conv.conv.weight_g",
        "feature_extractor.encodec.quantizer.vq.layers.0._codebook.embed_avg",
        "feature_extractor.encodec.quantizer.vq.layers.0._codebook.cluster_size",
        "feature_extractor.encodec.quantizer.vq.layers.0._codebook.inited",
        "multiperioddisc.discriminators.0.convs.0.weight",
        "multiresddisc.discriminators.0.convs.0.weight",
        "dac.discriminators.0.weight",
        "melspec_loss.mel_spec.spectrogram.window",
    ]
    kept = ["feature_extractor.encodec.quantizer.vq.layers.0._codebook.embed", "backbone.embed.weight", "head.out.bias"]
    assert all(map(is_ignored, ignored)) and not any(map(is_ignored, kept))


def test_weight_norm_folding_matches_torch():
    torch.manual_seed(0)
    conv = torch.nn.utils.parametrizations.weight_norm(torch.nn.Conv1d(4, 6, 3))
    original = conv.parametrizations.weight.original0, conv.parametrizations.weight.original1
    state = {"weight_g": original[0].detach(), "weight_v": original[1].detach(), "bias": conv.bias.detach()}
    folded = fold_weight_norm(state)
    assert sorted(folded) == ["bias", "weight"]
    torch.testing.assert_close(folded["weight"], conv.weight.detach())
    with pytest.raises(CodecFormatError, match="no matching"):
        fold_weight_norm({"weight_g": state["weight_g"]})


# --- decoding pieces -----------------------------------------------------------------------------


def test_same_padded_istft_inverts_an_stft():
    torch.manual_seed(0)
    n_fft, hop, frames = 1280, 320, 40
    signal = torch.randn(2, frames * hop, dtype=torch.float64)
    window = torch.hann_window(n_fft, dtype=torch.float64)
    trim = (n_fft - hop) // 2
    padded = torch.nn.functional.pad(signal, (trim, trim))
    spectrum = torch.stft(padded, n_fft, hop, window=window, center=False, return_complex=True)
    assert spectrum.shape[-1] == frames
    torch.testing.assert_close(istft_same(spectrum, window, hop), signal)


def test_window_that_cannot_be_inverted_is_refused():
    window = torch.hann_window(1280)
    window[480:800:7] = 0.0
    with pytest.raises(ValueError, match="cannot be inverted"):
        check_window(window, 320)
    check_window(torch.hann_window(1280), 320)


def test_batched_decode_with_lengths_matches_rows_alone(codec):
    torch.manual_seed(1)
    lengths = torch.tensor([90, 37, 64])
    codes = torch.randint(0, 1024, (3, 90))
    audio = codec.decode(codes, lengths)
    assert audio.shape == (3, 90 * 320)
    for row, length in enumerate(lengths.tolist()):
        alone = codec.decode(codes[row : row + 1, :length])[0]
        torch.testing.assert_close(audio[row, : length * 320], alone, atol=2e-5, rtol=1e-4)
        assert not audio[row, length * 320 :].any()
    rows = codec.decode_batch(codes, lengths)
    assert [row.shape[0] for row in rows] == [n * 320 for n in lengths.tolist()]
    assert all(torch.equal(row, audio[i, : row.shape[0]]) for i, row in enumerate(rows))
    with pytest.raises(ValueError, match="lengths"):
        codec.decode(codes, torch.tensor([91, 1, 1]))


def test_attention_in_query_blocks_matches_one_block(codec, monkeypatch):
    torch.manual_seed(2)
    codes = torch.randint(0, 1024, (2, 70))
    whole = codec.decode(codes)
    monkeypatch.setattr("lina.codec.backbone.ATTENTION_QUERY_BLOCK", 16)
    assert ATTENTION_QUERY_BLOCK > 70
    torch.testing.assert_close(codec.decode(codes), whole, atol=1e-5, rtol=1e-4)
