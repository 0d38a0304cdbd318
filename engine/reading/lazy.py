"""A long document's reading, kept per segment and loaded only where a question needs it.

A document longer than the window is read in segments (engine/reading/segments.py). Each segment's keys/values are
stored in the state cache as an entry of their own, keyed by what they depend on (the chat head, the segment's
overlap context and its tokens, the model and the storage format), so identical segments of two documents are
one entry, and the cache's size cap evicts segments, least recently used first, not whole documents.

``LazyReading`` stands for the whole reading but holds only the chat head and, in memory, the few segments used
last. A question ranks passages without the state (engine/retrieval/index.py); ``subset`` then loads just the
segments that hold the chosen passages, and a segment that is no longer stored (evicted, or never stored
because the cache is off or full) is read again, alone, after the head and its overlap context.
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
                 segmenting: seg.Segmenting) -> None:
        self.source = source
        self.doc_ids = np.asarray(doc_ids, dtype=np.int64)
        self.segmenting = segmenting
        self.segments = seg.segment_bounds(self.doc_ids, segmenting.segment)
        self.positions = seg.segment_positions(self.segments, len(head_ids), segmenting.overlap)
        self._pieces = [seg.segment_piece(self.doc_ids, a, b, segmenting.overlap) for a, b in self.segments]
        self.tags = [seg.segment_tag(head_ids, piece, context) for piece, context in self._pieces]
        self.head_keys, self.head_values = self._head(head_ids)
        self._memory: OrderedDict[int, tuple[list, list]] = OrderedDict()
        self._pinned: set[int] = set()  # segments that could not be stored stay in memory
        self.stats = SegmentStats()
        self._whole: seg.Reading | None = None

    @classmethod
    def in_memory(cls, model, head_ids: list[int], doc_ids: np.ndarray, segmenting: seg.Segmenting) -> "LazyReading":
        """A reading that keeps every segment in memory and stores nothing (tests, benchmarks)."""
        parameter = next(model.parameters())
        layers = model.config.num_hidden_layers
        source = SegmentSource(model, None, lambda kind, tag, tokens: None, parameter.dtype,
                               [parameter.device] * layers)
        reading = cls(source, head_ids, doc_ids, segmenting)
        reading._pinned = set(range(len(reading.segments)))
        return reading

    @property
    def head_len(self) -> int:
        return self.head_keys[0].shape[2]

    @property
    def length(self) -> int:
        return len(self.doc_ids)

    def _key(self, number: int) -> StateKey:
        start, end = self.segments[number]
        return self.source.key("segment", self.tags[number], end - start)

    def _head(self, head_ids: list[int]):
        tag = seg.segment_tag(head_ids, np.zeros(0, dtype=np.int64), 0)
        key, cache = self.source.key("head", tag, len(head_ids)), self.source.cache
        restored = cache.load(key, self.source.dtype, self.source.devices) if cache is not None else None
        if restored is not None:
            return [k for k, _ in restored.layers], [v for _, v in restored.layers]
        keys, values = seg.head_reading(self.source.model, head_ids)
        self._store(key, keys, values)
        return keys, values

    def _store(self, key: StateKey, keys: list, values: list) -> bool:
        cache = self.source.cache
        if cache is None or cache.unavailable is not None:
            return False
        try:
            return cache.store(key, list(zip(keys, values)), torch.zeros(1), title=self.source.title,
                               path=self.source.path) > 0
        except StateTooLarge as error:
            self.source.notices.append(str(error))
            return False

    # -- which segments are stored, and reading the missing ones

    def missing(self) -> list[int]:
        """Segments neither in memory nor in the state cache (all of them when the cache is off)."""
        cache = self.source.cache
        unread = [n for n in range(len(self.segments)) if n not in self._memory]
        if cache is None:
            return unread
        stored = cache.stored([self._key(n) for n in unread])
        return [n for n in unread if self._key(n).digest() not in stored]

    def read_missing(self, progress: Progress | None = None, should_stop: ShouldStop | None = None) -> int:
        """Read every segment that is not stored, storing each as soon as it is read (an interrupted reading
        resumes where it stopped); returns how many were read. Progress counts the tokens to read."""
        todo = self.missing()
        total = sum(self.segments[n][1] - self.segments[n][0] for n in todo)
        done = 0
        if progress:
            progress(0, total)
        for number in todo:
            if should_stop and should_stop():
                raise CancelledError("reading the document")
            self._read(number, (lambda tokens, d=done: progress(d + tokens, total)) if progress else None,
                       should_stop)
            done += self.segments[number][1] - self.segments[number][0]
            if progress:
                progress(done, total)
        return len(todo)

    def _read(self, number: int, progress: Callable[[int], None] | None, should_stop: ShouldStop | None):
        started = time.perf_counter()
        piece, context = self._pieces[number]
        keys, values = seg.read_segment(self.source.model, self.head_keys, self.head_values, piece, context, progress,
                                        should_stop)
        if not self._store(self._key(number), keys, values):
            self._pinned.add(number)
        self._remember(number, keys, values)
        self.stats.read += 1
        self.stats.read_s += time.perf_counter() - started
        return keys, values

    def _remember(self, number: int, keys: list, values: list) -> None:
        self._memory[number] = (keys, values)
        self._memory.move_to_end(number)
        evictable = [n for n in self._memory if n not in self._pinned]  # least recently used first
        while len(evictable) > KEPT_IN_MEMORY:
            del self._memory[evictable.pop(0)]

    # -- loading

    def segment(self, number: int, progress: Progress | None = None,
                should_stop: ShouldStop | None = None) -> tuple[list, list]:
        """Segment ``number``'s keys and values per layer: from memory, the state cache, or read again."""
        if number in self._memory:
            self._memory.move_to_end(number)
            self.stats.in_memory += 1
            return self._memory[number]
        cache = self.source.cache
        started = time.perf_counter()
        restored = cache.load(self._key(number), self.source.dtype, self.source.devices) if cache else None
        if restored is not None:
            keys, values = [k for k, _ in restored.layers], [v for _, v in restored.layers]
            self._remember(number, keys, values)
            self.stats.loaded += 1
            self.stats.load_s += time.perf_counter() - started
            return keys, values
        start, end = self.segments[number]
        report = (lambda done: progress(done, end - start)) if progress else None
        return self._read(number, report, should_stop)

    def segments_of(self, token_index: np.ndarray) -> list[int]:
        """The segments holding these document tokens, in order."""
        starts = np.array([a for a, _ in self.segments], dtype=np.int64)
        return sorted(set((np.searchsorted(starts, np.asarray(token_index), side="right") - 1).tolist()))

    def subset(self, token_index: np.ndarray, progress: Progress | None = None,
               should_stop: ShouldStop | None = None) -> tuple[seg.Reading, np.ndarray]:
        """A ``Reading`` of just the segments holding ``token_index`` (loaded, or read again), and the tokens'
        indices in it. ``stats`` says what it took."""
        token_index = np.asarray(token_index, dtype=np.int64)
        numbers = self.segments_of(token_index)
        if self._whole is not None:  # every segment is in memory already (``whole``)
            self.stats = SegmentStats(in_memory=len(numbers))
            return self._whole, token_index
        self.stats = SegmentStats()
        parts = [self.segment(n, progress, should_stop) for n in numbers]
        layers = len(self.head_keys)
        keys = [torch.cat([p[0][layer] for p in parts], 2) for layer in range(layers)]
        values = [torch.cat([p[1][layer] for p in parts], 2) for layer in range(layers)]
        spans = [self.segments[n] for n in numbers]
        positions = torch.cat([self.positions[a:b] for a, b in spans])
        local_starts, offset = [], 0
        for a, b in spans:
            local_starts.append(offset)
            offset += b - a
        local_segments = [(s, s + b - a) for s, (a, b) in zip(local_starts, spans)]
        where = np.searchsorted(np.array([a for a, _ in spans]), token_index, side="right") - 1
        local = np.array(local_starts, dtype=np.int64)[where] + token_index - np.array([a for a, _ in spans])[where]
        return seg.Reading(self.head_keys, self.head_values, keys, values, positions, local_segments), local

    def whole(self, progress: Progress | None = None, should_stop: ShouldStop | None = None) -> seg.Reading:
        """Every segment, as one ``Reading`` (the question pass over every segment needs them all); kept, as
        the whole state was before segments were stored apart."""
        if self._whole is None:
            self._whole, _ = self.subset(np.array([a for a, _ in self.segments]), progress, should_stop)
        return self._whole
