"""lab.eval.style_codec: corpus rows decoded from their stored codes where `style.train` reads them."""
from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
import soundfile
import torch
from scripts_loader import load_script

from lab.eval.style_codec import decode_rows
from lab.training.corpus.generate import audio_path
from lina.pretrained import tiny_random

ROWS = [{"id": "spk_happy_0001", "speaker": "spk", "style": "happy", "frames": 6},
        {"id": "spk_neutral_0001", "speaker": "spk", "style": "neutral", "frames": 4}]


@pytest.fixture()
def codes_folder(tmp_path):
    rng = np.random.default_rng(0)
    stored, chunks, offset = [], [], 0
    for row in ROWS:
        chunks.append(rng.integers(0, 256, row["frames"]).astype(np.uint16))
        stored.append({**row, "offset": offset})
        offset += row["frames"]
    with gzip.open(tmp_path / "train.jsonl.gz", "wt") as f:
        f.writelines(json.dumps(r) + "\n" for r in stored)
    np.save(tmp_path / "train.codes.npy", np.concatenate(chunks))
    return tmp_path, chunks


def test_decode_rows_writes_the_codec_decoding_once(codes_folder, tmp_path):
    codes, chunks = codes_folder
    codec = tiny_random().codec
    audio = tmp_path / "audio"
    corpus_rows = [{"id": r["id"], "speaker": r["speaker"], "style": r["style"]} for r in ROWS]  # no offsets
    assert decode_rows(corpus_rows, codes, "train", codec, audio) == 2
    for row, chunk in zip(corpus_rows, chunks):
        wav, rate = soundfile.read(str(audio_path(audio, row)), dtype="float32")
        with torch.inference_mode():
            expected = codec.decode(torch.from_numpy(chunk.astype(np.int64))[None])[0].numpy()
        assert rate == codec.sample_rate and len(wav) == len(chunk) * codec.hop_length == len(expected)
        assert np.abs(wav - np.clip(expected, -1, 1)).max() < 1e-4  # int16 rounding
    assert decode_rows(corpus_rows, codes, "train", codec, audio) == 0  # cached


def test_decode_rows_refuses_rows_without_codes(codes_folder, tmp_path):
    codes, _ = codes_folder
    with pytest.raises(SystemExit, match="1 train rows have no codes"):
        decode_rows([{"id": "other", "speaker": "spk", "style": "sad"}], codes, "train", tiny_random().codec, tmp_path)


def cell_rows(durations: list[float], speaker: str = "spk", style: str = "sad") -> list[dict]:
    return [{"id": f"{speaker}_{style}_{i:03d}", "speaker": speaker, "style": style, "duration": d}
            for i, d in enumerate(durations)]


def test_style_ceiling_takes_each_cells_last_clips():
    rows = cell_rows([1, 2, 3, 4]) + cell_rows([5, 6], style="calm")
    picked = load_script("style_ceiling").last_clips(rows[::-1], 2)  # order of the manifest does not matter
    assert [r["id"] for r in picked] == ["spk_calm_000", "spk_calm_001", "spk_sad_002", "spk_sad_003"]


def test_style_prompt_takes_each_cells_last_clip_of_three_to_five_seconds():
    rows = cell_rows([4.0, 3.5, 6.0]) + cell_rows([2.0, 1.0], style="calm")
    chosen = load_script("style_prompt").prompts(rows)
    assert chosen[("spk", "sad")]["id"] == "spk_sad_001"  # the last one of 3-5 s, not the 6-s one
    assert chosen[("spk", "calm")]["id"] == "spk_calm_001"  # none fits: the last clip
