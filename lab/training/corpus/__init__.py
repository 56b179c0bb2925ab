"""A synthetic, Expresso-like English corpus for training lina-mini offline.

Offline engines (espeak-ng, flite, festival, the piper `joe` voice) read Debian's public-domain texts
as 150+ speakers (base voices and pitch/formant/timbre-derived ones, de-duplicated with resemblyzer),
some in six styles (neutral, happy, sad, angry, whisper, calm). Only manifests are built ahead of time;
audio is rendered on demand and is the same for the same row (seeded).

    python -m lab.training.corpus build  --out data/corpus --hours 30 --seed 0
    python -m lab.training.corpus render --manifest data/corpus/train.jsonl --out data/corpus --jobs 16
    python -m lab.training.corpus dedup  --out lab/training/corpus/dedup_seed0.json --jobs 2
    python -m lab.training.corpus bench | status

Corpus v2 (`build --recipe v2`) adds Kokoro-82M voices (engines_kokoro), screened by Whisper
WER (screen) and de-duplicated across engines, for 70 % of the hours from neural voices.

Files: engines (engine calls), engines_kokoro (Kokoro), speakers (inventory), styles, texts (sentences),
manifest (plan, splits, recipes), generate (rendering), screen (WER screen), dedup, bench, __main__ (CLI).
Set-up: scripts/corpus_setup.sh here,
lab/scripts/corpus_bundle.sh for a machine without apt (unpacked .deb files, LINA_CORPUS_ROOT).
"""
