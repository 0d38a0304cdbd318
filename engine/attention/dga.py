"""Dynamic Group Attention (DGA) at answer time: an ``engine.attention.contract.AttentionRun``.

For each layer and KV head, the question's queries score every document token; the top ``gamma`` share is
kept exactly (focal tokens) and the rest, in document order, is folded into groups of ``m``: one key/value per
group (a weighted mean of its members) plus a logit bias so that a group stands for its members rather than
for one token (engine/attention/ops.py ``fold_groups``). Decoding then attends to
[prompt head + focal + groups + remainder + question + generated] instead of the whole document, and every
``reselect_every`` generated tokens re-opens the groups the recent queries point at into their exact tokens.

A sliding-window layer (Mistral, Gemma 2/3, Phi-3) whose window does not cover the document stays exact: it
attends to its window only. A soft-capped layer (Gemma 2) caps the logits before the groups' bias.

The question itself reads the document densely (phase "question"); its attention mass over the document is
recorded per layer (``question_mass``) for the relevance ranking (engine/answer/evidence.py), and the answer's
attention as decoding goes on (``answer_mass``) for the highlights.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

from ..options import SettingsError
from . import ops
from .contract import AttentionRun

ANSWER_SPACE = 256  # decode buffer room for the answer before it must grow (a copy of the buffer)


@dataclass
class DgaSettings:
    """DGA knobs; defaults were picked by ``python -m bench`` (see README)."""

    gamma: float = 0.1  # fraction of document tokens kept exactly, per layer and KV head
    min_focal: int = 256  # but at least this many: a short document gains no speed and a small model
    # needs more than 10% of a few hundred tokens to answer (measured on resources/sample.pdf, 239 tokens)
    group_size: int = 16  # m: other tokens are folded into groups of this many
    reselect_every: int = 4  # r: re-open the best groups after this many generated tokens (0: never)
    expand: int = 8  # groups re-opened into their exact tokens at each reselection
    recent_queries: int = 8  # queries (per head) that point at the groups to re-open
    sinks: int = 4  # leading document tokens always kept (the chat head before them always is)
    smoothing: int = 3  # width of the average pooling over scores, so phrases stay whole (1: none)
    follow: int = 8  # the next `follow` tokens after a strong token inherit its score (what a copy needs next)
    weighting: str = "qref"  # group member weights: softmax at the reference query, or a plain mean
    bias: str = "lse"  # group logit bias: log-sum-exp matched at the reference query, log(members), or none
    compress: bool = True  # False: dense attention, only the relevance is recorded (dense mode)

    def __post_init__(self) -> None:
        if not 0.0 <= self.gamma <= 1.0:
            raise SettingsError(f"gamma must be in [0, 1], got {self.gamma}")
        if self.group_size < 1 or self.min_focal < 0 or self.sinks < 0:
            raise SettingsError(f"group size must be at least 1, min_focal and sinks at least 0, got "
                             f"{self.group_size}, {self.min_focal}, {self.sinks}")
        if self.reselect_every < 0 or self.expand < 0 or self.recent_queries < 1:
            raise SettingsError("reselect_every and expand must be >= 0, recent_queries >= 1")
        if self.weighting not in ops.WEIGHTINGS or self.bias not in ops.BIASES:
            raise SettingsError(f"weighting must be one of {ops.WEIGHTINGS} and bias one of {ops.BIASES}")
        if self.smoothing < 1 or self.smoothing % 2 == 0:
            raise SettingsError("smoothing must be an odd width >= 1")

    def to_dict(self) -> dict:
        return asdict(self)

    def replace(self, **changes) -> "DgaSettings":
        return dataclasses.replace(self, **changes)


@dataclass
class Blocks:
    """One layer's grouped region cut into fixed blocks of m tokens. Groups are these blocks minus their focal
    members; re-opening ranks the blocks by whole-block summary keys, so it costs ~ b = L/m, not L."""

    start: int  # cache position of the first grouped token (after the chat head and the sinks)
    keys: torch.Tensor  # (B, H_kv, b, m, D) view of the grouped region of the cache
    values: torch.Tensor
    query_ref: torch.Tensor  # (B, H_kv, D) reference query for member weights and the lse bias
    summary_keys: torch.Tensor  # (B, H_kv, b, D) whole blocks folded, to rank blocks when re-opening
    summary_bias: torch.Tensor  # (B, H_kv, b)

    @property
    def count(self) -> int:
        return self.keys.shape[2]

    @property
    def size(self) -> int:
        return self.keys.shape[3]


def build_blocks(key: torch.Tensor, value: torch.Tensor, start: int, end: int, query_ref: torch.Tensor,
                 settings: DgaSettings, scale: float) -> Blocks:
    """Blocks over cache positions [start, start + b*m) with b = (end - start) // m."""
    m = settings.group_size
    batch, heads, _, dim = key.shape
    count = (end - start) // m
    keys = key[:, :, start:start + count * m].reshape(batch, heads, count, m, dim)
    values = value[:, :, start:start + count * m].reshape(batch, heads, count, m, dim)
    whole = keys.new_ones(batch, heads, count, m)
    summary_keys, _, summary_bias = ops.fold_groups(keys, values, whole, query_ref, scale, settings.weighting,
                                                    settings.bias)
    return Blocks(start, keys, values, query_ref, summary_keys, summary_bias)


def fold_blocks(blocks: Blocks, focal: torch.Tensor, settings: DgaSettings, scale: float):
    """Focal keys/values (B, H_kv, k, D), group keys/values (B, H_kv, b, D) and bias (B, H_kv, b), the focal
    members (block-relative positions (B, H_kv, k)) taken out of their groups."""
    batch, heads, count, m, dim = blocks.keys.shape
    member = blocks.keys.new_ones(batch, heads, count * m).scatter_(2, focal, 0.0).view(batch, heads, count, m)
    group_keys, group_values, bias = ops.fold_groups(blocks.keys, blocks.values, member, blocks.query_ref, scale,
                                                     settings.weighting, settings.bias)
    index = focal[..., None].expand(-1, -1, -1, dim)
    focal_keys = blocks.keys.flatten(2, 3).gather(2, index)
    focal_values = blocks.values.flatten(2, 3).gather(2, index)
    return focal_keys, focal_values, group_keys, group_values, bias


@dataclass
class Buffer:
    """Preallocated keys/values/bias the decode steps attend to: [kept prefix | focal | groups | remainder |
    re-opened blocks | tail]; each step only appends its new tail tokens (question and generated)."""

    keys: torch.Tensor  # (B, H_kv, capacity, D)
    values: torch.Tensor
    bias: torch.Tensor  # (B, H_kv, capacity)
    base: int  # entries before the tail
    tail: int = 0  # tail tokens copied so far

    def sync(self, key: torch.Tensor, value: torch.Tensor, tail_start: int) -> int:
        """Copy tail tokens not yet in the buffer; returns the number of valid entries."""
        wanted = key.shape[2] - tail_start
        if self.base + wanted > self.keys.shape[2]:  # grow by a quarter: a long answer copies the buffer rarely
            pad = self.base + wanted - self.keys.shape[2] + max(64, self.keys.shape[2] // 4)
            self.keys, self.values = F.pad(self.keys, (0, 0, 0, pad)), F.pad(self.values, (0, 0, 0, pad))
            self.bias = F.pad(self.bias, (0, pad))
        if wanted > self.tail:
            self.keys[:, :, self.base + self.tail:self.base + wanted] = key[:, :, tail_start + self.tail:]
            self.values[:, :, self.base + self.tail:self.base + wanted] = value[:, :, tail_start + self.tail:]
            self.tail = wanted
        return self.base + wanted


@dataclass
class _LayerState:
    recent: torch.Tensor  # (B, H, n, D) most recent queries
    softcap: float | None = None  # the layer's logit soft-capping (Gemma 2), applied before the groups' bias
    blocks: Blocks | None = None
    buffer: Buffer | None = None
    focal: torch.Tensor | None = None  # (B, H_kv, k) cache positions kept exactly
    steps: int = 0
    group_bias: torch.Tensor | None = None  # (B, H_kv, b) the groups' bias as selected at the question (buffer dtype)
    # Made once at the question so that a re-opening launches fewer small operations (on a GPU each one costs
    # about as much to launch as a decode step's attention over thousands of keys):
    focal_block: torch.Tensor | None = None  # (B, H_kv, k) the block each focal token lies in
    member_offsets: torch.Tensor | None = None  # (m,) document position of a block's members, minus m * block
    rows: tuple = ()  # (batch index (B, 1, 1), KV-head index (1, H_kv, 1)) to pick blocks per head
    opened: int = 0  # buffer index of the region holding re-opened blocks' exact tokens
    first_group: int = 0  # buffer index of the first group (the focal tokens come right before)


@dataclass
class DgaRun(AttentionRun):
    """Per-answer DGA state. ``doc_start``/``doc_end`` delimit the document in the cache; everything outside
    (chat head, question, generated tokens) is always attended exactly."""

    settings: DgaSettings
    doc_start: int
    doc_end: int
    layers: dict[int, _LayerState] = field(default_factory=dict)
    # What is recorded stays on the model's device until it is read: a copy to the host in a decode step would
    # wait for the device's queue to empty, in every layer (README, "On a GPU").
    _question_mass: dict[int, torch.Tensor] = field(default_factory=dict, repr=False)  # layer -> (L,)
    _question_host: dict[int, torch.Tensor] | None = field(default=None, repr=False)  # host copy, made when read
    _answer_mass: torch.Tensor | None = field(default=None, repr=False)  # (L,) float32
    _kept: tuple | None = field(default=None, repr=False)  # (exact keys, group biases) of the last selection

    @property
    def doc_length(self) -> int:
        return self.doc_end - self.doc_start

    @property
    def question_mass(self) -> dict[int, torch.Tensor]:
        """layer -> (L,) the question's attention over the document (float32, on the host)."""
        if self._question_host is None:
            self._question_host = {layer: mass.float().cpu() for layer, mass in self._question_mass.items()}
        return self._question_host

    @property
    def answer_mass(self) -> torch.Tensor | None:
        """(L,) the answer's attention over the document, summed over re-openings (float32, on the host)."""
        return None if self._answer_mass is None else self._answer_mass.to("cpu", copy=True)

    @property
    def attended_keys(self) -> int | None:
        """Document keys per layer and KV head after the last selection (None: all of them)."""
        if self._kept is None:
            return None
        exact, group_bias = self._kept
        return exact + int(torch.isfinite(group_bias).sum())

    def attended_fraction(self) -> float:
        if self.attended_keys is None:
            return 1.0
        return round(self.attended_keys / max(1, self.doc_length), 4)

    def attend(self, module, query, key, value, attention_mask, scaling: float, phase: str):
        """Attention output (B, q, H, D) for one layer call, or None where plain SDPA is right."""
        if phase == "prefill":
            return None
        layer = module.layer_idx
        recent = query[:, :, -self.settings.recent_queries:].detach()
        if phase == "question":  # every chunk of the question reads densely; the last one's selection stands
            softcap = ops.layer_softcap(module)
            mass = ops.attention_mass(query, key, scaling, attention_mask, softcap)  # (B, H_kv, N), exact
            self._record_question(layer, mass)
            self.layers.pop(layer, None)
            # A sliding-window layer that cannot see the whole document and the answer stays exact: it attends
            # to its window only.
            if ops.sees_all(module, self.doc_end + ANSWER_SPACE):
                self.layers[layer] = _LayerState(recent, softcap=softcap)
                self._select_at_question(self.layers[layer], mass, query, key, value, scaling)
            return None
        state = self.layers.get(layer)
        if state is None:
            return None
        state.recent = torch.cat([state.recent, recent], 2)[:, :, -self.settings.recent_queries:]
        state.steps += 1
        if self.settings.reselect_every and state.steps >= self.settings.reselect_every:
            state.steps = 0
            self._reopen(state, key, scaling)
        return None if state.buffer is None else self._decode(state, query, key, value, scaling)

    # -- selection

    def _grouped_region(self) -> tuple[int, int]:
        """(start, end) of the grouped region: the sinks before it and a remainder shorter than a group stay exact."""
        m = self.settings.group_size
        start = min(self.doc_start + self.settings.sinks, self.doc_end)
        return start, start + (self.doc_end - start) // m * m

    def _record_question(self, layer: int, mass: torch.Tensor) -> None:
        """Add the question's attention (B, H_kv, N) over the document to ``question_mass``."""
        doc_mass = mass[..., self.doc_start:self.doc_end].sum((0, 1))
        self._question_mass[layer] = doc_mass + self._question_mass.get(layer, 0)
        self._question_host = None

    def _select_at_question(self, state: _LayerState, mass: torch.Tensor, query, key, value, scaling: float) -> None:
        start, end = self._grouped_region()
        count = min(end - start, max(self.settings.min_focal, math.ceil(self.settings.gamma * self.doc_length)))
        if not self.settings.compress or count >= end - start:  # nothing to fold: exact attention is DGA here
            return
        batch, kv_heads = key.shape[:2]
        query_ref = state.recent.reshape(batch, kv_heads, -1, query.shape[-1]).mean(2)  # (B, H_kv, D)
        state.blocks = build_blocks(key, value, start, end, query_ref, self.settings, scaling)
        focal = ops.top_positions(mass[..., start:end], count, self.settings.smoothing, self.settings.follow)
        self._install(state, focal, key, value, scaling)

    def _install(self, state: _LayerState, focal, key, value, scaling: float) -> None:
        """Build the decode buffer from focal tokens (block-relative positions) and the folded blocks."""
        blocks = state.blocks
        focal_keys, focal_values, group_keys, group_values, bias = fold_blocks(blocks, focal, self.settings, scaling)
        start, end = self._grouped_region()
        reserved = min(self.settings.expand, blocks.count) * blocks.size if self.settings.reselect_every else 0
        spare = key.shape[2] - self.doc_end + ANSWER_SPACE  # the question and the answer, grown if need be
        parts = [(key[:, :, :start], value[:, :, :start], 0.0), (focal_keys, focal_values, 0.0),
                 (group_keys.to(key.dtype), group_values.to(value.dtype), bias),
                 (key[:, :, end:self.doc_end], value[:, :, end:self.doc_end], 0.0),
                 (key.new_zeros(*key.shape[:2], reserved, key.shape[3]), None, float("-inf")),  # re-opened blocks
                 (key.new_zeros(*key.shape[:2], spare, key.shape[3]), None, 0.0)]  # the tail
        keys = torch.cat([k for k, _, _ in parts], 2)
        values = torch.cat([v if v is not None else k.new_zeros(*k.shape[:3], value.shape[3]) for k, v, _ in parts], 2)
        biases = [b.to(key.dtype) if torch.is_tensor(b) else key.new_full((*key.shape[:2], k.shape[2]), b)
                  for k, _, b in parts]
        state.first_group = start + focal_keys.shape[2]
        state.opened = state.first_group + group_keys.shape[2] + (self.doc_end - end)
        state.buffer = Buffer(keys, values, torch.cat(biases, -1), keys.shape[2] - spare)
        state.group_bias, state.focal = bias.to(key.dtype), focal + start
        state.focal_block = focal // blocks.size
        state.member_offsets = torch.arange(blocks.size, device=key.device) + (start - self.doc_start)
        state.rows = (torch.arange(key.shape[0], device=key.device)[:, None, None],
                      torch.arange(key.shape[1], device=key.device)[None, :, None])
        # Counted when asked (attended_fraction): int() here would wait for the device in every layer.
        self._kept = ((start - self.doc_start) + focal.shape[-1] + (self.doc_end - end), bias[0, 0])

    def _reopen(self, state: _LayerState, key, scaling: float) -> None:
        """Re-open the best groups for the recent queries into their exact tokens (in the reserved region of the
        buffer), hiding those groups and any focal tokens they hold so nothing is counted twice. In dense mode
        only the answer's attention over the document is recorded."""
        batch, kv_heads, _, dim = key.shape
        blocks, buffer = state.blocks, state.buffer
        if buffer is None:
            self._add_answer_mass(ops.attention_mass(state.recent, key[:, :, :self.doc_end], scaling)
                                  [..., self.doc_start:].sum((0, 1)))
            return
        if blocks.count == 0 or self.settings.expand == 0:
            return
        queries = state.recent.reshape(batch, kv_heads, -1, dim).float()  # (B, H_kv, n_rep*n, D)
        chosen = ops.rank_groups(queries, blocks.summary_keys, blocks.summary_bias, scaling, self.settings.expand)
        m = blocks.size
        picked = (*state.rows, chosen)  # blocks[b, h, chosen[b, h, c]] -> (B, H_kv, C, m, D)
        opened = slice(state.opened, state.opened + chosen.shape[-1] * m)
        opened_keys = blocks.keys[picked].flatten(2, 3)  # (B, H_kv, C*m, D)
        buffer.keys[:, :, opened] = opened_keys
        buffer.values[:, :, opened] = blocks.values[picked].flatten(2, 3)
        buffer.bias[:, :, opened] = 0
        is_open = torch.zeros_like(state.group_bias, dtype=torch.bool).scatter_(2, chosen, True)  # (B, H_kv, b)
        first = state.first_group
        buffer.bias[:, :, first:first + blocks.count] = state.group_bias.masked_fill(is_open, float("-inf"))
        hidden = is_open.gather(2, state.focal_block)  # focal tokens inside a re-opened block
        buffer.bias[:, :, first - hidden.shape[-1]:first] = torch.where(hidden, float("-inf"), 0.0)
        # The answer's attention: how the recent queries spread over the re-opened tokens. Only those get mass:
        # O(C*m) per re-opening, not O(L).
        logits = torch.einsum("bhqd,bhcd->bhqc", queries, opened_keys.float()) * scaling
        if self._answer_mass is None:
            self._answer_mass = torch.zeros(self.doc_length, device=key.device)
        self._answer_mass.index_add_(0, (chosen[..., None] * m + state.member_offsets).flatten(),
                                     torch.softmax(logits, -1).sum(2).flatten())

    def _add_answer_mass(self, mass: torch.Tensor) -> None:
        mass = mass.float()
        self._answer_mass = mass if self._answer_mass is None else self._answer_mass + mass

    # -- decoding

    def _decode(self, state: _LayerState, query, key, value, scaling: float):
        """One query (B, H, 1, D) over the buffer: kept prefix + focal + groups + remainder + opened + tail."""
        assert query.shape[2] == 1, "DGA decodes one token at a time"
        buffer = state.buffer
        valid = buffer.sync(key, value, self.doc_end)
        stacked = ops.stack_queries(query, key.shape[1])  # GQA: the heads of a group share keys
        out = ops.biased_attention(stacked, buffer.keys[:, :, :valid], buffer.values[:, :, :valid],
                                   buffer.bias[:, :, None, :valid], scaling, state.softcap)
        return ops.unstack_output(out, query.shape[1])  # (B, 1, H, D)
