"""A long document's reading, kept per segment and loaded only where a question needs it.

A document longer than the window is read in segments (engine/reading/segments.py). Each segment's keys/values are
stored in the state cache as an entry of their own, keyed by what they depend on (the chat head, the segment's
overlap context and its tokens, the model and the storage format), so identical segments of two documents are
one entry, and the cache's size cap evicts segments, least recently used first, not whole documents.

``LazyReading`` stands for the whole reading but holds only the chat head and, in memory, the few segments used
last. A question ranks passages without the state (engine/retrieval/index.py); ``subset`` then loads just the
segments that hold the chosen passages, and a segment that is no longer stored (evicted, or never stored
because the cache is off or full) is read again, alone, after the head and its overlap context.

What a question stores is what it used: a segment read for a question keeps, on disk, only the keys and values
of the tokens the answer was given (a "part" entry, its token list beside it), about a tenth of the segment; a
later question that needs other tokens of it reads the segment again and widens the part. Reading the whole
document (``read_missing``, ``whole``) stores whole segments, which replace their parts.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from ..errors import CancelledError
from ..store.state_cache import StateCache, StateKey, StateTooLarge
from . import segments as seg

KEPT_IN_MEMORY = 8  # segments kept in memory after use (about 370 MB in fp32 for the bundled model)
Progress = Callable[[int, int], None]
ShouldStop = Callable[[], bool]


@dataclass
class SegmentSource:
    """Where segments are kept and how they are named: the state cache (None: off) and the stored keys."""

    model: object
    cache: StateCache | None
    key: Callable[[str, str, int], StateKey]  # (kind "head"/"segment", content tag, tokens) -> its key
    dtype: torch.dtype
    devices: list[torch.device]
    title: str = ""
    path: str = ""
    notices: list[str] = field(default_factory=list)  # a segment that could not be stored, said once


@dataclass
class SegmentStats:
    """What the last ``subset`` or ``read_missing`` did."""

    loaded: int = 0  # segments restored from the state cache
    read: int = 0  # segments read (again) by the model
    in_memory: int = 0  # segments already in memory
    load_s: float = 0.0
    read_s: float = 0.0

    def to_dict(self) -> dict:
        return {"segments_loaded": self.loaded, "segments_read": self.read, "segments_in_memory": self.in_memory,
                "segments_load_s": round(self.load_s, 3), "segments_read_s": round(self.read_s, 3)}


class LazyReading:
    """A document's reading (as ``segments.Reading``: head, segments, positions) whose segments' keys/values
    are loaded on demand."""

    def __init__(self, source: SegmentSource, head_ids: list[int], doc_ids: np.ndarray,
                 bounds: list[tuple[int, int]], overlap: int) -> None:
        self.source = source
        self.doc_ids = np.asarray(doc_ids, dtype=np.int64)
        self.segments = list(bounds)
        self.positions = seg.segment_positions(self.segments, len(head_ids), overlap)
        self._pieces = [seg.segment_piece(self.doc_ids, a, b, overlap) for a, b in self.segments]
        self.tags = [seg.segment_tag(head_ids, piece, context) for piece, context in self._pieces]
        self.head_keys, self.head_values = self._head(head_ids)
        self._memory: OrderedDict[int, tuple[list, list]] = OrderedDict()
        self._pinned: set[int] = set()  # segments that could not be stored stay in memory
        self._kept: dict[int, np.ndarray | None] = {}  # what is known stored: a part's tokens, None for the whole
        self.stats = SegmentStats()
        self._whole: seg.Reading | None = None

    @classmethod
    def in_memory(cls, model, head_ids: list[int], doc_ids: np.ndarray, segmenting: seg.Segmenting,
                  starts: np.ndarray | None = None) -> "LazyReading":
        """A reading that keeps every segment in memory and stores nothing (tests, benchmarks); ``starts``: the
        passages' first tokens, where segment boundaries may fall."""
        parameter = next(model.parameters())
        layers = model.config.num_hidden_layers
        source = SegmentSource(model, None, lambda kind, tag, tokens: None, parameter.dtype,
                               [parameter.device] * layers)
        bounds = seg.segment_bounds(doc_ids, segmenting.segment, starts)
        reading = cls(source, head_ids, doc_ids, bounds, segmenting.overlap)
        reading._pinned = set(range(len(reading.segments)))
        return reading

    @property
    def head_len(self) -> int:
        return self.head_keys[0].shape[2]

    @property
    def length(self) -> int:
        return len(self.doc_ids)

    def _key(self, number: int, kind: str = "segment") -> StateKey:
        """The stored entry of segment ``number``: the whole ("segment") or the tokens questions used ("part")."""
        start, end = self.segments[number]
        return self.source.key(kind, self.tags[number], end - start)

    def _head(self, head_ids: list[int]):
        tag = seg.segment_tag(head_ids, np.zeros(0, dtype=np.int64), 0)
        key, cache = self.source.key("head", tag, len(head_ids)), self.source.cache
        restored = cache.load(key, self.source.dtype, self.source.devices) if cache is not None else None
        if restored is not None:
            return [k for k, _ in restored.layers], [v for _, v in restored.layers]
        keys, values = seg.head_reading(self.source.model, head_ids)
        self._store(key, keys, values)
        return keys, values

    def _store(self, key: StateKey, keys: list, values: list, extra: torch.Tensor | None = None) -> bool:
        """Store keys and values under ``key``; ``extra`` goes in the entry's vector slot (a part's token list)."""
        cache = self.source.cache
        if cache is None or cache.unavailable is not None:
            return False
        try:
            return cache.store(key, list(zip(keys, values)), torch.zeros(1) if extra is None else extra,
                               title=self.source.title, path=self.source.path) > 0
        except StateTooLarge as error:
            self.source.notices.append(str(error))
            return False

    def take_notices(self) -> list[str]:
        """What went wrong while storing segments (a full disk, a cap too small), each said once."""
        notices = list(self.source.notices)
        self.source.notices.clear()
        if self.source.cache is not None:
            notices += self.source.cache.take_notices()
        return notices

    # -- which segments are stored, and reading the missing ones

    def missing(self) -> list[int]:
        """Segments not stored whole (without a cache: those not in memory)."""
        cache = self.source.cache
        if cache is None:
            return [n for n in range(len(self.segments)) if n not in self._memory]
        numbers = range(len(self.segments))
        stored = cache.stored([self._key(n) for n in numbers])
        return [n for n in numbers if self._key(n).digest() not in stored]

    def read_missing(self, progress: Progress | None = None, should_stop: ShouldStop | None = None) -> int:
        """Read every segment that is not stored whole, storing each as soon as it is read (an interrupted
        reading resumes where it stopped; one in memory is stored without reading it again); returns how many
        were missing. Progress counts the tokens to read."""
        todo = self.missing()
        total = sum(self.segments[n][1] - self.segments[n][0] for n in todo)
        done = 0
        if progress:
            progress(0, total)
        for number in todo:
            if should_stop and should_stop():
                raise CancelledError("reading the document")
            if number in self._memory:
                self._store_whole(number, *self._memory[number])
            else:
                self._read(number, (lambda tokens, d=done: progress(d + tokens, total)) if progress else None,
                           should_stop)
            done += self.segments[number][1] - self.segments[number][0]
            if progress:
                progress(done, total)
        return len(todo)

    def _read(self, number: int, progress: Callable[[int], None] | None, should_stop: ShouldStop | None,
              whole: bool = True):
        """Read segment ``number`` (kept in memory); ``whole``: store all of it (else the caller stores a part)."""
        started = time.perf_counter()
        piece, context = self._pieces[number]
        keys, values = seg.read_segment(self.source.model, self.head_keys, self.head_values, piece, context, progress,
                                        should_stop)
        if whole:
            self._store_whole(number, keys, values)
        self._remember(number, keys, values)
        self.stats.read += 1
        self.stats.read_s += time.perf_counter() - started
        return keys, values

    def _store_whole(self, number: int, keys: list, values: list) -> None:
        """Store segment ``number`` whole (its part goes); one that cannot be stored stays in memory."""
        if self._store(self._key(number), keys, values):
            self._kept[number] = None
            self.source.cache.remove(self._key(number, "part"))
        else:
            self._pinned.add(number)

    def _remember(self, number: int, keys: list, values: list) -> None:
        self._memory[number] = (keys, values)
        self._memory.move_to_end(number)
        evictable = [n for n in self._memory if n not in self._pinned]  # least recently used first
        while len(evictable) > KEPT_IN_MEMORY:
            del self._memory[evictable.pop(0)]

    # -- loading

    def segment(self, number: int, progress: Progress | None = None, should_stop: ShouldStop | None = None,
                whole: bool = True) -> tuple[list, list]:
        """Segment ``number``'s keys and values per layer, whole: from memory, the state cache, or read again
        (and then stored whole, unless not ``whole``: the caller stores the part it uses)."""
        if number in self._memory:
            self._memory.move_to_end(number)
            self.stats.in_memory += 1
            return self._memory[number]
        if self._load_whole(number):
            return self._memory[number]
        start, end = self.segments[number]
        report = (lambda done: progress(done, end - start)) if progress else None
        return self._read(number, report, should_stop, whole)

    def _load_whole(self, number: int) -> bool:
        """Restore segment ``number`` stored whole into memory; whether it was."""
        cache, started = self.source.cache, time.perf_counter()
        restored = cache.load(self._key(number), self.source.dtype, self.source.devices) if cache else None
        if restored is None:
            return False
        self._kept[number] = None
        self._remember(number, [k for k, _ in restored.layers], [v for _, v in restored.layers])
        self.stats.loaded += 1
        self.stats.load_s += time.perf_counter() - started
        return True

    def segments_of(self, token_index: np.ndarray) -> list[int]:
        """The segments holding these document tokens, in order."""
        starts = np.array([a for a, _ in self.segments], dtype=np.int64)
        return sorted(set((np.searchsorted(starts, np.asarray(token_index), side="right") - 1).tolist()))

    def subset(self, token_index: np.ndarray, progress: Progress | None = None,
               should_stop: ShouldStop | None = None) -> tuple[seg.Reading, np.ndarray]:
        """A ``Reading`` of the tokens ``token_index`` (each segment's wanted tokens, in segment order), and each
        token's index in it. A segment comes from memory, the store (whole, or a part that holds the tokens) or
        is read again; what was read is stored as the part these tokens make. ``stats`` says what it took."""
        token_index = np.asarray(token_index, dtype=np.int64)
        if self._whole is not None:  # every segment is in memory already (``whole``)
            self.stats = SegmentStats(in_memory=len(self.segments_of(token_index)))
            return self._whole, token_index
        self.stats = SegmentStats()
        starts = np.array([a for a, _ in self.segments], dtype=np.int64)
        where = np.searchsorted(starts, token_index, side="right") - 1
        layers = len(self.head_keys)
        keys: list[list[torch.Tensor]] = [[] for _ in range(layers)]
        values: list[list[torch.Tensor]] = [[] for _ in range(layers)]
        positions, local, offset = [], np.zeros(len(token_index), dtype=np.int64), 0
        for number in sorted(set(where.tolist())):
            start = self.segments[number][0]
            wanted = np.unique(token_index[where == number] - start)
            seg_keys, seg_values, held = self._tokens(number, wanted, progress, should_stop)
            pick = torch.as_tensor(np.searchsorted(held, wanted))
            for layer in range(layers):
                keys[layer].append(seg_keys[layer][:, :, pick])
                values[layer].append(seg_values[layer][:, :, pick])
            positions.append(self.positions[start + wanted])
            mine = where == number
            local[mine] = offset + np.searchsorted(wanted, token_index[mine] - start)
            offset += len(wanted)
        reading = seg.Reading(self.head_keys, self.head_values, [torch.cat(k, 2) for k in keys],
                              [torch.cat(v, 2) for v in values], torch.cat(positions), [(0, offset)])
        return reading, local

    def _tokens(self, number: int, wanted: np.ndarray, progress: Progress | None,
                should_stop: ShouldStop | None) -> tuple[list, list, np.ndarray]:
        """Segment ``number``'s keys and values for at least its local tokens ``wanted`` (sorted), and which
        local tokens they hold (sorted): a stored part that holds them, or the whole segment (``segment``).
        Whatever the store lacks of ``wanted`` is stored as a widened part."""
        cache = self.source.cache
        if number not in self._memory and cache is not None and self._kept.get(number, ()) is not None:
            started = time.perf_counter()
            part = cache.load(self._key(number, "part"), self.source.dtype, self.source.devices)
            if part is not None:
                held = part.last_logits.cpu().numpy().astype(np.int64)
                self._kept[number] = held
                if np.isin(wanted, held).all() and len(held) == part.layers[0][0].shape[2]:
                    self.stats.loaded += 1
                    self.stats.load_s += time.perf_counter() - started
                    return [k for k, _ in part.layers], [v for _, v in part.layers], held
        keys, values = self.segment(number, progress, should_stop, whole=cache is None)
        self._store_part(number, wanted, keys, values)
        return keys, values, np.arange(self.segments[number][1] - self.segments[number][0])

    def _store_part(self, number: int, wanted: np.ndarray, keys: list, values: list) -> None:
        """Store the tokens ``wanted`` of segment ``number`` (with those already stored) as its part, unless the
        store holds them already (or the whole segment); a segment that cannot be stored stays in memory."""
        held = self._kept.get(number, np.zeros(0, dtype=np.int64))
        if self.source.cache is None or held is None or np.isin(wanted, held).all():
            return
        tokens = np.union1d(held, wanted)
        pick = torch.as_tensor(tokens)
        if self._store(self._key(number, "part"), [k[:, :, pick] for k in keys], [v[:, :, pick] for v in values],
                       torch.as_tensor(tokens, dtype=torch.float32)):
            self._kept[number] = tokens
        else:
            self._pinned.add(number)

    def whole(self, progress: Progress | None = None, should_stop: ShouldStop | None = None) -> seg.Reading:
        """Every segment, whole, as one ``Reading`` (the question pass over every segment needs them all); kept,
        as the whole state was before segments were stored apart."""
        if self._whole is None:
            self.stats = SegmentStats()
            parts = [self.segment(n, progress, should_stop) for n in range(len(self.segments))]
            layers = len(self.head_keys)
            self._whole = seg.Reading(self.head_keys, self.head_values,
                                      [torch.cat([p[0][layer] for p in parts], 2) for layer in range(layers)],
                                      [torch.cat([p[1][layer] for p in parts], 2) for layer in range(layers)],
                                      self.positions[:self.segments[-1][1]], list(self.segments))
        return self._whole
