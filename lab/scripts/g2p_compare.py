#!/usr/bin/env python3
"""Compares grapheme-to-phoneme packages on held-out words (docs/text_frontend.md holds the results).

    python3 lab/scripts/g2p_compare.py [--words lab/scripts/data/g2p_words.tsv] [--out g2p_compare.json]

Each candidate turns a word into phones; IPA outputs are mapped to ARPAbet (39 phones, no stress) and
compared with the references of ``lab/scripts/data/g2p_words.tsv`` (the closest alternative counts):
  * PER: phone edit distance / reference length, summed over words;
  * loose PER: the same with AH = IH (reduced vowels) and AA = AO (cot-caught), the differences a
    listener hardly hears and that the hand-written references cannot settle;
  * exact: words whose phones equal a reference.
Candidates that are not installed are skipped. ``g2p_en (neural)`` and ``espeak-ng`` are measured for
reference only: g2p_en calls ``nltk.download`` at import (here its lexicon is read from the CMUdict file
that ``ttstokenizer`` ships and its bundled network is called directly), espeak-ng is GPL.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

WORDS = Path(__file__).parent / "data" / "g2p_words.tsv"
LOOSE = {"IH": "AH", "AO": "AA"}
# IPA (as gruut, g2p2 and espeak-ng write it) -> ARPAbet; longest symbols first when reading.
IPA_TO_ARPA = {
    "t͡ʃ": "CH", "tʃ": "CH", "d͡ʒ": "JH", "dʒ": "JH", "eɪ": "EY", "aɪ": "AY", "aʊ": "AW", "ɔɪ": "OY",
    "oʊ": "OW", "əʊ": "OW", "ɪə": "IH R", "eə": "EH R", "ʊə": "UH R", "ɛə": "EH R", "ɚ": "ER", "ɝ": "ER",
    "ɜ": "ER", "ə": "AH", "ʌ": "AH", "ɐ": "AH", "ᵻ": "IH", "ɪ": "IH", "i": "IY", "e": "EH", "ɛ": "EH",
    "æ": "AE", "a": "AA", "ɑ": "AA", "ɒ": "AA", "ɔ": "AO", "o": "OW", "ʊ": "UH", "u": "UW", "ɯ": "UW",
    "y": "UW", "p": "P", "b": "B", "t": "T", "d": "D", "k": "K", "ɡ": "G", "g": "G", "f": "F", "v": "V",
    "θ": "TH", "ð": "DH", "s": "S", "z": "Z", "ʃ": "SH", "ʒ": "ZH", "h": "HH", "m": "M", "n": "N",
    "ŋ": "NG", "l": "L", "ɫ": "L", "ɹ": "R", "r": "R", "ɾ": "T", "ʔ": "T", "w": "W", "ʍ": "W", "j": "Y",
    "x": "K", "ç": "HH", "n̩": "AH N", "l̩": "AH L", "m̩": "AH M",
}
IGNORED = set("ˈˌːˑ.|‖-_ ‿̃") | {"\u0329", "\u0361"}
_SYMBOLS = sorted(IPA_TO_ARPA, key=len, reverse=True)


def ipa_to_arpa(ipa: str, unknown: set[str]) -> list[str]:
    """ARPAbet phones of an IPA string; symbols without a mapping are added to ``unknown`` and kept as "?"."""
    phones, i = [], 0
    while i < len(ipa):
        if ipa[i] in IGNORED:
            i += 1
            continue
        symbol = next((s for s in _SYMBOLS if ipa.startswith(s, i)), None)
        if symbol is None:
            unknown.add(ipa[i])
            phones.append("?")
            i += 1
            continue
        phones += IPA_TO_ARPA[symbol].split()
        i += len(symbol)
    return phones


def edit_distance(a: list[str], b: list[str]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def read_words(path: Path) -> list[tuple[str, str, list[list[str]]]]:
    rows = []
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            word, kind, refs = line.split("\t")
            rows.append((word, kind, [r.split() for r in refs.split("|")]))
    return rows


# ---- candidates: each returns (word -> IPA or ARPAbet string, is_arpabet) ----------------------------
def gruut_g2p() -> Callable[[str], str]:
    from gruut import sentences

    def run(word: str) -> str:
        return " ".join("".join(w.phonemes) for s in sentences(word, lang="en-us") for w in s if w.phonemes)
    return run


def g2p2_g2p() -> Callable[[str], str]:
    import lzma
    from importlib.util import find_spec

    import g2p2

    pack = Path(find_spec("g2p2_group_germanic").submodule_search_locations[0]) / "en.g2p.xz"
    model = g2p2.Model.from_bytes(lzma.decompress(pack.read_bytes()))  # no cache file, no download
    return model.phonemize


def g2p_en_neural() -> Callable[[str], str]:
    import numpy as np  # noqa: F401  (g2p_en needs it)
    from g2p_en import g2p as module  # prints nltk download errors offline, then imports

    cmu: dict[str, list[list[str]]] = {}
    dict_path = Path(__import__("ttstokenizer").__file__).parent / "cmudict.dict"
    for line in dict_path.read_text(encoding="latin-1").splitlines():
        if line and not line.startswith("#"):
            word, *phones = line.split("#")[0].split()
            cmu.setdefault(word.split("(")[0].lower(), []).append(phones)
    module.cmudict.dict = lambda: cmu
    g = module.G2p()
    return lambda word: " ".join(re.sub(r"\d", "", p) for p in (cmu[word][0] if word in cmu else g.predict(word)))


def espeak_g2p() -> Callable[[str], str]:
    if shutil.which("espeak-ng") is None:
        raise ImportError("espeak-ng not installed")

    def run(word: str) -> str:
        out = subprocess.run(["espeak-ng", "-q", "--ipa", "-v", "en-us", word], capture_output=True, text=True)
        return out.stdout.strip()
    return run


CANDIDATES: dict[str, tuple[Callable[[], Callable[[str], str]], bool]] = {
    "gruut 2.4.0 + gruut-lang-en 2.0.1": (gruut_g2p, False),
    "g2p2 0.2.3 + g2p2-group-germanic": (g2p2_g2p, False),
    "g2p_en 2.1.0 (reference: downloads at import)": (g2p_en_neural, True),
    "espeak-ng (reference: GPL)": (espeak_g2p, False),
}


def score(make: Callable[[], Callable[[str], str]], arpabet: bool, words) -> dict:
    start = time.perf_counter()
    g2p = make()
    load_s = time.perf_counter() - start
    unknown: set[str] = set()
    strict = loose = ref_len = exact = 0
    per_kind: dict[str, list[int]] = {}
    outputs = {}
    start = time.perf_counter()
    for word, kind, refs in words:
        raw = g2p(word)
        phones = raw.split() if arpabet else ipa_to_arpa(raw, unknown)
        best = min(refs, key=lambda r: (edit_distance(phones, r), len(r)))
        d = edit_distance(phones, best)
        loose_d = min(edit_distance([LOOSE.get(p, p) for p in phones], [LOOSE.get(p, p) for p in r]) for r in refs)
        strict, loose, ref_len, exact = strict + d, loose + loose_d, ref_len + len(best), exact + (d == 0)
        k = per_kind.setdefault(kind, [0, 0, 0])
        k[0], k[1], k[2] = k[0] + d, k[1] + len(best), k[2] + 1
        outputs[word] = {"raw": raw, "arpabet": " ".join(phones), "errors": d}
    seconds = time.perf_counter() - start
    return {"per": strict / ref_len, "loose_per": loose / ref_len, "exact": exact, "words": len(words),
            "per_by_kind": {k: v[0] / v[1] for k, v in sorted(per_kind.items())}, "load_s": load_s,
            "ms_per_word": 1e3 * seconds / len(words), "unmapped_ipa": sorted(unknown), "outputs": outputs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--words", type=Path, default=WORDS)
    parser.add_argument("--out", type=Path, default=Path("g2p_compare.json"))
    args = parser.parse_args(argv)
    words = read_words(args.words)
    results = {}
    for name, (make, arpabet) in CANDIDATES.items():
        try:
            results[name] = score(make, arpabet, words)
        except ImportError as exc:
            print(f"{name}: skipped ({exc})", file=sys.stderr)
            continue
        r = results[name]
        print(f"{name}: PER {r['per']:.3f}, loose {r['loose_per']:.3f}, exact {r['exact']}/{r['words']}, "
              f"load {r['load_s']:.2f} s, {r['ms_per_word']:.2f} ms/word, by kind "
              + ", ".join(f"{k} {v:.2f}" for k, v in r["per_by_kind"].items()))
    args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
