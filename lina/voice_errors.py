"""What a voice file may be, and the error when it is not: shared by `lina.voice` (reading and writing voice
files) and `lina.voice_hub` (sharing them), which `lina.voice` builds on."""
from __future__ import annotations

from lina.unpickler import CheckpointError

# Files larger than this are refused before they are read (or downloaded).
MAX_VOICE_BYTES = 64 * 2**20


class VoiceError(CheckpointError):
    """A voice file that is unreadable or does not belong to the loaded model."""
