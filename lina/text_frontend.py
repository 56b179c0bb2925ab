"""The tokenizer a model's ``text_frontend`` names, and the file it is saved in beside the weights.

    "bpe"      -> lina.tokenizer.TextTokenizer       (tokenizer.json: a `tokenizers` JSON, e.g. bpe256.json)
    "phonemes" -> lina.phoneme_tokenizer.PhonemeTokenizer  (phonemes.json: the phoneme vocabulary)

Both read text through `lina.tokenizer.prepare_text`; the phoneme one imports its G2P (gruut) lazily,
so loading or running a BPE model never needs gruut.
"""
from __future__ import annotations

from pathlib import Path
from typing import Union

from lina.config import TEXT_FRONTENDS
from lina.phoneme_tokenizer import PhonemeTokenizer
from lina.tokenizer import TextTokenizer

__all__ = ["AnyTokenizer", "TOKENIZER_FILES", "frontend_of", "load_tokenizer", "tokenizer_from_str"]

AnyTokenizer = Union[TextTokenizer, PhonemeTokenizer]
TOKENIZER_FILES = {"bpe": "tokenizer.json", "phonemes": "phonemes.json"}
assert set(TOKENIZER_FILES) == set(TEXT_FRONTENDS)


def _check(frontend: str) -> None:
    if frontend not in TOKENIZER_FILES:
        raise ValueError(f"unknown text front end {frontend!r}; expected one of {TEXT_FRONTENDS}")


def frontend_of(tokenizer: AnyTokenizer) -> str:
    """``"phonemes"`` or ``"bpe"``: the front end ``tokenizer`` implements."""
    return "phonemes" if isinstance(tokenizer, PhonemeTokenizer) else "bpe"


def tokenizer_from_str(frontend: str, data: str) -> AnyTokenizer:
    """The tokenizer of ``frontend`` from its saved text (a training checkpoint stores it so)."""
    _check(frontend)
    return PhonemeTokenizer.from_str(data) if frontend == "phonemes" else TextTokenizer.from_str(data)


def load_tokenizer(folder: str | Path, frontend: str) -> AnyTokenizer:
    """The tokenizer saved in a model ``folder`` for ``frontend`` (`TOKENIZER_FILES`), ready to read.

    For phonemes the G2P is loaded here (~1.3 s: gruut's import and lexicon), so that a missing gruut
    fails when the model loads, not at its first request, and the first request pays ~4 ms, not 1.3 s.
    """
    _check(frontend)
    path = Path(folder) / TOKENIZER_FILES[frontend]
    if frontend == "bpe":
        return TextTokenizer.from_file(path)
    from lina.g2p import G2P

    G2P.shared()
    return PhonemeTokenizer.from_file(path)
