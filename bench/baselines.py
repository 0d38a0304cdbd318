"""Benchmark-only attention strategies, plugged in through the engine's public registry (engine/attention/strategies.py).

At DGA's key budget (its focal tokens plus one key per group), the answer keeps only exact document tokens:

- ``evict`` (SnapKV-like): the tokens the question attends to most, chosen once at the question;
- ``recent`` (StreamingLLM-like): the leading sink tokens and the most recent ones, whatever the question.

Importing this module registers both; ``EngineSettings(attention_mode="evict", answer_context="document")``
then answers with them.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from engine.attention import ops
from engine.attention.contract import AttentionRun
from engine.attention.strategies import AttentionStrategy, register


class KeepRun(AttentionRun):
    """Decoding attends to [head + kept document tokens + question + answer]; the rest is dropped."""

    def __init__(self, settings, doc_start: int, doc_end: int, policy: str) -> None:
        self.dga = settings.dga_settings()
        self.doc_start, self.doc_end, self.policy = doc_start, doc_end, policy
        self.question_mass: dict[int, torch.Tensor] = {}
        self.kept: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.budget = 0

    def _budget(self, length: int) -> int:
        focal = min(length, max(self.dga.min_focal, math.ceil(self.dga.gamma * length)))
        return min(length, self.dga.sinks + focal + math.ceil((length - focal) / self.dga.group_size))

    def attend(self, module, query, key, value, attention_mask, scaling, phase):
        layer = module.layer_idx
        if phase == "question":
            mass = ops.attention_mass(query, key, scaling)[..., self.doc_start:self.doc_end]  # (B, H_kv, L)
            self.question_mass[layer] = mass.sum((0, 1)).cpu() + self.question_mass.get(layer, 0)
            self.budget = self._budget(self.doc_end - self.doc_start)
            self.kept[layer] = self._keep(mass, key, value)
            return None
        if phase != "decode" or layer not in self.kept:
            return None
        kept_keys, kept_values = self.kept[layer]
        keys = torch.cat([key[:, :, :self.doc_start], kept_keys, key[:, :, self.doc_end:]], 2)
        values = torch.cat([value[:, :, :self.doc_start], kept_values, value[:, :, self.doc_end:]], 2)
        out = F.scaled_dot_product_attention(ops.stack_queries(query, key.shape[1]), keys, values, scale=scaling)
        return ops.unstack_output(out, query.shape[1])

    def _keep(self, mass, key, value):
        length = mass.shape[-1]
        batch, heads = mass.shape[:2]
        if self.policy == "recent":
            sinks = torch.arange(min(self.dga.sinks, length), device=key.device)
            recent = torch.arange(max(len(sinks), length - (self.budget - len(sinks))), length, device=key.device)
            positions = torch.cat([sinks, recent]).expand(batch, heads, -1)
        else:
            positions = ops.top_positions(mass, self.budget, self.dga.smoothing, self.dga.follow)
        index = (positions + self.doc_start)[..., None].expand(-1, -1, -1, key.shape[-1])
        return key.gather(2, index), value.gather(2, index)

    def attended_fraction(self) -> float:
        return round(self.budget / max(1, self.doc_end - self.doc_start), 4)


for name, label in (("evict", "Evict (SnapKV-like baseline)"), ("recent", "Recent window (StreamingLLM-like)")):
    register(AttentionStrategy(name, label, f"benchmark baseline at DGA's key budget: {name}",
                               lambda settings, start, end, policy=name: KeepRun(settings, start, end, policy)))
