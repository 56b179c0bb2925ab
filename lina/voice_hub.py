"""Voices on the Hugging Face Hub: a repo holds `voice.safetensors` (the voice file, as `Voice.save` writes it)
and `README.md`, its voice card (model id, source clips, consent statement).

Loading reads only those two files: safetensors holds tensors and text metadata, nothing that runs; the
file's checksum and shapes are checked (`Voice.load`), and, given the model, that the voice was made for it.
Every failure is a `VoiceError` in plain words (the Hub's exception names mean nothing to a visitor).
This module moves files and cards; `lina.voice.Voice` (`push_to_hub`, `from_hub`) builds on it, so it knows a
voice only by what it reads of one (`SharedVoice`).
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Protocol

from lina.voice_errors import MAX_VOICE_BYTES, VoiceError

VOICE_FILENAME = "voice.safetensors"
CARD_FILENAME = "README.md"
LIBRARY_NAME = "lina-speech"
CARD_TAGS = ("lina-speech", "text-to-speech", "voice")
COMMIT_MESSAGE = "Upload a Lina-Speech voice"
SOURCE_CLIPS_KEY = "source_clips"   # Voice.extra: [{"name": ..., "seconds": ...}] as the Space records them


class SharedVoice(Protocol):
    """What sharing reads of a voice (`lina.voice.Voice` is one)."""

    name: str
    description: str
    style: str
    model_id: str
    extra: dict

    @property
    def rank(self) -> int: ...

    def save(self, path: str | Path) -> None: ...


def voice_card(voice: SharedVoice, repo_id: str, consent: str, source_clips: list[dict]) -> str:
    """The README.md of a voice repo: YAML front matter for the Hub, then the card a person reads."""
    meta = {"library_name": LIBRARY_NAME, "tags": list(CARD_TAGS), "lina_model_id": voice.model_id,
            "lina_voice": {"name": voice.name, "style": voice.style, "rank": voice.rank,
                           "source_clips": source_clips}}
    # JSON is valid YAML: no YAML writer needed, and the values are quoted safely.
    front = "\n".join(f"{key}: {json.dumps(value, ensure_ascii=False)}" for key, value in meta.items())
    seconds = sum(float(c.get("seconds", 0)) for c in source_clips)
    clips = "\n".join(f"- {c.get('name', 'clip')}: {float(c.get('seconds', 0)):.1f} s" for c in source_clips)
    return (f"---\n{front}\n---\n\n# {voice.name or 'Lina-Speech voice'}\n\n"
            f"A voice for [Lina-Speech](https://github.com/theodorblackbird/lina-speech) (Initial-State Tuning, "
            f"rank {voice.rank}). {voice.description}\n\n"
            f"- **Model**: `{voice.model_id or 'unknown'}` (the voice speaks only with this model)\n"
            f"- **Style**: {voice.style or 'not given'}\n"
            f"- **Source clips**: {len(source_clips)} clip(s), {seconds:.1f} s in all\n{clips}\n\n"
            f"## Consent\n\n{consent}\n\n"
            "## Use\n\n```python\nfrom lina import LinaTTS, Voice\n\n"
            "tts = LinaTTS.from_pretrained(...)  # the model named above\n"
            f"voice = Voice.from_hub({json.dumps(repo_id)}, model=tts.model.cfg)\n```\n")


def push_voice(voice: SharedVoice, repo_id: str, consent: str, source_clips: list[dict] | None = None,
               token: str | None = None, private: bool | None = None, commit_message: str = COMMIT_MESSAGE) -> str:
    """Creates `repo_id` if needed and uploads the voice file and its card in one commit. -> the commit URL."""
    from huggingface_hub import HfApi

    if not isinstance(consent, str) or not consent.strip():
        raise VoiceError("A consent statement is required to share a voice: say whose voice it is and that they "
                         "agreed to it being shared.")
    clips = source_clips if source_clips is not None else list(voice.extra.get(SOURCE_CLIPS_KEY, []))
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        voice.save(Path(folder) / VOICE_FILENAME)
        (Path(folder) / CARD_FILENAME).write_text(voice_card(voice, repo_id, consent.strip(), clips), encoding="utf-8")
        info = api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message=commit_message)
    return str(getattr(info, "commit_url", info))


def download_voice_file(repo_id: str, revision: str | None = None, token: str | None = None) -> Path:
    """The voice file of Hub repo `repo_id` in the local Hub cache, its size checked before the download (read
    it with `Voice.load`, which checks it)."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url
    from huggingface_hub.errors import (EntryNotFoundError, HFValidationError, LocalEntryNotFoundError,
                                        RepositoryNotFoundError, RevisionNotFoundError)

    if not repo_id:
        raise VoiceError("Please give the Hub repository of the voice, as owner/name.")
    try:
        url = hf_hub_url(repo_id, VOICE_FILENAME, revision=revision)
        size = get_hf_file_metadata(url, token=token).size
        if size is None or size <= MAX_VOICE_BYTES:
            return Path(hf_hub_download(repo_id, VOICE_FILENAME, revision=revision, token=token))
    except HFValidationError:
        raise VoiceError(f"'{repo_id}' is not a Hub repository id: write it as owner/name.") from None
    except (RepositoryNotFoundError, RevisionNotFoundError):
        raise VoiceError(f"There is no voice repository '{repo_id}' on the Hub (or it is private).") from None
    except EntryNotFoundError as error:
        if not isinstance(error, LocalEntryNotFoundError):  # the local kind means: offline, not cached
            raise VoiceError(f"'{repo_id}' has no {VOICE_FILENAME}: it is not a Lina-Speech voice "
                             "repository.") from None
        raise VoiceError(f"The Hub could not be reached to fetch the voice '{repo_id}'; try again later.") from None
    except Exception:  # noqa: BLE001 - connection errors of whichever HTTP library huggingface_hub uses
        raise VoiceError(f"The Hub could not be reached to fetch the voice '{repo_id}'; try again later.") from None
    raise VoiceError(f"The file in '{repo_id}' ({size / 2**20:.1f} MB) is too large to be a voice file: voices are "
                     f"at most {MAX_VOICE_BYTES // 2**20} MB.")
