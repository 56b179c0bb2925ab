"""The one error type of the codec package for files it cannot use."""


class CodecFormatError(ValueError):
    """A config or checkpoint is malformed, of another model, or has missing/unexpected weights."""
