"""The model's reading of a document, and reading documents longer than the window in segments.

Every document's reading is a ``Reading``: the chat head's keys/values, every document token's keys/values and
the position each one was read at. A document that fits the window is read in one dense pass (its positions
follow the head); a longer one is cut into segments of about ``segment`` tokens at content-defined boundaries
(so an edit moves only nearby boundaries), each read after [chat head][the ``overlap`` tokens before it]: the
cost is linear in length and positions never leave the window. Keys keep the position they were read at;
RoPE makes moving a key from position p to p' one more rotation, each layer with its own (engine/model/positions.py),
which is how the answer places selected passages right after the head (engine/attention/compaction.py).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..model import generation

Progress = Callable[[int, int], None]
ShouldStop = Callable[[], bool]


@dataclass(frozen=True)
class Segmenting:
    """How one document is cut for reading (the stored segments depend on it): segments of about ``segment``
    tokens, each read after the ``overlap`` tokens before it. From ``ReadingSettings``, shrunk for a small
    window (engine/api.py)."""

    segment: int = 2048
    overlap: int = 256

    def __post_init__(self) -> None:
        if self.segment < 64 or not 0 <= self.overlap < self.segment:
            raise ValueError(f"segments need at least 64 tokens and an overlap in [0, segment), got "
                             f"segment={self.segment}, overlap={self.overlap}")

    def reading_key(self) -> str:
        return f"prefill=segments;segment={self.segment};overlap={self.overlap}"


def segment_bounds(ids: np.ndarray, target: int, starts: np.ndarray | None = None) -> list[tuple[int, int]]:
    """Cut ``ids`` into [start, end) segments of target/2 .. 1.5*target tokens, at positions chosen by a hash of
    the two tokens around them: inserting text moves only the boundaries near the insertion. With ``starts``
    (the sorted first tokens of the document's passages) a boundary only falls where a passage starts, so a
    passage is never split between two segments."""
    ids = np.asarray(ids, dtype=np.int64)
    length = len(ids)
    low, high = max(1, target // 2), max(2, target * 3 // 2)
    if length <= high:
        return [(0, length)]
    allowed = np.arange(1, length) if starts is None else np.asarray(starts, dtype=np.int64)
    allowed = allowed[(allowed > 0) & (allowed < length)]
    spacing = max(1, target // 2) if starts is None else max(1, round(target / 2 / max(1.0, length / (len(allowed) + 1))))
    mixed = (ids[allowed - 1] * 1_000_003 + ids[allowed] * 7_919) % spacing
    candidates = allowed[mixed == 0]
    bounds, start = [], 0
    while length - start > high:
        first = np.searchsorted(candidates, start + low)
        if first < len(candidates) and candidates[first] <= start + high:
            end = int(candidates[first])
        else:  # no hashed boundary in reach: the last allowed one, or a hard cut
            last = np.searchsorted(allowed, start + high, side="right") - 1
            end = int(allowed[last]) if last >= 0 and allowed[last] > start + low // 2 else start + high
        bounds.append((start, end))
        start = end
    bounds.append((start, length))
    return bounds


def segment_positions(segments: list[tuple[int, int]], head_len: int, overlap: int) -> torch.Tensor:
    """(L,) the position each document token was read at."""
    positions = torch.empty(segments[-1][1], dtype=torch.long)
    for start, end in segments:
        context = start - max(0, start - overlap)
        positions[start:end] = head_len + context + torch.arange(end - start)
    return positions


@dataclass
class Reading:
    """A document as the model read it: keys/values of the head and of every document token (per layer,
    (1, H_kv, ., D)), the position each document key was read at (L,) and the segments read apart."""

    head_keys: list[torch.Tensor]
    head_values: list[torch.Tensor]
    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    positions: torch.Tensor
    segments: list[tuple[int, int]]

    @property
    def head_len(self) -> int:
        return self.head_keys[0].shape[2]

    @property
    def length(self) -> int:
        return self.keys[0].shape[2]

    @classmethod
    def of_cache(cls, cache, head_len: int, doc_len: int) -> "Reading":
        """A one-segment reading viewing a dense cache of [head + document] (no copy)."""
        layers = cache.layers
        return cls([layer.keys[:, :, :head_len] for layer in layers], [layer.values[:, :, :head_len] for layer in layers],
                   [layer.keys[:, :, head_len:head_len + doc_len] for layer in layers],
                   [layer.values[:, :, head_len:head_len + doc_len] for layer in layers],
                   head_len + torch.arange(doc_len), [(0, doc_len)])

    def subset(self, token_index: np.ndarray, progress=None, should_stop=None) -> tuple["Reading", np.ndarray]:
        """A reading that holds ``token_index``'s tokens, and their indices in it: this whole reading here (a
        lazy one, engine/reading/lazy.py, loads only the segments that hold them)."""
        return self, np.asarray(token_index, dtype=np.int64)


def cache_with(model, keys: list[torch.Tensor], values: list[torch.Tensor]):
    """A fresh cache holding these per-layer keys/values."""
    cache = generation.new_cache(model.config)
    for layer, (k, v) in enumerate(zip(keys, values)):
        cache.update(k, v, layer)
    return cache


def head_reading(model, head_ids: list[int], should_stop: ShouldStop | None = None):
    """(keys, values) per layer of the chat head read alone: what every segment is read after."""
    head_cache = generation.new_cache(model.config)
    generation.prefill(model, head_ids, head_cache, should_stop=should_stop)
    return [layer.keys.clone() for layer in head_cache.layers], [layer.values.clone() for layer in head_cache.layers]


def segment_piece(doc_ids: np.ndarray, start: int, end: int, overlap: int) -> tuple[np.ndarray, int]:
    """The tokens read for segment [start, end): its ``overlap`` tokens of context, then itself; and how many
    of them are context."""
    context = max(0, start - overlap)
    return np.asarray(doc_ids[context:end], dtype=np.int64), start - context


def segment_tag(head_ids: list[int], piece: np.ndarray, context: int) -> str:
    """What a segment's reading depends on (besides the model): the head, its context and its tokens."""
    return hashlib.sha1(np.asarray(piece, dtype=np.int64).tobytes() + repr(list(head_ids)).encode() +
                        str(context).encode()).hexdigest()


@torch.inference_mode()
def read_segment(model, head_keys: list[torch.Tensor], head_values: list[torch.Tensor], piece: np.ndarray,
                 context: int, progress: Callable[[int], None] | None = None,
                 should_stop: ShouldStop | None = None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Read one segment (``piece``: its ``context`` tokens of overlap, then itself) after the head; returns its
    own tokens' keys/values per layer. ``progress(done)`` counts the segment's own tokens read so far."""
    cache = cache_with(model, head_keys, head_values)
    generation.prefill(model, np.asarray(piece).tolist(), cache, should_stop=should_stop,
                       progress=(lambda done, _: progress(max(0, done - context))) if progress else None)
    skip = head_keys[0].shape[2] + context
    return ([layer.keys[:, :, skip:].clone() for layer in cache.layers],
            [layer.values[:, :, skip:].clone() for layer in cache.layers])
