"""lab.training.corpus.expand: more rows for a corpus's voices, in chunks, with no test sentence or speaker."""
from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from lab.training.corpus.expand import ExpandConfig, SentenceQueue, check_rows, expand_rows, summarize_chunks
from lab.training.corpus.styles import STYLES
from lab.training.corpus.texts import Sentence


def pool(split: str, n: int) -> list[Sentence]:
    return [Sentence(f"{split}-{i:04d}", f"the {split} sentence number {i} is read aloud here.", "tiny") for i in range(n)]


POOLS = {"train": pool("train", 400), "validation": pool("validation", 40), "test": pool("test", 30)}
SPK = {s: {"engine": "kokoro", "family": s, "id": s, "voice": "jf_alpha", "tempo": 1.0} for s in ("ka", "kb", "kc", "kt")}


def base_row(speaker: str, engine: str, split: str, style: str, sent: Sentence, n: int) -> dict:
    spk = SPK.get(speaker, {"engine": engine, "family": speaker, "id": speaker})
    return {"id": f"{speaker}_{style}_{split[:2]}{n:05d}", "split": split, "speaker": speaker, "engine": engine,
            "family": speaker, "style": style, "text": sent.text, "sentence": sent.id, "source": "tiny", "seed": 0,
            "duration": 2.0, "spk": spk}


def tiny_base() -> list[dict]:
    """ka reads train 0-9 in six styles, kb train 10-39, kc train 40-49 (2 s a row),
    espeak reads train 50-99; validation 0-5 by ka/kb/kc; kt (a test speaker) reads the test sentences."""
    rows = []
    tr, va, te = POOLS["train"], POOLS["validation"], POOLS["test"]
    for i in range(10):
        rows += [base_row("ka", "kokoro", "train", st, tr[i], i) for st in STYLES]
    rows += [base_row("kb", "kokoro", "train", "neutral", tr[i], i) for i in range(10, 40)]
    rows += [base_row("kc", "kokoro", "train", "neutral", tr[i], i) for i in range(40, 50)]
    rows += [base_row("espeak-x", "espeak", "train", "neutral", tr[i], i) for i in range(50, 100)]
    for i, s in enumerate(("ka", "kb", "kc") * 2):
        rows += [base_row(s, "kokoro", "validation", st, va[i], i) for st in (STYLES if s == "ka" else ("neutral",))]
    rows += [base_row("kt", "kokoro", "test", "neutral", te[i], i) for i in range(30)]
    return rows


CFG = ExpandConfig(hours=0.3, chunk_hours=0.1, validation_fraction=0.1, seed=0)


def test_expansion_is_deterministic_in_chunks_and_leaks_nothing():
    base = tiny_base()
    rows = expand_rows(base, POOLS, CFG)
    assert rows == expand_rows(base, POOLS, CFG)
    assert rows != expand_rows(base, POOLS, dataclasses.replace(CFG, seed=1))
    check = check_rows(rows, base, POOLS, {"kt"}, {POOLS["test"][0].text})
    assert check["rows"] == len(rows) and check["test_text_rows"] == 0 and check["ids_in_base"] == 0
    assert {r["speaker"] for r in rows} == {"ka", "kb", "kc"}  # not the test speaker, not espeak
    assert all(r["id"].split("_")[-1].startswith("x") and r["engine"] == "kokoro" for r in rows)
    assert [r["chunk"] for r in rows] == sorted(r["chunk"] for r in rows)
    chunks = summarize_chunks(rows, base)
    assert [c["chunk"] for c in chunks] == [1, 2, 3]
    for c in chunks:  # 0.1 h each (a speaker overshoots by at most one sentence), 10 % validation
        assert 0.1 <= c["hours"] < 0.1 + 6 * 6 * 3 / 3600
        assert c["hours_per_split"]["validation"] == pytest.approx(0.01, abs=0.005)
    assert all(r["sentence"].startswith(r["split"]) for r in rows)  # each split from its own pool


def test_speakers_keep_their_share_styles_and_recipe():
    base = tiny_base()
    rows = [r for r in expand_rows(base, POOLS, CFG) if r["split"] == "train"]
    seconds = Counter()
    for r in rows:
        seconds[r["speaker"]] += r["duration"]
    total = sum(seconds.values())
    # base: ka 10 sentences x 6 styles x 2 s = 120 s, kb 30 x 2 s = 60 s, kc 10 x 2 s = 20 s
    assert seconds["ka"] / total == pytest.approx(120 / 200, abs=0.03)
    assert seconds["kc"] / total == pytest.approx(20 / 200, abs=0.03)
    assert {r["style"] for r in rows if r["speaker"] == "ka"} == set(STYLES)
    assert {r["style"] for r in rows if r["speaker"] != "ka"} == {"neutral"}
    ka = [r for r in rows if r["speaker"] == "ka"]
    assert Counter(r["sentence"] for r in ka) == Counter({s: 6 for s in {r["sentence"] for r in ka}})  # parallel styles
    assert all(r["spk"] == SPK[r["speaker"]] for r in rows)


def test_unread_sentences_first_then_other_engines_then_a_new_reader():
    base = tiny_base()
    rows = [r for r in expand_rows(base, POOLS, dataclasses.replace(CFG, hours=0.9, chunk_hours=0.45))
            if r["split"] == "train"]
    order = list(dict.fromkeys(r["sentence"] for r in rows))
    assert len(order) == 400 and sum(r["style"] == "neutral" for r in rows) > 400  # a second round reuses
    index = {s.id: i for i, s in enumerate(POOLS["train"])}
    tiers = [0 if index[s] >= 100 else 1 if index[s] >= 50 else 2 for s in order]
    assert tiers[:300] == [0] * 300 and tiers[300:350] == [1] * 50 and set(tiers[350:]) == {2}
    readers = {}
    for r in base + rows:
        if r["style"] == "neutral":
            readers.setdefault(r["sentence"], []).append(r["speaker"])
    assert all(len(v) == len(set(v)) for v in readers.values())  # nobody reads a sentence twice


def test_queue_refuses_when_a_speaker_has_read_everything():
    sents = pool("validation", 2)
    q = SentenceQueue(sents, {}, {}, seed=0, split="validation")
    assert {q.take("a").id, q.take("a").id} == {s.id for s in sents}
    assert q.take("b").id in {s.id for s in sents}  # a new round, another reader
    with pytest.raises(ValueError, match="read every validation sentence"):
        q.take("a")


@pytest.mark.parametrize("leak", ["test_sentence", "test_text", "test_speaker", "base_id", "wrong_pool"])
def test_check_rows_finds_each_leak(leak):
    base = tiny_base()
    rows = expand_rows(base, POOLS, CFG)
    bad = dict(rows[0])
    if leak == "test_sentence":
        bad |= {"sentence": POOLS["test"][3].id}
    elif leak == "test_text":
        bad |= {"text": "a held out line."}
    elif leak == "test_speaker":
        bad |= {"speaker": "kt"}
    elif leak == "base_id":
        bad |= {"id": base[0]["id"]}
    else:
        bad |= {"split": "validation"}
    with pytest.raises(ValueError, match="leaks"):
        check_rows(rows[1:] + [bad], base, POOLS, {"kt"}, {"a held out line."})


def test_chunk_seconds():
    assert ExpandConfig(hours=60, chunk_hours=20).chunk_seconds() == [72000.0] * 3
    assert ExpandConfig(hours=50, chunk_hours=20).chunk_seconds() == [72000.0, 72000.0, 36000.0]
