"""Test lists: which sentences are spoken, by which target speakers, from which real clips.

A test list is a JSON manifest (``lina-testlist`` version 1)::

    {"format": "lina-testlist", "version": 1, "name": "corpus-test", "description": "...",
     "utterances": [
       {"id": "spk1-0001", "speaker": "spk1", "style": "neutral", "role": "test",
        "text": "Exact transcript.", "audio": "wavs/spk1-0001.wav"},
       {"id": "spk1-e01", "speaker": "spk1", "role": "enroll", "text": "...",
        "recipe": {"engine": "flite", "voice": "slt"}}]}

``role`` is ``test`` (a sentence the model speaks; its real audio is the upper bound) or ``enroll``
(a clip of the target speaker used for prompting and Initial-State Tuning, never spoken by the
model). ``audio`` is a path relative to the manifest's folder; ``recipe`` regenerates the clip (see
``lab.eval.references``) when there is no file. Speakers of a corpus test split are unseen in
training; the corpus manifest (lab.training.corpus) plugs in here with ``--testlist``.

Built in until the corpus exists: ``QUICK`` (2 flite voices x 1 sentence, 2 enrollment clips each:
CI) and ``TEST`` (4 flite voices x 5 sentences, ~1 min of enrollment each). Sentences are from the
Harvard lists (IEEE 1969); one test sentence carries a number to exercise text normalization.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lab.eval.references import DEFAULT_CACHE, render

FORMAT, VERSION = "lina-testlist", 1
ROLES = ("test", "enroll")


class TestListError(ValueError):
    """A malformed manifest; the message names the entry."""


@dataclass(frozen=True)
class Utterance:
    id: str
    speaker: str
    text: str
    role: str = "test"
    style: str = "neutral"
    audio: str | None = None           # path, relative to the manifest's folder
    recipe: dict | None = None         # or how to regenerate the clip

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class TestList:
    __test__ = False  # not a pytest class

    name: str
    utterances: list[Utterance]
    description: str = ""
    root: Path = field(default_factory=Path.cwd)   # folder that relative audio paths start from

    def __post_init__(self) -> None:
        seen = set()
        for i, u in enumerate(self.utterances):
            where = f"utterance {i} ({u.id!r})"
            if not u.id or u.id in seen:
                raise TestListError(f"{where}: missing or duplicate id")
            seen.add(u.id)
            if u.role not in ROLES:
                raise TestListError(f"{where}: role must be one of {ROLES}, got {u.role!r}")
            if not u.speaker or not u.text.strip():
                raise TestListError(f"{where}: speaker and text are required")
            if u.audio is None and u.recipe is None:
                raise TestListError(f"{where}: give an audio path or a recipe")

    # ---- selection --------------------------------------------------------------------------
    @property
    def speakers(self) -> list[str]:
        return list(dict.fromkeys(u.speaker for u in self.utterances))

    def tests(self, speaker: str | None = None) -> list[Utterance]:
        return [u for u in self.utterances if u.role == "test" and speaker in (None, u.speaker)]

    def enrollment(self, speaker: str) -> list[Utterance]:
        return [u for u in self.utterances if u.role == "enroll" and u.speaker == speaker]

    def limited(self, max_tests: int | None = None, max_speakers: int | None = None,
                max_enroll: int | None = None) -> TestList:
        """The first ``max_speakers`` speakers with at most ``max_tests`` test / ``max_enroll`` enrollment clips each."""
        keep_spk = set(self.speakers[:max_speakers] if max_speakers else self.speakers)
        counts: dict[tuple[str, str], int] = {}
        kept = []
        for u in self.utterances:
            if u.speaker not in keep_spk:
                continue
            limit = max_tests if u.role == "test" else max_enroll
            n = counts.get((u.speaker, u.role), 0)
            if limit is None or n < limit:
                kept.append(u)
                counts[(u.speaker, u.role)] = n + 1
        return TestList(self.name, kept, self.description, self.root)

    # ---- audio ------------------------------------------------------------------------------
    def audio_path(self, u: Utterance, cache_dir: str | Path = DEFAULT_CACHE) -> Path:
        """The clip's file: the given path if it exists, else rendered from the recipe (cached)."""
        if u.audio is not None:
            path = Path(u.audio)
            path = path if path.is_absolute() else self.root / path
            if path.is_file() or u.recipe is None:
                if not path.is_file():
                    raise TestListError(f"{u.id}: audio file {path} not found and no recipe to make it")
                return path
        return render(u.recipe, u.text, cache_dir)

    # ---- files ------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "name": self.name, "description": self.description,
                "utterances": [u.to_dict() for u in self.utterances]}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def from_dict(cls, data: dict, root: str | Path = ".") -> TestList:
        if data.get("format") != FORMAT or int(data.get("version", 0)) != VERSION:
            raise TestListError(f"not a {FORMAT} version {VERSION} manifest")
        fields = set(Utterance.__dataclass_fields__)
        utts = []
        for i, d in enumerate(data.get("utterances", [])):
            unknown = set(d) - fields
            if unknown:
                raise TestListError(f"utterance {i}: unknown fields {sorted(unknown)}")
            utts.append(Utterance(**d))
        return cls(str(data.get("name", "")), utts, str(data.get("description", "")), Path(root))

    @classmethod
    def load(cls, path: str | Path) -> TestList:
        path = Path(path)
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")), path.parent)


def from_rows(name: str, rows: list[dict], audio_of, tests_per_speaker: int = 5, enroll_seconds: float = 60.0,
              description: str = "", root: str | Path = ".") -> TestList:
    """A test list from corpus rows (dicts with ``id``, ``speaker``, ``text``, optional ``style`` and
    ``duration``): per speaker, in id order, the first ``tests_per_speaker`` neutral rows are test
    sentences and the following rows enrollment clips up to ``enroll_seconds`` (by ``duration``).
    ``audio_of(row)`` gives the clip's path (relative to ``root`` or absolute).

    The corpus test split (unseen speakers and sentences) plugs in here; save the result
    with ``.save()`` and pass it to ``python -m lab.evaluate --testlist``.
    """
    by_speaker: dict[str, list[dict]] = {}
    for r in sorted(rows, key=lambda r: str(r["id"])):
        by_speaker.setdefault(str(r["speaker"]), []).append(r)
    utts = []
    for spk, items in by_speaker.items():
        neutral = [r for r in items if r.get("style", "neutral") == "neutral"]
        tests = neutral[:tests_per_speaker]
        taken = {r["id"] for r in tests}
        total = 0.0
        for r in tests:
            utts.append(Utterance(str(r["id"]), spk, r["text"], "test", r.get("style", "neutral"), str(audio_of(r))))
        for r in items:
            if r["id"] in taken or total >= enroll_seconds:
                continue
            total += float(r.get("duration", 0.0))
            utts.append(Utterance(str(r["id"]), spk, r["text"], "enroll", r.get("style", "neutral"), str(audio_of(r))))
    return TestList(name, utts, description, Path(root))


# ---- built-in lists (flite voices; deterministic) -----------------------------------------------
TEST_SENTENCES = (
    "A large size in stockings is hard to sell.",
    "The girl at the booth sold 50 bonds.",
    "The beauty of the view stunned the young boy.",
    "The boy was there when the sun rose.",
    "Kick the ball straight and follow through.",
)
# The first clip (two sentences, ~4 s) is the natural prompt; all together ~1 min per flite voice.
ENROLL_SENTENCES = (
    "Rice is often served in round bowls. The juice of lemons makes fine punch.",
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.",
    "These days a chicken leg is a rare dish.",
    "The box was thrown beside the parked truck.",
    "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.",
    "The source of the huge river is the clear spring.",
    "A rod is used to catch pink salmon.",
    "The colt reared and threw the tall rider.",
    "Help the woman get back to her feet.",
    "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.",
    "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.",
    "The small pup gnawed a hole in the sock.",
    "The fish twisted and turned on the bent hook.",
    "Press the pants and sew a button on the vest.",
    "The swan dive was far short of perfect.",
    "Two blue fish swam in the tank.",
    "Her purse was full of useless trash.",
)


def flite_list(name: str, voices: tuple[str, ...], n_tests: int, n_enroll: int, description: str,
               rotate: bool = False) -> TestList:
    """Each voice speaks ``n_tests`` test sentences (``rotate``: voice i starts at sentence i) and
    has ``n_enroll`` enrollment clips."""
    utts = []
    for k, v in enumerate(voices):
        spk = f"flite-{v}"
        recipe = {"engine": "flite", "voice": v}
        first = k if rotate else 0
        tests = [TEST_SENTENCES[(first + i) % len(TEST_SENTENCES)] for i in range(n_tests)]
        utts += [Utterance(f"{spk}-t{(first + i) % len(TEST_SENTENCES) + 1:02d}", spk, s, "test", recipe=recipe)
                 for i, s in enumerate(tests)]
        utts += [Utterance(f"{spk}-e{i + 1:02d}", spk, s, "enroll", recipe=recipe)
                 for i, s in enumerate(ENROLL_SENTENCES[:n_enroll])]
    return TestList(name, utts, description)


# CI: with a released-size model on 2 CPU cores a generated sentence costs ~30-60 s, hence 1 each.
QUICK = flite_list("quick", ("slt", "rms"), 1, 2,
                   "built-in CI list: flite slt and rms, 1 test sentence and 2 enrollment clips (~7 s) each",
                   rotate=True)
TEST = flite_list("test-flite", ("slt", "rms", "awb", "kal16"), 5, len(ENROLL_SENTENCES),
                  "built-in list until the corpus exists: 4 flite voices, 5 test sentences, ~1 min of "
                  "enrollment clips each")
BUILTIN = {"quick": QUICK, "test": TEST}
