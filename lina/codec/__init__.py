"""WavTokenizer codec (24 kHz, 75 codes/s, one codebook): our own inference implementation."""
from lina.codec.codec import Codec
from lina.codec.config import CodecConfig

__all__ = ["Codec", "CodecConfig"]
