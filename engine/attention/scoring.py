"""The question's attention over the document: how the model's own reading points at passages.

The question is run after the document (a document that fits the window: over its dense cache, then cropped
back) or after each segment alone (a longer one, each segment's keys moved right after the chat head), and the
attention mass its queries give every document token is recorded per layer.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..errors import CancelledError
from ..model import generation
from ..model.positions import rotary_positions
from ..reading.segments import Reading, cache_with
from . import ops
from .contract import AttentionRun

ShouldStop = Callable[[], bool]


class ScoreRun(AttentionRun):
    """Records the question's attention mass on cache positions [start, end) per layer; SDPA does the rest."""

    def __init__(self, start: int, end: int) -> None:
        self.start, self.end = start, end
        self.mass: dict[int, torch.Tensor] = {}  # layer -> (end - start,), summed over heads and queries

    def attend(self, module, query, key, value, attention_mask, scaling, phase):
        if phase == "question":
            mass = ops.attention_mass(query, key, scaling, attention_mask, ops.layer_softcap(module))
            mass = mass[0, :, self.start:self.end].sum(0)
            layer = module.layer_idx
            self.mass[layer] = mass if layer not in self.mass else self.mass[layer] + mass
        return None

    def stacked(self) -> np.ndarray:
        """(layers, n) float32."""
        return torch.stack([self.mass[i].float().cpu() for i in sorted(self.mass)]).numpy()


@torch.inference_mode()
def over_cache(model, cache, head_len: int, doc_len: int, q_ids: list[int],
               should_stop: ShouldStop | None = None) -> np.ndarray:
    """(layers, L) the question's attention over a dense [head + document] cache, which is cropped back."""
    run = ScoreRun(head_len, head_len + doc_len)
    try:
        generation.prefill(model, q_ids, cache, run=run, phase="question", should_stop=should_stop)
    finally:
        generation.crop_cache(cache, head_len + doc_len)
    return run.stacked()


@torch.inference_mode()
def over_segments(model, reading: Reading, q_ids: list[int], should_stop: ShouldStop | None = None,
                  progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """(layers, L) the question's attention over each segment alone, its keys moved right after the head."""
    positions = rotary_positions(model)
    head_len = reading.head_len
    result = np.zeros((len(reading.keys), reading.length), dtype=np.float32)
    for number, (start, end) in enumerate(reading.segments):
        if should_stop and should_stop():
            raise CancelledError("answering")
        moved = positions.move_layers([k[:, :, start:end] for k in reading.keys], reading.positions[start:end],
                                      head_len + torch.arange(end - start))
        keys = [torch.cat([hk, k], 2) for hk, k in zip(reading.head_keys, moved)]
        values = [torch.cat([hv, v[:, :, start:end]], 2) for hv, v in zip(reading.head_values, reading.values)]
        run = ScoreRun(head_len, head_len + end - start)
        generation.prefill(model, q_ids, cache_with(model, keys, values), run=run, phase="question")
        result[:, start:end] = run.stacked()
        if progress:
            progress(number + 1, len(reading.segments))
    return result
