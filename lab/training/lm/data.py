"""The codes data of a run: utterances from ``DIR/{split}.jsonl.gz`` + ``DIR/{split}.codes.npy``, batched
by length under a frame budget, collated the way `lina.ist.collate` / `teacher_forcing_loss` expect.

A manifest row has at least ``id speaker style text offset frames``; its codec ids are
``codes[offset : offset + frames]`` (uint16, each < n_codebook). The model reads one audio row per
utterance, ``[BOS] + (codes + N_SPECIAL_TOKENS) + [EOS]``, and its text as ``[BOS] text [EOS]`` ids.
Training may add *paired* rows (`pair_rows`): two readings of one speaker in one style, back to back,
so the model sees a sentence end followed by more text (prompt continuation is exactly that: a clip,
then the new sentence), and may repeat the styled rows (`repeat_styled`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lab.training.lm.codes_folder import codes_path, read_manifest
from lab.training.lm.phonemes import encode_rows
from lina.constants import BOS_ID, EOS_ID, N_SPECIAL_TOKENS, PAD_ID, TEXT_PAD_ID
from lina.text_frontend import AnyTokenizer

SPLITS = ("train", "validation", "test")
NEUTRAL_STYLE = "neutral"
ROW_EXTRA = 2  # BOS and EOS around an utterance's codes
# Batch widths are rounded up to these multiples (audio tokens, text ids): a handful of shapes per run.
SHAPE_QUANTUM = 128
TEXT_QUANTUM = 32


def row_codes(codes: np.ndarray, row: dict) -> Tensor:
    """One manifest row's raw codec ids ``[T]`` (int64) from its split's codes array (``offset``, ``frames``)."""
    return torch.from_numpy(np.asarray(codes[row["offset"]: row["offset"] + row["frames"]], dtype=np.int64))

@dataclass(frozen=True)
class Batch:
    """One training batch; every tensor on the same device.

    text ``[B, Tx]`` long (pad 0), text_len ``[B]``, audio ``[B, Ty]`` long = BOS, codes + 3, EOS (pad 0),
    audio_len ``[B]`` (BOS..EOS). The loss predicts ``audio[:, 1:]`` from ``audio[:, :-1]``.
    """

    text: Tensor
    text_len: Tensor
    audio: Tensor
    audio_len: Tensor

    @property
    def targets(self) -> int:
        """Predicted tokens in the batch (each row's audio length minus its BOS)."""
        return int((self.audio_len - 1).sum())

    def to(self, device: torch.device) -> Batch:
        return Batch(*(t.to(device, non_blocking=True) for t in (self.text, self.text_len, self.audio, self.audio_len)))


class CodesSplit:
    """One split in memory: text ids and codec ids of every kept utterance.

    Utterances with more than ``max_frames`` codec frames, or a text longer than ``max_text_len`` ids,
    are skipped (counted in ``skipped``). ``frames[i]`` is utterance ``i``'s codec length.
    """

    def __init__(self, root: str | Path, split: str, tokenizer: AnyTokenizer, max_frames: int,
                 n_codebook: int, max_text_len: int, pair_fraction: float = 0.0, seed: int = 0,
                 styled_repeat: int = 1):
        root = Path(root)
        rows = read_manifest(root, split)
        rows = rows + pair_rows(rows, pair_fraction, seed)
        rows = rows + repeat_styled(rows, styled_repeat)
        codes = np.load(codes_path(root, split), mmap_mode="r")
        self.ids: list[str] = []
        self.texts: list[list[int]] = []
        self._segments: list[list[tuple[int, int]]] = []
        frames: list[int] = []
        self.skipped = 0
        for row, ids in zip(rows, encode_rows(tokenizer, rows, root)):
            if row["frames"] > max_frames or row["frames"] < 1 or len(ids) > max_text_len:
                self.skipped += 1
                continue
            segments = row["segments"] if "segments" in row else [(row["offset"], row["frames"])]
            for offset, n in segments:
                if offset + n > len(codes):
                    raise ValueError(f"{row['id']}: codes [{offset}, +{n}) beyond {len(codes)}")
            self.ids.append(row["id"])
            self.texts.append(ids)
            self._segments.append([(int(o), int(n)) for o, n in segments])
            frames.append(int(row["frames"]))
        self.frames = np.asarray(frames, dtype=np.int64)
        # One copy in RAM (16 MB for 30 h): random access to an mmap would hit the disk per batch.
        self._codes = np.asarray(codes, dtype=np.int64)
        if len(self._codes) and int(self._codes.max()) >= n_codebook:
            raise ValueError(f"{split}: codec id {int(self._codes.max())} >= n_codebook {n_codebook}")

    def __len__(self) -> int:
        return len(self.ids)

    def codes(self, i: int) -> np.ndarray:
        """Raw codec ids of utterance ``i``: ``[frames[i]]`` int64."""
        parts = [self._codes[offset: offset + n] for offset, n in self._segments[i]]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def collate(self, indices: list[int]) -> Batch:
        """The padded batch of utterances ``indices`` (on CPU)."""
        n = len(indices)
        text_len = torch.tensor([len(self.texts[i]) for i in indices], dtype=torch.long)
        audio_len = torch.tensor([int(self.frames[i]) + ROW_EXTRA for i in indices], dtype=torch.long)
        text_width = -(-int(text_len.max()) // TEXT_QUANTUM) * TEXT_QUANTUM
        text = torch.full((n, text_width), TEXT_PAD_ID, dtype=torch.long)
        audio = torch.full((n, int(bucket_length(int(audio_len.max())))), PAD_ID, dtype=torch.long)
        for row, i in enumerate(indices):
            text[row, : text_len[row]] = torch.tensor(self.texts[i], dtype=torch.long)
            frames = int(self.frames[i])
            audio[row, 0] = BOS_ID
            audio[row, 1: frames + 1] = torch.from_numpy(self.codes(i) + N_SPECIAL_TOKENS)
            audio[row, frames + 1] = EOS_ID
        return Batch(text, text_len, audio, audio_len)


def pair_rows(rows: list[dict], fraction: float, seed: int) -> list[dict]:
    """About ``fraction * len(rows)`` extra rows, each two different rows of one (speaker, style) read
    one after the other: text joined by a space (``parts``: the two texts), codes concatenated
    (``segments``). Every source row is used at most once; the draw depends on ``seed`` only. Each source
    keeps its own silences, so the pair has a natural pause between its sentences."""
    if fraction <= 0:
        return []
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["speaker"], row["style"]), []).append(row)
    rng = np.random.default_rng([seed, 1])
    candidates: list[tuple[dict, dict]] = []
    for key in sorted(groups):
        members = [groups[key][j] for j in rng.permutation(len(groups[key])).tolist()]
        candidates += list(zip(members[0::2], members[1::2]))
    keep = min(len(candidates), round(fraction * len(rows)))
    chosen = sorted(rng.choice(len(candidates), size=keep, replace=False).tolist()) if keep else []
    return [{"id": f"{a['id']}+{b['id']}", "speaker": a["speaker"], "style": a["style"],
             "text": f"{a['text']} {b['text']}", "parts": [a["text"], b["text"]],
             "frames": a["frames"] + b["frames"], "segments": [(a["offset"], a["frames"]), (b["offset"], b["frames"])]}
            for a, b in (candidates[j] for j in chosen)]


def repeat_styled(rows: list[dict], times: int) -> list[dict]:
    """``times - 1`` extra copies of every row whose style is not ``NEUTRAL_STYLE`` (ids get ``#k``).

    The styles are about a quarter of the corpus hours (lina-mini v3: 14.5 of 54 h), so a model trained on
    it leans neutral: its preset voices carried their styles (lowest loss on their own style's unseen
    clips, 88 %) but its sampled speech expressed them weakly. Repeating them weighs the styles up."""
    if times < 1:
        raise ValueError(f"styled_repeat must be >= 1, got {times}")
    styled = [row for row in rows if row.get("style", NEUTRAL_STYLE) != NEUTRAL_STYLE]
    return [{**row, "id": f"{row['id']}#{k}"} for k in range(1, times) for row in styled]


def bucket_length(tokens: np.ndarray | int) -> np.ndarray | int:
    """Padded audio width of a batch whose longest row has ``tokens`` tokens: the next multiple of
    ``SHAPE_QUANTUM``. Few distinct shapes matter on CUDA: fla's Triton kernels re-tune for shapes they
    have not seen (measured: 2 s/step instead of milliseconds when every batch had its own shape)."""
    return -(-tokens // SHAPE_QUANTUM) * SHAPE_QUANTUM


def plan_batches(frames: np.ndarray, batch_frames: int, seed: int, epoch: int, shuffle: bool = True) -> list[list[int]]:
    """Length-bucketed batches covering every utterance exactly once: ``list`` of index lists.

    Rows (frames + BOS + EOS) fall into buckets of ``SHAPE_QUANTUM`` tokens; a bucket of padded width
    ``L`` is cut into batches of ``max(1, batch_frames // L)`` rows, so the padded cost stays within
    ``batch_frames`` and each bucket gives one batch shape (plus its remainder). Order within a bucket
    is drawn from ``(seed, epoch)``, and so is the order of the batches. ``shuffle=False`` (validation)
    keeps the sorted order.
    """
    rows = frames.astype(np.int64) + ROW_EXTRA
    if len(rows) and int(rows.max()) > batch_frames:
        raise ValueError(f"an utterance of {int(rows.max())} tokens exceeds the batch budget {batch_frames}")
    rng = np.random.default_rng([seed, epoch])
    tie_break = rng.permutation(len(rows)) if shuffle else np.arange(len(rows))
    widths = bucket_length(rows)
    order = tie_break[np.argsort(widths[tie_break], kind="stable")]
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order.tolist():
        size = max(1, batch_frames // int(widths[i]))
        if current and (widths[current[0]] != widths[i] or len(current) >= size):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    if shuffle:
        batches = [batches[j] for j in rng.permutation(len(batches)).tolist()]
    return batches


@dataclass
class DataPosition:
    """Where the training data stands: ``batch`` batches of ``epoch`` are consumed (checkpointed)."""

    epoch: int = 0
    batch: int = 0


class EpochLoader:
    """Endless training batches, epoch after epoch, resumable from a :class:`DataPosition`."""

    def __init__(self, split: CodesSplit, batch_frames: int, seed: int, position: DataPosition | None = None):
        self.split, self.batch_frames, self.seed = split, batch_frames, seed
        self.position = position or DataPosition()
        self._plan_epoch = -1
        self._plan: list[list[int]] = []

    def _batches(self) -> list[list[int]]:
        if self._plan_epoch != self.position.epoch:
            self._plan = plan_batches(self.split.frames, self.batch_frames, self.seed, self.position.epoch)
            self._plan_epoch = self.position.epoch
        return self._plan

    def next_indices(self) -> list[int]:
        """The utterance indices of the next batch; advances the position, rolling over to the next epoch.

        The schedule depends on the seed and the position only: processes of one run that each call this
        the same number of times agree on it (each then collates only its share, see `distributed.shard`)."""
        if not len(self.split):
            raise ValueError("the training split has no utterance (all skipped?)")
        if self.position.batch >= len(self._batches()):
            self.position = DataPosition(self.position.epoch + 1, 0)
        indices = self._batches()[self.position.batch]
        self.position = DataPosition(self.position.epoch, self.position.batch + 1)
        return indices

    def next(self) -> Batch:
        """The next batch (CPU); advances the position, rolling over to the next epoch."""
        return self.split.collate(self.next_indices())
