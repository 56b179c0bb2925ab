"""lab/scripts/make_presets.py end to end on CPU: a tiny exported model, a fake codes folder, 2 tuning steps.

The voices it writes load, fit the model they were tuned on, and the app's preset listing finds them
(with their samples) once copied into a voices folder.
"""
from __future__ import annotations

import gzip
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from scripts_loader import load_script

from lab.training.corpus.texts import ALPHABET
from lab.training.lm.configs import TINY
from lab.training.lm.export import export
from lab.training.lm.train import RunOptions, train
from lina.ist import voice_distance
from lina.pretrained import tiny_random
from lina.tts import LinaTTS
from lina.voice import Voice
from lina_app.presets import list_presets

STYLES = ("neutral", "happy", "sad", "angry", "whisper", "calm")
WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "river", "light", "and",
         "winter", "music", "fill", "my", "house"]
FRAMES_PER_CHAR = 2
# (speaker, engine, styles, rows per style): two styled speakers, one that is not, in train; test speakers
# of three engines, one also in train (so not "unseen").
TRAIN_SPEAKERS = [("piper-joe", "piper", STYLES, 3), ("flite-rms-d09", "flite", STYLES, 3),
                  ("espeak-en-r1", "espeak", ("neutral", "happy"), 4)]
TEST_SPEAKERS = [("espeak-en-r2", "espeak", ("neutral",), 4), ("espeak-en-r3", "espeak", ("neutral",), 4),
                 ("festival-kal-d36", "festival", ("neutral",), 4), ("piper-joe-d54", "piper", STYLES, 2),
                 ("piper-joe-d60", "piper", ("neutral",), 4), ("piper-joe", "piper", ("neutral",), 2)]


def write_split(root: Path, split: str, speakers, seed: int) -> None:
    rng = random.Random(seed)
    letters = "".join(c for c in sorted(ALPHABET) if c.isalpha())
    rows, codes, offset = [], [], 0
    for speaker, engine, styles, n in speakers:
        for style in styles:
            for i in range(n):
                text = f"spell {letters} now." if not rows else " ".join(rng.sample(WORDS, 6)) + "."
                ids = np.repeat([ord(c) % TINY.n_codebook for c in text], FRAMES_PER_CHAR).astype(np.uint16)
                rows.append({"id": f"{speaker}_{style}_{split}{i:03d}", "speaker": speaker, "style": style,
                             "text": text, "split": split, "engine": engine, "offset": offset, "frames": len(ids)})
                codes.append(ids)
                offset += len(ids)
    with gzip.open(root / f"{split}.jsonl.gz", "wt") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    np.save(root / f"{split}.codes.npy", np.concatenate(codes))


@pytest.fixture(scope="module")
def model_and_codes(tmp_path_factory) -> tuple[Path, Path]:
    """A fake codes folder and a lina-mini export of one tiny training step on it."""
    root = tmp_path_factory.mktemp("presets")
    codes = root / "codes"
    codes.mkdir()
    write_split(codes, "train", TRAIN_SPEAKERS, 0)
    write_split(codes, "validation", TRAIN_SPEAKERS[:1], 1)
    write_split(codes, "test", TEST_SPEAKERS, 2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices; a shared CPU makes two threads wait
    try:
        settings = {"config": "tiny", "steps": 1, "warmup": 1, "batch_frames": 1_500, "max_frames": 600, "seed": 0}
        train(codes, root / "run", settings, RunOptions(log_every=1, val_every=0, device="cpu"))
        tiny_random().codec.save_pretrained(root / "codec")
        export(root / "run", root / "codec", root / "lina-mini")
    finally:
        torch.set_num_threads(threads)
    return root / "lina-mini", codes


def test_make_presets_end_to_end(model_and_codes, tmp_path):
    model, codes = model_and_codes
    script = load_script("make_presets")
    out = tmp_path / "out"
    argv = ["--model", str(model), "--codes", str(codes), "--out", str(out), "--steps", "2",
            "--clips-seconds", "2", "--device", "cpu", "--held-out", "1", "--samples"]
    assert script.main(argv) == 0

    presets = json.loads((out / "presets.json").read_text())
    slugs = [p["id"] for p in presets]
    # Styled speakers sorted: flite-rms-d09 = Ava, piper-joe = Leo; then the unseen test speakers.
    assert slugs[:12] == [f"{n}_{s}" for n in ("ava", "leo") for s in STYLES]
    unseen = [p["speaker"] for p in presets[12:]]
    assert len(unseen) == 4 and unseen[0] == "espeak-en-r2" and "piper-joe-d54" in unseen
    assert {p["engine"] for p in presets[12:]} == {"espeak", "festival", "piper"}
    assert "piper-joe" not in unseen and "espeak-en-r1" not in [p["speaker"] for p in presets]

    tts = LinaTTS.from_pretrained(str(model), device="cpu")
    assert tts.model_id.startswith("lina-mini-v1-")
    with gzip.open(codes / "test.jsonl.gz", "rt") as f:
        test_ids = {json.loads(line)["id"] for line in f}
    for p in presets:
        voice = Voice.load(out / p["file"])
        voice.check(tts.model.cfg)
        assert voice.model_id == tts.model_id and voice.name == p["name"] and voice.style == p["style"]
        assert voice.extra["steps"] == 2 and voice.extra["clip_ids"] and np.isfinite(voice.extra["final_loss"])
        assert voice.extra["clip_seconds"] <= 2 or len(voice.extra["clip_ids"]) == 1
        assert (set(voice.extra["clip_ids"]) <= test_ids) == (p["split"] == "test")
        if p["split"] == "test":  # its first neutral row is a test sentence of the evaluation: never tuned on
            assert f"{p['speaker']}_neutral_test000" not in voice.extra["clip_ids"]
        audio, rate = soundfile.read(str(out / p["sample"]), dtype="int16")
        assert rate == 24_000 and 0 < len(audio) <= 4 * rate
    assert presets[0]["name"] == "Ava — neutral" and "Flite" in presets[0]["description"]

    # The app's layout: voice files and samples side by side in one folder.
    voices = tmp_path / "voices"
    voices.mkdir()
    for f in list((out / "voices").iterdir()) + list((out / "samples").iterdir()):
        shutil.copy(f, voices)
    listed = list_presets(voices, tts.model.cfg)
    assert sorted(p.id for p in listed) == sorted(slugs)
    assert all(p.compatible and p.sample and p.description and p.style for p in listed)

    # --resume keeps the voices made for this model.
    assert script.main(argv[:-1] + ["--resume"]) == 0
    assert [p["final_loss"] for p in json.loads((out / "presets.json").read_text())] == \
        [p["final_loss"] for p in presets]


def test_make_presets_shards_merge_to_the_whole(model_and_codes, tmp_path):
    model, codes = model_and_codes
    script = load_script("make_presets")
    argv = ["--codes", str(codes), "--steps", "1", "--clips-seconds", "2", "--device", "cpu", "--held-out", "1",
            "--model", str(model)]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert script.main(argv + ["--out", str(whole)]) == 0
    for i in range(3):  # 6 speakers: 2 styled + 4 unseen
        assert script.main(argv + ["--out", str(parts), "--shard", f"{i}/3"]) == 0
    speakers = [json.loads((parts / f"presets.shard{i}of3.json").read_text()) for i in range(3)]
    assert [len({p["speaker"] for p in s}) for s in speakers] == [2, 2, 2]
    assert not (parts / "presets.json").exists()
    (parts / "presets.shard0of2.json").write_text("[]")  # another run's listing: not merged
    assert script.main(argv + ["--out", str(parts), "--merge-shards", "3"]) == 0
    merged = json.loads((parts / "presets.json").read_text())
    expected = sorted(json.loads((whole / "presets.json").read_text()), key=lambda p: p["id"])
    assert [(p["id"], p["final_loss"]) for p in merged] == [(p["id"], p["final_loss"]) for p in expected]
    for bad in ("3/3", "x", "1/0"):
        with pytest.raises(SystemExit, match="--shard"):
            script.main(argv + ["--out", str(parts), "--shard", bad])


def test_make_presets_only_named_test_speakers(model_and_codes, tmp_path):
    model, codes = model_and_codes
    script = load_script("make_presets")
    out = tmp_path / "out"
    argv = ["--model", str(model), "--codes", str(codes), "--out", str(out), "--steps", "1", "--device", "cpu",
            "--only-test", "--test-speakers", "piper-joe-d60,espeak-en-r3", "--held-out", "3"]
    assert script.main(argv) == 0
    presets = json.loads((out / "presets.json").read_text())
    assert [p["speaker"] for p in presets] == ["piper-joe-d60", "espeak-en-r3"]
    for p in presets:  # 4 neutral rows each, the first 3 held out
        assert p["clip_ids"] == [f"{p['speaker']}_neutral_test003"] and p["split"] == "test"
    with pytest.raises(SystemExit, match="not speakers of the test split"):
        script.main(argv[:-4] + ["--test-speakers", "nobody", "--held-out", "3"])


def test_make_presets_styles_from_neutral(model_and_codes, tmp_path):
    """--styles-from-neutral --anchor: a styled speaker's non-neutral voices start from its neutral one."""
    model, codes = model_and_codes
    script = load_script("make_presets")
    out = tmp_path / "out"
    argv = ["--model", str(model), "--codes", str(codes), "--out", str(out), "--steps", "2", "--clips-seconds", "2",
            "--device", "cpu", "--held-out", "1", "--styles-from-neutral", "--anchor", "1"]
    assert script.main(argv) == 0
    presets = json.loads((out / "presets.json").read_text())
    assert len(presets) == 16
    for p in presets:
        voice = Voice.load(out / p["file"])
        if p["split"] == "train" and p["style"] != "neutral":
            slug = p["id"].split("_")[0] + "_neutral"
            assert voice.extra["start"] == p["start"] == slug and voice.extra["anchor_weight"] == 1.0
            assert voice.extra["start_distance"] == pytest.approx(
                voice_distance(voice, Voice.load(out / "voices" / f"{slug}.safetensors")), abs=1e-4)
            assert voice.extra["start_distance"] > 0
        else:  # neutral and test voices: tuned from random init as before
            assert "start" not in voice.extra and "anchor_weight" not in voice.extra

    # --resume keeps them all, another anchor weight re-tunes the styled ones only.
    assert script.main(argv + ["--resume"]) == 0
    assert json.loads((out / "presets.json").read_text()) == presets
    assert script.main(argv[:-1] + ["0", "--resume"]) == 0
    again = json.loads((out / "presets.json").read_text())
    assert [q["id"] for q in again] == [p["id"] for p in presets]
    for p, q in zip(presets, again):
        if "start" in p:
            assert q["anchor_weight"] == 0.0 and q["start"] == p["start"]
        else:
            assert q == p
    with pytest.raises(SystemExit):
        script.main(argv[:-3] + ["--anchor", "1"])  # --anchor without --styles-from-neutral


def test_make_presets_enroll(model_and_codes, tmp_path):
    """--enroll DIR: the styled speakers' voices come from DIR's enroll split (fresh clips), test voices
    from the test split as before; --resume re-tunes a voice whose clips came from elsewhere. Then
    lab/scripts/voice_fit.py scores the enroll clips those voices were not tuned on."""
    model, codes = model_and_codes
    script = load_script("make_presets")
    enroll, out, styled = tmp_path / "enroll", tmp_path / "out", tmp_path / "styled"
    enroll.mkdir()
    styled.mkdir()
    write_split(enroll, "enroll", TRAIN_SPEAKERS[:2], 3)
    argv = ["--model", str(model), "--codes", str(codes), "--out", str(out), "--steps", "1", "--clips-seconds", "1",
            "--device", "cpu", "--held-out", "1"]
    assert script.main(argv + ["--enroll", str(enroll)]) == 0
    presets = json.loads((out / "presets.json").read_text())
    assert len(presets) == 16
    for p in presets:
        voice = Voice.load(out / p["file"])
        source = "enroll" if p["split"] == "train" else "test"
        assert voice.extra["clips_from"] == source
        assert all(f"_{source}" in cid for cid in voice.extra["clip_ids"]), voice.extra["clip_ids"]
        if p["split"] == "train":
            voice.save(styled / Path(p["file"]).name)
    assert script.main(argv + ["--enroll", str(enroll), "--resume"]) == 0
    assert json.loads((out / "presets.json").read_text()) == presets
    assert script.main(argv + ["--resume"]) == 0  # train clips now: the styled voices are tuned again
    again = {q["id"]: q for q in json.loads((out / "presets.json").read_text())}
    for p in presets:
        assert (again[p["id"]]["clip_ids"] != p["clip_ids"]) == (p["split"] == "train"), p["id"]

    fit = load_script("voice_fit")
    assert fit.main(["--model", str(model), "--codes", str(enroll), "--split", "enroll", "--voices", str(styled),
                     "--out", str(tmp_path / "fit.json")]) == 0
    report = json.loads((tmp_path / "fit.json").read_text())
    summary, results = report["summary"], report["results"]
    assert summary["speakers"] == 2 and summary["cases"] == len(results) == 12
    for r in results:  # 3 rows per style, the voice took the first (1 s): two held out
        assert r["clips"] == 2 and set(r["losses"]) == {"none", *STYLES}
        assert all(np.isfinite(list(r["losses"].values())))
        assert r["gain"] == pytest.approx(r["losses"]["none"] - r["losses"][r["style"]])
    assert sum(map(sum, summary["confusion"]["matrix"])) == 12
