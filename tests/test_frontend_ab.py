"""lab/scripts/frontend_ab.py: the BPE-vs-phonemes comparison of two evaluations."""
from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

pytest.importorskip("jiwer", reason="scoring needs jiwer (requirements-eval.txt)")

from scripts_loader import load_script  # noqa: E402

ab = load_script("frontend_ab")


def test_word_edits_add_up_to_jiwer():
    import jiwer

    pairs = [("the cat sat on the mat", "a cat sat on mat today"), ("one two three", ""),
             ("hello there", "well hello there"), ("same words", "same words"), ("a b c d", "x a b y d z z")]
    for ref, hyp in pairs:
        edits, wrong, tail = ab.word_edits(ref, hyp)
        out = jiwer.process_words(ref, hyp)
        assert sum(edits) + tail == out.substitutions + out.deletions + out.insertions, (ref, hyp)
        assert len(edits) == len(ref.split()) and sum(wrong) == out.substitutions + out.deletions
    assert ab.word_edits("a b c d", "x a b y d z z") == ([1, 0, 1, 0], [False, False, True, False], 2)


def _results(path, transcripts, runaway=False):
    texts = ["Zelensky met the quokka.", "The quick brown fox jumps.", "Kombucha is a drink."]
    items = [{"case": "plain", "utterance": f"u{i}", "text": t, "transcript": h, "runaway": runaway, "silent": False}
             for i, (t, h) in enumerate(zip(texts, transcripts))]
    items.append({"case": "reference", "utterance": "u0", "text": texts[0], "transcript": texts[0]})
    path.write_text(json.dumps({"items": items}))
    return path


def test_compare_two_models(tmp_path):
    manifest = tmp_path / "train.jsonl.gz"
    with gzip.open(manifest, "wt") as f:
        f.write(json.dumps({"text": "the quick brown fox jumps, met is a drink"}) + "\n")
    a = _results(tmp_path / "a.json", ["Lenski met a coca.", "The quick brown fox jumps.", "Come bitch is a drink."],
                 runaway=True)
    b = _results(tmp_path / "b.json", ["Zelensky met the quokka.", "The quick brown fox jumps.", "Kombucha is a drink."])
    table = ab.compare([a, b], ["bpe", "phonemes"], "plain", manifest)
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in table.splitlines()
            if line.startswith("| bpe") or line.startswith("| phonemes")}
    # a: "zelensky met the quokka" -> "lenski met a coca" (3 subs), "kombucha is a drink" -> "come bitch ..."
    # (1 sub + 1 insertion): 5 edits on 13 words; 3 of the first-3-word positions of 9.
    assert rows["bpe"][0] == "0.385" and rows["bpe"][2] == "0.444"
    assert rows["phonemes"][0] == "0.000" and rows["phonemes"][2] == "0.000" and rows["phonemes"][3] == "0.000"
    # Unseen in the manifest: zelensky, quokka, kombucha; a misreads all three.
    assert rows["bpe"][3] == "1.000" and rows["bpe"][4] == "100.0%"
    assert rows["phonemes"][7] == "2 / 0" and rows["phonemes"][6].startswith("-0.385")
    assert "13 reference words, 3 of them unseen in training" in table


def test_bootstrap_interval_is_seeded_and_covers_the_difference():
    rng = np.random.default_rng(1)
    a, words = rng.integers(0, 5, 40), rng.integers(5, 12, 40)
    b = np.maximum(a - 1, 0)
    low, high = ab.paired_bootstrap(a, b, words)
    assert (low, high) == ab.paired_bootstrap(a, b, words)
    diff = (b.sum() - a.sum()) / words.sum()
    assert low <= diff <= high < 0
