"""English grapheme-to-phoneme conversion for the phoneme front end: gruut (MIT), offline, en-us.

Why gruut: docs/text_frontend.md (200 held-out words, PER 0.147 against 0.178 for g2p2 and g2p_en;
0.004 on the 1,000 most frequent words; no download at first use; permissive licence).

gruut is imported lazily, so a BPE model never needs it. Its lexicon is a 124k-word SQLite table without
an index on ``word``: every lookup scans it (14 ms a query, ~100 ms a sentence). `G2P` reads an indexed
in-memory copy instead (0.7 s once, then ~5 ms a sentence); ``G2P(fast=False)`` is gruut as shipped, the
reference the fast path is tested against.

`G2P.words` returns what gruut makes of already-normalized text (`lina.text.normalize_text`): words with
their phonemes (stress marks attached to vowels, as gruut writes them: "ˈoʊ") and punctuation marks.
"""
from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass

__all__ = ["G2P", "G2PError", "GRUUT_LANG", "Token", "g2p_version"]

GRUUT_LANG = "en-us"
# gruut writes phrase breaks as "|" and sentence breaks as "‖" in place of the punctuation they stand for;
# the front end keeps the punctuation itself (a question and a statement end differently).
_BREAK_SYMBOLS = frozenset("|‖")


class G2PError(RuntimeError):
    """The G2P package is missing or broken: the model asks for phonemes and cannot get them."""


@dataclass(frozen=True)
class Token:
    """One item of a sentence: a word with its phonemes, or a punctuation mark (``phonemes == ()``)."""

    text: str
    phonemes: tuple[str, ...] = ()

    @property
    def is_word(self) -> bool:
        return bool(self.phonemes)


def g2p_version() -> str:
    """``"gruut X + gruut-lang-en Y"``: recorded beside a phoneme vocabulary (other versions may differ)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"gruut {version('gruut')} + gruut-lang-en {version('gruut_lang_en')}"
    except PackageNotFoundError as exc:
        raise G2PError(_missing_message(exc)) from None


def _missing_message(exc: BaseException) -> str:
    return (f"this model reads phonemes and needs the G2P package gruut ({exc}): "
            "pip install gruut==2.4.0 gruut-lang-en==2.0.1 (listed in requirements.txt)")


class G2P:
    """Thread-safe English G2P; built once per process (see `shared`), loading takes ~1 s."""

    _shared: G2P | None = None
    _shared_lock = threading.Lock()

    def __init__(self, fast: bool = True) -> None:
        try:
            from gruut.lang import get_settings
            from gruut.phonemize import SqlitePhonemizer
            from gruut.text_processor import TextProcessor
        except ImportError as exc:
            raise G2PError(_missing_message(exc)) from None
        settings = get_settings(GRUUT_LANG)
        if settings is None or settings.lookup_phonemes is None:
            raise G2PError(f"gruut has no {GRUUT_LANG} data: pip install gruut-lang-en==2.0.1")
        self.fast = fast
        if fast:
            lookup = settings.lookup_phonemes  # gruut.lang.DelayedSqlitePhonemizer: connects on first use
            if not hasattr(lookup, "db_path") or not hasattr(lookup, "phonemizer_args"):
                raise G2PError(f"unexpected gruut version ({type(lookup).__name__}): pin gruut==2.4.0")
            lookup.phonemizer = SqlitePhonemizer(db_conn=_indexed_copy(lookup.db_path), **lookup.phonemizer_args)
        self._processor = TextProcessor(default_lang=GRUUT_LANG, settings={GRUUT_LANG: settings})
        # gruut's processor keeps state per call (graphs, caches): one caller at a time.
        self._lock = threading.Lock()

    @classmethod
    def shared(cls) -> G2P:
        """The process-wide fast instance (built on first use)."""
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def words(self, text: str) -> list[Token]:
        """Words and punctuation of ``text``, in order; ``[]`` for blank text.

        Punctuation gruut turns into breaks keeps its own text (",", "?", "..."); words gruut expands
        ("dr." -> "doctor") come back expanded.
        """
        if not text.strip():
            return []
        with self._lock:
            graph, root = self._processor(text, lang=GRUUT_LANG)
            tokens = []
            for sentence in self._processor.sentences(graph, root):
                for word in sentence:
                    phonemes = tuple(p for p in (word.phonemes or ()) if p not in _BREAK_SYMBOLS)
                    tokens.append(Token(word.text, phonemes))
        return tokens


def _indexed_copy(db_path) -> sqlite3.Connection:
    """The lexicon in memory with an index on ``word`` (the shipped file is read only, never changed)."""
    source = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        memory = sqlite3.connect(":memory:", check_same_thread=False)
        source.backup(memory)
    finally:
        source.close()
    memory.execute("CREATE INDEX IF NOT EXISTS lina_word_index ON word_phonemes (word)")
    return memory
