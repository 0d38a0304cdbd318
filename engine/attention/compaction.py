"""The answer's context: selected document tokens placed right after the chat head, without reading again.

The keys of the chosen passages are rotated (RoPE) from the positions they were read at to consecutive
positions after the head, so the question and the answer attend to [head + passages] as if the passages were
the whole document, and the model reads nothing again. ``PassageRun`` records how much attention the answer
gives each placed token (what the highlights show).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..model.positions import rotary_positions
from ..reading.segments import Reading, cache_with
from . import ops
from .contract import AttentionRun


@dataclass
class Compacted:
    """Per-layer keys/values of [head + placed tokens] and, for each placed token, its document token."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    token_index: np.ndarray  # (n,)

    @property
    def items(self) -> int:
        return len(self.token_index)


@torch.inference_mode()
def compact(model, reading: Reading, token_index: np.ndarray) -> Compacted:
    """Place document tokens ``token_index`` (in the order given) right after the head."""
    positions = rotary_positions(model)  # each layer moved with its own rotation
    head_len = reading.head_len
    device = reading.keys[0].device
    index = torch.as_tensor(np.asarray(token_index, dtype=np.int64), device=device)
    source = reading.positions.to(device)[index]  # (n,) where each token was read
    target = head_len + torch.arange(len(index), device=device)  # (n,) right after the head, in order
    moved = positions.move_layers([k[:, :, index] for k in reading.keys], source, target)
    keys = [torch.cat([hk, k], 2) for hk, k in zip(reading.head_keys, moved)]
    values = [torch.cat([hv, v[:, :, index]], 2) for hv, v in zip(reading.head_values, reading.values)]
    return Compacted(keys, values, np.asarray(token_index, dtype=np.int64))


def cache_of(model, compacted: Compacted):
    return cache_with(model, compacted.keys, compacted.values)


class PassageRun(AttentionRun):
    """Exact attention (SDPA) over [head + placed tokens + question + answer]; records the attention mass the
    question (``question_mass``) and the answer (``answer_mass``) give each placed token, summed over layers."""

    def __init__(self, head_len: int, items: int) -> None:
        self.head_len, self.items = head_len, items
        self.question_mass = torch.zeros(items)
        self.answer_mass = torch.zeros(items)

    def attend(self, module, query, key, value, attention_mask, scaling, phase):
        if phase in ("question", "decode"):
            mass = ops.attention_mass(query, key, scaling, attention_mask, ops.layer_softcap(module))
            mass = mass[0, :, self.head_len:self.head_len + self.items].sum(0)
            target = self.question_mass if phase == "question" else self.answer_mass
            target += mass.float().cpu()
        return None
