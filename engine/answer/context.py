"""The answer's context: the chosen passages, from one document or several, placed right after the chat head.

Each document's reading (a ``LazyReading`` over its segments, or a whole-document ``Reading``) gives the keys and
values of its chosen passages: the segments that hold them are loaded, or read now if they never were (this
is where a new document is read, and only there). The passages' keys are rotated (RoPE) to consecutive positions
after the head, in placement order, into one cache (engine/attention/compaction.py).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..attention import compaction
from ..reading.segments import Reading
from ..retrieval.ranking import Candidates

PASSAGE_STATS = ("segments_loaded", "segments_read", "segments_in_memory", "segments_load_s", "segments_read_s")


@dataclass
class Context:
    """The placed passages (scope rows, in placement order), the compacted cache and, per placed token, its
    document and document token; ``stats`` says what loading them took."""

    rows: list[int]
    cache: object
    run: compaction.PassageRun
    head_len: int
    items: int
    token_doc: np.ndarray  # (items,) index into the scope's documents
    token_index: np.ndarray  # (items,) document token
    stats: dict = field(default_factory=dict)

    def answer_mass(self, candidates: Candidates) -> dict[str, np.ndarray]:
        """sha256 -> (L,) the answer's attention on each document's placed tokens (zeros elsewhere)."""
        mass = self.run.answer_mass.numpy()
        result = {}
        for number in np.unique(self.token_doc).tolist():
            mine = self.token_doc == number
            target = np.zeros(int(candidates.tokens[number]), dtype=np.float32)
            target[self.token_index[mine]] = mass[mine]
            result[candidates.shas[number]] = target
        return result


def assemble(model, candidates: Candidates, placed: list[int], readings: dict[str, object], progress=None,
             should_stop=None) -> Context:
    """Load (or read) the tokens of the ``placed`` rows from each document's reading (``readings``: sha256 ->
    a reading with ``subset``) and compact them after the head."""
    began = time.perf_counter()
    stats = dict.fromkeys(PASSAGE_STATS, 0)
    by_doc: dict[int, list[int]] = {}
    for row in placed:
        by_doc.setdefault(int(candidates.doc[row]), []).append(row)
    pieces: dict[int, tuple[Reading, torch.Tensor]] = {}
    for number, rows in by_doc.items():
        ranges = [candidates.token_range(row) for row in rows]
        reading = readings[candidates.shas[number]]
        subset, local = reading.subset(np.concatenate(ranges), progress, should_stop)
        _add_stats(stats, reading)
        offset = 0
        for row, tokens in zip(rows, ranges):
            pieces[row] = (subset, torch.as_tensor(local[offset:offset + len(tokens)]))
            offset += len(tokens)
    joined = _join([pieces[row] for row in placed])
    compacted = compaction.compact(model, joined, np.arange(joined.length))
    token_doc = np.concatenate([np.full(len(candidates.token_range(r)), candidates.doc[r]) for r in placed])
    token_index = np.concatenate([candidates.token_range(r) for r in placed])
    stats["context_load_s"] = round(time.perf_counter() - began, 3)
    return Context(list(placed), compaction.cache_of(model, compacted), compaction.PassageRun(joined.head_len,
                   compacted.items), joined.head_len, compacted.items, token_doc, token_index,
                   {key: round(value, 3) if isinstance(value, float) else value for key, value in stats.items()})


def _join(parts: list[tuple[Reading, torch.Tensor]]) -> Reading:
    """One reading of the placed tokens, in order: every part's keys/values at its indices, with positions."""
    first = parts[0][0]
    layers = len(first.head_keys)
    keys = [torch.cat([reading.keys[layer][:, :, index] for reading, index in parts], 2) for layer in range(layers)]
    values = [torch.cat([reading.values[layer][:, :, index] for reading, index in parts], 2) for layer in range(layers)]
    positions = torch.cat([reading.positions[index] for reading, index in parts])
    return Reading(first.head_keys, first.head_values, keys, values, positions, [(0, int(positions.numel()))])


def _add_stats(stats: dict, reading) -> None:
    lazy = getattr(reading, "stats", None)
    if lazy is not None:
        for key, value in lazy.to_dict().items():
            if key in stats:
                stats[key] += value
