"""`/speak_stream` as `/speak`: the same sentences in one batch with the same seed, streamed row by row.

`LinaTTS.stream` generates sentence after sentence, each from the seed: for text of several sentences
its random draws differ from `LinaTTS.synthesize`, which samples every sentence in one batch, so the
same preset, text and seed said different words. Here the batch is `synthesize`'s (same rows, limits,
floors, seed, back end), decoded through `lina.generate.stream`: the first sentence's audio is sent as
its tokens come, the later sentences (generated alongside) as soon as those before them have ended.
The words are `synthesize`'s; the audio differs only by the streaming codec decoder's approximation.
"""
from __future__ import annotations

import time
from typing import Iterator

import numpy as np
import torch

from lina.constants import FRAME_RATE, SAMPLE_RATE
from lina.generate import GenerationConfig
from lina.generate import stream as stream_tokens
from lina.sampling import SamplingConfig
from lina.tts import LinaTTS, Synthesis, min_row_tokens, row_seconds
from lina.voice import Voice

CHUNK_TOKENS = 15   # tokens per streamed piece (0.2 s of audio): the first sound comes after this many steps


class BatchStream:
    """Iterates float32 audio pieces `[S]` of `text` spoken as `synthesize` would; `result` (a
    `Synthesis`, no alignment) is set once the iteration has ended."""

    def __init__(self, tts: LinaTTS, text: str, voice: Voice | None, top_k: int, temperature: float,
                 seed: int | None, chunk_tokens: int = CHUNK_TOKENS, glossary=None):
        self.tts, self.voice, self.chunk_tokens, self.glossary = tts, voice, chunk_tokens, glossary
        self.plan = tts.plan(text)  # pause marks: the same silences as `synthesize`
        self.sentences = self.plan.sentences
        self.sampling = SamplingConfig(top_k=top_k, temperature=temperature)
        self.seed = seed
        self.result: Synthesis | None = None

    def __iter__(self) -> Iterator[np.ndarray]:
        tts, sentences = self.tts, self.sentences
        start = time.perf_counter()
        model = tts.backend.model
        # As LinaTTS._run for one candidate: the same rows, budgets, floors and seed.
        limits = [int(row_seconds(s) * FRAME_RATE) for s in sentences]
        cfg = GenerationConfig(self.sampling, max_tokens=max(limits), seed=self.seed,
                               min_tokens=tuple(min_row_tokens(s, n) for s, n in zip(sentences, limits)))
        with torch.inference_mode():
            text_ids, lengths, spoken = tts._texts(sentences, glossary=self.glossary)
            ctx = model.encode_text(text_ids, lengths)
            state = model.init_state(len(sentences), tts._initial_states([self.voice] * len(sentences)))
            chunks = stream_tokens(model, ctx, state, cfg, None, self.chunk_tokens, tts.backend)
        decoders = [tts.codec.streaming_decoder() for _ in sentences]
        made = [0] * len(sentences)            # tokens decoded per row (a row stops at its own budget)
        generated = [0] * len(sentences)       # tokens generated per row, past the budget too
        ended = [False] * len(sentences)
        ready: list[list[np.ndarray]] = [[] for _ in sentences]
        finished = [False] * len(sentences)
        spoken_audio: list[np.ndarray] = []
        current = 0
        pauses = [np.zeros(int(round(p * SAMPLE_RATE)), dtype=np.float32) for p in self.plan.pauses]
        if self.plan.lead:
            lead = np.zeros(int(round(self.plan.lead * SAMPLE_RATE)), dtype=np.float32)
            spoken_audio.append(lead)
            yield lead
        while current < len(sentences):
            with torch.inference_mode():  # per step: a server may resume this generator on another thread
                item = next(chunks, None)
                for row in range(len(sentences)):
                    if ended[row]:
                        continue
                    if item is not None:
                        generated[row] += len(item[0][row])
                        codes = item[0][row][: limits[row] - made[row]]
                        made[row] += len(codes)
                        if len(codes):
                            ready[row].append(_samples(decoders[row].push(codes[None])))
                        # As synthesize: ended with EOS within its budget (not cut at the budget).
                        finished[row] = bool(item[1][row]) and generated[row] <= limits[row]
                    if item is None or made[row] >= limits[row] or bool(item[1][row]):
                        ready[row].append(_samples(decoders[row].flush()))
                        ended[row] = True
            while current < len(sentences):
                for piece in ready[current]:
                    if piece.size:
                        spoken_audio.append(piece)
                        yield piece
                ready[current] = []
                if not ended[current]:
                    break
                if pauses[current].size:
                    spoken_audio.append(pauses[current])
                    yield pauses[current]
                current += 1
        self.result = Synthesis([np.concatenate(spoken_audio) if spoken_audio else np.zeros(0, np.float32)],
                                SAMPLE_RATE, spoken, [all(finished)], sum(made), time.perf_counter() - start, None)


def _samples(audio: torch.Tensor) -> np.ndarray:
    return audio.reshape(-1).float().cpu().numpy() if audio.numel() else np.zeros(0, np.float32)
