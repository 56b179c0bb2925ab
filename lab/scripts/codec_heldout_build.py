#!/usr/bin/env python3
"""Writes lab/training/codec/heldout_v2.jsonl: the fixed held-out clips of codec v2.

32 clips, 8 per engine (piper joe and two new derivations of it, espeak-ng stock and new random
variants, flite voices and derivations, Kokoro packs, a half swap and a noisy style), each reading its own
sentence, written for this set (in no corpus text source). Every row is a corpus row (`spk` holds the
whole speaker recipe, `seed` the utterance's draws), so `lab.training.corpus.generate.render_row`
renders it alone and the same row gives the same samples. Rerun only to make a new set (a new name):
every codec's evaluation must stay on the same clips.

    python lab/scripts/codec_heldout_build.py [--out lab/training/codec/heldout_v2.jsonl]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lab.training.corpus.manifest import utterance_seed, write_jsonl  # noqa: E402
from lab.training.corpus.speakers import _rng, random_espeak_variant  # noqa: E402
from lab.training.corpus.texts import ALPHABET  # noqa: E402
from lina.text import normalize_text  # noqa: E402

SET_NAME = "heldout_v2"
SEED = 28  # a seed of its own: draws of this set are independent of the corpus' seed 0

# Written for this set; 9 to 17 words, so 3 to 6 s at the engines' pace.
SENTENCES = (
    "The kettle whistled twice before anyone in the kitchen noticed the smoke.",
    "Would you mind holding the ladder while I check the gutter on the north side?",
    "Seven orange kites drifted over the harbour as the ferry pulled away.",
    "She folded the map carefully and tucked it behind the visor.",
    "Nobody expected the quiet librarian to win the chess tournament.",
    "Bring a warm jacket, because the wind on the ridge is fierce at dawn.",
    "The old clock in the hallway has been running slow since last winter.",
    "How many bridges did you cross on your way to the market this morning?",
    "Thick fog rolled in from the bay and swallowed the lighthouse beam.",
    "He whispered the password, but the guard only shrugged and looked away.",
    "Our neighbour grows pumpkins so large that he needs a wheelbarrow to move them.",
    "Please leave the parcel by the blue door if nobody answers the bell.",
    "The violinist paused, tuned one string, and began the piece again.",
    "A flock of starlings turned like smoke above the empty stadium.",
    "I think the recipe needs less salt and a little more lemon.",
    "The train to the coast leaves at a quarter past nine every weekday.",
    "Under the floorboards they found a tin box full of faded letters.",
    "Measure the shelf twice before you drill any holes in the wall.",
    "The children counted fireflies until their mother called them in for supper.",
    "Is it true that the museum will close for repairs all summer?",
    "Fresh snow muffled every sound in the village except the church bells.",
    "The mechanic wiped his hands and said the engine would need a new belt.",
    "Jagged cliffs rose straight out of the water on both sides of the channel.",
    "Keep the receipt, because the shop only accepts returns within two weeks.",
    "The pilot announced a short delay while the crew cleared ice from the wings.",
    "My grandmother still writes her shopping lists on the backs of envelopes.",
    "Bright copper pans hung above the stove in a neat, shining row.",
    "Why did the parrot start reciting poems at three in the morning?",
    "The gardener pruned the roses and swept the petals into a small heap.",
    "After the storm the river carried whole branches past the mill.",
    "Thank you for waiting; the doctor will see you in just a moment.",
    "A single candle lit the cellar, throwing long shadows across the barrels.",
)


def _speakers() -> list[dict]:
    """Four recipes per engine; each reads two sentences."""
    variants = [random_espeak_variant(_rng(SEED, SET_NAME, i), f"h{i}") for i in range(2)]
    return [
        # piper: joe as shipped (a corpus voice, new sentences), and two derivations no corpus drew.
        {"id": "h-piper-joe", "engine": "piper", "voice": "joe", "family": "piper-joe"},
        {"id": "h-piper-joe-n", "engine": "piper", "voice": "joe", "family": "piper-joe", "noise_scale": 0.75,
         "noise_w": 0.9, "tempo": 0.95},
        {"id": "h-piper-joe-hi", "engine": "piper", "voice": "joe", "family": "piper-joe", "formant": 1.15,
         "pitch": 1.7, "tempo": 1.04, "eq": [[2500.0, 4.0, 1.2], [400.0, -3.0, 1.0]]},
        {"id": "h-piper-joe-lo", "engine": "piper", "voice": "joe", "family": "piper-joe", "formant": 0.9,
         "pitch": 0.82, "tempo": 0.97, "eq": [[180.0, 3.0, 1.5], [5000.0, -5.0, 0.9]]},
        # espeak-ng: two stock variants and two random vocal tracts of this set's seed.
        {"id": "h-espeak-en-us-m3", "engine": "espeak", "voice": "en-us", "family": "h-espeak-en-us-m3",
         "variant": "m3"},
        {"id": "h-espeak-en-gb-x-rp-f2", "engine": "espeak", "voice": "en-gb-x-rp", "family": "h-espeak-en-gb-x-rp-f2",
         "variant": "f2", "tempo": 0.95},
        {"id": "h-espeak-en-us-h0", "engine": "espeak", "voice": "en-us", "family": "h-espeak-en-us-h0",
         "variant_file": variants[0]},
        {"id": "h-espeak-en-029-h1", "engine": "espeak", "voice": "en-029", "family": "h-espeak-en-029-h1",
         "variant_file": variants[1], "tempo": 1.05},
        # flite: three stock voices and one derivation.
        {"id": "h-flite-slt", "engine": "flite", "voice": "slt", "family": "flite-slt", "f0_hz": 164.0, "f0_std_hz": 12.0},
        {"id": "h-flite-awb", "engine": "flite", "voice": "awb", "family": "flite-awb", "f0_hz": 122.0, "f0_std_hz": 17.0},
        {"id": "h-flite-rms", "engine": "flite", "voice": "rms", "family": "flite-rms"},
        {"id": "h-flite-slt-lo", "engine": "flite", "voice": "slt", "family": "flite-slt", "f0_hz": 164.0,
         "f0_std_hz": 20.0, "formant": 0.88, "pitch": 0.75, "eq": [[900.0, 4.0, 1.0]]},
        # Kokoro: two packs as they are, a timbre half swap and a noisy style (new voices of corpus v2). Kokoro
        # rows depend on lab.training.corpus.engines_kokoro's recipe semantics: a change there changes
        # these clips, which the rendered set's fingerprint shows.
        {"id": "h-kokoro-jm_kumo", "engine": "kokoro", "voice": "jm_kumo", "family": "kokoro-jm_kumo"},
        {"id": "h-kokoro-jf_tebukuro", "engine": "kokoro", "voice": "jf_tebukuro", "family": "kokoro-jf_tebukuro"},
        {"id": "h-kokoro-kumo-x-alpha", "engine": "kokoro", "voice": "jm_kumo", "family": "kokoro-jm_kumo",
         "style_swap": "jf_alpha", "swap_half": 0},
        {"id": "h-kokoro-gongitsune-n", "engine": "kokoro", "voice": "jf_gongitsune", "family": "kokoro-jf_gongitsune",
         "style_noise": 1.8, "style_seed": SEED},  # in units of the packs' per-dimension spread
    ]


def build_rows() -> list[dict]:
    speakers = _speakers()
    if len(SENTENCES) != 2 * len(speakers):
        raise ValueError(f"{len(SENTENCES)} sentences for {len(speakers)} speakers: two each")
    rows = []
    for i, text in enumerate(SENTENCES):
        spk = speakers[i // 2]
        utt = f"{SET_NAME}-{i:02d}"
        rows.append({"id": utt, "speaker": spk["id"], "engine": spk["engine"], "family": spk["family"],
                     "style": "neutral", "text": normalize_text(text, ALPHABET).text, "split": "heldout",
                     "seed": utterance_seed(SEED, utt), "spk": spk})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=f"lab/training/codec/{SET_NAME}.jsonl")
    args = parser.parse_args()
    rows = build_rows()
    write_jsonl(Path(args.out), rows)
    print(f"{len(rows)} rows -> {args.out} ({Path(args.out).stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
