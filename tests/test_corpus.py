"""Synthetic corpus (lab.training.corpus): inventory, texts, manifests and splits, deterministic audio,
measurable styles. Engines that are not installed skip with the package to add (scripts/corpus_setup.sh)."""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import struct

import numpy as np
import pytest

from lab.training.corpus import dedup, engines, generate, manifest, speakers, styles, texts
from lab.training.corpus.manifest import BuildConfig, build_rows, write_manifests
from lab.training.corpus.texts import Sentence

SETUP = "scripts/corpus_setup.sh installs it"


def needs(engine: str) -> None:
    if not engines.available(engine):
        pytest.skip(f"{engine} is not installed ({SETUP})")


def needs_module(name: str) -> None:
    if importlib.util.find_spec(name) is None:
        pytest.skip(f"python package {name} is not installed ({SETUP})")


def tiny_sentences(n: int = 240) -> list[Sentence]:
    words = ["river", "stone", "light", "garden", "morning", "window", "silver", "market", "winter", "friend", "letter", "music"]
    out = []
    for i in range(n):
        text = f"the {words[i % 12]} and the {words[(i * 5 + 1) % 12]} were seen on day {num(i)}."
        out.append(Sentence(texts.sentence_id("tiny", text), text, "tiny"))
    return out


def num(i: int) -> str:
    ones = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    return " ".join(ones[int(d)] for d in str(i))


def tiny_speakers() -> list[speakers.Speaker]:
    inv = speakers.inventory(0, {"espeak": 6, "flite": 6, "festival": 3, "piper": 6})
    return inv


def tiny_build(seed: int = 0, hours: float = 0.4):
    cfg = BuildConfig(hours=hours, seed=seed, styled_speakers=3, test_speaker_fraction=0.2,
                      sentence_fractions={"validation": 0.1, "test": 0.15})
    return build_rows(tiny_speakers(), tiny_sentences(), cfg)


# ------------------------------------------------------------------------------------------------ inventory
def test_inventory_has_150_plus_distinct_recipes_and_is_seeded():
    inv = speakers.inventory(0)
    assert len(inv) >= 150
    assert len({s.id for s in inv}) == len(inv)
    counts = speakers.engine_counts(inv)
    assert set(counts) == set(engines.ENGINES) - {"kokoro"} and counts["piper"] >= 50  # v1: no kokoro
    recipes = {json.dumps({k: v for k, v in s.to_dict().items() if k not in ("id", "family")}, sort_keys=True)
               for s in inv}
    assert len(recipes) == len(inv), "two speakers share one recipe"
    assert inv == speakers.inventory(0)
    assert [s.to_dict() for s in inv] != [s.to_dict() for s in speakers.inventory(1)]
    assert all(speakers.Speaker.from_dict(s.to_dict()) == s for s in inv)


def test_random_espeak_variants_are_valid_variant_files():
    inv = [s for s in speakers.inventory(0) if s.variant_file]
    assert len(inv) >= 20
    for s in inv:
        lines = s.variant_file.splitlines()
        assert lines[0] == "language variant" and any(line.startswith("pitch ") for line in lines)


# ------------------------------------------------------------------------------------------------ texts
def test_clean_normalizes_and_filters():
    assert texts.clean("In 1984, the 3 boys paid $5 for 2 tickets.") == [
        "in nineteen eighty-four, the three boys paid five dollars for two tickets."]
    assert texts.clean("x = foo(bar) + 1;") == []  # code
    assert texts.clean("Too short.") == []
    out = texts.clean("2. It is applied to a voluntary regard for the gratification of special desires")
    assert out == ["it is applied to a voluntary regard for the gratification of special desires."]
    for text in out:
        assert set(text) <= texts.ALPHABET


@pytest.mark.parametrize("source", texts.SOURCES)
def test_debian_text_sources_yield_clean_sentences(source):
    if not texts.source_status()[source]:
        pytest.skip(f"Debian text source {source} not installed ({SETUP})")
    found = []
    for raw in texts.READERS[source]():
        found += texts.clean(raw)
        if len(found) >= 20:
            break
    assert len(found) >= 20
    assert all(set(t) <= texts.ALPHABET and len(t) >= texts.MIN_CHARS for t in found)


# ------------------------------------------------------------------------------------------------ manifest
def test_tiny_manifest_speakers_styles_and_unseen_test_split():
    rows, plan = tiny_build()
    by_split = {s: [r for r in rows if r["split"] == s] for s in manifest.SPLITS}
    assert all(by_split.values())
    train_spk = {r["speaker"] for r in by_split["train"]} | {r["speaker"] for r in by_split["validation"]}
    test_spk = {r["speaker"] for r in by_split["test"]}
    assert test_spk and not test_spk & train_spk
    sent = {s: {r["sentence"] for r in by_split[s]} for s in manifest.SPLITS}
    assert not sent["test"] & (sent["train"] | sent["validation"])
    assert not sent["validation"] & sent["train"]
    # styled speakers read each sentence in all six styles; one of them is a test speaker
    styled = set(plan["styled"])
    assert len(styled) == 3 and styled & test_spk
    for spk in styled:
        mine = [r for r in rows if r["speaker"] == spk]
        by_sentence = {}
        for r in mine:
            by_sentence.setdefault((r["split"], r["sentence"]), set()).add(r["style"])
        assert all(v == set(styles.STYLES) for v in by_sentence.values())
    assert {r["style"] for r in rows if r["speaker"] not in styled} == {"neutral"}
    assert len({r["id"] for r in rows}) == len(rows)
    assert {r["engine"] for r in rows} == set(engines.ENGINES) - {"kokoro"}
    hours = sum(r["duration"] for r in rows) / 3600
    assert 0.4 <= hours < 0.5


def test_manifest_is_deterministic_from_the_seed(tmp_path):
    rows_a, plan_a = tiny_build(seed=3)
    rows_b, plan_b = tiny_build(seed=3)
    write_manifests(tmp_path / "a", rows_a, plan_a, tiny_speakers())
    write_manifests(tmp_path / "b", rows_b, plan_b, tiny_speakers())
    for name in ("train.jsonl", "validation.jsonl", "test.jsonl", "speakers.json", "summary.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    rows_c, _ = tiny_build(seed=4)
    assert [r["id"] for r in rows_c] != [r["id"] for r in rows_a] or [r["text"] for r in rows_c] != [r["text"] for r in rows_a]
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert set(summary["hours_per_split"]) == set(manifest.SPLITS)


def test_cli_build_writes_manifests(tmp_path, monkeypatch):
    from lab.training.corpus import __main__ as cli

    monkeypatch.setattr(cli, "load_sentences", lambda **_: tiny_sentences())
    assert cli.main(["build", "--out", str(tmp_path), "--hours", "0.5", "--seed", "0", "--no-dedup"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["hours"] >= 0.5 and summary["speakers"] >= 150
    rows = manifest.read_jsonl(tmp_path / "test.jsonl")
    assert rows and all(r["spk"]["id"] == r["speaker"] for r in rows)


# ------------------------------------------------------------------------------------------------ audio
def test_parse_wav_tolerates_streamed_headers():
    pcm = (np.sin(np.arange(100) / 5) * 2000).astype("<i2").tobytes()
    head = b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 22050, 44100, 2, 16)
    audio, sr = engines.parse_wav(head + b"data" + struct.pack("<I", 0xFFFFFFFF) + pcm)
    assert sr == 22050 and audio.dtype == np.float32 and len(audio) == 100


def row_for(speaker_id: str, style: str = "neutral", text: str = "the quick brown fox jumps over the lazy dog near the river bank.") -> dict:
    spk = speakers.by_id(speakers.inventory(0))[speaker_id]
    uid = f"{speaker_id}_{style}_t0"
    return {"id": uid, "speaker": speaker_id, "engine": spk.engine, "split": "train", "spk": spk.to_dict(),
            "style": style, "text": text, "seed": manifest.utterance_seed(0, uid), "duration": 0.0}


@pytest.mark.parametrize("speaker_id,engine", [("espeak-en-gb-x-rp-r005", "espeak"), ("espeak-en-us-m1", "espeak"),
                                               ("flite-slt", "flite"), ("flite-awb-d02", "flite")])
def test_render_is_bit_identical(speaker_id, engine):
    needs(engine)
    row = row_for(speaker_id)
    if speakers.by_id(speakers.inventory(0))[speaker_id].derived:
        needs_module("parselmouth")
    a, b = generate.render_row(row), generate.render_row(dict(row))
    assert a.dtype == np.float32 and a.ndim == 1 and len(a) > generate.SAMPLE_RATE
    assert np.array_equal(a, b)
    assert 0.05 < float(np.max(np.abs(a))) <= generate.PEAK_LIMIT


def test_piper_is_seeded():
    needs("piper")
    row = row_for("piper-joe")
    a, b = generate.render_row(row), generate.render_row(row)
    c = generate.render_row(dict(row, seed=row["seed"] + 1))
    assert np.array_equal(a, b) and not (len(a) == len(c) and np.array_equal(a, c))


def mean_f0(audio: np.ndarray) -> float:
    import parselmouth

    pitch = parselmouth.Sound(audio.astype(np.float64), generate.SAMPLE_RATE).to_pitch()
    f0 = pitch.selected_array["frequency"]
    return float(np.mean(f0[f0 > 0]))


def harmonicity_db(audio: np.ndarray) -> float:
    import parselmouth

    hnr = parselmouth.Sound(audio.astype(np.float64), generate.SAMPLE_RATE).to_harmonicity().values
    return float(np.mean(hnr[hnr > -200]))


@pytest.mark.parametrize("speaker_id,engine", [("espeak-en-us-m1", "espeak"), ("flite-slt", "flite")])
def test_styles_are_measurable(speaker_id, engine):
    needs(engine)
    needs_module("parselmouth")
    needs_module("pyworld")
    audio = {st: generate.render_row(row_for(speaker_id, st)) for st in ("neutral", "happy", "sad", "whisper")}
    f0 = {st: mean_f0(a) for st, a in audio.items() if st != "whisper"}
    assert f0["happy"] > 1.1 * f0["sad"], f0
    assert f0["happy"] > f0["neutral"] > f0["sad"], f0
    assert len(audio["sad"]) > len(audio["happy"])  # slower
    assert harmonicity_db(audio["whisper"]) < harmonicity_db(audio["neutral"]) - 6


def test_render_manifest_writes_audio_and_resumes(tmp_path):
    needs("espeak")
    rows = [dict(row_for(sid), split=split) for sid, split in
            [("espeak-en-us-m1", "train"), ("espeak-en-m2", "train"), ("espeak-en-029-steph", "test")]]
    manifest.write_jsonl(tmp_path / "m.jsonl", rows)
    report = generate.render_manifest([tmp_path / "m.jsonl"], tmp_path / "out", jobs=2)
    assert report["rendered"] == 3 and report["errors"] == 0
    done = manifest.read_jsonl(tmp_path / "out" / "train.jsonl")
    assert len(done) == 2 and all(r["duration"] > 1 for r in done)
    import soundfile as sf

    audio, sr = sf.read(tmp_path / "out" / done[0]["audio"], dtype="float32")
    assert sr == 24000 and np.array_equal(audio, generate.render_row(rows[0]))
    again = generate.render_manifest([tmp_path / "m.jsonl"], tmp_path / "out", jobs=1)
    assert again["rendered"] == 3 and again["speed_audio_s_per_cpu_s"] == {}  # nothing re-rendered


# ------------------------------------------------------------------------------------------------ dedup
def test_dedup_select_keeps_bases_and_drops_near_duplicates():
    inv = speakers.inventory(0, {"espeak": 2, "flite": 4, "festival": 3, "piper": 3})
    rng = np.random.default_rng(0)
    emb = {s.id: rng.standard_normal(16) for s in inv}
    emb["piper-joe-d00"] = emb["piper-joe"] + 0.05 * rng.standard_normal(16)  # a near copy
    emb = {k: v / np.linalg.norm(v) for k, v in emb.items()}
    result = dedup.select(inv, emb)
    assert result["dropped"] == {"piper-joe-d00": {"duplicates": "piper-joe", "cosine": pytest.approx(
        float(emb["piper-joe"] @ emb["piper-joe-d00"]), abs=1e-4)}}
    assert "piper-joe" in result["kept"] and len(result["kept"]) == len(inv) - 1


def test_dedup_reports_when_resemblyzer_is_missing(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_resemblyzer(name, *args, **kwargs):
        if name.startswith("resemblyzer"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_resemblyzer)
    with pytest.raises(dedup.DedupUnavailable, match="resemblyzer is not installed"):
        dedup.resemblyzer_encoder()


def test_committed_dedup_result_matches_the_inventory():
    path = dedup.COMMITTED.with_name(dedup.COMMITTED.name.format(seed=0))
    if not path.exists():
        pytest.skip("no committed dedup result")
    result = json.loads(path.read_text())
    ids = {s.id for s in speakers.inventory(0)}
    assert set(result["kept"]) | set(result["dropped"]) == ids
    assert len(result["kept"]) >= 150
    assert all("error" in d or d["cosine"] >= result["threshold"] for d in result["dropped"].values())


def test_style_table_covers_the_six_styles():
    assert set(styles.STYLE_PARAMS) == set(styles.STYLES) == {"neutral", "happy", "sad", "angry", "whisper", "calm"}
    assert styles.espeak_prosody("neutral") == {}
    assert styles.espeak_prosody("happy")["pitch"].startswith("+")
    assert dataclasses.replace(styles.style("sad")).tempo < 1
