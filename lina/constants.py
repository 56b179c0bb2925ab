"""Named ids and rates shared by the model, the codec and the app."""

# Codec (WavTokenizer, 75 tokens/s at 24 kHz).
SAMPLE_RATE = 24_000
HOP_LENGTH = 320
FRAME_RATE = SAMPLE_RATE / HOP_LENGTH  # 75 codec frames per second

# Audio-token vocabulary of the language model: codec ids are shifted by the special tokens.
PAD_ID = 0
BOS_ID = 1
EOS_ID = 2
N_SPECIAL_TOKENS = 3  # PAD, BOS, EOS come before the codec ids

# Text-token vocabulary (the BPE tokenizer's added tokens).
TEXT_PAD_ID = 0
TEXT_BOS = "[BOS]"
TEXT_EOS = "[EOS]"
